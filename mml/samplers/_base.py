"""The sampler interface and the batch loop every sampler shares.

A sampler is a frozen spec. Its batch stream is a pure function of (sampler, view, key,
epoch): ``prepare`` reads the view once, ``batches`` yields one epoch of :class:`~mml.data.Batch`
values from the prepared arrays, drawing every random choice from
``mml.random.fold_in(key, epoch)``.

>>> import mml, numpy as np
>>> fs = mml.FeatureSet.from_dict({"x": np.arange(5.0)}, features="x", label="b")
>>> s = mml.SimpleSampler(batch_size=2, shuffle=False)
>>> data = s.prepare(fs.view())
>>> [b.features.ravel().tolist() for b in s.batches(data, key=mml.random.key(0), epoch=0)]
[[0.0, 1.0], [2.0, 3.0], [4.0]]
>>> s.num_batches(data), s.stream_names
(3, ('default',))
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import attrs
import numpy as np

from mml._fields import FrozenDict
from mml.data import DEFAULT_ROLE, Batch, FeatureSet, FeatureSetView, SampleData
from mml.errors import SamplerError
from mml.random import Key, fold_in
from mml.samplers._prepared import PreparedData, materialize

__all__ = [
    "AbstractSampler",
    "DEFAULT_STREAM",
    "RoleRows",
    "emit_batches",
    "check_batch_size",
    "check_strict_stratification",
    "optional_column",
]

DEFAULT_STREAM = "default"
# Rows are gathered a chunk of batches at a time: one numpy call per chunk instead of one per
# batch, while the chunk stays small enough to live in cache.
_CHUNK_BYTES = 1 << 20
# On an accelerator a chunk is one index_select per array: bigger chunks mean fewer index copies
# from the host (device memory is not cache-bound).
_DEVICE_CHUNK_BYTES = 1 << 26
_NO_TAGS: FrozenDict[str, Any] = FrozenDict()


def check_batch_size(instance: Any, attribute: Any, value: int) -> None:
    """attrs validator: a positive int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise SamplerError(
            f"{type(instance).__name__}.{attribute.name} must be a positive int, got {value!r}; "
            f"use e.g. {attribute.name}=32"
        )


def optional_column(instance: Any, attribute: Any, value: str | None) -> None:
    """attrs validator: ``None`` or a column name (a non-empty str)."""
    if value is not None and (not isinstance(value, str) or not value):
        raise SamplerError(
            f"{type(instance).__name__}.{attribute.name} takes a column name (str) or None, got {value!r}"
        )


def check_strict_stratification(sampler: Any, trims: str) -> None:
    """``strict_stratification=True`` needs the class column ``stratify_by`` (``trims``: what it trims)."""
    if sampler.strict_stratification and sampler.stratify_by is None:
        raise SamplerError(
            f"{type(sampler).__name__}(strict_stratification=True) trims {trims} of stratify_by; "
            "name the class column with stratify_by=... or drop strict_stratification"
        )


class RoleRows:
    """One role's rows for one epoch: positions into the prepared arrays, plus optional
    per-row weights and mask (already in epoch order)."""

    __slots__ = ("mask", "name", "rows", "weights")

    def __init__(
        self, name: str, rows: np.ndarray, weights: np.ndarray | None = None, mask: np.ndarray | None = None
    ) -> None:
        self.name = name
        self.rows = rows
        self.weights = weights
        self.mask = mask


