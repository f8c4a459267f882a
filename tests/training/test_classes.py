"""Classification heads: inferred widths and clear errors before training starts."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP
from mml.training import AppliedLoss, EvalPhase, Experiment, TrainPhase

pytest.importorskip("torch")


def _exp(classes, model=None, n_epochs=2):
    rng = np.random.default_rng(0)
    n = len(classes)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    fs = mml.FeatureSet.from_dict({"x": x, "c": classes}, features="x", targets="c", label="d").with_split(
        "train", np.arange(n)
    )
    g = ModelGraph.of(
        ModelNode(
            "clf", model or SequentialMLP(hidden=(8,)), FeatureSetRef("d"), optimizer=mml.optim.adam(1e-2)
        )
    )
    plan = [
        TrainPhase.simple(
            "fit",
            featureset="d",
            heads=["clf"],
            losses=AppliedLoss("cross_entropy", "clf"),
            n_epochs=n_epochs,
            sampler=mml.SimpleSampler(16),
        ),
        EvalPhase.simple(
            "test", featureset="d", heads=["clf"], split="train", losses=AppliedLoss("cross_entropy", "clf")
        ),
    ]
    return Experiment({"d": fs}, g, plan)


def test_three_class_head_without_output_shape_trains():
    exp = _exp(np.tile([0, 1, 2], 20))
    state = mml.init(exp, 0)
    assert state.graph.shapes["clf"].output_shape == (3,)
    final, history = mml.run(exp, state, progress=False)
    assert history.status == "completed", history.error
    res = history.eval_result("test")
    assert res.outputs["clf"].shape == (60, 3)
    # the logged cross-entropy is scikit-learn's log-loss of the softmaxed outputs
    assert res.metrics(["log_loss"])["log_loss"] == pytest.approx(res.losses["loss"], rel=1e-5)
    from mml.views import summary_rows

    rows = {name: v for phase, name, _, v in summary_rows(history, exp) if phase == "test"}
    assert rows["clf accuracy"] == res.metrics(["accuracy"])["accuracy"] and "clf log_loss" in rows
    assert mml.export(exp, final).predict_proba({"x": np.zeros((2, 3), np.float32)}).shape == (2, 3)


def test_float_class_ids_count_too():
    assert mml.init(_exp(np.tile([0.0, 1.0, 3.0], 10)), 0).graph.shapes["clf"].output_shape == (4,)


def test_a_declared_width_too_narrow_fails_before_the_first_step():
    exp = _exp(np.tile([0, 1, 2], 10), SequentialMLP(hidden=(4,), output_shape=(2,)))
    state = mml.init(exp, 0)
    assert state.graph.shapes["clf"].output_shape == (2,)  # declared widths are kept
    final, history = mml.run(exp, state, progress=False)
    assert history.status == "failed" and final.step == 0
    assert "output_shape=(3,)" in str(history.error)


def test_targets_that_are_not_class_ids_are_not_counted():
    # fractional "ids": no width is inferred (the target shape (1,) stays); the phase check reports them
    assert mml.init(_exp(np.tile([0.0, 0.5], 10)), 0).graph.shapes["clf"].output_shape == (1,)
    # negative ids mark ignored samples: the width counts the others
    assert mml.init(_exp(np.tile([-100, 0, 1], 10)), 0).graph.shapes["clf"].output_shape == (2,)
