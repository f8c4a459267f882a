"""User model factories the backend tests name by import path."""

from __future__ import annotations

from typing import Any


def bn_net(
    input_shape: tuple[int, ...], output_shape: tuple[int, ...], hidden: int = 8, p: float = 0.5
) -> Any:
    import torch.nn as nn

    return nn.Sequential(
        nn.Linear(input_shape[0], hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Dropout(p),
        nn.Linear(hidden, output_shape[0]),
    )


def keras_bn_net(input_shape: tuple[int, ...], units: int = 4) -> Any:
    import keras

    inp = keras.Input(input_shape)
    h = keras.layers.Dense(units)(inp)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Dropout(0.5)(h)
    return keras.Model(inp, keras.layers.Dense(1)(h))
