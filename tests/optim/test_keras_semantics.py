"""mml's optimizers on TensorFlow tensors against ``keras.optimizers`` (docs/optimizers.md, issue 16.4).

mml keeps torch.optim's maths on Keras nodes. Where docs/optimizers.md says an mml spec equals
a Keras optimizer, 20 float64 steps on a quadratic must agree to rounding; where it lists a
difference, they must differ. Hyperparameters are exactly representable in float32 because
Keras casts Python-float hyperparameters to float32 before using them (also documented).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import mml.optim as optim  # noqa: E402

LR, B1, B2, WD, RHO, MOM = 0.0625, 0.875, 0.9990234375, 0.125, 0.875, 0.5
N = 20

rng = np.random.default_rng(0)
_A = rng.normal(size=(5, 5))
A = _A @ _A.T / 5 + np.eye(5)
B = rng.normal(size=5)
P0 = rng.normal(size=5)


def grad(p: np.ndarray) -> np.ndarray:
    return A @ p - B  # the gradient of a convex quadratic: the path depends on every update


def run_mml(opt: Any) -> np.ndarray:
    p = {"w": tf.constant(P0, tf.float64)}
    state = opt.init(p)
    for t in range(N):
        p, state = opt.update({"w": tf.constant(grad(p["w"].numpy()), tf.float64)}, state, p, t)
    return p["w"].numpy()


def run_keras(opt: Any) -> np.ndarray:
    v = keras.Variable(P0.copy(), dtype="float64")
    opt.build([v])
    for _ in range(N):
        opt.apply([tf.constant(grad(v.numpy()), tf.float64)], [v])
    return v.numpy()


EQUAL = {
    "sgd": (lambda: optim.sgd(LR), lambda: keras.optimizers.SGD(LR)),
    "sgd momentum": (lambda: optim.sgd(LR, momentum=RHO), lambda: keras.optimizers.SGD(LR, momentum=RHO)),
    "sgd nesterov": (
        lambda: optim.sgd(LR, momentum=RHO, nesterov=True),
        lambda: keras.optimizers.SGD(LR, momentum=RHO, nesterov=True),
    ),
    "sgd weight decay, no momentum": (
        lambda: optim.sgd(LR, weight_decay=WD),
        lambda: keras.optimizers.SGD(LR, weight_decay=WD),
    ),
    "adam eps=0": (
        lambda: optim.adam(LR, betas=(B1, B2), eps=0.0),
        lambda: keras.optimizers.Adam(LR, beta_1=B1, beta_2=B2, epsilon=0.0),
    ),
    "adamw = keras AdamW": (
        lambda: optim.adamw(LR, betas=(B1, B2), eps=0.0, weight_decay=WD),
        lambda: keras.optimizers.AdamW(LR, weight_decay=WD, beta_1=B1, beta_2=B2, epsilon=0.0),
    ),
    "adamw = keras Adam(weight_decay)": (
        lambda: optim.adamw(LR, betas=(B1, B2), eps=0.0, weight_decay=WD),
        lambda: keras.optimizers.Adam(LR, weight_decay=WD, beta_1=B1, beta_2=B2, epsilon=0.0),
    ),
    "adamw amsgrad": (
        lambda: optim.adamw(LR, betas=(B1, B2), eps=0.0, weight_decay=WD, amsgrad=True),
        lambda: keras.optimizers.AdamW(LR, weight_decay=WD, beta_1=B1, beta_2=B2, epsilon=0.0, amsgrad=True),
    ),
    "rmsprop eps=0": (
        lambda: optim.rmsprop(LR / 4, alpha=RHO, eps=0.0),
        lambda: keras.optimizers.RMSprop(LR / 4, rho=RHO, epsilon=0.0),
    ),
    "rmsprop momentum": (
        lambda: optim.rmsprop(LR / 4, alpha=RHO, eps=0.0, momentum=MOM),
        lambda: keras.optimizers.RMSprop(LR / 4, rho=RHO, epsilon=0.0, momentum=MOM),
    ),
    "rmsprop centered": (
        lambda: optim.rmsprop(LR / 4, alpha=RHO, eps=0.0, centered=True),
        lambda: keras.optimizers.RMSprop(LR / 4, rho=RHO, epsilon=0.0, centered=True),
    ),
}

DIFFERENT = {
    # weight_decay: L2 added to the gradient (torch) vs decoupled (Keras)
    "adam L2 vs Keras decoupled": (
        lambda: optim.adam(LR, betas=(B1, B2), eps=0.0, weight_decay=WD),
        lambda: keras.optimizers.Adam(LR, weight_decay=WD, beta_1=B1, beta_2=B2, epsilon=0.0),
    ),
    "sgd momentum L2 vs Keras decoupled": (
        lambda: optim.sgd(LR, momentum=RHO, weight_decay=WD),
        lambda: keras.optimizers.SGD(LR, momentum=RHO, weight_decay=WD),
    ),
    # eps added to the bias-corrected sqrt(v) (torch) vs to the raw sqrt(v) (Keras)
    "adam eps placement": (
        lambda: optim.adam(LR, betas=(B1, B2), eps=1e-3),
        lambda: keras.optimizers.Adam(LR, beta_1=B1, beta_2=B2, epsilon=1e-3),
    ),
    # eps outside the square root (torch) vs inside (Keras)
    "rmsprop eps placement": (
        lambda: optim.rmsprop(LR / 4, alpha=RHO, eps=1e-3),
        lambda: keras.optimizers.RMSprop(LR / 4, rho=RHO, epsilon=1e-3),
    ),
    # the defaults: rho 0.99 vs 0.9, eps 1e-8 vs 1e-7; AdamW weight decay 1e-2 vs 0.004
    "rmsprop defaults": (lambda: optim.rmsprop(LR / 4), lambda: keras.optimizers.RMSprop(LR / 4)),
    "adamw defaults": (lambda: optim.adamw(LR), lambda: keras.optimizers.AdamW(LR)),
}


@pytest.mark.parametrize("name", list(EQUAL))
def test_documented_equalities(name: str) -> None:
    mine, theirs = EQUAL[name]
    a, b = run_mml(mine()), run_keras(theirs())
    assert not np.allclose(a, P0)  # the parameters moved
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)


@pytest.mark.parametrize("name", list(DIFFERENT))
def test_documented_differences(name: str) -> None:
    mine, theirs = DIFFERENT[name]
    assert np.abs(run_mml(mine()) - run_keras(theirs())).max() > 1e-4


def test_keras_casts_hyperparameters_to_float32() -> None:
    # momentum 0.9 is not a float32 number: Keras uses float32(0.9), mml the Python float
    a = run_mml(optim.sgd(LR, momentum=0.9))
    b = run_keras(keras.optimizers.SGD(LR, momentum=0.9))
    assert 0 < np.abs(a - b).max() < 1e-6
