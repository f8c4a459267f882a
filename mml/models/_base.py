"""The abstract base of model specs and the validation helpers they share.

A model spec is a frozen attrs value that says *what* a model is (architecture and
hyperparameters). It holds no weights: :func:`mml.backends.init_params` makes those from shapes and
a key, and :func:`mml.backends.apply` runs the model.

>>> from mml.models import SequentialMLP
>>> spec = SequentialMLP(hidden=(8,), output_shape=(2,))
>>> spec.infer_output_shape((4,), None)
(2,)
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from mml.errors import ConfigError, ShapeError

__all__ = [
    "AbstractModel",
    "ACTIVATIONS",
    "BACKENDS",
    "check_activation",
    "check_backend",
    "shape_tuple",
    "optional_shape",
]

#: Activation names understood by the built-in models (same meaning in torch and Keras).
ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "tanh", "sigmoid", "elu", "leaky_relu", "silu")
#: Backend names a spec can carry.
BACKENDS: tuple[str, ...] = ("torch", "tensorflow", "sklearn")


class AbstractModel(abc.ABC):
    """Base of every model spec: a tagged union (``kind``) with a ``backend`` name.

    Concrete specs are final frozen attrs classes. Each has ``backend`` (a field or a
    ``ClassVar``: ``"torch"``, ``"tensorflow"`` or ``"sklearn"``) and
    :meth:`infer_output_shape`.

    >>> from mml.models import SequentialMLP
    >>> isinstance(SequentialMLP(), AbstractModel)
    True
    """

    _mml_union = True
    kind: ClassVar[str]

    if TYPE_CHECKING:
        # Concrete specs define ``backend`` as an attrs field or a ``ClassVar``; either is a
        # read-only ``str`` attribute as far as callers are concerned.
        @property
        def backend(self) -> str: ...

    @abc.abstractmethod
    def infer_output_shape(
        self, input_shape: tuple[int, ...], target_shape: tuple[int, ...] | None
    ) -> tuple[int, ...]:
        """Per-sample output shape (no batch dimension) for a per-sample input shape."""

    @property
    def trainable(self) -> bool:
        """Whether the backend trains this model by gradients (torch/tensorflow) or fits it (sklearn)."""
        return self.backend != "sklearn"


def shape_tuple(value: Sequence[int] | int, what: str = "shape") -> tuple[int, ...]:
    """A shape as a tuple of positive ints (an int ``n`` means ``(n,)``).

    >>> shape_tuple([3, 4]), shape_tuple(5)
    ((3, 4), (5,))
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    try:
        out = tuple(int(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must be a tuple of positive ints, got {value!r}") from exc
    if any(v <= 0 for v in out) or any(isinstance(v, bool) for v in value):  # type: ignore[union-attr]
        raise ConfigError(f"{what} must be a tuple of positive ints, got {value!r}")
    return out


def optional_shape(value: Sequence[int] | int | None) -> tuple[int, ...] | None:
    """attrs converter: ``None`` or a shape tuple.

    >>> optional_shape(None), optional_shape([2])
    (None, (2,))
    """
    return None if value is None else shape_tuple(value, "output_shape")


def check_activation(instance: Any, attribute: Any, value: str) -> None:
    """attrs validator: ``value`` is one of :data:`ACTIVATIONS`."""
    if value not in ACTIVATIONS:
        raise ConfigError(
            f"unknown activation {value!r} for {type(instance).__name__}; valid ones are: {', '.join(ACTIVATIONS)}"
        )


def check_backend(allowed: tuple[str, ...]) -> Any:
    """attrs validator factory: the ``backend`` field is one of ``allowed``."""

    def _check(instance: Any, attribute: Any, value: str) -> None:
        if value not in allowed:
            raise ConfigError(
                f"{type(instance).__name__} runs on backend {' or '.join(map(repr, allowed))}, got {value!r}"
            )

    return _check


def check_dropout(instance: Any, attribute: Any, value: float) -> None:
    """attrs validator: a dropout rate in ``[0, 1)``."""
    if not (isinstance(value, (int, float)) and 0.0 <= float(value) < 1.0):
        raise ConfigError(f"{type(instance).__name__}.dropout must be in [0, 1), got {value!r}")


def resolve_output(
    spec: Any, declared: tuple[int, ...] | None, target_shape: tuple[int, ...] | None
) -> tuple[int, ...]:
    """``declared`` if given, else the target shape; a :class:`~mml.ShapeError` when neither is known."""
    if declared is not None:
        return declared
    if target_shape is None:
        raise ShapeError(
            f"{type(spec).__name__} has output_shape=None (meaning 'the target shape') but no target shape "
            "is known here; pass output_shape=... to the spec or bind targets to the node"
        )
    return shape_tuple(target_shape, "target shape")


def numel(shape: Sequence[int]) -> int:
    """Number of elements of a per-sample shape.

    >>> numel((2, 3))
    6
    """
    return math.prod(shape)
