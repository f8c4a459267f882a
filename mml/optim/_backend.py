"""Which tensor library holds a parameter dict, and the checks every ``update`` makes.

Optimizers dispatch on the type of the parameter values: torch tensors are updated with
``torch._foreach_*`` ops, TensorFlow tensors and variables (also Keras 3 variables on the
TensorFlow backend) with TensorFlow ops. Neither library is imported until it is needed.

>>> import torch
>>> framework_of({"w": torch.zeros(2)})
'torch'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mml._fields import FrozenDict
from mml.errors import BackendError, TrainingError

__all__ = ["framework_of", "ordered", "check_grads", "zeros_like"]


def _framework_of_value(value: Any) -> str | None:
    module = type(value).__module__
    if module.startswith("torch"):
        return "torch"
    if module.startswith(("tensorflow", "keras", "tf_keras")):
        return "tensorflow"
    return None


def framework_of(params: Mapping[str, Any]) -> str:
    """``"torch"`` or ``"tensorflow"``: the library of the values of ``params``.

    Mixing libraries in one dict, or values of another type (numpy arrays, lists), is a
    :class:`~mml.BackendError`.
    """
    found: str | None = None
    for name, value in params.items():
        fw = _framework_of_value(value)
        if fw is None:
            raise BackendError(
                f"parameter {name!r} is a {type(value).__module__}.{type(value).__qualname__}; mml "
                "optimizers update torch tensors or TensorFlow/Keras tensors and variables — convert it "
                "(torch.as_tensor / tf.convert_to_tensor) first"
            )
        if found is None:
            found = fw
        elif fw != found:
            raise BackendError(
                f"parameter {name!r} is a {fw} value but others are {found} values; use one optimizer "
                "state per backend (one per graph node)"
            )
    if found is None:
        raise BackendError("framework_of needs at least one parameter")
    return found


def check_grads(grads: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    """Raise a :class:`~mml.TrainingError` unless ``grads`` has exactly the names of ``params``.

    >>> check_grads({"w": 1}, {"w": 2})
    >>> check_grads({}, {"w": 2})
    Traceback (most recent call last):
    ...
    mml.errors.TrainingError: the gradients do not match the parameters: missing gradients for ['w']; ...
    """
    if grads.keys() == params.keys():
        return
    missing = sorted(set(params) - set(grads))
    extra = sorted(set(grads) - set(params))
    parts = []
    if missing:
        parts.append(f"missing gradients for {missing}")
    if extra:
        parts.append(f"gradients for unknown parameters {extra}")
    raise TrainingError(
        "the gradients do not match the parameters: "
        + "; ".join(parts)
        + "; pass one gradient per parameter, under the same names (a frozen parameter needs a zero "
        "gradient or its own optimizer)"
    )


def ordered(mapping: Mapping[str, Any], keys: Sequence[str], what: str) -> list[Any]:
    """The values of ``mapping`` in the order of ``keys`` (a missing name is a :class:`~mml.TrainingError`).

    >>> ordered({"a": 1, "b": 2}, ["b", "a"], "exp_avg")
    [2, 1]
    """
    try:
        return [mapping[k] for k in keys]
    except KeyError as exc:
        raise TrainingError(
            f"the optimizer state has no {what} for parameter {exc.args[0]!r}; the state was made for "
            f"other parameters ({sorted(mapping)}) — call optimizer.init(params) for these parameters"
        ) from None


def zeros_like(params: Mapping[str, Any]) -> FrozenDict[str, Any]:
    """New zero tensors shaped like ``params`` (same library, dtype and device; no grad).

    >>> import torch
    >>> zeros_like({"w": torch.ones(2, requires_grad=True)})["w"]
    tensor([0., 0.])
    """
    if not params:
        return FrozenDict()
    if framework_of(params) == "torch":
        import torch

        with torch.no_grad():
            return FrozenDict(
                {k: torch.zeros_like(v, memory_format=torch.preserve_format) for k, v in params.items()}
            )
    import tensorflow as tf

    return FrozenDict({k: tf.zeros_like(tf.convert_to_tensor(v)) for k, v in params.items()})
