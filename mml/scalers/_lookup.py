"""Turn what a user passes (a name, a spec, a scikit-learn class or instance) into a scaler spec.

Names are looked up case-insensitively: the short built-in names (``"minmax"``), the
scikit-learn class names of the built-ins (``"MinMaxScaler"`` gives the built-in
:class:`~mml.scalers.MinMax`), and any other transformer class name in
``sklearn.preprocessing`` (``"QuantileTransformer"``, wrapped with its default parameters).

>>> from mml.scalers import get_scaler, MinMax
>>> get_scaler("minmax") == get_scaler("MinMaxScaler") == MinMax()
True
>>> get_scaler("nope")
Traceback (most recent call last):
...
mml.errors.ScalerError: unknown scaler 'nope'; valid names: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mml.errors import ScalerError
from mml.scalers._base import AbstractScaler
from mml.scalers._elementwise import Absolute, Log1p, Negate, PerSampleMinMax, PerSampleZeroStart
from mml.scalers._featurewise import MaxAbs, MinMax, Robust, Standard
from mml.scalers._sklearn import SklearnScaler, is_sklearn_transformer

__all__ = ["get_scaler", "scaler_names"]

_BUILTINS: dict[str, Callable[[], AbstractScaler]] = {
    "minmax": MinMax,
    "standard": Standard,
    "maxabs": MaxAbs,
    "robust": Robust,
    "per_sample_minmax": PerSampleMinMax,
    "per_sample_zero_start": PerSampleZeroStart,
    "negate": Negate,
    "absolute": Absolute,
    "log1p": Log1p,
}
_SKLEARN_ALIASES = {
    "minmaxscaler": "minmax",
    "standardscaler": "standard",
    "maxabsscaler": "maxabs",
    "robustscaler": "robust",
}


def _sklearn_preprocessing() -> dict[str, type]:
    from sklearn import preprocessing

    out = {}
    for name in getattr(preprocessing, "__all__", dir(preprocessing)):
        obj = getattr(preprocessing, name, None)
        if isinstance(obj, type) and is_sklearn_transformer(obj):
            out[name.lower()] = obj
    return out


def scaler_names() -> tuple[str, ...]:
    """The built-in names ``get_scaler`` accepts (scikit-learn transformer names come on top).

    >>> "standard" in scaler_names() and "StandardScaler" in scaler_names()
    True
    """
    return (*_BUILTINS, "MinMaxScaler", "StandardScaler", "MaxAbsScaler", "RobustScaler")


def get_scaler(spec: Any) -> AbstractScaler:
    """A scaler spec from a name, a spec, or a scikit-learn transformer class or instance.

    >>> from sklearn.preprocessing import Normalizer
    >>> get_scaler(Normalizer(norm="l1")).init_params["norm"]
    'l1'
    >>> get_scaler("QuantileTransformer").name
    'QuantileTransformer'
    >>> get_scaler(MinMax) == MinMax()
    True
    """
    if isinstance(spec, AbstractScaler):
        return spec
    if isinstance(spec, type) and issubclass(spec, AbstractScaler):
        # a built-in (or user) scaler class: its default spec, as DESIGN.md promises
        try:
            return spec()
        except TypeError as exc:
            raise ScalerError(
                f"scaler class {spec.__name__} has required fields ({exc}); pass an instance, "
                f"e.g. {spec.__name__}(...)"
            ) from None
    if isinstance(spec, str):
        low = spec.strip().lower()
        low = _SKLEARN_ALIASES.get(low, low)
        if low in _BUILTINS:
            return _BUILTINS[low]()
        if low == "segmented":
            raise ScalerError(
                "'segmented' needs boundaries: use mml.scalers.Segmented(boundaries=(...), scalers=(...))"
            )
        sk = _sklearn_preprocessing()
        if low in sk:
            return SklearnScaler.from_estimator(sk[low])
        raise ScalerError(
            f"unknown scaler {spec!r}; valid names: {', '.join(scaler_names())}, or any transformer class "
            f"name of sklearn.preprocessing ({', '.join(sorted(c.__name__ for c in sk.values()))}); you can "
            "also pass a scaler spec or a scikit-learn transformer class or instance"
        )
    if is_sklearn_transformer(spec):
        return SklearnScaler.from_estimator(spec)
    raise ScalerError(
        f"cannot use {spec!r} as a scaler: pass a name like 'minmax', a spec like mml.scalers.MinMax(), "
        "or a scikit-learn transformer class or instance"
    )
