"""A user Keras model factory the Keras value tests name by import path."""

from __future__ import annotations

from typing import Any


def conv_net(input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> Any:
    """Conv1D(3 filters, kernel 2) over channels-last input, flattened into one Dense head."""
    import keras

    inp = keras.Input(input_shape)
    h = keras.layers.Flatten()(keras.layers.Conv1D(3, 2)(inp))
    return keras.Model(inp, keras.layers.Dense(output_shape[0])(h))
