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
    assert mml.export(exp, final).predict_proba({"x": np.zeros((2, 3), np.float32)}).shape == (2, 3)


def test_float_class_ids_count_too():
    assert mml.init(_exp(np.tile([0.0, 1.0, 3.0], 10)), 0).graph.shapes["clf"].output_shape == (4,)


@pytest.mark.parametrize(
    ("classes", "model", "words"),
    [
        (
            np.tile([0, 1, 2], 10),
            SequentialMLP(hidden=(4,), output_shape=(2,)),
            ["(2,)", "output_shape=(3,)", "n_classes"],
        ),
        (np.tile([0.0, 0.5], 10), None, ["'c'", "non-integral", "0..n_classes-1"]),
        (np.tile([-1, 1], 10), None, ["negative class id -1"]),
    ],
)
def test_bad_class_setups_fail_before_training(classes, model, words):
    exp = _exp(classes, model)
    with pytest.raises(mml.ConfigError) as info:
        mml.init(exp, 0)
    for w in words:
        assert w in str(info.value)
