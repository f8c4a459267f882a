"""The scikit-learn backend: closed-form ``fit``, fitted state as data (no pickle).

``fit`` clones a fresh estimator from the spec's class path and params (the spec is never
mutated), fits it, and keeps its fitted attributes — the entries of ``vars(estimator)``
that are not constructor params (``coef_``, ``mean_``, ``_n_threads``, ...) — as plain data
in a :class:`~mml.backends.SklearnFitted`. ``apply`` rebuilds the estimator from that data
(memoised per record) and calls ``transform``, ``predict`` or ``predict_proba``.

Estimators whose fitted state is arrays, numbers, strings and lists of those round-trip as
data: PCA, StandardScaler, MinMaxScaler, LinearRegression, Ridge, Lasso, LogisticRegression,
KMeans and most other flat estimators. Estimators holding nested estimators or Cython trees
(random forests, gradient boosting, pipelines of scikit-learn parts) are stored as canonical
``skops.io`` bytes instead (the ``mml[sklearn]`` extra), which load back building scikit-learn
and numpy types only (see :mod:`mml.backends._skops`); one holding anything else (a user
function) is a :class:`~mml.BackendError` at fit time.

>>> import mml, numpy as np
>>> from mml.models import SklearnModel
>>> spec = SklearnModel(estimator="sklearn.preprocessing:StandardScaler")
>>> p = init(spec, (2,), (2,), key=mml.random.key(0))
>>> p = fit(spec, p, np.array([[0.0, 1.0], [2.0, 3.0]]), key=mml.random.key(0))
>>> apply(spec, p, np.array([[1.0, 2.0]]))[0].tolist()
[[0.0, 0.0]]
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import numpy as np

from mml._fields import readonly_array
from mml.backends import _skops
from mml.backends._convert import to_numpy
from mml.backends._params import SklearnFitted, SklearnParams
from mml.backends._protocol import AbstractBackend
from mml.errors import ArtifactError, BackendError, ShapeError
from mml.models import AbstractModel, SklearnModel, import_object, numel, plain_data
from mml.random import Key, seed_int

__all__ = [
    "output_shape",
    "init",
    "apply",
    "fit",
    "partial_fit",
    "value_and_grad",
    "fitted_from_estimator",
    "estimator_from_fitted",
]


def _check_spec(spec: AbstractModel) -> SklearnModel:
    if not isinstance(spec, SklearnModel):
        raise BackendError(
            f"the sklearn backend cannot run a {type(spec).__name__} (backend {spec.backend!r})"
        )
    return spec


def output_shape(
    spec: AbstractModel, input_shape: tuple[int, ...], target_shape: tuple[int, ...] | None
) -> tuple[int, ...]:
    """The spec's own answer (an estimator's output shape follows its targets)."""
    return spec.infer_output_shape(input_shape, target_shape)


def init(
    spec: AbstractModel,
    input_shape: tuple[int, ...],
    output_shape: tuple[int, ...],
    *,
    key: Key,
    device: Any = "cpu",
) -> SklearnParams:
    """Unfitted state (``fitted=None``); call :func:`fit` next.

    >>> import mml
    >>> from mml.models import SklearnModel
    >>> init(SklearnModel(estimator="sklearn.linear_model:Ridge"), (3,), (1,), key=mml.random.key(0)).is_fitted
    False
    """
    _check_spec(spec)
    if device not in (None, "cpu", "auto"):
        from mml.errors import DeviceError

        raise DeviceError(f"scikit-learn runs on the CPU only; got device={device!r}, use 'cpu' or 'auto'")
    return SklearnParams(fitted=None, input_shape=input_shape, output_shape=output_shape)


def _data_value(name: str, value: Any, est_name: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            if all(isinstance(v, str) for v in value.ravel()):
                return readonly_array(value.astype(str))
        elif value.dtype.kind in "biufUS":
            return readonly_array(np.array(value, copy=True))
    elif isinstance(value, (list, tuple)):
        return [_data_value(f"{name}[{i}]", v, est_name) for i, v in enumerate(value)]
    raise BackendError(
        f"{est_name}.{name} is a {type(value).__module__}.{type(value).__qualname__}: this estimator holds "
        "nested estimators or objects in its fitted state, which cannot be saved safely without pickle. "
        "Use an estimator whose fitted state is arrays and numbers (PCA, StandardScaler, LinearRegression, "
        "Ridge, LogisticRegression, KMeans, ...)"
    )


def fitted_from_estimator(estimator: Any, path: str, params: dict[str, Any]) -> SklearnFitted:
    """The fitted state of ``estimator`` as data (a :class:`~mml.BackendError` if it holds objects).

    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> est = LinearRegression().fit(np.arange(4.0).reshape(-1, 1), np.arange(4.0))
    >>> fitted_from_estimator(est, "sklearn.linear_model:LinearRegression", {}).attributes["rank_"]
    1
    """
    name = type(estimator).__name__
    skip = set(estimator.get_params(deep=False))
    try:
        attributes = {
            k: _data_value(k, v, name)
            for k, v in vars(estimator).items()
            if k not in skip and not k.startswith("__")
        }
    except BackendError as exc:
        # nested estimators or Cython trees (forests, boosting): the whole estimator as skops
        # bytes, loaded back with scikit-learn and numpy types only
        if not _skops.available():
            raise BackendError(
                f"{exc}. Install skops (pip install 'mml[sklearn]') to store it safely without pickle"
            ) from exc
        attributes = {_skops.SKOPS_KEY: _skops.encode(estimator)}
    return SklearnFitted(estimator=path, params=params, attributes=attributes)


def _writable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return np.array(value, copy=True)
    if isinstance(value, list):
        return [_writable(v) for v in value]
    return value


def estimator_from_fitted(fitted: SklearnFitted) -> Any:
    """A new fitted estimator rebuilt from data (no pickle): construct from params, set attributes.

    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> est = LinearRegression().fit(np.arange(4.0).reshape(-1, 1), 2 * np.arange(4.0))
    >>> f = fitted_from_estimator(est, "sklearn.linear_model:LinearRegression", {})
    >>> estimator_from_fitted(f).predict(np.array([[10.0]])).round(6).tolist()
    [20.0]
    """
    cls = import_object(fitted.estimator, "sklearn estimator")
    if _skops.SKOPS_KEY in fitted.attributes:
        est = _skops.decode(fitted.attributes[_skops.SKOPS_KEY], f"the fitted {fitted.estimator}")
        if type(est) is not cls:
            raise ArtifactError(
                f"the fitted state of {fitted.estimator} holds a {type(est).__module__}.{type(est).__name__}; "
                "the record is inconsistent (was it edited?)"
            )
        return est
    est = cls(**plain_data(fitted.params))
    for k, v in fitted.attributes.items():
        setattr(est, k, _writable(v))
    return est


def _estimator(fitted: SklearnFitted) -> Any:
    """``estimator_from_fitted(fitted)``, rebuilt once per record and kept on it (never mutated:
    only transform/predict are called on it)."""
    est = fitted._rebuilt
    if est is None:
        est = estimator_from_fitted(fitted)
        object.__setattr__(fitted, "_rebuilt", est)
    return est


def _x2d(x: Any) -> np.ndarray:
    arr = to_numpy(x)
    if arr.ndim == 0:
        raise ShapeError(f"a scikit-learn node needs a batch (n, ...) of samples, got a scalar {arr!r}")
    return arr.reshape(arr.shape[0], -1)


def _y(y: Any) -> np.ndarray | None:
    if y is None:
        return None
    arr = to_numpy(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        return arr.ravel()
    if arr.ndim > 2:
        return arr.reshape(arr.shape[0], -1)
    return arr


def _fit_params(spec: SklearnModel, est_cls: Any, key: Key) -> dict[str, Any]:
    params = plain_data(spec.params)
    if "random_state" in inspect.signature(est_cls).parameters and params.get("random_state") is None:
        params["random_state"] = seed_int(key)
    return params


def fit(spec: AbstractModel, params: SklearnParams, x: Any, y: Any = None, *, key: Key) -> SklearnParams:
    """Fit a fresh estimator (``sklearn.base.clone`` semantics) and return the new state.

    ``random_state`` (if the estimator has one and the spec leaves it unset) comes from ``key``.

    >>> import mml, numpy as np
    >>> from mml.models import SklearnModel
    >>> spec = SklearnModel(estimator="sklearn.decomposition:PCA", params={"n_components": 1})
    >>> p = init(spec, (2,), (1,), key=mml.random.key(0))
    >>> fit(spec, p, np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.1]]), key=mml.random.key(0)).is_fitted
    True
    """
    spec = _check_spec(spec)
    cls = import_object(spec.estimator, "sklearn estimator")
    fit_params = _fit_params(spec, cls, key)
    est = cls(**fit_params)
    yy = _y(y)
    xx = _x2d(x)
    est.fit(xx) if yy is None else est.fit(xx, yy)
    return attrs.evolve(params, fitted=fitted_from_estimator(est, spec.estimator, fit_params))


def partial_fit(
    spec: AbstractModel, params: SklearnParams, x: Any, y: Any = None, *, key: Key, classes: Any = None
) -> SklearnParams:
    """One incremental ``partial_fit`` step from the current state (a new state is returned).

    ``classes`` is passed on the first call for classifiers that need it.

    >>> import mml, numpy as np
    >>> from mml.models import SklearnModel
    >>> spec = SklearnModel(estimator="sklearn.preprocessing:StandardScaler")
    >>> p = init(spec, (1,), (1,), key=mml.random.key(0))
    >>> p = partial_fit(spec, p, np.array([[1.0], [3.0]]), key=mml.random.key(0))
    >>> p = partial_fit(spec, p, np.array([[5.0]]), key=mml.random.key(0))
    >>> float(p.fitted.attributes["mean_"][0])
    3.0
    """
    spec = _check_spec(spec)
    cls = import_object(spec.estimator, "sklearn estimator")
    if not hasattr(cls, "partial_fit"):
        raise BackendError(f"{spec.estimator} has no partial_fit; fit it in one go with fit()")
    if params.fitted is None:
        fit_params = _fit_params(spec, cls, key)
        est = cls(**fit_params)
    else:
        fit_params = dict(plain_data(params.fitted.params))
        est = estimator_from_fitted(params.fitted)
    kwargs = {} if classes is None or params.fitted is not None else {"classes": to_numpy(classes)}
    yy = _y(y)
    xx = _x2d(x)
    est.partial_fit(xx, **kwargs) if yy is None else est.partial_fit(xx, yy, **kwargs)
    return attrs.evolve(params, fitted=fitted_from_estimator(est, spec.estimator, fit_params))


def is_classifier(spec: AbstractModel) -> bool:
    """Whether a scikit-learn model spec is a classifier (``partial_fit`` then needs ``classes=``).

    >>> from mml.models import SklearnModel
    >>> is_classifier(SklearnModel(estimator="sklearn.linear_model:SGDClassifier"))
    True
    >>> is_classifier(SklearnModel(estimator="sklearn.linear_model:SGDRegressor"))
    False
    """
    from sklearn.base import is_classifier as _is_classifier

    spec = _check_spec(spec)
    return bool(_is_classifier(import_object(spec.estimator, "sklearn estimator")(**plain_data(spec.params))))


def apply(
    spec: AbstractModel,
    params: SklearnParams,
    x: Any,
    *,
    training: bool = False,
    key: Key | None = None,
    device: Any = None,
) -> tuple[np.ndarray, SklearnParams]:
    """``(y, params)``: the resolved method on a batch (numpy out, shaped ``(n, *output_shape)``).

    ``training`` and ``key`` are accepted for the common protocol and ignored.
    """
    spec = _check_spec(spec)
    if params.fitted is None:
        raise BackendError(
            f"SklearnModel({spec.estimator}) is not fitted yet: run a FitPhase (or backends.fit) before applying it"
        )
    est = _estimator(params.fitted)
    method: Callable[[Any], Any] = getattr(est, spec.resolved_method(est))
    xx = _x2d(x)
    out = np.asarray(method(xx))
    n = xx.shape[0]
    out = out.reshape(n, -1)
    if params.output_shape:
        if out.shape[1] != numel(params.output_shape):
            raise ShapeError(
                f"SklearnModel({spec.estimator}).{spec.resolved_method(est)} gave {out.shape[1]} values per sample "
                f"but the node was built for output shape {params.output_shape}; set output_shape on the spec"
            )
        out = out.reshape(n, *params.output_shape)
    return out, params


def value_and_grad(
    spec: AbstractModel,
    params: Any,
    x: Any,
    loss_fn: Callable[[Any], tuple[Any, Any]],
    *,
    key: Key | None = None,
    training: bool = True,
) -> tuple[tuple[Any, Any], Any, Any]:
    """Scikit-learn models are fitted in closed form, not trained by gradients: a :class:`~mml.BackendError`."""
    raise BackendError(
        f"{type(spec).__name__} is a scikit-learn model: it is fitted in closed form (FitPhase / fit), "
        "not trained by gradients"
    )


@typing.final
class SklearnBackend(AbstractBackend):
    """The scikit-learn backend: this module's functions (see :class:`AbstractBackend`)."""

    name: ClassVar[str] = "sklearn"
    output_shape = staticmethod(output_shape)
    init = staticmethod(init)
    apply = staticmethod(apply)
    value_and_grad = staticmethod(value_and_grad)
    fit = staticmethod(fit)
    partial_fit = staticmethod(partial_fit)