def _ro(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _all_numpy(data: PreparedData) -> bool:
    """Whether features, targets and tags are all numpy (the host path)."""
    return (
        isinstance(data.features, np.ndarray)
        and (data.targets is None or isinstance(data.targets, np.ndarray))
        and all(isinstance(v, np.ndarray) for v in data.tags.values())
    )


def _device_chunk(data: PreparedData, roles: Sequence[RoleRows], s: int, e: int) -> list[tuple[Any, ...]]:
    """Rows ``s:e`` of every role, gathered where each array lives.

    Tensors are gathered with ``torch.index_select`` on their own device, with the chunk's
    row indices copied there once per role and device; numpy arrays (UUIDs, text tags) as on
    the host path.
    """
    import torch

    take = np.take
    chunk = []
    for r in roles:
        idx = r.rows[s:e]
        on: dict[Any, Any] = {}

        def gather(a: Any, idx: np.ndarray = idx, on: dict[Any, Any] = on) -> Any:
            if isinstance(a, np.ndarray):
                return _ro(take(a, idx, axis=0))
            dev = a.device
            it = on.get(dev)
            if it is None:
                # a fresh int64 copy: the rows may be read-only, and torch cannot wrap those
                it = on[dev] = torch.from_numpy(np.array(idx, dtype=np.int64)).to(dev)
            return torch.index_select(a, 0, it)

        chunk.append(
            (
                r.name,
                gather(data.features),
                None if data.targets is None else gather(data.targets),
                _ro(take(data.sample_uuids, idx)),
                {k: gather(v) for k, v in data.tags.items()},
                r.weights,
                r.mask,
            )
        )
    return chunk


def emit_batches(
    data: PreparedData, roles: Sequence[RoleRows], bounds: np.ndarray, stream: str
) -> Iterator[Batch]:
    """Yield batches ``bounds[i]:bounds[i+1]`` of the aligned role rows.

    Rows are gathered one chunk of batches at a time (``np.take`` into fresh arrays, then
    made read-only) and each batch is a slice of the chunk, so the per-batch work is a few
    slices and two small frozen records. When the data hold torch tensors (see
    :func:`~mml.samplers._prepared.to_device`), a chunk is gathered on their device with
    ``torch.index_select``: only the chunk's row indices are copied there.
    """
    nb = len(bounds) - 1
    if nb <= 0:
        return
    on_device = not _all_numpy(data)
    span = int(bounds[-1] - bounds[0])
    budget = _DEVICE_CHUNK_BYTES if on_device else _CHUNK_BYTES
    rows_per_chunk = max(1, budget // max(1, data.row_bytes * len(roles)))
    batches_per_chunk = max(1, int(rows_per_chunk * nb // max(1, span)))
    features, targets, uuids, tags = data.features, data.targets, data.sample_uuids, data.tags
    take = np.take
    bl = bounds.tolist()
    for c0 in range(0, nb, batches_per_chunk):
        c1 = min(nb, c0 + batches_per_chunk)
        s, e = bl[c0], bl[c1]
        if on_device:
            chunk = _device_chunk(data, roles, s, e)
        else:
            chunk = []
            for r in roles:
                idx = r.rows[s:e]
                chunk.append(
                    (
                        r.name,
                        _ro(take(features, idx, axis=0)),
                        None if targets is None else _ro(take(targets, idx, axis=0)),
                        _ro(take(uuids, idx)),
                        {k: _ro(take(v, idx, axis=0)) for k, v in tags.items()},
                        r.weights,
                        r.mask,
                    )
                )
        for b in range(c0, c1):
            b0, b1 = bl[b], bl[b + 1]
            i, j = b0 - s, b1 - s
            out = {}
            for name, f, t, u, tg, w, m in chunk:
                out[name] = SampleData(
                    f[i:j],
                    None if t is None else t[i:j],
                    FrozenDict({k: v[i:j] for k, v in tg.items()}) if tg else _NO_TAGS,
                    u[i:j],
                    None if w is None else w[b0:b1],
                    None if m is None else m[b0:b1],
                )
            yield Batch(out, stream)


class AbstractSampler(abc.ABC):
    """Base of every sampler: ``prepare`` once, then ``batches`` per epoch.

    Concrete samplers are final frozen attrs classes with a ``kind`` tag
    (``"sampler.simple"``, ``"sampler.n"``, ``"sampler.streams"``).

    >>> import mml
    >>> isinstance(mml.SimpleSampler(batch_size=4), AbstractSampler)
    True
    """

    _mml_union: ClassVar[bool] = True

    # -- what a concrete sampler provides ---------------------------------------------------

    @abc.abstractmethod
    def required_columns(self) -> tuple[str, ...]:
        """Scalar columns this sampler reads (group, stratum, condition columns)."""

    @abc.abstractmethod
    def check_view(self, view: FeatureSetView) -> None:
        """Raise a :class:`~mml.errors.SamplerError` if the view cannot be sampled."""

    @abc.abstractmethod
    def precompute(self, data: PreparedData) -> Mapping[str, Any]:
        """Epoch-independent structures (sort orders, group codes) from the prepared columns."""

    @abc.abstractmethod
    def count_batches(self, data: PreparedData, stream: str = DEFAULT_STREAM) -> int:
        """Number of batches per epoch of ``stream``, for data prepared by this sampler."""

    @abc.abstractmethod
    def epoch_batches(self, data: PreparedData, key: Key, stream: str) -> Iterator[Batch]:
        """One epoch of batches; ``key`` is already folded with the epoch."""

    # -- the interface a training loop uses ---------------------------------------------------

    @property
    def stream_names(self) -> tuple[str, ...]:
        """Names of the streams this sampler emits (``("default",)`` for one stream)."""
        return (DEFAULT_STREAM,)

    def batch_roles(self, stream: str | None = None) -> tuple[str, ...]:
        """The roles every batch of ``stream`` has (``("default",)`` for single-role samplers).

        >>> import mml
        >>> mml.SimpleSampler(4).batch_roles()
        ('default',)
        """
        self._stream(stream)
        return (DEFAULT_ROLE,)

    def prepare(self, view: FeatureSetView) -> PreparedData:
        """Read the view's arrays once (call once per phase, reuse every epoch).

        >>> import mml
        >>> fs = mml.FeatureSet.from_dict({"x": [1.0, 2.0, 3.0]}, features="x", label="p")
        >>> len(mml.SimpleSampler(batch_size=2).prepare(fs.view()))
        3
        """
        if isinstance(view, FeatureSet):
            view = view.view()
        if not isinstance(view, FeatureSetView):
            raise SamplerError(
                f"a sampler reads a FeatureSetView (e.g. fs['train']) or a FeatureSet, got {type(view).__name__}"
            )
        self.check_view(view)
        data = materialize(view, self, self.required_columns())
        return attrs.evolve(data, aux=self.precompute(data))

    def batches(
        self, prepared: PreparedData, *, key: Key, epoch: int = 0, stream: str | None = None
    ) -> Iterator[Batch]:
        """One epoch of batches (a pure function of the arguments): read-only numpy arrays, or
        torch tensors on the prepared data's device after :func:`~mml.samplers._prepared.to_device`.

        >>> import mml
        >>> fs = mml.FeatureSet.from_dict({"x": [1.0, 2.0, 3.0]}, features="x", label="p")
        >>> s = mml.SimpleSampler(batch_size=2)
        >>> d = s.prepare(fs.view())
        >>> k = mml.random.key(0)
        >>> [len(b) for b in s.batches(d, key=k, epoch=1)]
        [2, 1]
        """
        name = self._stream(stream)
        self._check_prepared(prepared)
        if not isinstance(key, Key):
            raise SamplerError(f"batches() takes key=mml.random.key(seed), got {type(key).__name__}")
        return self.epoch_batches(prepared, fold_in(key, epoch), name)

    def num_batches(self, prepared: PreparedData, stream: str | None = None) -> int:
        """Number of batches one epoch yields (the same every epoch).

        >>> import mml
        >>> fs = mml.FeatureSet.from_dict({"x": [1.0, 2.0, 3.0]}, features="x", label="p")
        >>> s = mml.SimpleSampler(batch_size=2, drop_last=True)
        >>> s.num_batches(s.prepare(fs.view()))
        1
        """
        name = self._stream(stream)
        self._check_prepared(prepared)
        return self.count_batches(prepared, name)

    def iter(
        self, view: FeatureSetView, *, key: Key, epoch: int = 0, stream: str | None = None
    ) -> Iterator[Batch]:
        """``prepare`` then ``batches``: convenient for one-off use, slower in a loop.

        >>> import mml
        >>> fs = mml.FeatureSet.from_dict({"x": [1.0, 2.0, 3.0]}, features="x", label="p")
        >>> sum(len(b) for b in mml.SimpleSampler(batch_size=2).iter(fs.view(), key=mml.random.key(1)))
        3
        """
        return self.batches(self.prepare(view), key=key, epoch=epoch, stream=stream)

    # -- helpers ------------------------------------------------------------------------------

    def _stream(self, stream: str | None) -> str:
        names = self.stream_names
        if stream is None:
            if len(names) == 1:
                return names[0]
            raise SamplerError(
                f"{type(self).__name__} emits several streams ({', '.join(names)}); "
                "name one: sampler.batches(prepared, key=..., epoch=..., stream=...)"
            )
        if stream not in names:
            raise SamplerError(f"unknown stream {stream!r}; this sampler emits {', '.join(names)}")
        return stream

    def _check_prepared(self, prepared: Any) -> None:
        if not isinstance(prepared, PreparedData):
            raise SamplerError(
                f"batches() takes the result of sampler.prepare(view), got {type(prepared).__name__}; "
                "use sampler.iter(view, key=...) to do both"
            )
        if prepared.sampler is not self and prepared.sampler != self:
            raise SamplerError(
                f"these arrays were prepared by another sampler ({type(prepared.sampler).__name__}); "
                "call prepare(view) on the sampler that yields the batches"
            )
