"""The Keras 3 (TensorFlow) backend: ``model.stateless_call`` on a memoised model skeleton.

Built-in models are built with the Keras functional API to mean exactly what the torch
built-ins mean (same layers, "same"/causal padding, channel-major flattening, PyTorch's
default initialisation ``U(±1/sqrt(fan_in))``, exact GELU, leaky-ReLU slope 0.01). A user
:class:`~mml.models.KerasModel` is built by its factory.

Randomness: initial weights are drawn with numpy from the key (user models: Glorot-uniform
for kernels, their built values for 1-D variables such as biases and BatchNorm scales).
Keras layers' seed-generator states (dropout) are set from the key on every call and are not
stored in :class:`~mml.backends.KerasParams`.

>>> import mml, numpy as np
>>> from mml.models import SequentialMLP
>>> spec = SequentialMLP(hidden=(8,), output_shape=(1,), backend="tensorflow")
>>> p = init(spec, (4,), (1,), key=mml.random.key(0))
>>> tuple(apply(spec, p, np.zeros((3, 4), np.float32))[0].shape)
(3, 1)
"""

from __future__ import annotations

import functools
import math
import typing
from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import numpy as np

from mml.backends._params import KerasParams
from mml.backends._protocol import AbstractGradientBackend
from mml.errors import BackendError, ConfigError, DeviceError, ShapeError
from mml.models import (
    AbstractModel,
    KerasModel,
    SequentialCNN,
    SequentialMLP,
    TemporalCNN,
    call_factory,
    image_shape,
    import_object,
    numel,
    signal_shape,
)
from mml.random import Key, fold_in, numpy_rng

__all__ = [
    "output_shape",
    "init",
    "apply",
    "value_and_grad",
    "keras_model",
    "built_output_shape",
]


def _keras() -> Any:
    try:
        import keras
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendError(
            "the tensorflow backend needs Keras 3 and TensorFlow: pip install 'mml[tensorflow]'"
        ) from exc
    if keras.backend.backend() != "tensorflow":
        raise BackendError(
            f"Keras runs on the {keras.backend.backend()!r} backend; mml's Keras models need TensorFlow: "
            "set KERAS_BACKEND=tensorflow before importing keras"
        )
    return keras


def _activation(name: str) -> Callable[[Any], Any]:
    keras = _keras()
    a = keras.activations
    table: dict[str, Callable[[Any], Any]] = {
        "relu": a.relu,
        "gelu": lambda t: a.gelu(t, approximate=False),
        "tanh": a.tanh,
        "sigmoid": a.sigmoid,
        "elu": a.elu,
        "leaky_relu": lambda t: a.leaky_relu(t, negative_slope=0.01),
        "silu": a.silu,
    }
    return table[name]


