"""FitPhase (closed-form scikit-learn fits) pinned against scikit-learn itself, messages in full (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP, SklearnModel
from mml.training import (
    AppliedLoss,
    EvalPhase,
    Experiment,
    FitPhase,
    InputBinding,
    PhaseGroup,
    TrainPhase,
    evaluate,
    steps,
)

from .conftest import make_featureset

torch = pytest.importorskip("torch")
sklearn_lm = pytest.importorskip("sklearn.linear_model")
sklearn_dec = pytest.importorskip("sklearn.decomposition")


def _exp(plan):
    g = ModelGraph.of(
        ModelNode(
            "pca", SklearnModel("sklearn.decomposition:PCA", {"n_components": 2}), FeatureSetRef("toy")
        ),
        ModelNode("ridge", SklearnModel("sklearn.linear_model:Ridge", {"alpha": 0.5}), NodeRef("pca")),
        ModelNode("mlp", SequentialMLP(hidden=()), FeatureSetRef("toy"), optimizer=mml.optim.sgd(0.1)),
    )
    return Experiment({"toy": make_featureset(n=40)}, g, plan)


BIND = {"pca": InputBinding("toy", "train")}


def test_fits_every_sklearn_node_in_order_against_sklearn():
    exp = _exp(FitPhase("fit", BIND))
    fs = exp.featuresets["toy"]
    state = mml.init(exp, 0)
    got = list(steps(exp, exp.plan, state))
    assert [(c.phase, c.epoch, c.batch, c.step, c.event) for _, c in got] == [
        ("fit", 0, 0, 0, "fit"),
        ("fit", 0, 1, 0, "fit"),
    ]
    final = got[-1][0]
    assert final.fitted == ("pca", "ridge") and got[0][0].fitted == ("pca",)
    rows = fs.rows("train")
    x = fs.to_numpy("features")[rows]
    y = fs.to_numpy("targets")[rows]
    pca = sklearn_dec.PCA(n_components=2).fit(x)
    ridge = sklearn_lm.Ridge(alpha=0.5).fit(pca.transform(x), y)
    res = evaluate(exp, final, BIND, nodes=["pca", "ridge"], split="val")
    xv = fs.to_numpy("features")[fs.rows("val")]
    np.testing.assert_allclose(res.outputs["pca"], pca.transform(xv), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        res.outputs["ridge"].reshape(-1), ridge.predict(pca.transform(xv)).reshape(-1), rtol=1e-4, atol=1e-5
    )


def test_nodes_and_freeze_after_fit():
    exp = _exp(FitPhase("fit", BIND, nodes=["pca"], freeze_after_fit=False))
    (only,) = list(steps(exp, exp.plan, mml.init(exp, 0)))
    assert only[0].fitted == () and only[1].batch == 0
    first = _exp(FitPhase("fit", BIND, nodes="pca"))
    ((fitted, _),) = list(steps(first, first.plan, mml.init(first, 0)))
    assert fitted.fitted == ("pca",)
    exp2 = _exp(FitPhase("fit", BIND))
    (one,) = list(steps(exp2, exp2.plan, fitted))  # pca is fitted already: only ridge
    assert one[1].batch == 1 and one[0].fitted == ("pca", "ridge")


def test_messages_in_full():
    exp = _exp(FitPhase("fit", BIND, nodes=["mlp"]))
    with pytest.raises(mml.TrainingError) as info:
        list(steps(exp, exp.plan, mml.init(exp, 0)))
    assert str(info.value) == "phase 'fit': node(s) 'mlp' are not fed by its inputs"
    both = {"pca": InputBinding("toy", "train"), "mlp": InputBinding("toy", "train")}
    exp = _exp(FitPhase("fit", both, nodes=["mlp"]))
    with pytest.raises(mml.TrainingError) as info:
        list(steps(exp, exp.plan, mml.init(exp, 0)))
    assert (
        str(info.value) == "FitPhase 'fit': node 'mlp' is not a scikit-learn node; train it with a TrainPhase"
    )
    exp = _exp(FitPhase("fit", {"mlp": InputBinding("toy", "train")}))
    with pytest.raises(mml.TrainingError) as info:
        list(steps(exp, exp.plan, mml.init(exp, 0)))
    assert str(info.value) == (
        "FitPhase 'fit' has nothing to fit (no unfitted scikit-learn node fed by its inputs)"
    )


def test_a_fit_then_a_train_phase_in_one_run():
    plan = PhaseGroup(
        "plan",
        [
            FitPhase("fit", BIND),
            TrainPhase.simple("train", featureset="toy", heads=["mlp"], losses=AppliedLoss("mse", "mlp")),
            EvalPhase.simple("test", featureset="toy", heads=["pca"], split="val", nodes=["ridge"]),
        ],
    )
    exp = _exp(plan)
    state, h = mml.run(exp, mml.init(exp, 0), progress=False)
    assert h.status == "completed" and state.fitted == ("pca", "ridge")
    assert [p.label for p in h.phases] == ["fit", "train", "test"]
    assert h.phases[0].kind == "phase.fit" and h.phases[0].n_steps == 0
