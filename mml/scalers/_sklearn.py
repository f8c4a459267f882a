"""Any scikit-learn transformer as a pure scaler, stored without pickle.

The spec holds the estimator class's import path and its ``get_params()`` as plain data; the
fitted params hold the estimator's fitted attributes (everything ``fit`` added to
``vars(estimator)``) as arrays and numbers — a nested estimator (``PowerTransformer._scaler``)
is stored the same way, recursively. ``apply`` / ``inverse`` rebuild a fresh estimator by
constructing it and setting those attributes, so the caller's estimator is never fitted or
touched and no pickle is involved. Values that cannot be stored as data (callables, sparse
matrices, arbitrary objects) raise :class:`mml.ScalerError` naming the attribute.

A ``random_state`` left at ``None`` is fixed at fit time (from the ``key`` if given, else 0)
so that fitting is a pure function of its inputs. ``copy`` is forced to ``True`` so that
scikit-learn never writes into the input.

>>> import numpy as np
>>> from sklearn.preprocessing import QuantileTransformer
>>> from mml.scalers import SklearnScaler
>>> s = SklearnScaler.from_estimator(QuantileTransformer(n_quantiles=3))
>>> s.estimator
'sklearn.preprocessing:QuantileTransformer'
>>> x = np.array([[1.0], [2.0], [4.0]])
>>> s.apply(s.fit(x), x).ravel().tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, final

import attrs
import numpy as np

from mml._fields import FrozenDict, readonly_array
from mml.errors import NotInvertibleError, ScalerError
from mml.io import public_class_path
from mml.scalers._base import (
    AbstractScaler,
    AbstractScalerParams,
    as_2d,
    as_samples,
    check_params,
    finite_samples,
    need_rows,
)

if TYPE_CHECKING:  # pragma: no cover
    from mml.random import Key

__all__ = ["SklearnScaler", "SklearnScalerParams", "is_sklearn_transformer"]

_ESTIMATOR = "$estimator"
_DTYPE = "$dtype"
_LIST = "$list"  # a list (frozen as a tuple inside this marker): scikit-learn tells lists from tuples


def is_sklearn_transformer(obj: Any) -> bool:
    """Whether ``obj`` is a scikit-learn transformer class or instance (without importing sklearn).

    >>> from sklearn.preprocessing import Normalizer
    >>> is_sklearn_transformer(Normalizer), is_sklearn_transformer(Normalizer()), is_sklearn_transformer(3)
    (True, True, False)
    """
    cls = obj if isinstance(obj, type) else type(obj)
    if not any(c.__module__.startswith("sklearn.") and c.__name__ == "BaseEstimator" for c in cls.__mro__):
        return False
    return all(hasattr(cls, m) for m in ("fit", "transform", "get_params"))


def _import_estimator(path: str) -> type:
    """Import a scikit-learn-style transformer class; refuses anything else (files never run code)."""
    from mml.errors import ConfigError
    from mml.io import import_path

    try:
        obj = import_path(path, what="estimator class")
    except ConfigError as exc:
        raise ScalerError(f"cannot import the estimator class {path!r}: {exc}") from exc
    if not (isinstance(obj, type) and is_sklearn_transformer(obj)):
        raise ScalerError(
            f"{path!r} is not a scikit-learn transformer class (a BaseEstimator with fit/transform)"
        )
    return obj


def _freeze(value: Any, where: str) -> Any:
    """Plain immutable data from an estimator parameter or fitted attribute."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufUS":
            raise ScalerError(
                f"cannot store {where} (an array of dtype {value.dtype}) without pickle; "
                "only numeric and string arrays can be saved"
            )
        return readonly_array(value)
    if isinstance(value, type) and issubclass(value, np.generic):
        return FrozenDict({_DTYPE: np.dtype(value).name})
    if isinstance(value, np.dtype):
        return FrozenDict({_DTYPE: value.name})
    if isinstance(value, Mapping):
        if set(value) == {_LIST} and isinstance(value[_LIST], (list, tuple)):  # stored before: still a list
            return FrozenDict({_LIST: tuple(_freeze(v, f"{where}[{i}]") for i, v in enumerate(value[_LIST]))})
        if not all(isinstance(k, str) for k in value):
            raise ScalerError(f"cannot store {where}: a mapping with non-string keys")
        return FrozenDict({k: _freeze(v, f"{where}[{k!r}]") for k, v in value.items()})
    if isinstance(value, tuple):
        return tuple(_freeze(v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, list):  # e.g. OneHotEncoder's categories_ and _n_features_outs
        return FrozenDict({_LIST: tuple(_freeze(v, f"{where}[{i}]") for i, v in enumerate(value))})
    if is_sklearn_transformer(value) or (
        hasattr(value, "get_params") and type(value).__module__.startswith("sklearn.")
    ):
        params, fitted = _split_estimator(value, where)
        return FrozenDict(
            {_ESTIMATOR: public_class_path(type(value)), "init_params": params, "attributes": fitted}
        )
    raise ScalerError(
        f"cannot store {where} (a {type(value).__module__}.{type(value).__qualname__}) as data; mml saves "
        "scalers without pickle, so parameters and fitted attributes must be numbers, strings, arrays "
        "or nested estimators — use a built-in scaler or a transformer without such a value"
    )


def _split_estimator(est: Any, where: str) -> tuple[FrozenDict[str, Any], FrozenDict[str, Any]]:
    params = est.get_params(deep=False)
    frozen_params: FrozenDict[str, Any] = FrozenDict(
        {k: _freeze(v, f"{where} parameter {k!r}") for k, v in params.items()}
    )
    fitted = {k: _freeze(v, f"{where} attribute {k!r}") for k, v in vars(est).items() if k not in params}
    return frozen_params, FrozenDict(fitted)


def _thaw(value: Any) -> Any:
    """Python values scikit-learn accepts, from stored data (arrays stay read-only, not copied)."""
    if isinstance(value, Mapping):
        if _DTYPE in value:
            return np.dtype(value[_DTYPE]).type
        if _ESTIMATOR in value:
            return _rebuild(value[_ESTIMATOR], value["init_params"], value["attributes"])
        if set(value) == {_LIST}:
            return [_thaw(v) for v in value[_LIST]]
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return tuple(_thaw(v) for v in value)
    return value


def _rebuild(path: str, init_params: Mapping[str, Any], attributes: Mapping[str, Any]) -> Any:
    cls = _import_estimator(path)
    est = cls(**{k: _thaw(v) for k, v in init_params.items()})
    for k, v in attributes.items():
        setattr(est, k, _thaw(v))
    return est


def _frozen_data(value: Any) -> FrozenDict[str, Any]:
    """attrs converter: a mapping of plain immutable data (lists kept as lists inside a ``$list``
    marker, tuples as tuples, arrays read-only)."""
    frozen = _freeze(dict(value or {}), "the stored values")
    assert isinstance(frozen, FrozenDict)
    return frozen


@final
@attrs.frozen
class SklearnScalerParams(AbstractScalerParams):
    """The fitted attributes of a scikit-learn transformer, as data.

    Tuples are stored as tuples and lists inside a ``$list`` marker (scikit-learn tells them
    apart: ``OneHotEncoder`` adds to a list attribute), so the rebuilt transformer gets back what
    it had.

    >>> p = SklearnScalerParams(attributes={"scale_": (2.0,), "categories_": [1.0]})
    >>> p.attributes["scale_"], p.attributes["categories_"]
    ((2.0,), FrozenDict({'$list': (1.0,)}))
    """

    kind: ClassVar[str] = "scaler_params.sklearn"
    attributes: Mapping[str, Any] = attrs.field(factory=FrozenDict, converter=_frozen_data)


@final
@attrs.frozen
class SklearnScaler(AbstractScaler):
    """A scikit-learn transformer, by class import path and constructor parameters (see module doc).

    >>> from sklearn.preprocessing import PowerTransformer
    >>> SklearnScaler.from_estimator(PowerTransformer).init_params["method"]
    'yeo-johnson'
    """

    kind: ClassVar[str] = "scaler.sklearn"
    estimator: str
    init_params: Mapping[str, Any] = attrs.field(factory=FrozenDict, converter=_frozen_data)

    @classmethod
    def from_estimator(cls, estimator: Any) -> SklearnScaler:
        """Wrap a transformer class (default parameters) or instance (its ``get_params()``; its
        fitted state, if any, is ignored and it is never modified).

        >>> from sklearn.preprocessing import StandardScaler
        >>> SklearnScaler.from_estimator(StandardScaler(with_mean=False)).init_params["with_mean"]
        False
        """
        if not is_sklearn_transformer(estimator):
            raise ScalerError(
                f"{estimator!r} is not a scikit-learn transformer (a BaseEstimator with fit and transform)"
            )
        est_cls = estimator if isinstance(estimator, type) else type(estimator)
        params = (
            est_cls().get_params(deep=False)
            if isinstance(estimator, type)
            else estimator.get_params(deep=False)
        )
        name = est_cls.__name__
        frozen = {k: _freeze(v, f"{name} parameter {k!r}") for k, v in params.items()}
        if "copy" in frozen:
            frozen["copy"] = True
        return cls(estimator=public_class_path(est_cls), init_params=frozen)

    @property
    def name(self) -> str:
        """The estimator's class name (``"QuantileTransformer"``)."""
        return self.estimator.rpartition(":")[2]

    def _new(self, key: Key | None) -> Any:
        cls = _import_estimator(self.estimator)
        params = {k: _thaw(v) for k, v in self.init_params.items()}
        if "copy" in params:
            params["copy"] = True
        if "random_state" in params and params["random_state"] is None:
            from mml.random import seed_int

            params["random_state"] = seed_int(key) if key is not None else 0
        return cls(**params)

    def _fitted(self, params: AbstractScalerParams, who: str) -> Any:
        check_params(params, SklearnScalerParams, who)
        assert isinstance(params, SklearnScalerParams)
        est = self._new(None)
        for k, v in params.attributes.items():
            setattr(est, k, _thaw(v))
        return est

    def fit(self, x: np.ndarray, *, key: Key | None = None) -> SklearnScalerParams:
        x = finite_samples(x, f"{self.name}.fit")
        x2 = as_2d(x)
        need_rows(x2, f"{self.name}.fit")
        est = self._new(key)
        try:
            est.fit(x2)
        except ValueError as exc:
            raise ScalerError(f"{self.name}.fit failed on data of shape {x.shape}: {exc}") from exc
        fitted = {k: v for k, v in vars(est).items() if k not in self.init_params}
        # a random_state we fixed is a fitted choice: keep it with the params
        if "random_state" in self.init_params and self.init_params["random_state"] is None:
            fitted["random_state"] = est.random_state
        return SklearnScalerParams(
            attributes={k: _freeze(v, f"{self.name} attribute {k!r}") for k, v in fitted.items()}
        )

    def _call(self, est: Any, method: str, x: np.ndarray, who: str) -> np.ndarray:
        x2 = as_2d(x)
        try:
            out = getattr(est, method)(x2)
        except ValueError as exc:
            raise ScalerError(f"{who} failed on data of shape {x.shape}: {exc}") from exc
        if not isinstance(out, np.ndarray):
            raise ScalerError(f"{who} returned a {type(out).__name__}; only dense numpy output is supported")
        if out.ndim == 2 and out.shape[1] == x2.shape[1]:
            return out.reshape(x.shape)
        return out

    def apply(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        who = f"{self.name}.apply"
        return self._call(self._fitted(params, who), "transform", finite_samples(x, who), who)

    def inverse(self, params: AbstractScalerParams, x: np.ndarray) -> np.ndarray:
        who = f"{self.name}.inverse"
        est = self._fitted(params, who)
        if not hasattr(est, "inverse_transform"):
            raise NotInvertibleError(
                f"{self.name} has no inverse_transform, so its outputs cannot be mapped back; "
                "use an invertible scaler where you need the inverse"
            )
        return self._call(est, "inverse_transform", as_samples(x, who), who)
