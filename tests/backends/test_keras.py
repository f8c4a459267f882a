"""The Keras (TensorFlow) backend: same meaning as the torch built-ins, keys, purity, round-trips."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402

import mml  # noqa: E402
from mml.backends import KerasParams, apply, init_params, value_and_grad  # noqa: E402
from mml.backends._keras import _build  # noqa: E402
from mml.errors import ConfigError, DeviceError, ShapeError  # noqa: E402
from mml.models import KerasModel, SequentialCNN, SequentialMLP, TemporalCNN  # noqa: E402

K0 = mml.random.key(0)


def _x(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    return mml.random.numpy_rng(mml.random.key(seed)).normal(size=shape).astype(np.float32)


def _torch_to_keras(spec: object, tp: object) -> list[np.ndarray]:
    """Torch built-in params in the Keras variable order and layout."""
    out = []
    for v in tp.params.values():  # type: ignore[attr-defined]
        a = v.numpy()
        if a.ndim == 4:  # conv2d (out, in, kh, kw) -> (kh, kw, in, out)
            a = a.transpose(2, 3, 1, 0)
        elif a.ndim == 3:  # conv (out, in, k) -> (k, in, out)
            a = a.transpose(2, 1, 0)
        elif a.ndim == 2:  # linear (out, in) -> dense (in, out)
            a = a.T
        out.append(a)
    return out


@pytest.mark.parametrize(
    ("make", "input_shape"),
    [
        (lambda b: SequentialMLP(hidden=(8, 5), activation="gelu", output_shape=(2, 2), backend=b), (3, 2)),
        (lambda b: SequentialMLP(hidden=(4,), activation="leaky_relu", output_shape=(1,), backend=b), (3,)),
        (
            lambda b: SequentialCNN(
                channels=(4, 3), kernel_size=4, activation="elu", output_shape=(2,), backend=b
            ),
            (20,),
        ),
        (lambda b: SequentialCNN(channels=(3,), kernel_size=3, flatten_output=False, backend=b), (2, 9)),
        (
            lambda b: TemporalCNN(
                channels=(3, 3, 4), kernel_size=2, activation="silu", output_shape=(2,), backend=b
            ),
            (2, 16),
        ),
        (
            lambda b: SequentialCNN(channels=(3, 2), kernel_size=2, output_shape=(2,), dims=2, backend=b),
            (8, 8),
        ),
        (lambda b: SequentialCNN(channels=(3,), flatten_output=False, dims=2, backend=b), (2, 6, 4)),
    ],
    ids=["mlp", "mlp-leaky", "cnn-even-kernel", "cnn-fmap", "tcn", "cnn2d-even-kernel", "cnn2d-fmap"],
)
def test_keras_builtins_mean_what_torch_builtins_mean(make: object, input_shape: tuple[int, ...]) -> None:
    t_spec, k_spec = make("torch"), make("tensorflow")  # type: ignore[operator]
    out = t_spec.infer_output_shape(input_shape, None)
    tp = init_params(t_spec, input_shape, out, key=K0)
    kp = init_params(k_spec, input_shape, out, key=K0)
    weights = _torch_to_keras(t_spec, tp)
    assert [tuple(w.shape) for w in weights] == [tuple(v.shape) for v in kp.trainable]
    kp = kp.replace_params(tuple(tf.constant(w) for w in weights))
    x = _x((4, *input_shape))
    y_keras = np.asarray(apply(k_spec, kp, x)[0])
    y_torch = apply(t_spec, tp, x)[0].numpy()
    np.testing.assert_allclose(y_keras, y_torch, rtol=1e-4, atol=1e-5)
    # and the stateless call equals calling a Keras model holding the same weights directly
    model = _build(k_spec, input_shape, out)
    for v, w in zip(model.trainable_variables, kp.trainable):
        v.assign(w)
    np.testing.assert_allclose(np.asarray(model(x, training=False)), y_keras, rtol=0, atol=1e-6)


def test_init_keyed_and_roundtrip() -> None:
    spec = SequentialCNN(channels=(4,), output_shape=(2,), backend="tensorflow")
    a, b = init_params(spec, (12,), (2,), key=K0), init_params(spec, (12,), (2,), key=mml.random.key(0))
    c = init_params(spec, (12,), (2,), key=mml.random.key(1))
    assert a == b and a != c
    back = mml.io.roundtrip(a)
    assert isinstance(back, KerasParams) and back == a
    x = _x((3, 12))
    np.testing.assert_array_equal(np.asarray(apply(spec, back, x)[0]), np.asarray(apply(spec, a, x)[0]))


def test_user_model_batchnorm_and_dropout() -> None:
    spec = KerasModel(factory="backend_factories:keras_bn_net", kwargs={"units": 16})
    assert mml.backends.output_shape(spec, (3,)) == (1,)
    p = init_params(spec, (3,), (1,), key=K0)
    assert p == init_params(spec, (3,), (1,), key=K0)
    assert len(p.non_trainable) == 2  # moving mean/var; the dropout seed state is not stored
    before = [np.array(v) for v in p.non_trainable]
    x = _x((8, 3))
    a, new = apply(spec, p, x, training=True, key=mml.random.key(3))
    b, _ = apply(spec, p, x, training=True, key=mml.random.key(3))
    c, _ = apply(spec, p, x, training=True, key=mml.random.key(4))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    assert all(np.array_equal(np.asarray(v), w) for v, w in zip(p.non_trainable, before))
    assert not np.array_equal(np.asarray(new.non_trainable[0]), before[0])
    _, same = apply(spec, p, x)
    assert same is p
    with pytest.raises(ConfigError, match="needs a key"):
        apply(spec, p, x, training=True)


def test_value_and_grad_matches_tape_and_is_pure() -> None:
    spec = SequentialMLP(hidden=(6,), output_shape=(1,), backend="tensorflow")
    p = init_params(spec, (3,), (1,), key=K0)
    before = [np.array(v) for v in p.trainable]
    x, t = _x((10, 3)), _x((10, 1), 2)
    (loss, aux), grads, new = value_and_grad(spec, p, x, lambda y: (tf.reduce_mean((y - t) ** 2), "ok"))
    assert aux == "ok" and new is p
    assert all(np.array_equal(np.asarray(v), w) for v, w in zip(p.trainable, before))
    model = _build(spec, (3,), (1,))
    for v, w in zip(model.trainable_variables, p.trainable):
        v.assign(w)
    with tf.GradientTape() as tape:
        ref = tf.reduce_mean((model(x) - t) ** 2)
    ref_grads = tape.gradient(ref, model.trainable_variables)
    np.testing.assert_allclose(float(loss), float(ref), rtol=1e-6)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-5, atol=1e-7)


def test_errors() -> None:
    spec = SequentialMLP(hidden=(2,), output_shape=(1,), backend="tensorflow")
    p = init_params(spec, (3,), (1,), key=K0)
    with pytest.raises(ShapeError, match=r"input shape \(3,\)"):
        apply(spec, p, _x((2, 4)))
    with pytest.raises(DeviceError, match="not supported"):
        init_params(spec, (3,), (1,), key=K0, device="cuda")
    with pytest.raises(mml.BackendError, match="not fit"):
        mml.backends.fit(spec, p, _x((2, 3)), key=K0)
