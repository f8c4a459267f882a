"""Failures inside mml.run become a failed History with the original error chained (issue 11.2, 11.6)."""

import numpy as np
import pytest

import mml
from mml.training import AppliedLoss, Experiment, Loss, TrainPhase

from .conftest import make_featureset, mlp_graph, simple_experiment

torch = pytest.importorskip("torch")


def raising_loss(outputs, targets):
    raise ValueError("boom from a user loss")


def not_a_loss(x):
    return x


def _with_loss(fs, fn):
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["mlp"],
        losses=AppliedLoss(Loss(fn), "mlp"),
        n_epochs=1,
        sampler=mml.SimpleSampler(16),
    )
    return Experiment({"toy": fs}, mlp_graph(), phase)


def test_a_user_loss_that_raises_is_a_failed_history():
    exp = _with_loss(make_featureset(), f"{__name__}:raising_loss")
    state0 = mml.init(exp, 0)
    state, history = mml.run(exp, state0, progress=False)  # does not raise
    assert history.status == "failed" and history.failure.phase == "fit"
    err = history.error
    assert isinstance(err, mml.TrainingError) and isinstance(err.__cause__, ValueError)
    assert "phase 'fit' failed: ValueError: boom from a user loss" in str(err)
    assert state == state0.without_position() or state.step == 0  # the last good state: no step was made
    assert mml.io.roundtrip(history).failure.message == history.failure.message


def test_a_loss_that_is_not_a_loss_says_so():
    exp = _with_loss(make_featureset(), f"{__name__}:not_a_loss")
    _, history = mml.run(exp, mml.init(exp, 0), progress=False)
    assert history.status == "failed" and isinstance(history.error.__cause__, TypeError)
    assert "not one: it must take (outputs, targets)" in str(history.error)


def test_nan_in_the_validation_split_fails_the_run_naming_the_split():
    fs = make_featureset()
    x = fs.to_numpy("features").copy()
    val = np.asarray(fs.split_indices["val"])
    x[val[:3], 0] = np.nan
    bad = mml.FeatureSet.from_dict(
        {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": fs.to_numpy("targets")[:, 0]},
        features=["a", "b", "c"],
        targets="y",
        label="toy",
    )
    bad = bad.with_split("train", fs.split_indices["train"]).with_split("val", val)
    exp = simple_experiment(bad, n_epochs=2, callbacks=[mml.callbacks.Evaluation(split="val")])
    _, history = mml.run(exp, mml.init(exp, 0), progress=False)
    assert history.status == "failed"  # was: val_loss = nan and status "completed"
    msg = str(history.error)
    assert "split 'val'" in msg and "3 of 30 samples have non-finite outputs" in msg
