"""Feature-wise scalers: each column of ``x.reshape(n, -1)`` is scaled on its own.

Statistics are computed in float64 and stored as 1-D float64 arrays of length
``prod(key_shape)``; ``apply``/``inverse`` compute in the input's floating dtype (float32 stays
float32), writing only into the freshly allocated output.

>>> import numpy as np
>>> from mml.scalers import Standard
>>> x = np.array([[1.0, 10.0], [3.0, 30.0]], dtype=np.float32)
>>> s = Standard()
>>> y = s.apply(s.fit(x), x)
>>> y.dtype, y.tolist()
(dtype('float32'), [[-1.0, -1.0], [1.0, 1.0]])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, final

import attrs
import numpy as np

from mml._fields import array_field
from mml.errors import ScalerError
from mml.scalers._base import (
    AbstractScaler,
    AbstractScalerParams,
    as_2d,
    as_samples,
    check_params,
    check_range,
    check_width,
    finite_samples,
    float_dtype,
    need_finite,
    need_rows,
    nonzero_scale,
    range_tuple,
)

if TYPE_CHECKING:  # pragma: no cover
    from mml.random import Key

__all__ = [
    "MinMax",
    "MinMaxParams",
    "Standard",
    "StandardParams",
    "MaxAbs",
    "MaxAbsParams",
    "Robust",
    "RobustParams",
]


def _affine(x: np.ndarray, shift: np.ndarray | None, scale: np.ndarray | None, *, divide: bool) -> np.ndarray:
    """``(x - shift) / scale`` (``divide``) or ``x * scale + shift``, in a fresh array."""
    x2 = as_2d(x)
    dt = float_dtype(x)
    if divide:
        out = np.subtract(x2, shift.astype(dt), dtype=dt) if shift is not None else x2.astype(dt, copy=True)
        if scale is not None:
            np.divide(out, scale.astype(dt), out=out)
    else:
        out = np.multiply(x2, scale.astype(dt), dtype=dt) if scale is not None else x2.astype(dt, copy=True)
        if shift is not None:
            np.add(out, shift.astype(dt), out=out)
    return out.reshape(x.shape)


def _checked_input(
    params: AbstractScalerParams, cls: type, x: np.ndarray, what: str, *, finite: bool = True
) -> np.ndarray:
    """``x`` as samples, after checking the params' type and that the feature width matches.

    Data going in (``apply``) must be finite; what comes back through ``inverse`` (a model's
    outputs) is mapped as it is (``finite=False``).
    """
    check_params(params, cls, what)
    x = finite_samples(x, what) if finite else as_samples(x, what)
    check_width(as_2d(x), params.scale_.shape[0], what.split(".")[0])  # type: ignore[attr-defined]
    return x


# -- MinMax -------------------------------------------------------------------------------


@final
@attrs.frozen
class MinMaxParams(AbstractScalerParams):
    """Fitted params of :class:`MinMax`: ``y = x * scale_ + min_`` per feature.

    >>> MinMaxParams(min_=[0.0], scale_=[0.5]).scale_.tolist()
    [0.5]
    """

    kind: ClassVar[str] = "scaler_params.minmax"
    min_: np.ndarray = array_field()  # noqa: RUF009 - an attrs field, not a default
    scale_: np.ndarray = array_field()  # noqa: RUF009 - an attrs field, not a default


@final
@attrs.frozen
class MinMax(AbstractScaler):
    """Scale each feature to ``feature_range`` (default ``(0, 1)``); constant features map to ``low``.

    >>> import numpy as np
    >>> x = np.array([[1.0], [3.0]])
    >>> s = MinMax(feature_range=(-1, 1))
    >>> p = s.fit(x)
    >>> s.apply(p, x).ravel().tolist(), s.inverse(p, s.apply(p, x)).ravel().tolist()
    ([-1.0, 1.0], [1.0, 3.0])
    """

    kind: ClassVar[str] = "scaler.minmax"
    feature_range: tuple[float, float] = attrs.field(
        default=(0.0, 1.0), converter=range_tuple, validator=check_range
    )

    def fit(self, x: np.ndarray, *, key: Key | None = None) -> MinMaxParams:
        x2 = as_2d(finite_samples(x, "MinMax.fit"))
        need_rows(x2, "MinMax.fit")
        dmin = x2.min(axis=0).astype(np.float64)
        dmax = x2.max(axis=0).astype(np.float64)
        need_finite(dmin, "MinMax.fit")
        need_finite(dmax, "MinMax.fit")
        lo, hi = self.feature_range
        scale = (hi - lo) / nonzero_scale(dmax - dmin)
        return MinMaxParams(min_=lo - dmin * scale, scale_=scale)

    def apply(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        x = _checked_input(params, MinMaxParams, x, "MinMax.apply")
        assert isinstance(params, MinMaxParams)
        return _affine(x, params.min_, params.scale_, divide=False)

    def inverse(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        x = _checked_input(params, MinMaxParams, x, "MinMax.inverse", finite=False)
        assert isinstance(params, MinMaxParams)
        return _affine(x, params.min_, params.scale_, divide=True)


# -- Standard -----------------------------------------------------------------------------

_BLOCK_ROWS = 65536


def _variance(x2: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Population variance per column, two-pass in float64, over row blocks.

    Blocks keep the float64 temporary small (``x.var(dtype=float64)`` would allocate a full
    float64 copy of the data) and are faster on large inputs.
    """
    n = x2.shape[0]
    acc = np.zeros(x2.shape[1], dtype=np.float64)
    buf = np.empty((min(n, _BLOCK_ROWS), x2.shape[1]), dtype=np.float64)
    for start in range(0, n, _BLOCK_ROWS):
        block = x2[start : start + _BLOCK_ROWS]
        b = buf[: block.shape[0]]
        np.subtract(block, mean, out=b)
        np.square(b, out=b)
        acc += b.sum(axis=0)
    return acc / n


