"""The pieces of the built-in torch models' forward passes that ``_torch`` and ``_torch_image`` share:
activations by name, keyed dropout, and the plan (parameter layout and forward function) of a spec.

Its own module so that neither of the two imports the other (no cycle inside the package).

>>> _activation("relu") is _activation("relu")
True
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["_activation", "_dropout", "_Plan"]


# -- activations and keyed dropout ---------------------------------------------------------


@functools.cache
def _activation(name: str) -> Callable[[Any], Any]:
    import torch
    import torch.nn.functional as F

    table: dict[str, Callable[[Any], Any]] = {
        "relu": torch.relu,
        "gelu": F.gelu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "elu": F.elu,
        "leaky_relu": F.leaky_relu,  # negative slope 0.01, as in Keras' builtins here
        "silu": F.silu,
    }
    return table[name]


def _dropout(h: Any, rate: float, gen: Any) -> Any:
    import torch

    mask = torch.empty_like(h).bernoulli_(1.0 - rate, generator=gen)
    return h * mask * (1.0 / (1.0 - rate))


# -- plans: parameter layout and forward function of a built-in --------------------------


@attrs.frozen
class _Plan:
    """What a spec needs at run time: parameter names/shapes/fan-ins and a forward function."""

    shapes: tuple[tuple[str, tuple[int, ...], int], ...]  # (name, shape, fan_in)
    forward: Callable[..., Any]
    stochastic: bool
