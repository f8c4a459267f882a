"""The scaler interface: a frozen spec with pure ``fit`` / ``apply`` / ``inverse``.

A scaler is a *spec* (its hyperparameters, a frozen attrs value) plus *params* (the numbers
``fit`` learned, another frozen attrs value). Every method is pure: the input array is never
written to and a fresh array is returned.

``x`` is a numpy array of shape ``(n, *key_shape)``: one row per sample. Feature-wise scalers
(``MinMax``, ``Standard``, ``MaxAbs``, ``Robust``, ``Absolute``, scikit-learn ones) see every
element position of the per-sample shape as one feature, i.e. they work on the columns of
``x.reshape(n, -1)``, and their params are 1-D arrays of length ``prod(key_shape)``.

>>> import numpy as np
>>> from mml.scalers import MinMax
>>> x = np.array([[0.0], [5.0], [10.0]])
>>> params = MinMax().fit(x)
>>> MinMax().apply(params, x).ravel().tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar, final

import attrs
import numpy as np

from mml.errors import ScalerError

if TYPE_CHECKING:  # pragma: no cover
    from mml.random import Key

__all__ = ["AbstractScaler", "AbstractScalerParams", "NoParams"]


class AbstractScalerParams(abc.ABC):  # noqa: B024 - a tagged-union base with no abstract methods
    """Base of the fitted-params records of scalers (a tagged union when serialized)."""

    _mml_union: ClassVar[bool] = True


@final
@attrs.frozen
class NoParams(AbstractScalerParams):
    """The params of a scaler that learns nothing (``Negate``, ``Log1p``, per-sample scalers).

    >>> NoParams() == NoParams()
    True
    """

    kind: ClassVar[str] = "scaler_params.none"


class AbstractScaler(abc.ABC):
    """Base of every scaler spec.

    Concrete scalers are final frozen attrs classes with a ``kind`` tag (``"scaler.minmax"``).
    ``feature_wise`` says whether the scaler treats each column of ``x.reshape(n, -1)`` as an
    independent feature (``Segmented`` pools a whole segment into one feature for those).

    >>> from mml.scalers import Standard
    >>> isinstance(Standard(), AbstractScaler)
    True
    """

    _mml_union: ClassVar[bool] = True
    kind: ClassVar[str]
    feature_wise: ClassVar[bool] = True

    @abc.abstractmethod
    def fit(self, x: np.ndarray, *, key: Key | None = None) -> AbstractScalerParams:
        """Learn the params from ``x`` (shape ``(n, *key_shape)``); ``x`` is not changed."""

    @abc.abstractmethod
    def apply(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        """The scaled values of ``x`` as a new array of the same shape."""

    @abc.abstractmethod
    def inverse(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        """Map scaled values back; raises :class:`mml.NotInvertibleError` where no inverse exists."""

    def fit_apply(self, x: np.ndarray, *, key: Key | None = None) -> tuple[AbstractScalerParams, np.ndarray]:
        """``fit`` then ``apply`` on the same data.

        >>> import numpy as np
        >>> from mml.scalers import MaxAbs
        >>> _, y = MaxAbs().fit_apply(np.array([[-2.0], [1.0]]))
        >>> y.ravel().tolist()
        [-1.0, 0.5]
        """
        params = self.fit(x, key=key)
        return params, self.apply(params, x)

    @property
    def name(self) -> str:
        """The short name of this scaler (the part of ``kind`` after the dot).

        >>> from mml.scalers import MinMax
        >>> MinMax().name
        'minmax'
        """
        return type(self).kind.partition(".")[2]


# -- helpers shared by the concrete scalers -----------------------------------------------


def as_samples(x: Any, who: str) -> np.ndarray:
    """``x`` as a numeric numpy array with a leading sample axis (no copy when possible)."""
    arr = np.asarray(x)
    if arr.ndim == 0:
        raise ScalerError(f"{who}: expected an array of shape (n, *key_shape), got a scalar")
    if arr.dtype.kind not in "biuf":
        raise ScalerError(
            f"{who}: cannot scale values of dtype {arr.dtype}; scalers take numeric arrays "
            "(leave non-numeric keys out with keys=[...])"
        )
    return arr


def finite_samples(x: Any, who: str, *, rows: str = "sample") -> np.ndarray:
    """:func:`as_samples`, refusing NaN and infinite values (the one NaN policy of every scaler).

    The error names the first offending positions as ``(sample, *element index)`` tuples,
    ``rows`` saying what the first index counts.

    >>> finite_samples(np.array([[1.0, np.nan], [2.0, 3.0]]), "MinMax.fit")
    Traceback (most recent call last):
    ...
    mml.errors.ScalerError: MinMax.fit: the data hold NaN or infinite values at (sample, element) position(s) (0, 1); ...
    """
    arr = as_samples(x, who)
    if arr.dtype.kind != "f":
        return arr  # integers and booleans cannot hold NaN
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.argwhere(bad)
        total = where.shape[0]
        if arr.ndim == 1:
            axes, shown = rows, ", ".join(str(int(w[0])) for w in where[:5])
        else:
            axes = f"({rows}, element)" if arr.ndim == 2 else f"({rows}, *element index)"
            shown = ", ".join("(" + ", ".join(str(int(i)) for i in w) + ")" for w in where[:5])
        more = f" and {total - 5} more" if total > 5 else ""
        raise ScalerError(
            f"{who}: the data hold NaN or infinite values at {axes} position(s) {shown}{more}; "
            "scalers refuse non-finite input however they are named: drop those samples "
            "(view.filter(...)) or impute the values before building the FeatureSet"
        )
    return arr


def as_2d(x: np.ndarray) -> np.ndarray:
    """The ``(n, prod(key_shape))`` view of ``x`` (copies only if ``x`` is not contiguous)."""
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64)))


def float_dtype(x: np.ndarray) -> np.dtype[Any]:
    """The dtype of the output: floating inputs keep theirs, others become float64."""
    return x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)


def need_rows(x: np.ndarray, who: str) -> None:
    if x.shape[0] == 0:
        raise ScalerError(f"{who}: cannot fit on 0 samples; check that the fit split is not empty")


def need_finite(values: np.ndarray, who: str) -> None:
    """Fitted statistics must be finite (NaN/inf in the data make them NaN/inf)."""
    bad = ~np.isfinite(values)
    if bad.ndim > 1:  # statistics of shape (k, n_features): a feature is bad if any of them is
        bad = bad.any(axis=tuple(range(bad.ndim - 1)))
    if bad.any():
        pos = np.flatnonzero(bad)[:10].tolist()
        raise ScalerError(
            f"{who}: the data hold NaN or infinite values at feature position(s) {pos}; "
            "clean or impute them before scaling"
        )


def check_params(params: AbstractScalerParams, cls: type, who: str) -> None:
    if not isinstance(params, cls):
        raise ScalerError(
            f"{who} needs {cls.__name__}, got {type(params).__name__}; pass what its fit returned"
        )


def check_width(x2: np.ndarray, n_features: int, who: str) -> None:
    if x2.shape[1] != n_features:
        raise ScalerError(
            f"{who} was fitted on {n_features} feature(s) per sample but got {x2.shape[1]} "
            f"(array of shape {x2.shape}); apply it to data shaped like the data it was fitted on"
        )


def nonzero_scale(scale: np.ndarray) -> np.ndarray:
    """Replace (near-)zero scales by 1, like scikit-learn, so constant features stay finite."""
    out = np.array(scale, dtype=np.float64)
    out[np.abs(out) < 10 * np.finfo(np.float64).eps] = 1.0
    return out


def check_range(instance: Any, attribute: Any, value: tuple[float, float]) -> None:
    """attrs validator of a ``feature_range``."""
    if len(value) != 2 or not value[0] < value[1]:
        raise ScalerError(
            f"{type(instance).__name__}.{attribute.name} must be (low, high) with low < high, got {value!r}"
        )


def range_tuple(value: Any) -> tuple[float, float]:
    """attrs converter of a ``feature_range``: a tuple of two floats."""
    return tuple(float(v) for v in value)  # type: ignore[return-value]
