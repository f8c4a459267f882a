"""The backend protocol and the dispatching functions the graph and the training loop call.

One small protocol (``init`` / ``apply`` / ``value_and_grad`` / ``fit`` / ``partial_fit``),
written once as :class:`AbstractBackend`, one final implementation per backend, chosen by
``spec.backend``. All functions are pure: they
return new parameter records and never modify their inputs.

>>> import mml, numpy as np
>>> from mml.models import SequentialMLP
>>> spec = SequentialMLP(hidden=(8,), output_shape=(1,))
>>> params = init_params(spec, (4,), (1,), key=mml.random.key(0))
>>> y, params2 = apply(spec, params, np.zeros((2, 4), np.float32))
>>> tuple(y.shape), params2 is params
((2, 1), True)
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NoReturn

from mml.backends._params import ModelParams
from mml.errors import BackendError
from mml.models import AbstractModel
from mml.random import Key

__all__ = [
    "AbstractBackend",
    "get_backend",
    "output_shape",
    "init_params",
    "apply",
    "value_and_grad",
    "fit",
    "partial_fit",
]

LossFn = Callable[[Any], tuple[Any, Any]]


class AbstractBackend(abc.ABC):
    """What every backend implements (see ``docs/models.md``): the protocol, written once.

    Each backend is one final subclass whose methods are its module's functions
    (:class:`~mml.backends._torch.TorchBackend`, ``KerasBackend``, ``SklearnBackend``; the two
    gradient backends take their refusing ``fit``/``partial_fit`` from
    :class:`AbstractGradientBackend`); its
    instances are stateless values (equal when of one class). :func:`get_backend` gives the
    one for a name or a spec, and the module-level :func:`init_params`, :func:`apply`,
    :func:`value_and_grad`, :func:`fit` and :func:`partial_fit` dispatch to it.

    >>> b = get_backend("torch")
    >>> isinstance(b, AbstractBackend), b.name, b
    (True, 'torch', TorchBackend())
    """

    #: the backend's name: ``"torch"``, ``"tensorflow"`` or ``"sklearn"`` (a spec's ``backend``)
    name: ClassVar[str]

    @abc.abstractmethod
    def output_shape(
        self, spec: AbstractModel, input_shape: tuple[int, ...], target_shape: tuple[int, ...] | None
    ) -> tuple[int, ...]:
        """Per-sample output shape: the spec's own answer, or (a user module) one dry run of it."""

    @abc.abstractmethod
    def init(
        self,
        spec: AbstractModel,
        input_shape: tuple[int, ...],
        output_shape: tuple[int, ...],
        *,
        key: Key,
        device: Any = "cpu",
    ) -> ModelParams:
        """Fresh params for per-sample shapes; same key ⇒ identical params."""

    @abc.abstractmethod
    def apply(
        self,
        spec: AbstractModel,
        params: Any,
        x: Any,
        *,
        training: bool = False,
        key: Key | None = None,
        device: Any = None,
    ) -> tuple[Any, Any]:
        """``(y, new_params)``; ``new_params`` carries updated buffers (training mode) else is ``params``."""

    @abc.abstractmethod
    def value_and_grad(
        self,
        spec: AbstractModel,
        params: Any,
        x: Any,
        loss_fn: LossFn,
        *,
        key: Key | None = None,
        training: bool = True,
    ) -> tuple[tuple[Any, Any], Any, Any]:
        """``((loss, aux), grads, new_params)`` for gradient-trained backends; a
        :class:`~mml.BackendError` for the others."""

    @abc.abstractmethod
    def fit(self, spec: AbstractModel, params: Any, x: Any, y: Any = None, *, key: Key) -> Any:
        """Closed-form fit (scikit-learn); other backends raise :class:`~mml.BackendError`."""

    @abc.abstractmethod
    def partial_fit(
        self, spec: AbstractModel, params: Any, x: Any, y: Any = None, *, key: Key, classes: Any = None
    ) -> Any:
        """One incremental fit step (scikit-learn estimators with ``partial_fit``)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))


#: how the refusal names a gradient backend's framework (a spec's ``backend`` -> the word)
_FRAMEWORK_WORD = {"torch": "torch", "tensorflow": "Keras"}


def _refuse_fit(spec: AbstractModel, params: Any, x: Any, y: Any = None, *, key: Key) -> NoReturn:
    raise BackendError(
        f"{type(spec).__name__} is a {_FRAMEWORK_WORD.get(spec.backend, spec.backend)} model: train it with "
        "a TrainPhase, not fit()"
    )


def _refuse_partial_fit(
    spec: AbstractModel, params: Any, x: Any, y: Any = None, *, key: Key, classes: Any = None
) -> NoReturn:
    _refuse_fit(spec, params, x, y, key=key)


class AbstractGradientBackend(AbstractBackend):
    """A backend whose models are trained by gradients (torch, Keras): ``fit`` and ``partial_fit``
    are a :class:`~mml.BackendError` that says to train the model with a ``TrainPhase``."""

    fit = staticmethod(_refuse_fit)
    partial_fit = staticmethod(_refuse_partial_fit)


_BACKENDS: dict[str, AbstractBackend] = {}
#: backend name -> (the module implementing it, its final AbstractBackend subclass)
_CLASSES = {
    "torch": ("mml.backends._torch", "TorchBackend"),
    "tensorflow": ("mml.backends._keras", "KerasBackend"),
    "sklearn": ("mml.backends._sklearn", "SklearnBackend"),
}


def get_backend(name_or_spec: str | AbstractModel) -> AbstractBackend:
    """The backend for a name (``"torch"``, ``"tensorflow"``, ``"sklearn"``) or a spec.

    >>> get_backend("sklearn").name
    'sklearn'
    """
    name = name_or_spec if isinstance(name_or_spec, str) else getattr(name_or_spec, "backend", None)
    backend = _BACKENDS.get(name)  # type: ignore[arg-type]
    if backend is not None:
        return backend
    if name not in _CLASSES:
        raise BackendError(f"unknown backend {name!r}; use 'torch', 'tensorflow' or 'sklearn'")
    module_name, class_name = _CLASSES[name]  # type: ignore[index]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        extra = {"torch": "torch", "tensorflow": "tensorflow", "sklearn": "all"}[name]
        raise BackendError(
            f"the {name} backend cannot be imported ({exc}): pip install 'mml[{extra}]'"
        ) from exc
    made: AbstractBackend = getattr(module, class_name)()
    _BACKENDS[name] = made  # a memo of stateless backend values
    return made


def output_shape(
    spec: AbstractModel, input_shape: Sequence[int], target_shape: Sequence[int] | None = None
) -> tuple[int, ...]:
    """Per-sample output shape of ``spec`` for an input shape (and optional target shape).

    A spec answers for itself (``spec.infer_output_shape``: declared, or derived from its
    hyperparameters); a user ``TorchModule``/``KerasModel`` without a declared ``output_shape``
    is run once by its backend (a forward pass on zeros, or the built Keras model).

    >>> from mml.models import SequentialMLP, TorchModule
    >>> output_shape(SequentialMLP(), (16,), (1,))
    (1,)
    >>> output_shape(TorchModule(factory="torch.nn:Flatten"), (2, 3))
    (6,)
    """
    shape = tuple(int(v) for v in input_shape)
    tshape = None if target_shape is None else tuple(int(v) for v in target_shape)
    return get_backend(spec).output_shape(spec, shape, tshape)


def init_params(
    spec: AbstractModel,
    input_shape: tuple[int, ...],
    output_shape: tuple[int, ...] | None = None,
    *,
    key: Key,
    device: Any = "cpu",
    target_shape: tuple[int, ...] | None = None,
) -> ModelParams:
    """Fresh params for ``spec`` at per-sample ``input_shape``.

    ``output_shape=None`` asks :func:`output_shape` (the spec, or a dry run of a user module).

    >>> import mml
    >>> from mml.models import SequentialMLP
    >>> init_params(SequentialMLP(hidden=(2,)), (3,), target_shape=(1,), key=mml.random.key(0)).output_shape
    (1,)
    """
    input_shape = tuple(int(v) for v in input_shape)
    if output_shape is None:
        output_shape = get_backend(spec).output_shape(spec, input_shape, target_shape)
    return get_backend(spec).init(spec, input_shape, tuple(output_shape), key=key, device=device)


def apply(
    spec: AbstractModel,
    params: Any,
    x: Any,
    *,
    training: bool = False,
    key: Key | None = None,
    device: Any = None,
) -> tuple[Any, Any]:
    """Run ``spec`` with ``params`` on a batch: ``(y, new_params)``. ``y`` is the backend's array type.

    >>> import mml, numpy as np
    >>> from mml.models import SequentialMLP
    >>> spec = SequentialMLP(hidden=(2,), output_shape=(1,), dropout=0.5)
    >>> p = init_params(spec, (3,), key=mml.random.key(0))
    >>> a, _ = apply(spec, p, np.ones((4, 3), np.float32), training=True, key=mml.random.key(1))
    >>> b, _ = apply(spec, p, np.ones((4, 3), np.float32), training=True, key=mml.random.key(1))
    >>> bool((a == b).all())
    True
    """
    backend = _BACKENDS.get(spec.backend) or get_backend(spec)
    return backend.apply(spec, params, x, training=training, key=key, device=device)


def value_and_grad(
    spec: AbstractModel,
    params: Any,
    x: Any,
    loss_fn: LossFn,
    *,
    key: Key | None = None,
    training: bool = True,
) -> tuple[tuple[Any, Any], Any, Any]:
    """``((loss, aux), grads, new_params)`` of ``loss_fn(model(x))``; ``loss_fn(y) -> (loss, aux)``.

    >>> import mml, torch
    >>> from mml.models import SequentialMLP
    >>> spec = SequentialMLP(hidden=(2,), output_shape=(1,))
    >>> p = init_params(spec, (3,), key=mml.random.key(0))
    >>> (loss, _), grads, _ = value_and_grad(spec, p, torch.ones(4, 3), lambda y: (y.pow(2).mean(), None))
    >>> loss.ndim, len(grads)
    (0, 4)
    """
    return get_backend(spec).value_and_grad(spec, params, x, loss_fn, key=key, training=training)


def fit(spec: AbstractModel, params: Any, x: Any, y: Any = None, *, key: Key) -> Any:
    """Closed-form fit (scikit-learn): new params; the spec and ``params`` are untouched.

    >>> import mml, numpy as np
    >>> from mml.models import SklearnModel
    >>> spec = SklearnModel(estimator="sklearn.linear_model:LinearRegression")
    >>> p = init_params(spec, (1,), key=mml.random.key(0))
    >>> p = fit(spec, p, np.array([[0.0], [1.0]]), np.array([[1.0], [3.0]]), key=mml.random.key(0))
    >>> apply(spec, p, np.array([[2.0]]))[0].round(6).tolist()
    [[5.0]]
    """
    return get_backend(spec).fit(spec, params, x, y, key=key)


def partial_fit(
    spec: AbstractModel, params: Any, x: Any, y: Any = None, *, key: Key, classes: Any = None
) -> Any:
    """One incremental fit step for estimators with ``partial_fit`` (new params returned).

    ``classes`` (all class labels) is passed on the first call for classifiers that need it.

    >>> import mml, numpy as np
    >>> from mml.models import SklearnModel
    >>> spec = SklearnModel(estimator="sklearn.preprocessing:StandardScaler")
    >>> p = partial_fit(spec, init_params(spec, (1,), key=mml.random.key(0)), np.ones((2, 1)), key=mml.random.key(0))
    >>> p.is_fitted
    True
    """
    return get_backend(spec).partial_fit(spec, params, x, y, key=key, classes=classes)
