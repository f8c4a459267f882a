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

from mml.backends._torch_ops import _activation, _dropout, _Plan
from mml.models import SequentialCNN, TemporalCNN, image_shape, numel, signal_shape

__all__ = ["cnn2d_plan", "conv_param_shapes", "tcn_plan"]


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


def tcn_plan(spec: TemporalCNN, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> _Plan:
    """The torch plan of a :class:`~mml.models.TemporalCNN`: causal dilated residual blocks."""
    import torch.nn.functional as F

    c_in, _ = signal_shape(spec, input_shape)
    k = spec.kernel_size
    shapes = []
    blocks = []
    for i, c in enumerate(spec.channels):
        pre = f"blocks.{i}"
        shapes += [(f"{pre}.conv.weight", (c, c_in, k), c_in * k), (f"{pre}.conv.bias", (c,), c_in * k)]
        down = None
        if c_in != c:
            shapes += [
                (f"{pre}.downsample.weight", (c, c_in, 1), c_in),
                (f"{pre}.downsample.bias", (c,), c_in),
            ]
            down = (f"{pre}.downsample.weight", f"{pre}.downsample.bias")
        blocks.append((f"{pre}.conv.weight", f"{pre}.conv.bias", 2**i, (k - 1) * 2**i, down))
        c_in = c
    n_out = numel(output_shape)
    shapes += [("head.weight", (n_out, c_in), c_in), ("head.bias", (n_out,), c_in)]
    act = _activation(spec.activation)
    rate, out = spec.dropout, tuple(output_shape)
    unsqueeze = len(input_shape) == 1

    def forward(p: Mapping[str, Any], x: Any, training: bool, gen: Any) -> Any:
        h = x.unsqueeze(1) if unsqueeze else x
        for w, b, dilation, pad, down in blocks:
            y = act(F.conv1d(F.pad(h, (pad, 0)), p[w], p[b], dilation=dilation))
            if training and rate:
                y = _dropout(y, rate, gen)
            res = h if down is None else F.conv1d(h, p[down[0]], p[down[1]])
            h = act(y + res)
        return F.linear(h[:, :, -1], p["head.weight"], p["head.bias"]).reshape(x.shape[0], *out)

    return _Plan(tuple(shapes), forward, rate > 0)
