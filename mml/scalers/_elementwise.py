"""Element-wise and per-sample scalers: ``Negate``, ``Absolute``, ``Log1p``, ``PerSampleMinMax``,
``PerSampleZeroStart``.

Per-sample scalers use only the sample itself (its own min/max, its own first value), so they
learn nothing and are applied the same way to any data. They have no inverse: the per-sample
statistics of *new* data (a model's output) are unknown, so ``inverse`` raises
:class:`mml.NotInvertibleError`.

``Absolute`` keeps a per-feature *sign memory*: at fit time it records, for each feature,
whether all fitted values were ``>= 0`` (sign ``+1``) or all ``<= 0`` (sign ``-1``); a feature
whose values had both signs gets ``0``. The inverse multiplies by that sign, so it is exact for
data of the fitted sign — including new data such as model outputs. Where some feature had
mixed signs no inverse exists for new data and ``inverse`` raises :class:`mml.NotInvertibleError`
naming the feature positions (per-row signs of the fitted rows would not help for new rows).

>>> import numpy as np
>>> from mml.scalers import Absolute
>>> x = np.array([[-1.0, 2.0], [-3.0, 0.0]])
>>> p = Absolute().fit(x)
>>> p.sign_.tolist()
[-1, 1]
>>> Absolute().inverse(p, Absolute().apply(p, x)).tolist()
[[-1.0, 2.0], [-3.0, 0.0]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, final

import attrs
import numpy as np

from mml._fields import array_field
from mml.errors import NotInvertibleError, ScalerError
from mml.scalers._base import (
    AbstractScaler,
    AbstractScalerParams,
    NoParams,
    as_2d,
    as_samples,
    check_params,
    check_range,
    check_width,
    finite_samples,
    float_dtype,
    need_rows,
    range_tuple,
)

if TYPE_CHECKING:  # pragma: no cover
    from mml.random import Key

__all__ = ["Negate", "Absolute", "AbsoluteParams", "Log1p", "PerSampleMinMax", "PerSampleZeroStart"]


@final
@attrs.frozen
class Negate(AbstractScaler):
    """``y = -x`` (its own inverse).

    >>> import numpy as np
    >>> Negate().apply(NoParams(), np.array([[1.0], [-2.0]])).ravel().tolist()
    [-1.0, 2.0]
    """

    kind: ClassVar[str] = "scaler.negate"

    def fit(self, x: np.ndarray, *, key: Key | None = None) -> NoParams:
        finite_samples(x, "Negate.fit")
        return NoParams()

    def apply(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        x = finite_samples(x, "Negate.apply")
        return np.negative(x, dtype=float_dtype(x))

    def inverse(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        x = as_samples(x, "Negate.inverse")
        return np.negative(x, dtype=float_dtype(x))


@final
@attrs.frozen
class AbsoluteParams(AbstractScalerParams):
    """The per-feature sign memory of :class:`Absolute`: ``+1``, ``-1`` or ``0`` (mixed signs).

    >>> AbsoluteParams(sign_=np.array([1, -1], dtype=np.int8)).sign_.tolist()
    [1, -1]
    """

    kind: ClassVar[str] = "scaler_params.absolute"
    sign_: np.ndarray = array_field()  # noqa: RUF009 - an attrs field, not a default


@final
@attrs.frozen
class Absolute(AbstractScaler):
    """``y = |x|``; the inverse restores the sign each feature had at fit time (see module doc).

    >>> import numpy as np
    >>> x = np.array([[-1.0], [1.0]])
    >>> p = Absolute().fit(x)
    >>> Absolute().inverse(p, x)
    Traceback (most recent call last):
    ...
    mml.errors.NotInvertibleError: Absolute: ...
    """

    kind: ClassVar[str] = "scaler.absolute"

    def fit(self, x: np.ndarray, *, key: Key | None = None) -> AbsoluteParams:
        x2 = as_2d(finite_samples(x, "Absolute.fit"))
        need_rows(x2, "Absolute.fit")
        nonneg = (x2 >= 0).all(axis=0)
        nonpos = (x2 <= 0).all(axis=0)
        sign = np.where(nonneg, 1, np.where(nonpos, -1, 0)).astype(np.int8)
        return AbsoluteParams(sign_=sign)

    def apply(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        x = finite_samples(x, "Absolute.apply")
        return np.abs(x, dtype=float_dtype(x))

    def inverse(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        check_params(params, AbsoluteParams, "Absolute.inverse")
        assert isinstance(params, AbsoluteParams)
        x = as_samples(x, "Absolute.inverse")
        x2 = as_2d(x)
        check_width(x2, params.sign_.shape[0], "Absolute")
        mixed = np.flatnonzero(params.sign_ == 0)
        if mixed.size:
            raise NotInvertibleError(
                f"Absolute: feature position(s) {mixed[:10].tolist()} had both signs in the fitted data, so "
                "the sign of new values is unknown; scale a signed quantity with another scaler "
                "(e.g. 'standard') if you need the inverse"
            )
        dt = float_dtype(x)
        return np.multiply(x2, params.sign_.astype(dt), dtype=dt).reshape(x.shape)


@final
@attrs.frozen
class Log1p(AbstractScaler):
    """``y = log(1 + x)`` for ``x > -1``; inverse ``expm1``.

    >>> import numpy as np
    >>> Log1p().apply(NoParams(), np.array([[0.0]])).tolist()
    [[0.0]]
    """

    kind: ClassVar[str] = "scaler.log1p"

    def fit(self, x: np.ndarray, *, key: Key | None = None) -> NoParams:
        _check_domain(finite_samples(x, "Log1p.fit"), "Log1p.fit")
        return NoParams()

    def apply(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        x = finite_samples(x, "Log1p.apply")
        _check_domain(x, "Log1p.apply")
        return np.log1p(x, dtype=float_dtype(x))

    def inverse(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        x = as_samples(x, "Log1p.inverse")
        return np.expm1(x, dtype=float_dtype(x))


def _check_domain(x: np.ndarray, who: str) -> None:
    if x.size and not bool((x > -1).all()):
        raise ScalerError(
            f"{who}: log1p needs values > -1 but the data hold values <= -1 (or NaN); shift the data "
            "first or use another scaler"
        )


@final
@attrs.frozen
class PerSampleMinMax(AbstractScaler):
    """Scale each *sample* (all its elements together) to ``feature_range``; learns nothing.

    >>> import numpy as np
    >>> PerSampleMinMax().apply(NoParams(), np.array([[1.0, 3.0], [0.0, 10.0]])).tolist()
    [[0.0, 1.0], [0.0, 1.0]]
    """

    kind: ClassVar[str] = "scaler.per_sample_minmax"
    feature_wise: ClassVar[bool] = False
    feature_range: tuple[float, float] = attrs.field(
        default=(0.0, 1.0), converter=range_tuple, validator=check_range
    )

    def fit(self, x: np.ndarray, *, key: Key | None = None) -> NoParams:
        finite_samples(x, "PerSampleMinMax.fit")
        return NoParams()

    def apply(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        x = finite_samples(x, "PerSampleMinMax.apply")
        x2 = as_2d(x)
        dt = float_dtype(x)
        lo, hi = self.feature_range
        mn = x2.min(axis=1, keepdims=True).astype(dt) if x2.size else np.zeros((x2.shape[0], 1), dt)
        mx = x2.max(axis=1, keepdims=True).astype(dt) if x2.size else np.zeros((x2.shape[0], 1), dt)
        rng = mx - mn
        rng[rng == 0] = 1
        out = np.subtract(x2, mn, dtype=dt)
        out *= (hi - lo) / rng
        if lo != 0.0:
            out += dt.type(lo)
        return out.reshape(x.shape)

    def inverse(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        raise NotInvertibleError(
            "PerSampleMinMax has no inverse: the min/max of each new sample are unknown; "
            "scale targets with a fitted scaler such as 'minmax' if you need to map outputs back"
        )


@final
@attrs.frozen
class PerSampleZeroStart(AbstractScaler):
    """Subtract each sample's first entry along its first axis (a time series starts at 0).

    For a key of shape ``(T, C)`` every channel starts at 0. Learns nothing; no inverse.

    >>> import numpy as np
    >>> PerSampleZeroStart().apply(NoParams(), np.array([[2.0, 3.0, 5.0]])).tolist()
    [[0.0, 1.0, 3.0]]
    """

    kind: ClassVar[str] = "scaler.per_sample_zero_start"
    feature_wise: ClassVar[bool] = False

    def fit(self, x: np.ndarray, *, key: Key | None = None) -> NoParams:
        finite_samples(x, "PerSampleZeroStart.fit")
        return NoParams()

    def apply(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        x = finite_samples(x, "PerSampleZeroStart.apply")
        if x.ndim < 2:
            raise ScalerError(
                f"PerSampleZeroStart needs a tensor key (shape (n, T, ...)), got an array of shape {x.shape}"
            )
        dt = float_dtype(x)
        return np.subtract(x, x[:, :1], dtype=dt)

    def inverse(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        raise NotInvertibleError(
            "PerSampleZeroStart has no inverse: the start value of each new sample is unknown; "
            "scale targets with a fitted scaler if you need to map outputs back"
        )
