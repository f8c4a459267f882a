"""predict_file: CSV/Parquet in and out, ids kept, long form, class probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.inference._files import predict_file
from mml.models import SequentialMLP
from mml.training import AppliedLoss, EvalPhase, Experiment

pytest.importorskip("torch")


def _classifier() -> tuple[mml.Predictor, pd.DataFrame]:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "a": rng.normal(size=60),
            "b": rng.normal(size=60).astype(np.float32),
            "label": rng.integers(0, 3, 60),
            "id": [f"s{i}" for i in range(60)],
        }
    )
    fs = mml.FeatureSet.from_pandas(df, features=["a", "b"], targets="label", label="t")
    fs = mml.scalers.fit_transform(fs.with_split("train", np.arange(60)), "standard")
    g = ModelGraph.of(ModelNode("clf", SequentialMLP(hidden=(4,)), FeatureSetRef("t")))
    exp = Experiment(
        {"t": fs},
        g,
        EvalPhase.simple(
            "e", featureset="t", heads=["clf"], split="train", losses=AppliedLoss("cross_entropy", "clf")
        ),
    )
    return mml.export(exp, mml.init(exp, 0)), df


def test_csv_in_csv_and_parquet_out_keep_the_ids(tmp_path):
    predictor, df = _classifier()
    df.to_csv(tmp_path / "in.csv", index=False)
    assert predict_file(predictor, tmp_path / "in.csv", tmp_path / "out.csv", batch_size=16) == 60
    out = pcsv.read_csv(tmp_path / "out.csv").to_pandas()
    assert list(out.columns) == ["label", "id", "clf"]  # every column the predictor does not read
    assert out["id"].tolist() == df["id"].tolist()
    assert np.array_equal(out["clf"].to_numpy(), predictor.predict(df))
    assert predict_file(predictor, tmp_path / "in.csv", tmp_path / "p.parquet", keep=["id"], proba=True) == 60
    proba = pq.read_table(tmp_path / "p.parquet").to_pandas()
    assert list(proba.columns) == ["id", "clf_p0", "clf_p1", "clf_p2"]
    assert np.allclose(proba[["clf_p0", "clf_p1", "clf_p2"]].sum(axis=1), 1.0, atol=1e-6)
    assert np.array_equal(proba[["clf_p0", "clf_p1", "clf_p2"]].to_numpy(), predictor.predict_proba(df))


def test_bad_paths_are_clear_errors(tmp_path):
    predictor, df = _classifier()
    with pytest.raises(mml.DataError, match="does not exist"):
        predict_file(predictor, tmp_path / "nope.csv", tmp_path / "o.csv")
    df.to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(mml.DataError, match=r"\.parquet or \.csv"):
        predict_file(predictor, tmp_path / "in.csv", tmp_path / "o.json")
    df.drop(columns="b").to_csv(tmp_path / "no_b.csv", index=False)
    with pytest.raises(mml.SchemaError, match="'b'"):
        predict_file(predictor, tmp_path / "no_b.csv", tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists() and not list(tmp_path.glob(".o.csv*"))


def test_predict_proba_is_the_softmax_of_the_head(tmp_path):
    predictor, df = _classifier()
    import torch

    proba = predictor.predict_proba(df)
    fs = mml.transform_like(predictor.schemas["t"], df)
    logits = mml.forward(
        predictor.graph, predictor.state, mml.SampleData(features=fs.to_numpy().astype(np.float32))
    )
    expected = torch.softmax(logits.outputs["clf"], dim=-1).detach().numpy()
    assert np.allclose(proba, expected, atol=1e-6)
    assert np.array_equal(predictor.predict(df), expected.argmax(axis=1))
