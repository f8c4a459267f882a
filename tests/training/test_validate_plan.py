"""Mistakes found when the Experiment is built, all in one report (issue 11.3)."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.callbacks import EarlyStopping, Evaluation, MetricCallback
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP, SklearnModel
from mml.training import AppliedLoss, Experiment, TrainPhase

from .conftest import make_featureset


def graph(model: object = None, featureset: str = "toy") -> ModelGraph:
    model = SequentialMLP(hidden=(4,)) if model is None else model
    return ModelGraph.of(ModelNode("mlp", model, FeatureSetRef(featureset), optimizer=mml.optim.adam(1e-2)))


def phase(callbacks: tuple = (), node: str = "mlp", loss: str = "mse") -> TrainPhase:  # type: ignore[type-arg]
    return TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=[node],
        losses=AppliedLoss(loss, node),
        n_epochs=1,
        sampler=mml.SimpleSampler(16),
        callbacks=callbacks,
    )


def problems(g: ModelGraph, p: TrainPhase, fs: mml.FeatureSet | None = None) -> str:
    fs = make_featureset() if fs is None else fs
    with pytest.raises(mml.TrainingError) as info:
        Experiment({"toy": fs}, g, p)
    return str(info.value)


def test_early_stopping_before_the_evaluation_that_logs_its_value() -> None:
    msg = problems(graph(), phase((EarlyStopping("val_loss"), Evaluation(split="val"))))
    assert "EarlyStopping('val_loss') is listed before the Evaluation that logs 'val_loss'" in msg
    assert "list Evaluation first" in msg
    Experiment(
        {"toy": make_featureset()}, graph(), phase((Evaluation(split="val"), EarlyStopping("val_loss")))
    )
    Experiment({"toy": make_featureset()}, graph(), phase((EarlyStopping("loss"),)))  # the phase's own loss


def test_an_evaluation_split_the_featureset_lacks() -> None:
    msg = problems(graph(), phase((Evaluation(split="valid"),)))
    assert "Evaluation(split='valid')" in msg and "no split 'valid'" in msg and "'val'" in msg
    assert "MetricCallback(split='test')" in problems(
        graph(), phase((MetricCallback(("mae",), split="test"),))
    )


def test_an_elementwise_loss_over_outputs_and_targets_of_different_sizes() -> None:
    # MSE of a (3,) output against a (1,) target trained to 'completed' (torch broadcast silently)
    msg = problems(graph(SequentialMLP(hidden=(4,), output_shape=(3,))), phase())
    assert "loss 'mlp.mse' (mse) compares the output of 'mlp' (per-sample shape (3,))" in msg
    assert "targets of per-sample shape (1,)" in msg and "output_shape=(1,)" in msg
    # cross-entropy takes (n_classes,) logits against a class id: not an elementwise loss
    fs = make_featureset()
    labels = mml.FeatureSet.from_dict(
        {"x": fs.to_numpy("features"), "y": np.arange(len(fs)) % 3}, features="x", targets="y", label="toy"
    ).with_split("train", np.arange(len(fs)))
    Experiment(
        {"toy": labels}, graph(SequentialMLP(hidden=(4,), output_shape=(3,))), phase(loss="cross_entropy")
    )


def test_a_train_phase_of_scikit_learn_nodes_without_partial_fit() -> None:
    msg = problems(graph(SklearnModel("sklearn.linear_model:Ridge")), phase())
    assert "only nodes ('mlp') are scikit-learn nodes without partial_fit" in msg and "FitPhase" in msg
    Experiment({"toy": make_featureset()}, graph(SklearnModel("sklearn.linear_model:SGDRegressor")), phase())


def test_a_graph_reading_a_missing_featureset_and_all_problems_at_once() -> None:
    msg = problems(
        graph(SequentialMLP(hidden=(4,), output_shape=(3,)), featureset="toys"),
        phase((EarlyStopping("valid_loss"), Evaluation(split="valid"))),
    )
    assert (
        "node(s) 'mlp' read FeatureSet 'toys' (did you mean 'toy'?), which the Experiment does not have"
        in msg
    )
    for part in ("is listed before the Evaluation", "no split 'valid'"):
        assert part in msg
