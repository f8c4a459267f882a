"""The Keras forward pass runs as a ``tf.function`` (issue 16.1): same numbers as eager, few traces."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import mml  # noqa: E402
from mml.backends import _keras as K  # noqa: E402
from mml.models import SequentialCNN, SequentialMLP  # noqa: E402

CASES = [
    (SequentialMLP(hidden=(16, 16), dropout=0.25, backend="tensorflow"), (8,), (1,)),
    (SequentialCNN(channels=(4, 8), backend="tensorflow", output_shape=(2,)), (32,), (2,)),
]


def values(spec, in_shape, out_shape, training):  # type: ignore[no-untyped-def]
    p = K.init(spec, in_shape, out_shape, key=mml.random.key(0))
    model = K.keras_model(spec, in_shape, out_shape)
    trainable = [tf.constant(v) for v in p.trainable]
    nt = [tf.constant(v) for v in p.non_trainable]
    for pos in K._seed_positions(model):
        nt.insert(pos, tf.constant([7, 0], dtype=model.non_trainable_variables[pos].dtype))
    x = tf.constant(np.random.default_rng(1).normal(size=(32, *in_shape)).astype(np.float32))
    return model, trainable, nt, x


@pytest.mark.parametrize("spec, in_shape, out_shape", CASES)
@pytest.mark.parametrize("training", [False, True])
def test_compiled_call_equals_eager_bit_for_bit(spec, in_shape, out_shape, training) -> None:  # type: ignore[no-untyped-def]
    model, trainable, nt, x = values(spec, in_shape, out_shape, training)
    results = []
    for call in (
        lambda: model.stateless_call(trainable, nt, x, training=training),
        lambda: K._compiled_call(model, training)(trainable, nt, x),
    ):
        with tf.GradientTape() as tape:
            for v in trainable:
                tape.watch(v)
            y, _ = call()
            loss = tf.reduce_mean(y**2)
        results.append((y.numpy(), [g.numpy() for g in tape.gradient(loss, trainable)]))
    (ye, ge), (yc, gc) = results
    np.testing.assert_array_equal(ye, yc)
    for a, b in zip(ge, gc):
        np.testing.assert_array_equal(a, b)


def test_traced_once_per_batch_shape_family() -> None:
    spec = SequentialMLP(hidden=(4,), backend="tensorflow")
    p = K.init(spec, (3,), (1,), key=mml.random.key(0))
    fn = K._compiled_call(K.keras_model(spec, (3,), (1,)), False)
    for n in (32, 32, 8, 32, 5, 17, 32):
        y, _ = K.apply(spec, p, np.ones((n, 3), np.float32))
        assert tuple(y.shape) == (n, 1)
    assert fn.experimental_get_tracing_count() <= 2  # the full batch, then a batch-size-free trace
