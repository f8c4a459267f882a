"""scikit-learn nodes with ``partial_fit`` train batch by batch in a TrainPhase (issue 11.5)."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP, SklearnModel
from mml.training import AppliedLoss, Experiment, InputBinding, TrainPhase

pytest.importorskip("torch")

N, B = 40, 10


def featureset(classify: bool = False) -> mml.FeatureSet:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3
    y = (y > 0).astype(np.int64) if classify else y
    fs = mml.FeatureSet.from_dict({"x": x, "y": y}, features="x", targets="y", label="fs")
    return fs.with_split("train", np.arange(N))


def phase(node: str, epochs: int = 2, **kw: object) -> TrainPhase:
    binding = {
        h: InputBinding("fs", "train", mml.SimpleSampler(B, shuffle=False)) for h in kw.pop("heads", [node])
    }  # type: ignore[attr-defined]
    return TrainPhase("fit", binding, AppliedLoss("mse", node), n_epochs=epochs, **kw)  # type: ignore[arg-type]


def test_sgd_regressor_equals_partial_fit_over_the_same_batches() -> None:
    from sklearn.linear_model import SGDRegressor

    fs = featureset()
    g = ModelGraph.of(
        ModelNode("sgd", SklearnModel("sklearn.linear_model:SGDRegressor"), FeatureSetRef("fs"))
    )
    exp = Experiment({"fs": fs}, g, phase("sgd"))
    state, history = mml.run(exp, mml.init(exp, 0))
    assert history.status == "completed" and state.step == 2 * N // B
    fitted = state.params("sgd").fitted
    ref = SGDRegressor(random_state=fitted.params["random_state"])
    x, y = fs.to_numpy("features"), fs.to_numpy("targets").ravel()
    for _ in range(2):
        for i in range(0, N, B):
            ref.partial_fit(x[i : i + B], y[i : i + B])
    np.testing.assert_array_equal(fitted.attributes["coef_"], ref.coef_)
    assert fitted.attributes["t_"] == ref.t_  # 8 updates, one per batch


def test_a_classifier_gets_its_classes_and_a_torch_head_trains_after_it() -> None:
    fs = featureset(classify=True)
    g = ModelGraph.of(
        ModelNode(
            "sgd", SklearnModel("sklearn.linear_model:SGDClassifier", method="predict"), FeatureSetRef("fs")
        ),
        ModelNode("head", SequentialMLP(hidden=(4,)), NodeRef("sgd"), optimizer=mml.optim.adam(1e-2)),
    )
    plan = TrainPhase(
        "fit",
        {"sgd": InputBinding("fs", "train", mml.SimpleSampler(B, shuffle=False))},
        AppliedLoss("mse", "head"),
        n_epochs=1,
    )
    exp = Experiment({"fs": fs}, g, plan)
    state0 = mml.init(exp, 0)
    state, history = mml.run(exp, state0)
    assert history.status == "completed"
    from mml.backends._sklearn import estimator_from_fitted

    np.testing.assert_array_equal(estimator_from_fitted(state.params("sgd").fitted).classes_, [0, 1])
    before, after = state0.params("head").params, state.params("head").params
    assert any(not np.array_equal(np.asarray(before[k]), np.asarray(after[k])) for k in before)


def test_a_graph_wide_optimizer_over_a_fitted_scikit_learn_node_needs_no_freeze() -> None:
    # issue 16.6: the PCA is fitted by the FitPhase, never by gradients, so it is no second backend
    from mml.training import FitPhase, PhaseGroup

    fs = featureset()
    g = ModelGraph.of(
        ModelNode("pca", SklearnModel("sklearn.decomposition:PCA", {"n_components": 2}), FeatureSetRef("fs")),
        ModelNode("head", SequentialMLP(hidden=(4,)), NodeRef("pca")),
        optimizer=mml.optim.adam(1e-2),
    )
    assert g.gradient_stops == (("pca", "head"),)
    bind = {"pca": InputBinding("fs", "train", mml.SimpleSampler(B, shuffle=False))}
    plan = PhaseGroup(
        "plan",
        [
            FitPhase("fit_pca", bind),
            TrainPhase("train", bind, AppliedLoss("mse", "head"), n_epochs=1, mode="graphwise"),
        ],
    )
    exp = Experiment({"fs": fs}, g, plan)
    state0 = mml.init(exp, 0)
    state, history = mml.run(exp, state0)
    assert history.status == "completed" and state.fitted == ("pca",)
    before, after = state0.params("head").params, state.params("head").params
    assert any(not np.array_equal(np.asarray(before[k]), np.asarray(after[k])) for k in before)
