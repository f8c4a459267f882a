"""The built-in losses pinned to values: hand-computed numbers and ``torch.nn.functional``.

Every loss of :func:`mml.backends.loss_function` on both frameworks, with and without
per-sample weights and a mask, each keyword (``delta``, ``label_smoothing``, ``margin``, ``p``,
``similar``) at its default and set, the reduction's edges (weights summing under 1, every
sample masked, per-element losses) and the messages in full.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")

import torch.nn.functional as F  # noqa: E402
from fresh_memos import _fresh_memos  # noqa: F401, E402  (autouse: each test builds with the code under test)

import mml  # noqa: E402
from mml.backends import LOSS_FRAMEWORKS, loss_function, loss_reduction  # noqa: E402

FRAMEWORKS = ("torch", "tensorflow")


def _conv(framework: str, a: object) -> object:
    if a is None:
        return None
    arr = np.asarray(a)
    if framework == "torch":
        return torch.as_tensor(arr)
    return tf.convert_to_tensor(arr)


def value(framework: str, name: str, args: list, w=None, m=None, kw=None) -> float:  # type: ignore[no-untyped-def]
    fn = loss_function(framework, name, kw)
    return float(fn([_conv(framework, a) for a in args], _conv(framework, w), _conv(framework, m)))


O3 = np.array([[1.0], [2.0], [4.0]], np.float32)
T3 = np.array([[0.0], [0.0], [1.0]], np.float32)  # differences 1, 2, 3


def test_the_frameworks_and_the_message_for_another() -> None:
    assert LOSS_FRAMEWORKS == ("torch", "tensorflow")
    for call in (lambda: loss_function("jax", "mse"), lambda: loss_reduction("numpy")):
        with pytest.raises(mml.ConfigError) as err:
            call()
        assert isinstance(err.value, mml.MMLError)
    with pytest.raises(mml.ConfigError) as err:
        loss_reduction("jax")
    assert str(err.value) == (
        "losses are implemented for torch, tensorflow, not 'jax'; "
        "compute the loss on a torch or Keras (tensorflow) node"
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_reduction_of_each_framework(framework: str) -> None:
    red = loss_reduction(framework)
    c = lambda a: _conv(framework, a)  # noqa: E731
    per = np.array([1.0, 3.0, 8.0], np.float32)
    assert float(red(c(per), None, None)) == pytest.approx(4.0)
    # weights only: sum(w l) / sum(w)
    assert float(red(c(per), c(np.array([1.0, 2.0, 0.0], np.float32)), None)) == pytest.approx(7 / 3)
    # mask only: the mean over the kept samples
    assert float(red(c(per), None, c(np.array([True, False, True])))) == pytest.approx(4.5)
    # both: a masked sample weighs 0 whatever its weight
    both = red(c(per), c(np.array([1.0, 2.0, 5.0], np.float32)), c(np.array([True, True, False])))
    assert float(both) == pytest.approx(7 / 3)
    # weights summing under 1 are not clamped up to 1
    small = red(c(per), c(np.array([0.25, 0.25, 0.0], np.float32)), None)
    assert float(small) == pytest.approx(2.0)
    # every sample masked: 0, not nan
    assert float(red(c(per), None, c(np.zeros(3, bool)))) == 0.0
    # per-element losses (n, k): each sample's mean first, then the weighted mean over samples
    per2 = np.array([[1.0, 3.0], [5.0, 7.0], [0.0, 4.0]], np.float32)  # sample means 2, 6, 2
    w = np.array([1.0, 3.0, 0.0], np.float32)
    assert float(red(c(per2), c(w), None)) == pytest.approx((2 + 18) / 4)
    per3 = np.arange(12, dtype=np.float32).reshape(2, 3, 2)  # sample means 2.5, 8.5
    assert float(red(c(per3), c(np.array([3.0, 1.0], np.float32)), None)) == pytest.approx(4.0)
    # weights given as (n, 1) are per sample
    assert float(red(c(per), c(np.array([[1.0], [2.0], [0.0]], np.float32)), None)) == pytest.approx(7 / 3)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_mse_and_mae_by_hand(framework: str) -> None:
    assert value(framework, "mse", [O3, T3]) == pytest.approx(14 / 3)
    assert value(framework, "mae", [O3, T3]) == pytest.approx(2.0)
    # a (n,) target against (n, 1) outputs is per sample (no broadcasting to (n, n))
    assert value(framework, "mse", [O3, T3.ravel()]) == pytest.approx(14 / 3)
    assert value(framework, "mae", [O3, T3.ravel()]) == pytest.approx(2.0)
    w = np.array([1.0, 2.0, 0.0], np.float32)
    assert value(framework, "mse", [O3, T3], w) == pytest.approx(3.0)
    assert value(framework, "mae", [O3, T3], w) == pytest.approx(5 / 3)
    mask = np.array([True, False, True])
    assert value(framework, "mse", [O3, T3], None, mask) == pytest.approx(5.0)
    assert value(framework, "mae", [O3, T3], None, mask) == pytest.approx(2.0)
    assert value(framework, "mse", [O3, T3.ravel()], w) == pytest.approx(3.0)
    # outputs (n, 2): element-wise, then per sample
    o = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    t = np.zeros((2, 2), np.float32)
    assert value(framework, "mse", [o, t]) == pytest.approx(5 / 4)
    assert value(framework, "mse", [o, t], np.array([1.0, 3.0], np.float32)) == pytest.approx(
        (0.5 + 3 * 2.0) / 4
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_huber_by_hand_and_against_torch(framework: str) -> None:
    # delta 1 (the default): 0.5, 1.5, 2.5
    assert value(framework, "huber", [O3, T3]) == pytest.approx(1.5)
    assert value(framework, "huber", [O3, T3], kw={}) == pytest.approx(1.5)
    # delta 0.5: 0.375, 0.875, 1.375
    assert value(framework, "huber", [O3, T3], kw={"delta": 0.5}) == pytest.approx(0.875)
    # delta 2.5: 0.5, 2, 2.5 * (3 - 1.25)
    assert value(framework, "huber", [O3, T3], kw={"delta": 2.5}) == pytest.approx((0.5 + 2 + 4.375) / 3)
    w = np.array([0.0, 1.0, 3.0], np.float32)
    assert value(framework, "huber", [O3, T3.ravel()], w, kw={"delta": 0.5}) == pytest.approx(
        (0.875 + 3 * 1.375) / 4
    )
    rng = np.random.default_rng(3)
    o = rng.normal(size=(7, 3)).astype(np.float32) * 2
    t = rng.normal(size=(7, 3)).astype(np.float32)
    ref = F.huber_loss(torch.as_tensor(o), torch.as_tensor(t), delta=0.7)
    assert value(framework, "huber", [o, t], kw={"delta": 0.7}) == pytest.approx(float(ref), rel=1e-5)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_bce_by_hand_with_the_log_clamp(framework: str) -> None:
    o = np.array([[0.5], [0.25]], np.float32)
    t = np.array([[1.0], [0.0]], np.float32)
    want = (math.log(2) - math.log(0.75)) / 2
    assert value(framework, "bce", [o, t]) == pytest.approx(want, rel=1e-6)
    # integer targets and (n,) targets are cast and reshaped to the outputs
    assert value(framework, "bce", [o, np.array([1, 0], np.int64)]) == pytest.approx(want, rel=1e-6)
    assert value(framework, "bce", [o, t], np.array([3.0, 1.0], np.float32)) == pytest.approx(
        (3 * math.log(2) - math.log(0.75)) / 4, rel=1e-6
    )
    # a certain, wrong prediction costs 100 (each log clamped at -100, as F.binary_cross_entropy)
    sure = np.array([[0.0], [1.0], [0.0], [1.0]], np.float32)
    labels = np.array([[1.0], [0.0], [0.0], [1.0]], np.float32)
    assert value(framework, "bce", [sure, labels]) == pytest.approx(50.0)
    ref = F.binary_cross_entropy(torch.as_tensor(sure), torch.as_tensor(labels))
    assert float(ref) == pytest.approx(50.0)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_bce_with_logits_against_torch(framework: str) -> None:
    o = np.array([[0.0], [2.0], [-1.0]], np.float32)
    t = np.array([1, 0, 1], np.int64)
    want = (math.log(2) + math.log1p(math.exp(2)) + math.log1p(math.exp(1))) / 3
    assert value(framework, "bce_with_logits", [o, t]) == pytest.approx(want, rel=1e-6)
    w = np.array([1.0, 0.0, 1.0], np.float32)
    assert value(framework, "bce_with_logits", [o, t], w) == pytest.approx(
        (math.log(2) + math.log1p(math.exp(1))) / 2, rel=1e-6
    )
    mask = np.array([True, False, True])
    assert value(framework, "bce_with_logits", [o, t], None, mask) == pytest.approx(
        (math.log(2) + math.log1p(math.exp(1))) / 2, rel=1e-6
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_cross_entropy_against_torch(framework: str) -> None:
    logits = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.5], [0.3, -1.0, 1.5], [0.0, 0.0, 0.0]], np.float32)
    ids = np.array([0, 1, 0, 2], np.int64)
    lt, it = torch.as_tensor(logits), torch.as_tensor(ids)
    plain = float(F.cross_entropy(lt, it))
    assert value(framework, "cross_entropy", [logits, ids]) == pytest.approx(plain, rel=1e-6)
    # class ids as a float column (n, 1) are ids, not probabilities
    assert value(
        framework, "cross_entropy", [logits, ids.reshape(-1, 1).astype(np.float32)]
    ) == pytest.approx(plain, rel=1e-6)
    smooth = float(F.cross_entropy(lt, it, label_smoothing=0.2))
    assert smooth != pytest.approx(plain, rel=1e-3)
    got = value(framework, "cross_entropy", [logits, ids], kw={"label_smoothing": 0.2})
    assert got == pytest.approx(smooth, rel=1e-6)
    # probability targets of the outputs' shape
    probs = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.2, 0.2, 0.6], [1.0, 0.0, 0.0]], np.float32)
    soft = float(F.cross_entropy(lt, torch.as_tensor(probs)))
    assert value(framework, "cross_entropy", [logits, probs]) == pytest.approx(soft, rel=1e-6)
    w = np.array([1.0, 2.0, 0.0, 1.0], np.float32)
    per = F.cross_entropy(lt, it, reduction="none").numpy()
    assert value(framework, "cross_entropy", [logits, ids], w) == pytest.approx(
        float((per * w).sum() / w.sum()), rel=1e-6
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_triplet_margin_by_hand_and_against_torch(framework: str) -> None:
    a = np.array([[0.0, 0.0], [0.0, 0.0]], np.float32)
    pos = np.array([[3.0, 4.0], [0.0, 0.5]], np.float32)
    neg = np.array([[0.0, 1.0], [6.0, 8.0]], np.float32)
    # margin 1 (default): max(5 - 1 + 1, 0) = 5 and max(0.5 - 10 + 1, 0) = 0
    assert value(framework, "triplet_margin", [a, pos, neg]) == pytest.approx(2.5, rel=1e-5)
    assert value(framework, "triplet_margin", [a, pos, neg], kw={"margin": 10.0}) == pytest.approx(
        (14 + 0.5) / 2, rel=1e-5
    )
    rng = np.random.default_rng(4)
    x = [rng.normal(size=(6, 2, 2)).astype(np.float32) for _ in range(3)]
    flat = [torch.as_tensor(v.reshape(6, -1)) for v in x]
    for kw in ({}, {"margin": 0.3}, {"p": 1.0}, {"p": 3.0, "margin": 2.0}):
        ref = F.triplet_margin_loss(*flat, margin=kw.get("margin", 1.0), p=kw.get("p", 2.0))
        assert value(framework, "triplet_margin", x, kw=kw) == pytest.approx(float(ref), rel=1e-5), kw
    # the pairwise distance's eps: an anchor equal to its positive is 1e-6 * sqrt(d) away
    same = [x[0], x[0], x[0] + 0.25]
    ref = F.triplet_margin_loss(*(torch.as_tensor(v.reshape(6, -1)) for v in same), margin=0.6)
    assert float(ref) < 0.6
    assert value(framework, "triplet_margin", same, kw={"margin": 0.6}) == pytest.approx(float(ref), rel=1e-5)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_contrastive_by_hand(framework: str) -> None:
    a = np.zeros((2, 2), np.float32)
    b = np.array([[3.0, 4.0], [0.6, 0.8]], np.float32)  # distances 5 and 1
    y = np.array([1.0, 0.0], np.float32)
    # similar: d^2; dissimilar: max(margin - d, 0)^2
    assert value(framework, "contrastive", [a, b, y], kw={"margin": 1.5}) == pytest.approx(12.625, rel=1e-6)
    assert value(framework, "contrastive", [a, b, y]) == pytest.approx(12.5, rel=1e-6)
    assert value(framework, "contrastive", [a, b, 1 - y], kw={"margin": 6.0}) == pytest.approx(1.0, rel=1e-6)
    assert value(framework, "contrastive", [a, b], kw={"similar": True}) == pytest.approx(13.0, rel=1e-6)
    assert value(framework, "contrastive", [a, b], kw={"similar": False, "margin": 1.5}) == pytest.approx(
        0.125, rel=1e-6
    )
    assert value(framework, "contrastive", [a, b, y], np.array([1.0, 3.0], np.float32)) == pytest.approx(
        25 / 4, rel=1e-6
    )
    # a pair at distance 0 that should be apart costs margin^2; torch takes the distance as
    # sqrt(max(d^2, 1e-12)) (a finite gradient at 0), so there it is (margin - 1e-6)^2
    apart = value(framework, "contrastive", [a, a], kw={"similar": False, "margin": 1.5})
    assert apart == pytest.approx((1.5 - 1e-6) ** 2 if framework == "torch" else 2.25, abs=5e-7)


def test_torch_losses_keep_the_graph_and_float64() -> None:
    o = torch.tensor([[1.0], [2.0]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.0], dtype=torch.float64)
    loss = loss_function("torch", "mse")([o, t], torch.tensor([1.0, 1.0]), None)
    assert loss.dtype == torch.float64
    loss.backward()
    assert o.grad is not None and o.grad.ravel().tolist() == [1.0, 2.0]  # d/do mean((o - t)^2)


def test_tensorflow_inputs_from_other_frameworks() -> None:
    # a torch weight, a numpy mask, float64 numpy outputs: all become float32 TensorFlow tensors
    fn = loss_function("tensorflow", "mse")
    o = O3.astype(np.float64)
    got = fn([tf.constant(O3), o[:, 0] * 0 + T3.ravel()], torch.tensor([1.0, 2.0, 0.0]), np.ones(3, bool))
    assert got.dtype == tf.float32 and float(got) == pytest.approx(3.0)
    red = loss_reduction("tensorflow")
    leaf = torch.tensor([1.0, 0.0, 1.0], requires_grad=True)
    assert float(red(tf.constant([1.0, 2.0, 4.0]), leaf, None)) == pytest.approx(2.5)
    # integer targets are cast to the outputs' dtype
    assert float(fn([tf.constant(O3), np.array([0, 0, 1], np.int64)], None, None)) == pytest.approx(14 / 3)
