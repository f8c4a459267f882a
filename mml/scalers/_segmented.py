"""``Segmented``: an independent scaler per contiguous segment of a tensor key.

A key of per-sample shape ``(..., L)`` is cut along ``axis`` (default the last one) at
``boundaries`` (the interior cut points, strictly increasing, in ``(0, L)``) into segments.
Each segment gets its own fitted params. For a feature-wise inner scaler (``MinMax``,
``Standard``, ...) all elements of a segment are *pooled into one feature* — one min/max or
mean/std per segment, which is the point of segmenting (feature-wise per element would be the
same as not segmenting). Per-sample scalers (and nested ``Segmented``) see the segment with its
shape, per sample.

``scalers`` holds either one spec used for every segment or one spec per segment.

>>> import numpy as np
>>> from mml.scalers import Segmented, MinMax, Standard
>>> x = np.array([[0.0, 10.0, 100.0, 300.0], [5.0, 0.0, 200.0, 100.0]])
>>> s = Segmented(boundaries=(2,), scalers=(MinMax(),))
>>> s.apply(s.fit(x), x).tolist()
[[0.0, 1.0, 0.0, 1.0], [0.5, 0.0, 0.5, 0.0]]
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, ClassVar, final

import attrs
import numpy as np

from mml._fields import frozen_tuple
from mml.errors import ScalerError
from mml.scalers._base import AbstractScaler, AbstractScalerParams, as_samples, check_params, finite_samples

if TYPE_CHECKING:  # pragma: no cover
    from mml.random import Key

__all__ = ["Segmented", "SegmentedParams"]


def _check_boundaries(instance: Any, attribute: Any, value: tuple[int, ...]) -> None:
    ints = all(isinstance(b, int) and not isinstance(b, bool) for b in value)
    increasing = all(a < b for a, b in itertools.pairwise(value))
    if ints and increasing and value and value[0] == 0:
        # a ModularML-style list of edges [0, ..., L]: say everything in one message
        inner, last = value[1:-1], value[-1]
        if len(value) > 1:
            hint = f"boundaries={inner!r} if {last} is the axis length, else boundaries={value[1:]!r}"
        else:
            hint = "leave boundaries out (()) for one segment"
        raise ScalerError(
            f"Segmented.boundaries are the interior cut points, without 0 and without the axis length; "
            f"got {value!r}: drop 0 and the length — {hint}"
        )
    if not ints or not increasing or any(b <= 0 for b in value):
        raise ScalerError(f"Segmented.boundaries must be strictly increasing positive ints, got {value!r}")


def _check_scalers(instance: Any, attribute: Any, value: tuple[AbstractScaler, ...]) -> None:
    if not all(isinstance(s, AbstractScaler) for s in value):
        raise ScalerError(
            "Segmented.scalers holds scaler specs (e.g. (mml.scalers.MinMax(),)); "
            "turn names into specs with mml.scalers.get_scaler(name)"
        )
    n = len(instance.boundaries) + 1
    if len(value) not in (1, n):
        raise ScalerError(
            f"Segmented has {n} segment(s) (boundaries {instance.boundaries!r}) but {len(value)} scalers; "
            "give one scaler for all segments or one per segment"
        )


def _scalers_tuple(value: Any) -> tuple[AbstractScaler, ...]:
    if isinstance(value, AbstractScaler):
        return (value,)
    return tuple(value)


@final
@attrs.frozen
class SegmentedParams(AbstractScalerParams):
    """The params of each segment, in order.

    >>> from mml.scalers import NoParams
    >>> len(SegmentedParams(params=(NoParams(), NoParams())).params)
    2
    """

    kind: ClassVar[str] = "scaler_params.segmented"
    params: tuple[AbstractScalerParams, ...] = attrs.field(converter=frozen_tuple)


@final
@attrs.frozen
class Segmented(AbstractScaler):
    """An independent scaler per contiguous segment of a tensor key (see module doc).

    >>> from mml.scalers import MinMax
    >>> Segmented(boundaries=(3, 5), scalers=(MinMax(),)).n_segments
    3
    """

    kind: ClassVar[str] = "scaler.segmented"
    feature_wise: ClassVar[bool] = False
    boundaries: tuple[int, ...] = attrs.field(converter=frozen_tuple, validator=_check_boundaries)
    scalers: tuple[AbstractScaler, ...] = attrs.field(converter=_scalers_tuple, validator=_check_scalers)
    axis: int = -1

    @property
    def n_segments(self) -> int:
        """How many segments the boundaries make."""
        return len(self.boundaries) + 1

    def _scaler(self, i: int) -> AbstractScaler:
        return self.scalers[0] if len(self.scalers) == 1 else self.scalers[i]

    def _segments(self, x: np.ndarray, who: str) -> tuple[int, list[tuple[int, int]]]:
        per_sample = x.ndim - 1
        if per_sample == 0:
            raise ScalerError(f"{who}: Segmented needs a tensor key, got an array of shape {x.shape}")
        if not -per_sample <= self.axis < per_sample:
            raise ScalerError(f"{who}: axis {self.axis} is out of range for per-sample shape {x.shape[1:]}")
        ax = (self.axis % per_sample) + 1
        length = x.shape[ax]
        if self.boundaries and self.boundaries[-1] == length:
            raise ScalerError(
                f"{who}: boundaries {self.boundaries!r} end at the axis length {length}; boundaries are the "
                f"interior cut points: drop the length — boundaries={self.boundaries[:-1]!r}"
            )
        if self.boundaries and self.boundaries[-1] > length:
            raise ScalerError(
                f"{who}: boundaries {self.boundaries!r} must lie inside (0, {length}) for axis {self.axis} "
                f"of per-sample shape {x.shape[1:]}"
            )
        cuts = (0, *self.boundaries, length)
        return ax, list(itertools.pairwise(cuts))

    @staticmethod
    def _slice(x: np.ndarray, ax: int, a: int, b: int) -> np.ndarray:
        idx = [slice(None)] * x.ndim
        idx[ax] = slice(a, b)
        return x[tuple(idx)]

    @staticmethod
    def _view(scaler: AbstractScaler, seg: np.ndarray) -> np.ndarray:
        # feature-wise scalers see a whole segment as one feature
        return seg.reshape(-1, 1) if scaler.feature_wise else seg

    def fit(self, x: np.ndarray, *, key: Key | None = None) -> SegmentedParams:
        x = finite_samples(x, "Segmented.fit")
        ax, segs = self._segments(x, "Segmented.fit")
        out = []
        for i, (a, b) in enumerate(segs):
            s = self._scaler(i)
            seg_key = None
            if key is not None:
                from mml.random import fold_in

                seg_key = fold_in(key, i)
            out.append(s.fit(self._view(s, self._slice(x, ax, a, b)), key=seg_key))
        return SegmentedParams(params=tuple(out))

    def _map(self, params: AbstractScalerParams, x: np.ndarray, who: str, inverse: bool) -> np.ndarray:
        check_params(params, SegmentedParams, who)
        assert isinstance(params, SegmentedParams)
        x = as_samples(x, who) if inverse else finite_samples(x, who)
        ax, segs = self._segments(x, who)
        if len(params.params) != len(segs):
            raise ScalerError(f"{who}: params hold {len(params.params)} segments, the spec has {len(segs)}")
        parts = []
        for i, (a, b) in enumerate(segs):
            s = self._scaler(i)
            seg = self._slice(x, ax, a, b)
            fn = s.inverse if inverse else s.apply
            parts.append(fn(params.params[i], self._view(s, seg)).reshape(seg.shape))
        return np.concatenate(parts, axis=ax)

    def apply(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        return self._map(params, x, "Segmented.apply", inverse=False)

    def inverse(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        return self._map(params, x, "Segmented.inverse", inverse=True)