def _mlp(spec: SequentialMLP, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> Any:
    keras = _keras()
    L = keras.layers
    inp = keras.Input(input_shape)
    h = L.Flatten()(inp)
    for size in spec.hidden:
        h = L.Activation(_activation(spec.activation))(L.Dense(size)(h))
        if spec.dropout:
            h = L.Dropout(spec.dropout)(h)
    h = L.Reshape(output_shape)(L.Dense(numel(output_shape))(h))
    return keras.Model(inp, h)


def _to_channels_last(keras: Any, inp: Any, input_shape: tuple[int, ...]) -> Any:
    if len(input_shape) == 1:
        return keras.layers.Reshape((input_shape[0], 1))(inp)
    return keras.layers.Permute((2, 1))(inp)


def _cnn2d(spec: SequentialCNN, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> Any:
    keras = _keras()
    L = keras.layers
    _, hgt, wid = image_shape(spec, input_shape)
    inp = keras.Input(input_shape)
    h = L.Reshape((hgt, wid, 1))(inp) if len(input_shape) == 2 else L.Permute((2, 3, 1))(inp)
    for ch in spec.channels:
        h = L.Activation(_activation(spec.activation))(L.Conv2D(ch, spec.kernel_size, padding="same")(h))
        if spec.pooling > 1:
            h = L.MaxPooling2D(spec.pooling)(h)
        if spec.dropout:
            h = L.Dropout(spec.dropout)(h)
    h = L.Permute((3, 1, 2))(h)  # back to (channels, height, width): flatten channel-major like torch
    if spec.flatten_output:
        h = L.Reshape(output_shape)(L.Dense(numel(output_shape))(L.Flatten()(h)))
    return keras.Model(inp, h)


def _cnn(spec: SequentialCNN, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> Any:
    if spec.dims == 2:
        return _cnn2d(spec, input_shape, output_shape)
    keras = _keras()
    L = keras.layers
    signal_shape(spec, input_shape)
    inp = keras.Input(input_shape)
    h = _to_channels_last(keras, inp, input_shape)
    for c in spec.channels:
        h = L.Activation(_activation(spec.activation))(L.Conv1D(c, spec.kernel_size, padding="same")(h))
        if spec.pooling > 1:
            h = L.MaxPooling1D(spec.pooling)(h)
        if spec.dropout:
            h = L.Dropout(spec.dropout)(h)
    h = L.Permute((2, 1))(h)  # back to (channels, length): flatten channel-major like torch
    if spec.flatten_output:
        h = L.Reshape(output_shape)(L.Dense(numel(output_shape))(L.Flatten()(h)))
    return keras.Model(inp, h)


def _tcn(spec: TemporalCNN, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> Any:
    keras = _keras()
    L = keras.layers
    c_in, length = signal_shape(spec, input_shape)
    inp = keras.Input(input_shape)
    h = _to_channels_last(keras, inp, input_shape)
    act = _activation(spec.activation)
    for i, c in enumerate(spec.channels):
        d = 2**i
        y = L.ZeroPadding1D(((spec.kernel_size - 1) * d, 0))(h)
        y = L.Activation(act)(L.Conv1D(c, spec.kernel_size, dilation_rate=d, padding="valid")(y))
        if spec.dropout:
            y = L.Dropout(spec.dropout)(y)
        res = h if c_in == c else L.Conv1D(c, 1)(h)
        h = L.Activation(act)(L.Add()([y, res]))
        c_in = c
    last = L.Flatten()(L.Cropping1D((length - 1, 0))(h))
    out = L.Reshape(output_shape)(L.Dense(numel(output_shape))(last))
    return keras.Model(inp, out)


_BUILDERS: dict[type, Callable[..., Any]] = {SequentialMLP: _mlp, SequentialCNN: _cnn, TemporalCNN: _tcn}


def _build(spec: AbstractModel, input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None) -> Any:
    keras = _keras()
    if isinstance(spec, KerasModel):
        factory = import_object(spec.factory, "KerasModel factory")
        model = call_factory(factory, spec.kwargs, input_shape, output_shape)
        if not isinstance(model, keras.Model):
            raise BackendError(
                f"KerasModel factory {spec.factory!r} returned a {type(model).__name__}, not a keras.Model"
            )
        if not model.built:
            model.build((None, *input_shape))
        return model
    builder = _BUILDERS.get(type(spec))
    if builder is None or spec.backend != "tensorflow":
        raise BackendError(
            f"the tensorflow backend cannot run a {type(spec).__name__} (backend {spec.backend!r})"
        )
    if output_shape is None:
        raise ShapeError(f"{type(spec).__name__} needs an output shape to be built")
    return builder(spec, input_shape, output_shape)


@functools.lru_cache(maxsize=64)
def keras_model(
    spec: AbstractModel, input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None
) -> Any:
    """The memoised model skeleton for (spec, shapes). Only ``stateless_call`` is used on it.

    >>> from mml.models import SequentialMLP
    >>> m = keras_model(SequentialMLP(hidden=(2,), backend="tensorflow"), (3,), (1,))
    >>> len(m.trainable_variables)
    4
    """
    return _build(spec, tuple(input_shape), None if output_shape is None else tuple(output_shape))


def output_shape(
    spec: AbstractModel, input_shape: tuple[int, ...], target_shape: tuple[int, ...] | None
) -> tuple[int, ...]:
    """The spec's own answer; a :class:`~mml.models.KerasModel` without a declared shape is built."""
    if isinstance(spec, KerasModel) and spec.output_shape is None:
        return built_output_shape(spec, input_shape, target_shape)
    return spec.infer_output_shape(input_shape, target_shape)


def built_output_shape(
    spec: KerasModel, input_shape: tuple[int, ...], target_shape: tuple[int, ...] | None
) -> tuple[int, ...]:
    """Per-sample output shape of a user Keras model (from the built model)."""
    model = keras_model(spec, tuple(input_shape), target_shape)
    shape = model.compute_output_shape((None, *input_shape))
    return tuple(int(v) for v in shape[1:])


@functools.lru_cache(maxsize=128)
def _compiled_call(model: Any, training: bool) -> Any:
    """``model.stateless_call`` compiled with ``tf.function`` (traced once per input signature).

    The call is a pure function of the trainable and non-trainable values (the dropout seeds
    among them) and the batch, so it compiles like ``model.fit``'s step does. Gradients taken
    by a tape around it flow through the compiled function.
    """
    import tensorflow as tf

    def call(trainable: Any, non_trainable: Any, x: Any) -> Any:
        return model.stateless_call(trainable, non_trainable, x, training=training)

    return tf.function(call, reduce_retracing=True)


def _seed_positions(model: Any) -> tuple[int, ...]:
    return tuple(i for i, v in enumerate(model.non_trainable_variables) if v.name == "seed_generator_state")


def _check_device(device: Any) -> None:
    if device not in (None, "cpu", "auto"):
        raise DeviceError(
            f"the tensorflow backend places tensors itself; device={device!r} is not supported, use 'cpu' or 'auto'"
        )


def init(
    spec: AbstractModel,
    input_shape: tuple[int, ...],
    output_shape: tuple[int, ...],
    *,
    key: Key,
    device: Any = "cpu",
) -> KerasParams:
    """Fresh variable values drawn from ``key`` (same key ⇒ identical arrays).

    >>> import mml
    >>> from mml.models import SequentialMLP
    >>> p = init(SequentialMLP(hidden=(4,), backend="tensorflow"), (3,), (1,), key=mml.random.key(0))
    >>> [tuple(v.shape) for v in p.trainable]
    [(3, 4), (4,), (4, 1), (1,)]
    """
    import tensorflow as tf

    _check_device(device)
    input_shape = tuple(int(v) for v in input_shape)
    output_shape = tuple(int(v) for v in output_shape)
    model = keras_model(spec, input_shape, output_shape)
    rng = numpy_rng(fold_in(key, "init"))
    builtin = not isinstance(spec, KerasModel)
    trainable = []
    fan_in = 1
    for v in model.trainable_variables:
        shape = tuple(int(s) for s in v.shape)
        if len(shape) >= 2:
            fan_in = math.prod(shape[:-1])
            if builtin:
                bound = 1.0 / math.sqrt(fan_in)
            else:
                receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
                fan_out = shape[-1] * receptive
                bound = math.sqrt(6.0 / (fan_in + fan_out))
            value = rng.uniform(-bound, bound, size=shape)
        elif builtin:
            bound = 1.0 / math.sqrt(fan_in)
            value = rng.uniform(-bound, bound, size=shape)
        else:
            value = np.asarray(v.numpy())
        trainable.append(tf.constant(np.asarray(value, dtype=v.dtype)))
    seeds = set(_seed_positions(model))
    non_trainable = [
        tf.constant(np.asarray(v.numpy()))
        for i, v in enumerate(model.non_trainable_variables)
        if i not in seeds
    ]
    return KerasParams(tuple(trainable), tuple(non_trainable), input_shape, output_shape)


def _tf(v: Any) -> Any:
    import tensorflow as tf

    return v if isinstance(v, tf.Tensor) else tf.convert_to_tensor(np.asarray(v))


def _call(
    spec: AbstractModel, params: KerasParams, trainable: list[Any], x: Any, training: bool, key: Key | None
) -> tuple[Any, KerasParams]:
    import tensorflow as tf

    model = keras_model(spec, params.input_shape, params.output_shape)
    seeds = _seed_positions(model)
    if training and seeds and key is None:
        raise ConfigError(f"{type(spec).__name__} uses dropout: training=True needs a key")
    nt = [_tf(v) for v in params.non_trainable]
    for j, pos in enumerate(seeds):
        seed = 0 if key is None else int(numpy_rng(fold_in(key, j)).integers(0, 2**31))
        nt.insert(pos, tf.constant([seed, 0], dtype=model.non_trainable_variables[pos].dtype))
    x = _tf(x)
    if x.dtype != tf.float32 and x.dtype.is_floating:
        x = tf.cast(x, tf.float32)
    if tuple(x.shape[1:]) != params.input_shape:
        raise ShapeError(
            f"the Keras node was built for per-sample input shape {params.input_shape}, got a batch of shape "
            f"{tuple(x.shape)}"
        )
    y, new_nt = _compiled_call(model, training)(trainable, nt, x)
    if not training or not params.non_trainable:
        return y, params
    kept = tuple(v for i, v in enumerate(new_nt) if i not in set(seeds))
    return y, attrs.evolve(params, non_trainable=kept)


def apply(
    spec: AbstractModel,
    params: KerasParams,
    x: Any,
    *,
    training: bool = False,
    key: Key | None = None,
    device: Any = None,
) -> tuple[Any, KerasParams]:
    """``(y, new_params)`` via ``stateless_call`` (TF tensors out; new non-trainable values in training).

    >>> import mml, numpy as np
    >>> from mml.models import SequentialCNN
    >>> spec = SequentialCNN(channels=(4,), backend="tensorflow", output_shape=(2,))
    >>> p = init(spec, (16,), (2,), key=mml.random.key(0))
    >>> tuple(apply(spec, p, np.zeros((3, 16), np.float32))[0].shape)
    (3, 2)
    """
    _check_device(device)
    return _call(spec, params, [_tf(v) for v in params.trainable], x, training, key)


def value_and_grad(
    spec: AbstractModel,
    params: KerasParams,
    x: Any,
    loss_fn: Callable[[Any], tuple[Any, Any]],
    *,
    key: Key | None = None,
    training: bool = True,
) -> tuple[tuple[Any, Any], tuple[Any, ...], KerasParams]:
    """``((loss, aux), grads, new_params)`` with ``tf.GradientTape``; ``grads`` follow ``params.trainable``.

    >>> import mml, numpy as np, tensorflow as tf
    >>> from mml.models import SequentialMLP
    >>> spec = SequentialMLP(hidden=(4,), backend="tensorflow", output_shape=(1,))
    >>> p = init(spec, (3,), (1,), key=mml.random.key(0))
    >>> (loss, _), grads, _ = value_and_grad(spec, p, np.ones((4, 3), np.float32), lambda y: (tf.reduce_mean(y**2), None))
    >>> len(grads) == len(p.trainable)
    True
    """
    import tensorflow as tf

    trainable = [_tf(v) for v in params.trainable]
    with tf.GradientTape() as tape:
        for v in trainable:
            tape.watch(v)
        y, new = _call(spec, params, trainable, x, training, key)
        loss, aux = loss_fn(y)
    grads = tape.gradient(loss, trainable, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return (loss, aux), tuple(grads), new


@typing.final
class KerasBackend(AbstractGradientBackend):
    """The Keras 3 (TensorFlow) backend: this module's functions (see :class:`AbstractBackend`)."""

    name: ClassVar[str] = "tensorflow"
    output_shape = staticmethod(output_shape)
    init = staticmethod(init)
    apply = staticmethod(apply)
    value_and_grad = staticmethod(value_and_grad)
