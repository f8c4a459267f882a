"""Keras nodes in the step and the fit pinned by value (issue 17): plain SGD on a linear Keras node equals
the MSE gradient step computed by hand in numpy, also from a state whose weights were loaded as
numpy arrays (the step makes them TensorFlow tensors first) and as a head whose roles differ from a
torch head's; a FitPhase fits a scikit-learn node on a Keras node's output (against scikit-learn).
Kept out of the mutmut selection (TensorFlow in forked children); run per mutant in a fresh process.
"""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP
from mml.training import AppliedLoss, Experiment, TrainPhase, steps

from .conftest import make_featureset

pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")


def _experiment():
    g = ModelGraph.of(
        ModelNode(
            "k",
            SequentialMLP(hidden=(), backend="tensorflow"),
            FeatureSetRef("toy"),
            optimizer=mml.optim.sgd(0.1),
        )
    )
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["k"],
        losses=AppliedLoss("mse", "k"),
        n_epochs=1,
        sampler=mml.SimpleSampler(16),
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
        # the head's batch was converted for its backend once: TensorFlow tensors in the context
        assert isinstance(sd.features, tf.Tensor) and isinstance(sd.targets, tf.Tensor)
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


def test_a_keras_head_with_other_roles_than_a_torch_head_is_fed_tensorflow_tensors():
    from mml.training import InputBinding

    g = ModelGraph.of(
        ModelNode("a", SequentialMLP(hidden=()), FeatureSetRef("toy"), optimizer=mml.optim.sgd(0.1)),
        ModelNode(
            "k",
            SequentialMLP(hidden=(), backend="tensorflow"),
            FeatureSetRef("toy"),
            optimizer=mml.optim.sgd(0.1),
        ),
    )
    rng = np.random.default_rng(3)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    fs = mml.FeatureSet.from_dict(
        {"x": x, "y": x @ np.array([1.0, -1.0, 0.5], np.float32), "soh": rng.random(32)},
        features="x",
        targets="y",
        tags="soh",
        label="toy",
    ).with_split("train", np.arange(32))
    phase = TrainPhase(
        "fit",
        {
            "a": InputBinding("toy", "train", mml.SimpleSampler(8, shuffle=False)),
            "k": InputBinding(
                "toy", "train", mml.PairedSampler({"soh": mml.samplers.similar(0.2)}, batch_size=8)
            ),
        },
        [
            AppliedLoss("mse", "a"),
            AppliedLoss("mse", "k", inputs=("pair.outputs", "pair.targets"), weight=2.0),
        ],
        n_epochs=1,
    )
    exp = Experiment({"toy": fs}, g, phase)
    state = mml.init(exp, 0)
    w, b = (np.asarray(v, np.float64) for v in state.params("k").trainable)
    n = 0
    for st, ctx in steps(exp, phase, state):
        if ctx.event != "batch":
            continue
        n += 1
        sd = ctx.inputs["pair"]["k"]
        assert isinstance(sd.features, tf.Tensor)
        xp, yp = np.asarray(sd.features, np.float64), np.asarray(sd.targets, np.float64)
        err = xp @ w + b - yp
        w = w - 0.1 * 2.0 * (2.0 / err.size) * xp.T @ err
        b = b - 0.1 * 2.0 * (2.0 / err.size) * err.sum(axis=0)
        got_w, got_b = st.params("k").trainable
        np.testing.assert_allclose(np.asarray(got_w), w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(got_b), b, rtol=1e-5, atol=1e-6)
    assert n == 4


def test_a_fit_phase_feeds_a_keras_node_above_a_scikit_learn_node():
    from sklearn.linear_model import Ridge

    from mml.models import SklearnModel
    from mml.training import FitPhase, InputBinding, evaluate

    g = ModelGraph.of(
        ModelNode(
            "enc", SequentialMLP(hidden=(4,), output_shape=(2,), backend="tensorflow"), FeatureSetRef("toy")
        ),
        ModelNode("ridge", SklearnModel("sklearn.linear_model:Ridge", {"alpha": 0.5}), NodeRef("enc")),
    )
    bind = {"enc": InputBinding("toy", "train")}
    exp = Experiment({"toy": make_featureset(n=40)}, g, FitPhase("fit", bind))
    state = mml.init(exp, 0)
    ((final, _),) = list(steps(exp, exp.plan, state))
    x = evaluate(exp, state, bind, nodes=["enc"]).outputs["enc"].astype(np.float64)
    fs = exp.featuresets["toy"]
    ref = Ridge(alpha=0.5).fit(x, fs.to_numpy("targets")[fs.rows("train")])
    coef = final.params("ridge").fitted.attributes["coef_"]
    np.testing.assert_allclose(np.ravel(coef), np.ravel(ref.coef_), rtol=1e-4, atol=1e-6)
