"""Gradient clipping by global norm and by value, for torch and TensorFlow gradients.

``clip_by_global_norm`` matches ``torch.nn.utils.clip_grad_norm_``: the gradients are scaled by
``min(max_norm / (total_norm + 1e-6), 1)``. Every function returns new tensors.

>>> import torch
>>> g = {"w": torch.tensor([3.0, 4.0])}
>>> float(global_norm(g))
5.0
>>> clip_by_global_norm(g, 1.0)["w"]
tensor([0.6000, 0.8000])
>>> clip_by_value(g, 3.5)["w"]
tensor([3.0000, 3.5000])
>>> g["w"]
tensor([3., 4.])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mml._fields import FrozenDict
from mml.errors import ConfigError
from mml.optim._backend import framework_of

__all__ = ["global_norm", "clip_by_global_norm", "clip_by_value", "clip_list"]


# -- lists of tensors (what the optimizers use) -------------------------------------------


def _torch_global_norm(grads: list[Any]) -> Any:
    import torch

    norms = torch._foreach_norm(grads, 2.0)
    return torch.linalg.vector_norm(torch.stack(norms), 2.0)


def _tf_global_norm(grads: list[Any]) -> Any:
    import tensorflow as tf

    return tf.norm(tf.stack([tf.norm(tf.convert_to_tensor(g)) for g in grads]))


def clip_list(grads: list[Any], framework: str, max_norm: float | None, max_value: float | None) -> list[Any]:
    """Clip a list of gradients: first by value (if ``max_value``), then by global norm (if ``max_norm``).

    The caller's tensors are never written; unclipped lists are returned as they are.
    """
    if not grads or (max_norm is None and max_value is None):
        return grads
    if framework == "torch":
        import torch

        with torch.no_grad():
            if max_value is not None:
                grads = [torch.clamp(g, -max_value, max_value) for g in grads]
            if max_norm is not None:
                total = _torch_global_norm(grads)
                coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
                grads = list(torch._foreach_mul(grads, coef))
        return grads
    import tensorflow as tf

    grads = [tf.convert_to_tensor(g) for g in grads]
    if max_value is not None:
        grads = [tf.clip_by_value(g, -max_value, max_value) for g in grads]
    if max_norm is not None:
        total = _tf_global_norm(grads)
        coef = tf.minimum(max_norm / (total + 1e-6), 1.0)
        grads = [g * tf.cast(coef, g.dtype) for g in grads]
    return grads


# -- mappings (public) -----------------------------------------------------------------


def global_norm(grads: Mapping[str, Any]) -> Any:
    """The L2 norm of all gradients seen as one vector (a 0-d tensor of the gradients' library).

    >>> import torch
    >>> float(global_norm({"a": torch.tensor([3.0]), "b": torch.tensor([4.0])}))
    5.0
    """
    if not grads:
        raise ConfigError("global_norm needs at least one gradient")
    values = list(grads.values())
    if framework_of(grads) == "torch":
        import torch

        with torch.no_grad():
            return _torch_global_norm(values)
    return _tf_global_norm(values)


def clip_by_global_norm(grads: Mapping[str, Any], max_norm: float) -> FrozenDict[str, Any]:
    """Scale all gradients by ``min(max_norm / (global_norm + 1e-6), 1)`` (``clip_grad_norm_``).

    >>> import torch
    >>> clip_by_global_norm({"w": torch.tensor([0.3, 0.4])}, 1.0)["w"]
    tensor([0.3000, 0.4000])
    """
    if not max_norm > 0:
        raise ConfigError(f"clip_by_global_norm needs max_norm > 0, got {max_norm!r}")
    if not grads:
        return FrozenDict(grads)
    clipped = clip_list(list(grads.values()), framework_of(grads), float(max_norm), None)
    return FrozenDict(zip(grads.keys(), clipped))


def clip_by_value(grads: Mapping[str, Any], max_value: float) -> FrozenDict[str, Any]:
    """Clamp every gradient element into ``[-max_value, max_value]`` (``clip_grad_value_``).

    >>> import torch
    >>> clip_by_value({"w": torch.tensor([-2.0, 0.5])}, 1.0)["w"]
    tensor([-1.0000,  0.5000])
    """
    if not max_value > 0:
        raise ConfigError(f"clip_by_value needs max_value > 0, got {max_value!r}")
    if not grads:
        return FrozenDict(grads)
    clipped = clip_list(list(grads.values()), framework_of(grads), None, float(max_value))
    return FrozenDict(zip(grads.keys(), clipped))
