"""Specs that wrap user models: a torch module factory, a Keras model factory, a sklearn estimator.

A wrapper holds an import path and JSON-able keyword arguments — data, never the object —
so it can be saved, compared and rebuilt anywhere the named code is importable.

>>> from mml.models import SklearnModel
>>> spec = SklearnModel(estimator="sklearn.decomposition:PCA", params={"n_components": 2})
>>> spec.infer_output_shape((5,), None)
(2,)
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from mml._fields import FrozenDict
from mml.errors import ConfigError, ShapeError
from mml.io import public_class_path
from mml.models._base import AbstractModel, numel, optional_shape

__all__ = ["TorchModule", "KerasModel", "SklearnModel", "import_object", "json_data", "SKLEARN_METHODS"]

SKLEARN_METHODS: tuple[str, ...] = ("auto", "predict", "transform", "predict_proba")


def import_object(path: str, what: str = "factory") -> Any:
    """Import ``"package.module:Name"`` (``Name`` may be dotted). A :class:`~mml.ConfigError` if it fails.

    >>> import_object("math:sqrt")(4.0)
    2.0
    """
    from mml.io import import_path

    return import_path(path, what=what)


def json_data(value: Any, where: str = "kwargs") -> Any:
    """Normalise JSON-able data: dicts become read-only mappings, lists become tuples.

    Anything else (objects, callables, arrays) is a :class:`~mml.ConfigError`: hyperparameters
    are data, so that a spec can be saved and compared.

    >>> json_data({"sizes": [1, 2], "name": "x"})
    FrozenDict({'sizes': (1, 2), 'name': 'x'})
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where} keys must be strings, got {k!r}")
            out[k] = json_data(v, f"{where}[{k!r}]")
        return FrozenDict(out)
    if isinstance(value, (list, tuple)):
        return tuple(json_data(v, f"{where}[{i}]") for i, v in enumerate(value))
    raise ConfigError(
        f"{where} must be JSON-able data (numbers, strings, bools, None, lists, dicts), got "
        f"{type(value).__module__}.{type(value).__qualname__}; pass data and build objects inside your factory"
    )


