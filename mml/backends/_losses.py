"""The built-in losses by framework: one dispatch from a loss name to its implementation.

Training names a loss (:class:`mml.training.Loss`, a value a document can hold) and asks this
module for the function of the framework its node computes in; the implementations are
:mod:`mml.backends._losses_torch` and :mod:`mml.backends._losses_tf`, imported (with their
framework) only when asked for.

>>> import torch
>>> fn = loss_function("torch", "mae")
>>> float(fn([torch.ones(2, 1), torch.zeros(2, 1)], None, None))
1.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mml.errors import ConfigError

__all__ = ["LOSS_FRAMEWORKS", "loss_function", "loss_reduction"]

#: the frameworks that implement every built-in loss
LOSS_FRAMEWORKS: tuple[str, ...] = ("torch", "tensorflow")

LossFn = Callable[[Sequence[Any], Any, Any], Any]


def _check(framework: str) -> None:
    if framework not in LOSS_FRAMEWORKS:
        raise ConfigError(
            f"losses are implemented for {', '.join(LOSS_FRAMEWORKS)}, not {framework!r}; "
            "compute the loss on a torch or Keras (tensorflow) node"
        )


def loss_function(framework: str, name: str, kwargs: Mapping[str, Any] | None = None) -> LossFn:
    """Built-in loss ``name`` in ``framework``'s ops: ``fn(inputs, weights, mask) -> scalar tensor``.

    >>> import tensorflow as tf
    >>> fn = loss_function("tensorflow", "huber", {"delta": 0.5})
    >>> round(float(fn([tf.constant([[2.0]]), tf.constant([[0.0]])], None, None)), 4)
    0.875
    >>> loss_function("jax", "mse")
    Traceback (most recent call last):
    ...
    mml.errors.ConfigError: losses are implemented for torch, tensorflow, not 'jax'; compute the loss on a torch or Keras (tensorflow) node
    """
    _check(framework)
    kw = {} if kwargs is None else kwargs
    if framework == "tensorflow":
        from mml.backends._losses_tf import builtin_tf

        return builtin_tf(name, kw)
    from mml.backends._losses_torch import builtin_torch

    return builtin_torch(name, kw)


def loss_reduction(framework: str) -> Callable[[Any, Any, Any], Any]:
    """``reduce(per_sample, weights, mask) -> scalar``: the weighted, masked mean in ``framework``.

    >>> import torch
    >>> float(loss_reduction("torch")(torch.tensor([1.0, 3.0]), None, torch.tensor([True, False])))
    1.0
    """
    _check(framework)
    if framework == "tensorflow":
        from mml.backends._losses_tf import reduce_tf

        return reduce_tf
    from mml.backends._losses_torch import reduce_torch

    return reduce_torch
