"""The Keras (TensorFlow) backend pinned to values: initial weights replayed from the key's numpy
generator (PyTorch's default for built-ins, Glorot for user kernels), dropout, BatchNorm state,
input casting, and every message in full.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from fresh_memos import _fresh_memos  # noqa: F401, E402  (autouse: each test builds with the code under test)

import mml  # noqa: E402
from mml.backends import KerasParams, apply, get_backend, init_params, value_and_grad  # noqa: E402
from mml.models import KerasModel, SequentialCNN, SequentialMLP, TemporalCNN  # noqa: E402
from mml.random import fold_in, numpy_rng  # noqa: E402

K0 = mml.random.key(0)


def _x(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    return numpy_rng(mml.random.key(seed)).normal(size=shape).astype(np.float32)


def test_builtin_init_is_pytorch_default_drawn_from_the_key() -> None:
    spec = SequentialMLP(hidden=(5,), output_shape=(2,), backend="tensorflow")
    p = init_params(spec, (3,), (2,), key=K0)
    rng = numpy_rng(fold_in(K0, "init"))
    want = [
        rng.uniform(-1 / math.sqrt(3), 1 / math.sqrt(3), size=(3, 5)),
        rng.uniform(-1 / math.sqrt(3), 1 / math.sqrt(3), size=(5,)),  # a bias: its kernel's fan-in
        rng.uniform(-1 / math.sqrt(5), 1 / math.sqrt(5), size=(5, 2)),
        rng.uniform(-1 / math.sqrt(5), 1 / math.sqrt(5), size=(2,)),
    ]
    assert len(p.trainable) == 4 and p.non_trainable == ()
    for got, w in zip(p.trainable, want):
        assert isinstance(got, tf.Tensor) and got.dtype == tf.float32
        np.testing.assert_array_equal(got.numpy(), w.astype(np.float32))
    assert (p.input_shape, p.output_shape) == ((3,), (2,))
    cnn = SequentialCNN(channels=(2,), kernel_size=3, output_shape=(1,), backend="tensorflow")
    q = init_params(cnn, (2, 8), (1,), key=K0)
    rng = numpy_rng(fold_in(K0, "init"))
    b_conv, b_head = 1 / math.sqrt(3 * 2), 1 / math.sqrt(2 * 4)
    want = [
        rng.uniform(-b_conv, b_conv, size=(3, 2, 2)),
        rng.uniform(-b_conv, b_conv, size=(2,)),
        rng.uniform(-b_head, b_head, size=(8, 1)),
        rng.uniform(-b_head, b_head, size=(1,)),
    ]
    for got, w in zip(q.trainable, want):
        np.testing.assert_array_equal(got.numpy(), w.astype(np.float32))


def test_user_model_init_glorot_kernels_built_vectors_and_batchnorm_state() -> None:
    spec = KerasModel(factory="backend_factories:keras_bn_net", kwargs={"units": 4})
    p = init_params(spec, (3,), (1,), key=K0)
    rng = numpy_rng(fold_in(K0, "init"))
    k1 = rng.uniform(-math.sqrt(6 / 7), math.sqrt(6 / 7), size=(3, 4))
    k2 = rng.uniform(-math.sqrt(6 / 5), math.sqrt(6 / 5), size=(4, 1))
    want = [k1, np.zeros(4), np.ones(4), np.zeros(4), k2, np.zeros(1)]  # dense, BN gamma/beta, dense
    assert [tuple(v.shape) for v in p.trainable] == [w.shape for w in want]
    for got, w in zip(p.trainable, want):
        np.testing.assert_array_equal(got.numpy(), w.astype(np.float32))
    # moving mean 0 and variance 1; the dropout layer's seed state is not kept
    assert [v.numpy().tolist() for v in p.non_trainable] == [[0.0] * 4, [1.0] * 4]
    # one BatchNorm step in training: momentum 0.99 towards the batch statistics
    x = _x((6, 3))
    _, new = apply(spec, p, x, training=True, key=mml.random.key(2))
    h = x @ k1.astype(np.float32)
    np.testing.assert_allclose(new.non_trainable[0].numpy(), 0.01 * h.mean(axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(new.non_trainable[1].numpy(), 0.99 + 0.01 * h.var(axis=0), rtol=1e-4)
    assert len(new.non_trainable) == 2 and new.trainable is p.trainable


def test_a_keras_layer_factory_is_refused_by_name() -> None:
    spec = KerasModel(factory="keras.layers:Conv1D", kwargs={"filters": 3, "kernel_size": 2})
    # a layer is not a keras.Model: refused with the factory's name
    with pytest.raises(mml.BackendError) as err:
        init_params(spec, (5, 2), (4, 3), key=K0)
    assert str(err.value) == "KerasModel factory 'keras.layers:Conv1D' returned a Conv1D, not a keras.Model"


def test_dropout_in_training_only_and_keyed() -> None:
    spec = SequentialMLP(hidden=(200,), dropout=0.5, output_shape=(1,), backend="tensorflow")
    p = init_params(spec, (2,), (1,), key=K0)
    x = _x((4, 2))
    ev, same = apply(spec, p, x)
    assert same is p
    ev2, _ = apply(spec, p, x, training=False, key=mml.random.key(3))
    np.testing.assert_array_equal(ev.numpy(), ev2.numpy())
    a, pa = apply(spec, p, x, training=True, key=mml.random.key(3))
    b, _ = apply(spec, p, x, training=True, key=mml.random.key(3))
    c, _ = apply(spec, p, x, training=True, key=mml.random.key(4))
    assert pa is p  # no non-trainable state to evolve
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy()) and not np.allclose(a.numpy(), ev.numpy())
    with pytest.raises(mml.ConfigError) as err:
        apply(spec, p, x, training=True)
    assert str(err.value) == "SequentialMLP uses dropout: training=True needs a key"
    # without dropout layers, training needs no key and equals eval
    plain = SequentialMLP(hidden=(3,), output_shape=(1,), backend="tensorflow")
    q = init_params(plain, (2,), (1,), key=K0)
    np.testing.assert_array_equal(apply(plain, q, x, training=True)[0].numpy(), apply(plain, q, x)[0].numpy())
    # the mean over many keys of the dropped-out output is the eval output (inverted dropout)
    lin = SequentialMLP(hidden=(64,), activation="relu", dropout=0.5, output_shape=(1,), backend="tensorflow")
    r = init_params(lin, (2,), (1,), key=K0)
    one = np.ones((1, 2), np.float32)
    draws = [
        float(apply(lin, r, one, training=True, key=mml.random.key(i))[0].numpy()[0, 0]) for i in range(300)
    ]
    want = float(apply(lin, r, one)[0].numpy()[0, 0])
    assert np.mean(draws) == pytest.approx(want, abs=4 * np.std(draws) / math.sqrt(300))


@pytest.mark.parametrize(
    "spec",
    [
        SequentialCNN(channels=(3,), dropout=0.5, output_shape=(1,), backend="tensorflow"),
        SequentialCNN(channels=(3,), dropout=0.5, output_shape=(1,), backend="tensorflow", dims=2),
        TemporalCNN(channels=(3,), dropout=0.5, output_shape=(1,), backend="tensorflow"),
    ],
    ids=["cnn", "cnn2d", "tcn"],
)
def test_conv_dropout_is_keyed(spec: object) -> None:
    shape = (4, 4) if getattr(spec, "dims", 1) == 2 else (8,)
    p = init_params(spec, shape, (1,), key=K0)  # type: ignore[arg-type]
    x = _x((5, *shape))
    a = apply(spec, p, x, training=True, key=mml.random.key(1))[0].numpy()  # type: ignore[arg-type]
    b = apply(spec, p, x, training=True, key=mml.random.key(1))[0].numpy()  # type: ignore[arg-type]
    c = apply(spec, p, x, training=True, key=mml.random.key(2))[0].numpy()  # type: ignore[arg-type]
    ev = apply(spec, p, x)[0].numpy()  # type: ignore[arg-type]
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, ev)


def test_inputs_are_cast_and_checked() -> None:
    spec = SequentialMLP(hidden=(3,), output_shape=(2,), backend="tensorflow")
    p = init_params(spec, (4,), (2,), key=K0)
    x = _x((3, 4))
    want = apply(spec, p, x)[0].numpy()
    for other in (x.astype(np.float64), tf.constant(x.astype(np.float64)), x.tolist()):
        got = apply(spec, p, other)[0]
        assert got.dtype == tf.float32
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    # numpy parameter leaves (a loaded state) run like tensors
    as_np = KerasParams(tuple(v.numpy() for v in p.trainable), (), (4,), (2,))
    np.testing.assert_array_equal(apply(spec, as_np, x)[0].numpy(), want)
    with pytest.raises(mml.ShapeError) as err:
        apply(spec, p, np.zeros((2, 5), np.float32))
    assert str(err.value) == (
        "the Keras node was built for per-sample input shape (4,), got a batch of shape (2, 5)"
    )


def test_value_and_grad_by_hand() -> None:
    spec = SequentialMLP(hidden=(), output_shape=(1,), backend="tensorflow")
    p = init_params(spec, (2,), (1,), key=K0)
    p = p.replace_params((tf.constant([[1.0], [-2.0]]), tf.constant([0.5])))
    x = np.array([[1.0, 1.0], [2.0, 0.0]], np.float32)  # y = -0.5, 2.5
    (loss, aux), grads, new = value_and_grad(spec, p, x, lambda y: (tf.reduce_sum(y**2), 7))
    assert float(loss) == pytest.approx(6.5) and aux == 7 and new is p
    assert grads[0].numpy().ravel().tolist() == [-1.0 + 10.0, -1.0]
    assert grads[1].numpy().tolist() == [4.0]
    _, g0, _ = value_and_grad(spec, p, x, lambda y: (tf.constant(1.0), None))
    assert [g.numpy().tolist() for g in g0] == [[[0.0], [0.0]], [0.0]]  # unconnected: zeros


def test_messages_in_full() -> None:
    spec = SequentialMLP(hidden=(2,), output_shape=(1,), backend="tensorflow")
    with pytest.raises(mml.DeviceError) as err:
        init_params(spec, (3,), (1,), key=K0, device="cuda:0")
    assert str(err.value) == (
        "the tensorflow backend places tensors itself; device='cuda:0' is not supported, use 'cpu' or 'auto'"
    )
    for ok in ("cpu", "auto", None):
        init_params(spec, (3,), (1,), key=K0, device=ok)
    p = init_params(spec, (3,), (1,), key=K0)
    with pytest.raises(mml.DeviceError):
        apply(spec, p, _x((1, 3)), device="cuda")
    tf_backend = get_backend("tensorflow")
    for call in (tf_backend.fit, tf_backend.partial_fit):
        with pytest.raises(mml.BackendError) as err:
            call(spec, p, _x((2, 3)), key=K0)
        assert str(err.value) == "SequentialMLP is a Keras model: train it with a TrainPhase, not fit()"
    with pytest.raises(mml.BackendError) as err:
        tf_backend.init(SequentialMLP(hidden=(2,)), (3,), (1,), key=K0)
    assert str(err.value) == "the tensorflow backend cannot run a SequentialMLP (backend 'torch')"
    with pytest.raises(mml.BackendError) as err:
        init_params(KerasModel(factory="backend_factories:bn_net"), (3,), (1,), key=K0)
    assert str(err.value) == (
        "KerasModel factory 'backend_factories:bn_net' returned a Sequential, not a keras.Model"
    )


def test_user_conv_kernels_are_glorot_over_the_receptive_field() -> None:
    spec = KerasModel(factory="keras_value_factories:conv_net")
    p = init_params(spec, (5, 2), (1,), key=K0)  # length 5, 2 channels: kernel (2, 2, 3), head (12, 1)
    rng = numpy_rng(fold_in(K0, "init"))
    conv = rng.uniform(-math.sqrt(6 / (4 + 6)), math.sqrt(6 / (4 + 6)), size=(2, 2, 3))
    head = rng.uniform(-math.sqrt(6 / 13), math.sqrt(6 / 13), size=(12, 1))
    want = [conv, np.zeros(3), head, np.zeros(1)]
    assert [tuple(v.shape) for v in p.trainable] == [w.shape for w in want]
    for got, w in zip(p.trainable, want):
        np.testing.assert_array_equal(got.numpy(), w.astype(np.float32))


def test_dropout_seeds_are_drawn_from_the_key_per_dropout_layer() -> None:
    from mml.backends._keras import keras_model

    spec = SequentialMLP(hidden=(40, 40), dropout=0.5, output_shape=(1,), backend="tensorflow")
    p = init_params(spec, (2,), (1,), key=K0)
    assert p.non_trainable == ()  # two dropout layers: two seed states, neither stored
    x = _x((4, 2))
    key = mml.random.key(9)
    got = apply(spec, p, x, training=True, key=key)[0].numpy()
    model = keras_model(spec, (2,), (1,))
    seeds = [v for v in model.non_trainable_variables]
    assert [v.name for v in seeds] == ["seed_generator_state"] * 2
    nt = [
        tf.constant([int(numpy_rng(fold_in(key, j)).integers(0, 2**31)), 0], dtype=v.dtype)
        for j, v in enumerate(seeds)
    ]
    want, _ = model.stateless_call(list(p.trainable), nt, tf.constant(x), training=True)
    np.testing.assert_array_equal(got, want.numpy())
    # the eval call feeds seed 0 and ignores it
    ev = apply(spec, p, x)[0].numpy()
    ref, _ = model.stateless_call(
        list(p.trainable), [tf.constant([0, 0], dtype=v.dtype) for v in seeds], tf.constant(x)
    )
    np.testing.assert_array_equal(ev, ref.numpy())


def test_backend_value_defaults() -> None:
    spec = SequentialMLP(hidden=(32,), dropout=0.5, output_shape=(1,), backend="tensorflow")
    p = init_params(spec, (2,), (1,), key=K0)
    be = get_backend("tensorflow")
    x = _x((3, 2))
    y, same = be.apply(spec, p, x)  # eval by default: no key needed
    assert same is p
    np.testing.assert_array_equal(y.numpy(), apply(spec, p, x)[0].numpy())
    k = mml.random.key(5)
    train = apply(spec, p, x, training=True, key=k)[0].numpy()
    (loss, _), grads, _ = be.value_and_grad(spec, p, x, lambda y: (tf.reduce_sum(y), None), key=k)
    assert float(loss) == pytest.approx(float(train.sum()), rel=1e-6)  # training by default
    (loss2, _), _, _ = value_and_grad(spec, p, x, lambda y: (tf.reduce_sum(y), None), key=k)
    assert float(loss2) == pytest.approx(float(train.sum()), rel=1e-6)
    assert len(grads) == len(p.trainable)
