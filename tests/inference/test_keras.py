"""A Predictor over a Keras (TensorFlow) node equals its EvalPhase and round-trips."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP
from mml.training import EvalPhase, Experiment

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_keras_predictor_equals_the_eval_phase_and_round_trips():
    pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3)).astype(np.float32)
    y = x.sum(1) * 3 + 1
    fs = mml.FeatureSet.from_dict({"x": x, "y": y}, features="x", targets="y", label="k")
    fs = mml.scalers.fit_transform(fs.with_split("train", np.arange(100)), "standard")
    fs = mml.scalers.fit_transform(fs, "standard", domain="targets")
    g = ModelGraph.of(ModelNode("m", SequentialMLP(hidden=(4,), backend="tensorflow"), FeatureSetRef("k")))
    phase = EvalPhase.simple(
        "e", featureset="k", heads=["m"], split="train", inverse_transform=True, batch_size=64
    )
    exp = Experiment({"k": fs}, g, phase)
    state = mml.init(exp, 0)
    _, history = mml.run(exp, state, progress=False)
    predictor = mml.export(exp, state)
    got = predictor.predict({"x": x}, batch_size=64)
    assert np.array_equal(got, history.eval_result("e").outputs["m"])
    assert np.array_equal(mml.io.roundtrip(predictor).predict({"x": x}, batch_size=64), got)