@final
@attrs.frozen
class StandardParams(AbstractScalerParams):
    """Fitted params of :class:`Standard`: ``y = (x - mean_) / scale_`` per feature.

    >>> StandardParams(mean_=[1.0], scale_=[2.0]).mean_.tolist()
    [1.0]
    """

    kind: ClassVar[str] = "scaler_params.standard"
    mean_: np.ndarray = array_field()  # noqa: RUF009 - an attrs field, not a default
    scale_: np.ndarray = array_field()  # noqa: RUF009 - an attrs field, not a default


@final
@attrs.frozen
class Standard(AbstractScaler):
    """Zero mean and unit variance per feature (population variance, like scikit-learn).

    >>> import numpy as np
    >>> x = np.array([[0.0], [2.0]])
    >>> p = Standard().fit(x)
    >>> p.mean_.tolist(), p.scale_.tolist()
    ([1.0], [1.0])
    """

    kind: ClassVar[str] = "scaler.standard"
    with_mean: bool = True
    with_std: bool = True

    def fit(self, x: np.ndarray, *, key: Key | None = None) -> StandardParams:
        x2 = as_2d(finite_samples(x, "Standard.fit"))
        need_rows(x2, "Standard.fit")
        mean = x2.mean(axis=0, dtype=np.float64)
        need_finite(mean, "Standard.fit")
        if self.with_std:
            scale = nonzero_scale(np.sqrt(_variance(x2, mean)))
        else:
            scale = np.ones_like(mean)
        if not self.with_mean:
            mean = np.zeros_like(mean)
        return StandardParams(mean_=mean, scale_=scale)

    def apply(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        x = _checked_input(params, StandardParams, x, "Standard.apply")
        assert isinstance(params, StandardParams)
        return _affine(
            x,
            params.mean_ if self.with_mean else None,
            params.scale_ if self.with_std else None,
            divide=True,
        )

    def inverse(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        x = _checked_input(params, StandardParams, x, "Standard.inverse", finite=False)
        assert isinstance(params, StandardParams)
        return _affine(
            x,
            params.mean_ if self.with_mean else None,
            params.scale_ if self.with_std else None,
            divide=False,
        )


# -- MaxAbs -------------------------------------------------------------------------------


@final
@attrs.frozen
class MaxAbsParams(AbstractScalerParams):
    """Fitted params of :class:`MaxAbs`: ``y = x / scale_`` per feature.

    >>> MaxAbsParams(scale_=[4.0]).scale_.tolist()
    [4.0]
    """

    kind: ClassVar[str] = "scaler_params.maxabs"
    scale_: np.ndarray = array_field()  # noqa: RUF009 - an attrs field, not a default


@final
@attrs.frozen
class MaxAbs(AbstractScaler):
    """Divide each feature by its largest absolute value (keeps zeros and signs).

    >>> import numpy as np
    >>> x = np.array([[-4.0], [2.0]])
    >>> MaxAbs().apply(MaxAbs().fit(x), x).ravel().tolist()
    [-1.0, 0.5]
    """

    kind: ClassVar[str] = "scaler.maxabs"

    def fit(self, x: np.ndarray, *, key: Key | None = None) -> MaxAbsParams:
        x2 = as_2d(finite_samples(x, "MaxAbs.fit"))
        need_rows(x2, "MaxAbs.fit")
        hi = x2.max(axis=0).astype(np.float64)
        lo = x2.min(axis=0).astype(np.float64)
        need_finite(hi, "MaxAbs.fit")
        need_finite(lo, "MaxAbs.fit")
        return MaxAbsParams(scale_=nonzero_scale(np.maximum(np.abs(hi), np.abs(lo))))

    def apply(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        x = _checked_input(params, MaxAbsParams, x, "MaxAbs.apply")
        assert isinstance(params, MaxAbsParams)
        return _affine(x, None, params.scale_, divide=True)

    def inverse(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        x = _checked_input(params, MaxAbsParams, x, "MaxAbs.inverse", finite=False)
        assert isinstance(params, MaxAbsParams)
        return _affine(x, None, params.scale_, divide=False)


# -- Robust -------------------------------------------------------------------------------


@final
@attrs.frozen
class RobustParams(AbstractScalerParams):
    """Fitted params of :class:`Robust`: ``y = (x - center_) / scale_`` per feature.

    >>> RobustParams(center_=[0.0], scale_=[1.0]).center_.tolist()
    [0.0]
    """

    kind: ClassVar[str] = "scaler_params.robust"
    center_: np.ndarray = array_field()  # noqa: RUF009 - an attrs field, not a default
    scale_: np.ndarray = array_field()  # noqa: RUF009 - an attrs field, not a default


def _check_quantiles(instance: object, attribute: object, value: tuple[float, float]) -> None:
    if len(value) != 2 or not 0.0 <= value[0] < value[1] <= 100.0:
        raise ScalerError(
            f"Robust.quantile_range must be (q_low, q_high) with 0 <= q_low < q_high <= 100, got {value!r}"
        )


@final
@attrs.frozen
class Robust(AbstractScaler):
    """Remove the median and divide by the inter-quantile range (``quantile_range`` in percent).

    >>> import numpy as np
    >>> x = np.array([[1.0], [2.0], [3.0], [100.0]])
    >>> p = Robust().fit(x)
    >>> p.center_.tolist()
    [2.5]
    """

    kind: ClassVar[str] = "scaler.robust"
    with_centering: bool = True
    with_scaling: bool = True
    quantile_range: tuple[float, float] = attrs.field(
        default=(25.0, 75.0), converter=range_tuple, validator=_check_quantiles
    )
    unit_variance: bool = False

    def fit(self, x: np.ndarray, *, key: Key | None = None) -> RobustParams:
        x2 = as_2d(finite_samples(x, "Robust.fit"))
        need_rows(x2, "Robust.fit")
        lo, hi = self.quantile_range
        q = np.percentile(x2, [lo, 50.0, hi], axis=0).astype(np.float64)
        need_finite(q.ravel(), "Robust.fit")
        center = q[1] if self.with_centering else np.zeros(x2.shape[1])
        if self.with_scaling:
            scale = nonzero_scale(q[2] - q[0])
            if self.unit_variance:
                from scipy.special import ndtri

                scale = scale / (ndtri(hi / 100.0) - ndtri(lo / 100.0))
        else:
            scale = np.ones(x2.shape[1])
        return RobustParams(center_=center, scale_=scale)

    def apply(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        x = _checked_input(params, RobustParams, x, "Robust.apply")
        assert isinstance(params, RobustParams)
        return _affine(x, params.center_, params.scale_, divide=True)

    def inverse(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        x = _checked_input(params, RobustParams, x, "Robust.inverse", finite=False)
        assert isinstance(params, RobustParams)
        return _affine(x, params.center_, params.scale_, divide=False)
