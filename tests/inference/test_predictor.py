"""Predictor: exported pipelines equal the EvalPhase on the same rows; inputs of every form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP
from mml.training import AppliedLoss, EvalPhase, Experiment, PhaseGroup, TrainPhase

torch = pytest.importorskip("torch")


def _data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    t = rng.normal(size=n).astype(np.float64) * 3 + 10
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0], np.float32) * 10 + 50).astype(np.float32)
    return x, t, y


def _experiment(eval_batch: int = 64) -> Experiment:
    x, t, y = _data()
    fs = mml.FeatureSet.from_dict(
        {"x": x, "temp": t, "y": y}, features=["x", "temp"], targets="y", label="toy"
    )
    fs = fs.split(mml.RandomSplitter({"train": 0.7, "test": 0.3}, seed=0))
    fs = mml.scalers.fit_transform(mml.scalers.fit_transform(fs, "standard", keys="x"), "minmax", keys="temp")
    fs = mml.scalers.fit_transform(
        mml.scalers.fit_transform(fs, "standard", domain="targets"), "minmax", domain="targets"
    )
    g = ModelGraph.of(
        ModelNode("mlp", SequentialMLP(hidden=(16,)), FeatureSetRef("toy"), optimizer=mml.optim.adam(1e-2))
    )
    plan = PhaseGroup(
        "plan",
        [
            TrainPhase.simple(
                "fit",
                featureset="toy",
                heads=["mlp"],
                losses=AppliedLoss("mse", "mlp"),
                n_epochs=2,
                sampler=mml.SimpleSampler(64),
            ),
            EvalPhase.simple(
                "test", featureset="toy", heads=["mlp"], inverse_transform=True, batch_size=eval_batch
            ),
        ],
    )
    return Experiment({"toy": fs}, g, plan)


@pytest.fixture(scope="module")
def trained() -> tuple[Experiment, mml.TrainState, mml.training.History]:
    exp = _experiment()
    state, history = mml.run(exp, mml.init(exp, 0), progress=False)
    assert history.status == "completed"
    return exp, state, history


def _test_rows(exp: Experiment) -> dict[str, np.ndarray]:
    fs = exp.featuresets["toy"]
    rows = fs.split_indices["test"]
    return {
        "x": fs.column_array("features", "x", "raw")[rows],
        "temp": fs.column_array("features", "temp", "raw")[rows],
    }


def test_predictions_equal_the_eval_phase_bit_for_bit(trained):
    exp, state, history = trained
    expected = history.eval_result("test").outputs["mlp"]
    predictor = mml.export(exp, state)
    got = predictor.predict(_test_rows(exp), batch_size=64)
    assert got.shape == expected.shape == (120, 1)
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected)
    # in raw units: close to the raw targets' scale, not to the [0, 1] of the minmax'd ones
    assert abs(float(got.mean()) - float(history.eval_result("test").targets["mlp"].mean())) < 15


def test_every_input_form_gives_the_same_predictions(trained, tmp_path):
    exp, state, _ = trained
    predictor = mml.export(exp, state)
    raw = _test_rows(exp)
    base = predictor.predict(raw, batch_size=64)
    df = pd.DataFrame({"x": list(raw["x"]), "temp": raw["temp"], "id": np.arange(120)})
    table = pa.table(
        {"x": pa.FixedSizeListArray.from_arrays(pa.array(raw["x"].ravel()), 4), "temp": raw["temp"]}
    )
    pq_path = tmp_path / "new.parquet"
    import pyarrow.parquet as pq

    pq.write_table(table, pq_path, row_group_size=50)
    fs_new = mml.FeatureSet.from_dict(raw, features=["x", "temp"], label="new")
    for source in (df, table, pq_path, str(pq_path), fs_new):
        assert np.array_equal(predictor.predict(source, batch_size=64), base), type(source)
    # another batch size re-blocks the matrix products: equal to float32 rounding, not bit for bit
    assert np.allclose(predictor.predict(pq_path, batch_size=7), base, rtol=1e-5, atol=1e-4)


def test_exported_predictor_keeps_only_what_the_outputs_need(trained):
    exp, state, _ = trained
    predictor = mml.export(exp, state)
    schema = predictor.schemas["toy"]
    assert len(schema) == 0 and not schema.split_indices
    assert [r.describe().partition(" (")[0] for r in schema.records] == [
        "scaler standard on features x",
        "scaler minmax on features temp",
        "scaler standard on targets y",
        "scaler minmax on targets y",
    ]
    assert predictor.graph[("mlp")].optimizer is None
    assert predictor.outputs[0].inverse and predictor.outputs[0].targets == ("y",)
    assert "regression -> raw y" in repr(predictor)


def test_outputs_select_the_ancestor_subgraph():
    x, _, y = _data(200)
    fs = mml.FeatureSet.from_dict({"x": x, "y": y}, features="x", targets="y", label="toy").with_split(
        "train", np.arange(200)
    )
    g = ModelGraph.of(
        ModelNode("enc", SequentialMLP(hidden=(8,), output_shape=(3,)), FeatureSetRef("toy")),
        ModelNode("a", SequentialMLP(hidden=(4,)), NodeRef("enc")),
        ModelNode("b", SequentialMLP(hidden=(4,)), NodeRef("enc")),
    )
    exp = Experiment({"toy": fs}, g, EvalPhase.simple("e", featureset="toy", heads=["enc"], split="train"))
    state = mml.init(exp, 0)
    only_a = mml.export(exp, state, outputs="a")
    assert only_a.graph.topological_order == ("enc", "a") and set(only_a.state.params) == {"enc", "a"}
    both = mml.export(exp, state, outputs=["a", "b", "enc"])
    out = both.predict({"x": x[:5]})
    assert set(out) == {"a", "b", "enc"} and out["enc"].shape == (5, 3)
    assert not both.outputs[2].inverse  # enc's (3,) output does not line up with y
    ref = mml.forward(exp.graph, state.graph, mml.SampleData(features=x[:5]), active_nodes=["a"]).outputs["a"]
    assert np.array_equal(out["a"], ref.detach().numpy())
    with pytest.raises(mml.GraphError, match="'c'"):
        mml.export(exp, state, outputs="c")


def test_long_form_dataframe_groups_like_the_featureset():
    rng = np.random.default_rng(1)
    n_cells, steps = 40, 6
    df = pd.DataFrame(
        {
            "cell": np.repeat(np.arange(n_cells), steps),
            "t": np.tile(np.arange(steps)[::-1], n_cells),
            "v": rng.normal(size=n_cells * steps).astype(np.float32),
            "soh": np.repeat(rng.uniform(0.7, 1.0, n_cells), steps).astype(np.float32),
        }
    )
    fs = mml.FeatureSet.from_pandas(
        df, features="v", targets="soh", label="cells", group_by="cell", sort_by="t"
    )
    fs = mml.scalers.fit_transform(fs.with_split("train", np.arange(n_cells)), "standard")
    g = ModelGraph.of(ModelNode("mlp", SequentialMLP(hidden=(4,)), FeatureSetRef("cells")))
    exp = Experiment(
        {"cells": fs},
        g,
        EvalPhase.simple("e", featureset="cells", heads=["mlp"], split="train", inverse_transform=True),
    )
    state = mml.init(exp, 0)
    predictor = mml.export(exp, state, group_by="cell", sort_by="t")
    shuffled = df.sample(frac=1.0, random_state=0)  # row order must not matter
    got = predictor.predict(shuffled)
    _, history = mml.run(exp, state, progress=False)
    assert np.array_equal(got, history.eval_result("e").outputs["mlp"])
    batches = list(predictor.predict_batches(shuffled, batch_size=16))
    assert [b.n for b in batches] == [16, 16, 8]
    assert np.concatenate([b.ids["cell"] for b in batches]).tolist() == list(range(n_cells))


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        ({"x": np.ones((3, 4), np.float32)}, mml.SchemaError, ["'temp'", "scalars (dtype float64)"]),
        (
            {"x": np.ones((3, 5), np.float32), "temp": np.ones(3)},
            mml.SchemaError,
            ["'x'", "shape (4,)", "(5,)"],
        ),
        (
            {"x": np.ones((3, 4)), "temp": np.array(["a", "b", "c"])},
            mml.DataError,
            ["'temp'", "numeric", "<U1"],
        ),
        ({"x": np.full((3, 4), np.nan), "temp": np.ones(3)}, mml.DataError, ["'x'", "NaN", "rows [0, 1, 2]"]),
        ({"x": np.ones((3, 4)), "temp": np.ones(2)}, mml.DataError, ["different lengths"]),
        ([1, 2, 3], mml.DataError, ["list", "DataFrame"]),
    ],
)
def test_bad_input_names_the_column_and_what_was_expected(trained, data, error, words):
    exp, state, _ = trained
    predictor = mml.export(exp, state)
    with pytest.raises(error) as info:
        predictor.predict(data)
    for w in words:
        assert w in str(info.value)


def test_missing_parquet_column_is_named(trained, tmp_path):
    exp, state, _ = trained
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"temp": [1.0, 2.0]}), tmp_path / "p.parquet")
    with pytest.raises(mml.SchemaError, match=r"'x'.*samples of shape \(4,\)"):
        mml.export(exp, state).predict(tmp_path / "p.parquet")


def test_nan_is_allowed_where_the_training_data_had_it():
    x = np.array([[0.0], [1.0], [np.nan], [3.0]], np.float32)
    fs = mml.FeatureSet.from_dict(
        {"x": x, "y": np.zeros(4, np.float32)}, features="x", targets="y", label="n"
    )
    g = ModelGraph.of(ModelNode("mlp", SequentialMLP(hidden=(2,)), FeatureSetRef("n", rep="raw")))
    exp = Experiment(
        {"n": fs.with_split("train", np.arange(4))},
        g,
        EvalPhase.simple("e", featureset="n", heads=["mlp"], split="train"),
    )
    out = mml.export(exp, mml.init(exp, 0)).predict({"x": x})
    assert np.isnan(out[2, 0]) and np.isfinite(out[[0, 1, 3]]).all()


def test_transform_like_reproduces_the_transformed_columns(trained):
    exp, _, _ = trained
    fs = exp.featuresets["toy"]
    raw = {
        "x": fs.column_array("features", "x", "raw"),
        "temp": fs.column_array("features", "temp", "raw"),
        "y": fs.column_array("targets", "y", "raw"),
    }
    new = mml.transform_like(fs, raw)
    for d, k in (("features", "x"), ("features", "temp"), ("targets", "y")):
        assert np.array_equal(new.column_array(d, k, "transformed"), fs.column_array(d, k, "transformed"))
    assert new.records == fs.records[1:]  # the splitter record is not a transform
    back = mml.scalers.inverse_transform(new, new.to_numpy("targets"))
    assert np.array_equal(back, mml.scalers.inverse_transform(fs, fs.to_numpy("targets")))
    assert np.allclose(back, fs.to_numpy("targets", rep="raw"), rtol=1e-5, atol=1e-4)
    without_targets = mml.transform_like(fs, {"x": raw["x"], "temp": raw["temp"]})
    assert without_targets.keys("targets") == () and all(
        r.domain == "features" for r in without_targets.records
    )


def test_parquet_input_is_streamed_in_bounded_memory(tmp_path):
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    n, width = 100_000, 8
    x = rng.normal(size=(n, width))
    fs = mml.FeatureSet.from_dict({"x": x[:100], "y": x[:100, 0]}, features="x", targets="y", label="big")
    fs = mml.scalers.fit_transform(fs.with_split("train", np.arange(100)), "standard")
    g = ModelGraph.of(ModelNode("mlp", SequentialMLP(hidden=(4,)), FeatureSetRef("big")))
    exp = Experiment({"big": fs}, g, EvalPhase.simple("e", featureset="big", heads=["mlp"], split="train"))
    predictor = mml.export(exp, mml.init(exp, 0))
    table = pa.table({"x": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), width)})
    pq.write_table(table, tmp_path / "big.parquet", row_group_size=4096)
    whole = x.nbytes  # 6.4 MB of float64 features
    del table
    base = pa.total_allocated_bytes()
    peak, rows = 0, 0
    for batch in predictor.predict_batches(tmp_path / "big.parquet", batch_size=4096):
        peak = max(peak, pa.total_allocated_bytes() - base)
        rows += batch.n
    assert rows == n
    assert peak < whole / 3  # a row group or two in Arrow memory at a time, not the file (pre_buffer: 1.4x)
    assert np.allclose(
        predictor.predict(tmp_path / "big.parquet", batch_size=4096)[:5],
        predictor.predict({"x": x[:5]}, batch_size=4096),
        rtol=1e-5,
        atol=1e-6,
    )
