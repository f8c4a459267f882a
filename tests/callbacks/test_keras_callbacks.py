"""Callbacks on phases that train Keras (TensorFlow) nodes."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.callbacks import Checkpointing, EarlyStopping, Evaluation
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP
from mml.training import AppliedLoss, Experiment, TrainPhase

from ..training.conftest import make_featureset

pytest.importorskip("torch")
pytest.importorskip("tensorflow")


def keras_experiment(lr: float, n_epochs: int, callbacks) -> Experiment:
    fs = make_featureset()
    g = ModelGraph.of(
        ModelNode(
            "mlp",
            SequentialMLP(hidden=(8,), backend="tensorflow"),
            FeatureSetRef("toy"),
            optimizer=mml.optim.sgd(lr),
        )
    )
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["mlp"],
        losses=AppliedLoss("mse", "mlp"),
        n_epochs=n_epochs,
        sampler=mml.SimpleSampler(16),
        callbacks=callbacks,
    )
    return Experiment({"toy": fs}, g, phase)


def test_evaluation_and_early_stopping_restore_the_best_keras_params():
    es = EarlyStopping("val_loss", patience=1, restore_best=True)
    exp = keras_experiment(0.6, 20, [Evaluation(split="val", metrics=("mae",)), es])
    state, h = mml.run(exp, mml.init(exp, 0))
    assert h.status == "stopped", h.error
    val = h.epochs().values("val_loss")
    assert 1 < len(val) < 20 and np.all(np.isfinite(val))
    best = state.callback_state("fit/1")
    assert best.best == pytest.approx(float(val.min()))
    for got, want in zip(state.params("mlp").trainable, best.best_graph.params["mlp"].trainable):
        assert np.array_equal(np.asarray(got), np.asarray(want))
    # the restored params give the best val_loss again
    res = mml.evaluate(
        exp, state, {"mlp": exp.plan.inputs["mlp"]}, losses=[AppliedLoss("mse", "mlp")], split="val"
    )
    assert res.losses["loss"] == pytest.approx(best.best, rel=1e-5)


def test_disk_checkpoint_of_a_keras_state_loads_and_resumes(tmp_path):
    exp = keras_experiment(0.05, 2, [Checkpointing(mode="disk", directory=str(tmp_path / "ckpt"))])
    state, h = mml.run(exp, mml.init(exp, 0))
    assert h.status == "completed", h.error
    saved = sorted((tmp_path / "ckpt").iterdir())
    assert len(saved) == 1  # keep=1: the last epoch's
    loaded = mml.load(saved[-1])
    assert loaded.step == state.step
    assert loaded.params("mlp") == state.params("mlp")
    # a loaded state (numpy values) trains on exactly like the in-memory one
    a, _ = mml.run(exp, state)
    b, _ = mml.run(exp, loaded)
    for x, y in zip(a.params("mlp").trainable, b.params("mlp").trainable):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
