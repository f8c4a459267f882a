"""MultiStreamSampler: several named batch streams from one view.

Each stream is its own sampler; the view is read once for all of them. Batches carry their
stream's name (``batch.stream``). Single-stream samplers never need a stream name.

>>> import mml, numpy as np
>>> fs = mml.FeatureSet.from_dict({"x": np.arange(4.0)}, features="x", label="m")
>>> s = MultiStreamSampler({"small": mml.SimpleSampler(1), "big": mml.SimpleSampler(4)})
>>> data = s.prepare(fs.view())
>>> s.stream_names, s.num_batches(data, "small"), s.num_batches(data, "big")
(('small', 'big'), 4, 1)
>>> next(s.batches(data, key=mml.random.key(0), stream="big")).stream
'big'
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, final

import attrs

from mml._fields import FrozenDict
from mml.data import Batch, FeatureSetView
from mml.errors import SamplerError
from mml.random import Key, fold_in
from mml.samplers._base import DEFAULT_STREAM, AbstractSampler
from mml.samplers._prepared import PreparedData

__all__ = ["MultiStreamSampler"]


def _freeze_streams(value: Any) -> FrozenDict[str, AbstractSampler]:
    if not isinstance(value, Mapping) or not value:
        raise SamplerError(
            "MultiStreamSampler.streams maps stream name → sampler, e.g. {'main': SimpleSampler(32)}"
        )
    for name, sampler in value.items():
        if not isinstance(name, str) or not name:
            raise SamplerError(f"stream names are non-empty strings, got {name!r}")
        if not isinstance(sampler, AbstractSampler) or isinstance(sampler, MultiStreamSampler):
            raise SamplerError(
                f"stream {name!r} must be a single-stream sampler (SimpleSampler, NSampler, ...), "
                f"got {type(sampler).__name__}"
            )
    return FrozenDict(value)


@final
@attrs.frozen
class MultiStreamSampler(AbstractSampler):
    """Named streams, each drawn by its own sampler from the same prepared view.

    Stream ``s`` of epoch ``e`` uses the key ``fold_in(fold_in(key, e), s)``, so streams are
    independent of each other and of the order the loop reads them in.
    """

    kind: ClassVar[str] = "sampler.streams"

    streams: Mapping[str, AbstractSampler] = attrs.field(converter=_freeze_streams)

    @property
    def stream_names(self) -> tuple[str, ...]:
        """The stream names, in the order given."""
        return tuple(self.streams)

    def batch_roles(self, stream: str | None = None) -> tuple[str, ...]:
        """The roles of the batches of ``stream`` (those of its sampler).

        >>> import mml
        >>> from mml.samplers import similar
        >>> s = MultiStreamSampler({"a": mml.SimpleSampler(2), "p": mml.PairedSampler({"x": similar(1.0)}, batch_size=2)})
        >>> s.batch_roles("a"), s.batch_roles("p")
        (('default',), ('anchor', 'pair'))
        """
        name = self._stream(stream)
        return self.streams[name].batch_roles()

    def required_columns(self) -> tuple[str, ...]:
        """Every column any stream reads."""
        return tuple(dict.fromkeys(c for s in self.streams.values() for c in s.required_columns()))

    def check_view(self, view: FeatureSetView) -> None:
        """Check the view for every stream."""
        for s in self.streams.values():
            s.check_view(view)

    def precompute(self, data: PreparedData) -> Mapping[str, Any]:
        """Each stream's structures, keyed by stream name."""
        return {name: s.precompute(attrs.evolve(data, sampler=s)) for name, s in self.streams.items()}

    def _sub(self, data: PreparedData, stream: str) -> PreparedData:
        return attrs.evolve(data, sampler=self.streams[stream], aux=data.aux[stream])

    def count_batches(self, data: PreparedData, stream: str = DEFAULT_STREAM) -> int:
        """Batches per epoch of one stream."""
        return self.streams[stream].count_batches(self._sub(data, stream))

    def epoch_batches(self, data: PreparedData, key: Key, stream: str) -> Iterator[Batch]:
        """One epoch of one stream."""
        return self.streams[stream].epoch_batches(self._sub(data, stream), fold_in(key, stream), stream)
