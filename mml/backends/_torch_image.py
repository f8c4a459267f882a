"""The torch plan of ``SequentialCNN(dims=2)``: ``Conv2d`` blocks over images.

Same layout rules as the 1-D network in :mod:`mml.backends._torch`: "same" padding (for an
even kernel the extra zero goes right and below, as in torch's and Keras' "same"), max-pool
(floor), dropout from the keyed generator, and a linear head over the channel-major flattened
feature map.

>>> from mml.models import SequentialCNN
>>> plan = cnn2d_plan(SequentialCNN(channels=(4,), dims=2), (8, 8), (1,))
>>> [(name, shape) for name, shape, _ in plan.shapes][:2]
[('convs.0.weight', (4, 1, 3, 3)), ('convs.0.bias', (4,))]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mml.backends._torch import _activation, _dropout, _Plan
from mml.models._base import numel
from mml.models._builtin import SequentialCNN, image_shape

__all__ = ["cnn2d_plan", "conv_param_shapes"]


def conv_param_shapes(
    spec: Any, c_in: int, kernel: tuple[int, ...], fmap: tuple[int, ...], output_shape: tuple[int, ...]
) -> list[tuple[str, tuple[int, ...], int]]:
    """``(name, shape, fan_in)`` of a conv stack's weights and biases (1-D or 2-D kernels) and its head."""
    shapes: list[tuple[str, tuple[int, ...], int]] = []
    for i, c in enumerate(spec.channels):
        fan = c_in * math.prod(kernel)
        shapes += [(f"convs.{i}.weight", (c, c_in, *kernel), fan), (f"convs.{i}.bias", (c,), fan)]
        c_in = c
    if spec.flatten_output:
        flat = numel(fmap)
        shapes += [
            ("head.weight", (numel(output_shape), flat), flat),
            ("head.bias", (numel(output_shape),), flat),
        ]
    return shapes


def cnn2d_plan(spec: SequentialCNN, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> _Plan:
    """Parameter layout and forward function of a 2-D ``SequentialCNN``."""
    import torch.nn.functional as F

    c_in, _, _ = image_shape(spec, input_shape)
    k = spec.kernel_size
    fmap = spec.feature_map_shape(input_shape)
    shapes = conv_param_shapes(spec, c_in, (k, k), fmap, output_shape)
    convs = [(f"convs.{i}.weight", f"convs.{i}.bias") for i in range(len(spec.channels))]
    act = _activation(spec.activation)
    rate, pool, flatten, out = spec.dropout, spec.pooling, spec.flatten_output, tuple(output_shape)
    unsqueeze = len(input_shape) == 2
    lo, hi = (k - 1) // 2, (k - 1) - (k - 1) // 2  # "same": the extra zero right and below (even k)
    symmetric = lo == hi

    def forward(p: Mapping[str, Any], x: Any, training: bool, gen: Any) -> Any:
        h = x.unsqueeze(1) if unsqueeze else x
        for w, b in convs:
            if symmetric:
                h = act(F.conv2d(h, p[w], p[b], padding=lo))
            else:
                h = act(F.conv2d(F.pad(h, (lo, hi, lo, hi)), p[w], p[b]))
            if pool > 1:
                h = F.max_pool2d(h, pool)
            if training and rate:
                h = _dropout(h, rate, gen)
        if not flatten:
            return h
        return F.linear(h.flatten(1), p["head.weight"], p["head.bias"]).reshape(x.shape[0], *out)

    return _Plan(tuple(shapes), forward, rate > 0)
