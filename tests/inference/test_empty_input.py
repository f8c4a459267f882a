"""Predicting on no samples returns no rows, shaped and typed as the rows of a non-empty call.

It used to fail inside torch (``cannot reshape tensor of 0 elements into shape [0, -1]``). As with
``torch.nn.Linear`` on an empty batch or ``numpy`` on empty arrays, zero samples in give zero
predictions out; a pipeline that filters its input down to nothing keeps working.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP
from mml.training import AppliedLoss, EvalPhase, Experiment

pytest.importorskip("torch")


def _predictor(loss: str, targets: np.ndarray) -> mml.Predictor:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40), "y": targets})
    fs = mml.FeatureSet.from_pandas(df, features=["a", "b"], targets="y", label="t").with_split(
        "train", np.arange(40)
    )
    fs = mml.scalers.fit_transform(fs, "standard")
    if loss == "mse":
        fs = mml.scalers.fit_transform(fs, "minmax", domain="targets")
    g = ModelGraph.of(ModelNode("m", SequentialMLP(hidden=(4,)), FeatureSetRef("t")))
    phase = EvalPhase.simple(
        "e",
        featureset="t",
        heads=["m"],
        split="train",
        losses=AppliedLoss(loss, "m"),
        inverse_transform=loss == "mse",
    )
    exp = Experiment({"t": fs}, g, phase)
    return mml.export(exp, mml.init(exp, 0))


NONE = {"a": np.zeros(0), "b": np.zeros(0)}
ONE = {"a": np.zeros(1), "b": np.zeros(1)}


def test_a_regression_head_gives_zero_rows_of_its_output_shape_and_dtype():
    p = _predictor("mse", np.linspace(0.0, 5.0, 40))
    empty, one = p.predict(NONE), p.predict(ONE)
    assert empty.shape == (0, *one.shape[1:]) == (0, 1) and empty.dtype == one.dtype
    (batch,) = list(p.predict_batches(NONE))
    assert batch.n == 0 and batch.outputs["m"].shape == (0, 1)


def test_a_classifier_gives_zero_class_ids_and_zero_probability_rows():
    p = _predictor("cross_entropy", np.arange(40) % 3)
    ids, proba = p.predict(NONE), p.predict_proba(NONE)
    one_ids, one_proba = p.predict(ONE), p.predict_proba(ONE)
    assert ids.shape == (0,) and ids.dtype == one_ids.dtype
    assert proba.shape == (0, 3) and proba.dtype == one_proba.dtype


def test_the_empty_call_leaves_the_next_one_unchanged():
    p = _predictor("mse", np.linspace(0.0, 5.0, 40))
    before = p.predict({"a": np.arange(5.0), "b": np.ones(5)})
    p.predict(NONE)
    np.testing.assert_array_equal(p.predict({"a": np.arange(5.0), "b": np.ones(5)}), before)
