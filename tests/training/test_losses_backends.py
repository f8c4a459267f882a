"""Built-in losses: the TensorFlow and torch implementations agree; weights and masks are honoured."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mml.training import LOSSES, Loss, compile_loss

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")


def make_args(name: str, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Inputs a loss takes, as float32/int numpy arrays."""
    if name in ("mse", "mae", "huber", "bce_with_logits"):
        o = rng.normal(size=(n, 2)).astype(np.float32) * 2
        t = rng.normal(size=(n, 2)).astype(np.float32)
        if name == "bce_with_logits":
            t = (t > 0).astype(np.float32)
        return [o, t]
    if name == "bce":
        o = rng.uniform(0.02, 0.98, size=(n, 1)).astype(np.float32)
        return [o, (rng.random((n, 1)) > 0.5).astype(np.float32)]
    if name == "cross_entropy":
        return [rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 4, size=n).astype(np.int64)]
    if name == "triplet_margin":
        return [rng.normal(size=(n, 3)).astype(np.float32) for _ in range(3)]
    if name == "contrastive":
        a, b = (rng.normal(size=(n, 3)).astype(np.float32) * 0.5 for _ in range(2))
        return [a, b, (rng.random(n) > 0.5).astype(np.float32)]
    raise AssertionError(name)


KWARGS = {
    "huber": {"delta": 0.7},
    "cross_entropy": {"label_smoothing": 0.1},
    "triplet_margin": {"margin": 0.5},
    "contrastive": {"margin": 1.5},
}


def both(loss: Loss, args, w=None, m=None) -> tuple[float, float]:
    ft, ff = compile_loss(loss, "torch"), compile_loss(loss, "tensorflow")
    vt = ft(
        [torch.as_tensor(a) for a in args],
        None if w is None else torch.as_tensor(w),
        None if m is None else torch.as_tensor(m),
    )
    vf = ff(
        [tf.convert_to_tensor(a) for a in args],
        None if w is None else tf.convert_to_tensor(w),
        None if m is None else tf.convert_to_tensor(m),
    )
    return float(vt), float(vf)


@pytest.mark.parametrize("name", LOSSES)
@settings(max_examples=10)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 9), weighted=st.booleans())
def test_tensorflow_and_torch_builtins_agree(name, seed, n, weighted):
    rng = np.random.default_rng(seed)
    args = make_args(name, rng, n)
    w = m = None
    if weighted:
        w = rng.uniform(0.1, 2.0, size=n).astype(np.float32)
        m = rng.random(n) > 0.3
        m[0] = True
    vt, vf = both(Loss(name, KWARGS.get(name, {})), args, w, m)
    assert np.isfinite(vt)
    assert vf == pytest.approx(vt, rel=2e-5, abs=1e-6)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_zero_weight_or_masked_sample_does_not_contribute(name, backend):
    rng = np.random.default_rng(0)
    n = 6
    args = make_args(name, rng, n)
    w = rng.uniform(0.5, 1.5, size=n).astype(np.float32)
    m = np.ones(n, bool)
    w[1] = 0.0
    m[4] = False
    conv = torch.as_tensor if backend == "torch" else tf.convert_to_tensor
    fn = compile_loss(Loss(name, KWARGS.get(name, {})), backend)

    def value(args):
        return float(fn([conv(a) for a in args], conv(w), conv(m)))

    base = value(args)
    changed = [a.copy() for a in args]
    for a in changed[:2]:  # outputs (and the second output or target) of samples 1 and 4
        a[[1, 4]] = a[[1, 4]][::-1] * 0.3 + (0.1 if a.dtype.kind == "f" else 0)
    if name == "bce":
        changed[0] = np.clip(changed[0], 0.01, 0.99)
    assert value(changed) == pytest.approx(base, rel=1e-6)
    # ...and the result is the weighted mean over the other samples
    keep = [0, 2, 3, 5]
    sub = [a[keep] for a in args]
    fw = w[keep]
    per = [float(fn([conv(a[i : i + 1]) for a in sub], None, None)) for i in range(len(keep))]
    assert base == pytest.approx(float(np.sum(fw * per) / np.sum(fw)), rel=1e-5)
    # and changing a kept sample does change it
    moved = [a.copy() for a in args]
    moved[0][0] = moved[0][0] * 0.5 + (0.2 if moved[0].dtype.kind == "f" else 0)
    assert value(moved) != pytest.approx(base, rel=1e-6)


def test_contrastive_with_a_fixed_label_takes_two_inputs():
    rng = np.random.default_rng(1)
    a, b, _ = make_args("contrastive", rng, 5)
    for similar, label in ((True, 1.0), (False, 0.0)):
        fixed = Loss("contrastive", {"similar": similar, "margin": 1.5})
        ref = Loss("contrastive", {"margin": 1.5})
        for backend in ("torch", "tensorflow"):
            conv = torch.as_tensor if backend == "torch" else tf.convert_to_tensor
            got = float(compile_loss(fixed, backend)([conv(a), conv(b)], None, None))
            want = float(
                compile_loss(ref, backend)(
                    [conv(a), conv(b), conv(np.full(5, label, np.float32))], None, None
                )
            )
            assert got == pytest.approx(want, rel=1e-6)


def test_keras_loss_class_gets_y_true_first():
    rng = np.random.default_rng(2)
    o = rng.uniform(0.05, 0.95, size=(8, 1)).astype(np.float32)
    t = (rng.random((8, 1)) > 0.5).astype(np.float32)
    keras_bce = compile_loss(Loss("keras.losses:BinaryCrossentropy"), "tensorflow")
    ours = compile_loss(Loss("bce"), "tensorflow")
    got = float(keras_bce([tf.constant(o), tf.constant(t)], None, None))
    assert got == pytest.approx(float(ours([tf.constant(o), tf.constant(t)], None, None)), rel=1e-4)


def test_unknown_backend_is_a_config_error():
    import mml

    with pytest.raises(mml.ConfigError, match="backend"):
        compile_loss(Loss("mse"), "jax")
