"""A Keras node's training step pinned by value (issue 17): plain SGD on a linear Keras node equals
the MSE gradient step computed by hand in numpy, also from a state whose weights were loaded as
numpy arrays (the step makes them TensorFlow tensors first).
"""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP
from mml.training import AppliedLoss, Experiment, TrainPhase, steps

from .conftest import make_featureset

pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")


def _experiment():
    g = ModelGraph.of(
        ModelNode(
            "k", SequentialMLP(hidden=(), backend="tensorflow"), FeatureSetRef("toy"), optimizer=mml.optim.sgd(0.1)
        )
    )
    phase = TrainPhase.simple(
        "fit", featureset="toy", heads=["k"], losses=AppliedLoss("mse", "k"), n_epochs=1, sampler=mml.SimpleSampler(16)
    )
    return Experiment({"toy": make_featureset(n=40)}, g, phase), phase


def _check_sgd_steps(exp, phase, state):
    w, b = (np.asarray(v, np.float64) for v in state.params("k").trainable)
    n = 0
    for st, ctx in steps(exp, phase, state):
        if ctx.event != "batch":
            continue
        n += 1
        sd = ctx.input("k")
        x, y = np.asarray(sd.features, np.float64), np.asarray(sd.targets, np.float64)
        err = x @ w + b - y
        assert ctx.losses["k.mse"] == pytest.approx(float(np.mean(err**2)), rel=1e-5)
        w = w - 0.1 * (2.0 / err.size) * x.T @ err
        b = b - 0.1 * (2.0 / err.size) * err.sum(axis=0)
        got_w, got_b = st.params("k").trainable
        np.testing.assert_allclose(np.asarray(got_w), w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(got_b), b, rtol=1e-5, atol=1e-6)
        assert st.opt_steps == {"k": n}
    assert n == 2


def test_sgd_on_a_linear_keras_node_is_the_hand_computed_mse_step():
    exp, phase = _experiment()
    _check_sgd_steps(exp, phase, mml.init(exp, 0))


def test_a_keras_node_with_numpy_weights_trains_the_same():
    import attrs

    exp, phase = _experiment()
    state = mml.init(exp, 0)
    rec = state.params("k")
    as_numpy = attrs.evolve(
        rec,
        trainable=tuple(np.asarray(v) for v in rec.trainable),
        non_trainable=tuple(np.asarray(v) for v in rec.non_trainable),
    )
    loaded = state.with_params("k", as_numpy)
    assert all(isinstance(v, np.ndarray) for v in loaded.params("k").trainable)
    _check_sgd_steps(exp, phase, loaded)