def _json_mapping(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    return json_data(dict(value or {}))  # type: ignore[no-any-return]


def plain_data(value: Any) -> Any:
    """Inverse of :func:`json_data`: plain ``dict`` and ``list`` for calling user code.

    >>> plain_data(json_data({"a": [1]}))
    {'a': [1]}
    """
    if isinstance(value, Mapping):
        return {k: plain_data(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [plain_data(v) for v in value]
    return value


def call_factory(
    factory: Any,
    kwargs: Mapping[str, Any],
    input_shape: tuple[int, ...],
    output_shape: tuple[int, ...] | None,
) -> Any:
    """Call a user factory with its kwargs, adding ``input_shape``/``output_shape`` if it declares them.

    >>> call_factory(dict, {"a": 1}, (3,), None)
    {'a': 1}
    """
    kw = plain_data(kwargs)
    try:
        sig = inspect.signature(factory)
        names = set(sig.parameters)
    except (TypeError, ValueError):
        names = set()
    if "input_shape" in names and "input_shape" not in kw:
        kw["input_shape"] = input_shape
    if "output_shape" in names and "output_shape" not in kw and output_shape is not None:
        kw["output_shape"] = output_shape
    return factory(**kw)


def resolve_factory(spec: str, path: str) -> Any:
    """Import the factory ``path`` of a ``spec`` wrapper; a :class:`~mml.ConfigError` that says the import failed.

    The message names the wrapper and the factory, and says how to fix it: a factory must live
    in a module that every process that loads the spec can import — one defined in the script
    being run (``__main__``) exists in that process only.

    >>> resolve_factory("TorchModule", "torch.nn:Linear").__name__
    'Linear'
    >>> resolve_factory("TorchModule", "__main__:make_net")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mml.errors.ConfigError: TorchModule factory '__main__:make_net' could not be imported: ... define it in an importable module ...
    """
    try:
        return import_object(path, f"{spec} factory")
    except ConfigError as exc:
        module = path.partition(":")[0] if isinstance(path, str) else ""
        if module == "__main__":
            how = (
                "'__main__' is the script being run, so a factory defined there exists only in that process "
                "and cannot be found when the spec is loaded in another one; define it in an importable "
                "module (e.g. my_models.py next to your script or in an installed package) and name it "
                "'my_models:NAME'"
            )
        else:
            how = (
                "define it in an importable module (installed, or on sys.path / PYTHONPATH) and name it "
                "'package.module:NAME'"
            )
        raise ConfigError(f"{spec} factory {path!r} could not be imported: {exc}; {how}") from exc


def _check_factory(instance: Any, attribute: Any, value: str) -> None:
    obj = resolve_factory(type(instance).__name__, value)
    if not callable(obj):
        raise ConfigError(f"{type(instance).__name__} factory {value!r} is not callable")


@attrs.frozen
class _AbstractUserModule(AbstractModel):
    """What a user module built by ``factory(**kwargs)`` holds (:class:`TorchModule`, :class:`KerasModel`).

    An undeclared ``output_shape`` is found by the backend, which runs the module once.
    """

    factory: str = attrs.field(validator=_check_factory)
    kwargs: Mapping[str, Any] = attrs.field(factory=FrozenDict, converter=_json_mapping)
    output_shape: tuple[int, ...] | None = attrs.field(default=None, converter=optional_shape)

    def infer_output_shape(
        self, input_shape: tuple[int, ...], target_shape: tuple[int, ...] | None
    ) -> tuple[int, ...]:
        """The declared ``output_shape`` (an undeclared one is found by running the module)."""
        if self.output_shape is None:
            raise ShapeError(
                f"{type(self).__name__}({self.factory!r}) declares no output_shape: it is found by running "
                "the model, which its backend does; call mml.backends.output_shape(spec, input_shape) "
                "(graphs and mml.backends.init_params do), or pass output_shape=... to the spec"
            )
        return self.output_shape


@attrs.frozen
class TorchModule(_AbstractUserModule):
    """A user ``torch.nn.Module`` built by ``factory(**kwargs)`` (the factory is imported by path).

    If the factory declares ``input_shape`` / ``output_shape`` parameters, they are passed.
    ``output_shape=None`` means: ask the module (one dry forward pass on zeros, which is the
    torch backend's work: :func:`mml.backends.output_shape`).

    >>> import mml
    >>> spec = TorchModule(factory="torch.nn:Linear", kwargs={"in_features": 4, "out_features": 2})
    >>> mml.backends.output_shape(spec, (4,))
    (2,)
    """

    kind: ClassVar[str] = "model.torch_module"
    backend: ClassVar[str] = "torch"


@attrs.frozen
class KerasModel(_AbstractUserModule):
    """A user ``keras.Model`` built by ``factory(**kwargs)`` for the given input shape.

    >>> spec = KerasModel(factory="keras:Sequential", kwargs={}, output_shape=(1,))
    >>> spec.backend
    'tensorflow'
    """

    kind: ClassVar[str] = "model.keras_model"
    backend: ClassVar[str] = "tensorflow"


def _check_estimator(instance: Any, attribute: Any, value: str) -> None:
    from sklearn.base import BaseEstimator

    cls = import_object(value, "sklearn estimator")
    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
        raise ConfigError(
            f"{value!r} is not a scikit-learn estimator class (a subclass of sklearn.base.BaseEstimator)"
        )


def _check_method(instance: Any, attribute: Any, value: str) -> None:
    if value not in SKLEARN_METHODS:
        raise ConfigError(f"SklearnModel.method must be one of {', '.join(SKLEARN_METHODS)}, got {value!r}")


@attrs.frozen
class SklearnModel(AbstractModel):
    """A scikit-learn estimator named by class path plus its constructor params (data only).

    ``method``: ``"auto"`` calls ``predict`` if the estimator has it, else ``transform``;
    or force ``"predict"``, ``"transform"`` or ``"predict_proba"``.

    >>> from sklearn.preprocessing import StandardScaler
    >>> SklearnModel.from_estimator(StandardScaler(with_mean=False)).params["with_mean"]
    False
    """

    kind: ClassVar[str] = "model.sklearn"
    backend: ClassVar[str] = "sklearn"

    estimator: str = attrs.field(validator=_check_estimator)
    params: Mapping[str, Any] = attrs.field(factory=FrozenDict, converter=_json_mapping)
    method: str = attrs.field(default="auto", validator=_check_method)
    output_shape: tuple[int, ...] | None = attrs.field(default=None, converter=optional_shape)

    def __attrs_post_init__(self) -> None:
        cls = import_object(self.estimator, "sklearn estimator")
        try:
            est = cls(**plain_data(self.params))
        except TypeError as exc:
            raise ConfigError(
                f"{self.estimator} does not accept params {dict(self.params)!r}: {exc}"
            ) from exc
        method = self.resolved_method(est)
        if not hasattr(est, method):
            raise ConfigError(
                f"{self.estimator} has no method {method!r}; choose another SklearnModel.method"
            )

    @classmethod
    def from_estimator(cls, estimator: Any, *, method: str = "auto") -> SklearnModel:
        """The spec of an (unfitted) estimator instance: its class path and ``get_params(deep=False)``.

        >>> from sklearn.linear_model import Ridge
        >>> SklearnModel.from_estimator(Ridge(alpha=2.0)).params["alpha"]
        2.0
        """
        from sklearn.base import BaseEstimator

        if not isinstance(estimator, BaseEstimator):
            raise ConfigError(
                f"from_estimator takes a scikit-learn estimator, got {type(estimator).__name__}"
            )
        path = public_class_path(type(estimator))
        params = estimator.get_params(deep=False)
        try:
            data = json_data(params, f"{type(estimator).__name__} params")
        except ConfigError as exc:
            raise ConfigError(
                f"{exc}. {type(estimator).__name__} has a non-data parameter (a nested estimator, a "
                "callable or a type), which cannot be saved safely; use a plain estimator"
            ) from exc
        return cls(estimator=path, params=data, method=method)

    def resolved_method(self, estimator: Any = None) -> str:
        """The method ``apply`` calls (``"auto"`` resolved against the estimator class).

        >>> SklearnModel(estimator="sklearn.decomposition:PCA").resolved_method()
        'transform'
        """
        if self.method != "auto":
            return self.method
        target = estimator if estimator is not None else import_object(self.estimator, "sklearn estimator")
        return "predict" if hasattr(target, "predict") else "transform"

    def infer_output_shape(
        self, input_shape: tuple[int, ...], target_shape: tuple[int, ...] | None
    ) -> tuple[int, ...]:
        """Declared ``output_shape``; else ``(n_components,)`` or the flattened input for transforms,
        and the target shape (or ``(1,)``) for ``predict``."""
        if self.output_shape is not None:
            return self.output_shape
        method = self.resolved_method()
        if method == "transform":
            n = self.params.get("n_components")
            if isinstance(n, int) and not isinstance(n, bool):
                return (n,)
            if "n_clusters" in self.params and isinstance(self.params["n_clusters"], int):
                return (self.params["n_clusters"],)
            return (numel(input_shape),)
        if method == "predict":
            return (1,) if target_shape is None else tuple(target_shape)
        raise ShapeError(
            f"SklearnModel({self.estimator}, method='predict_proba'): the number of classes is not known "
            "before fitting; pass output_shape=(n_classes,)"
        )
