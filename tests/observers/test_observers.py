"""Observers are effects only, and what each logger wrote reads back equal to the History."""

import io
import json

import numpy as np
import pytest

import mml
from mml.observers import CSVLogger, JSONLLogger, ProgressDisplay

from ..training.conftest import make_featureset, simple_experiment

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def exp():
    es = mml.callbacks.Evaluation(split="val", metrics=("mae",))
    return simple_experiment(make_featureset(), n_epochs=3, callbacks=[es])


@pytest.fixture(scope="module")
def baseline(exp):
    return mml.run(exp, mml.init(exp, 0), progress=False)


def _history_rows(history):
    return {(p, e, b, s, n, round(v, 12)) for p, e, b, s, n, v in history.rows()}


def test_jsonl_and_csv_hold_every_history_row(exp, baseline, tmp_path):
    state, history = baseline
    j, c = JSONLLogger(tmp_path / "m.jsonl"), CSVLogger(tmp_path / "m.csv")
    s2, h2 = mml.run(exp, mml.init(exp, 0), progress=False, observers=[j, c])
    assert s2 == state and h2 == history  # effects never change the numbers
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    got = {(r["phase"], r["epoch"], r["batch"], r["step"], r["name"], round(r["value"], 12)) for r in rows}
    assert _history_rows(history) <= got
    assert {r["event"] for r in rows} == {"batch", "epoch_end"}
    n_batches = len(history.batches().where(name="loss"))
    assert sum(r["event"] == "batch" and r["name"] == "loss" for r in rows) == n_batches > 3
    import csv

    with open(tmp_path / "m.csv", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == len(rows)
    assert [float(r["value"]) for r in csv_rows] == [r["value"] for r in rows]


def test_batches_false_writes_epoch_rows_only(exp, tmp_path):
    log = JSONLLogger(tmp_path / "e.jsonl", batches=False)
    mml.run(exp, mml.init(exp, 0), progress=False, observers=[log])
    events = {json.loads(line)["event"] for line in (tmp_path / "e.jsonl").read_text().splitlines()}
    assert events == {"epoch_end"}


def test_tensorboard_event_file_reads_back(exp, baseline, tmp_path):
    pytest.importorskip("tensorboardX")
    ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    from mml.observers import TensorBoardLogger

    state, history = baseline
    tb = TensorBoardLogger(tmp_path / "tb", batches=True)
    s2, _ = mml.run(exp, mml.init(exp, 0), progress=False, observers=[tb])
    assert s2 == state
    acc = ea_mod.EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"fit/loss", "fit/val_loss", "fit/val_mae", "fit/batch/loss"} <= tags
    for name in ("loss", "val_loss", "val_mae"):
        want = history.epochs().where(name=name)
        got = acc.Scalars(f"fit/{name}")
        assert [e.step for e in got] == want.step.tolist()
        np.testing.assert_allclose([e.value for e in got], want.value, rtol=1e-6)  # float32 in the file
    assert len(acc.Scalars("fit/batch/loss")) == len(history.batches().where(name="loss"))


def test_mlflow_run_reads_back(exp, baseline, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    from mml.observers import MLflowLogger

    state, history = baseline
    logger = MLflowLogger(tmp_path / "mlruns", experiment="obs-test", run_name="r0", params={"lr": 0.01})
    s2, _ = mml.run(exp, mml.init(exp, 0), progress=False, observers=[logger])
    assert s2 == state
    client = MlflowClient(tracking_uri=logger.tracking_uri)
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED" and run.data.params == {"lr": "0.01"}
    for name in ("loss", "val_loss", "val_mae"):
        want = history.epochs().where(name=name)
        got = sorted(client.get_metric_history(logger.run_id, f"fit/{name}"), key=lambda m: m.step)
        assert [m.step for m in got] == want.step.tolist()
        assert [m.value for m in got] == want.value.tolist()


def test_progress_line_fits_80_columns_and_says_where(exp):
    buf = io.StringIO()
    mml.run(exp, mml.init(exp, 0), progress=False, observers=[ProgressDisplay(width=80, file=buf)])
    lines = [line for line in buf.getvalue().splitlines() if line.strip()]
    assert lines and all(len(line) <= 80 for line in lines)
    assert "fit (completed)" in lines[-1] and "ep 3/3" in lines[-1]


def test_non_observers_are_refused(exp):
    with pytest.raises(mml.ConfigError, match="AbstractObserver"):
        mml.run(exp, mml.init(exp, 0), progress=False, observers=[print])


def test_progress_line_layout():
    from mml.observers import progress_line

    for width in (40, 60, 80, 110, 200):
        line = progress_line(
            width,
            phase="train",
            epoch=4,
            n_epochs=10,
            batch=9,
            n_batches=20,
            elapsed=10.0,
            batch_loss=0.5,
            epoch_metrics={"val_loss": 0.25, "val_r2": 0.9},
        )
        assert len(line) <= width
        # where the run is comes first and survives every width
        assert line.startswith("train") and "ep 5/10" in line and "b 10/20" in line
    wide = progress_line(200, phase="t", epoch=4, n_epochs=10, batch=9, n_batches=20, elapsed=10.0)
    # 4.5 of 10 epochs in 10 s: 12.2 s left
    assert "0:10<0:12" in wide
