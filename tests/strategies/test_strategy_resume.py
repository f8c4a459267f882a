"""Resumable cross-validation and sweeps (issue 9) and their observers (issue 13).

A CV killed mid-fold (SIGKILL, in a subprocess) and run again equals the uninterrupted CV:
``==`` on the CVResult (states compared tensor by tensor), every tensor of every fold state
bit for bit, every History row. Finished folds and trials are loaded, not recomputed; an
interrupted one continues from its newest checkpoint; a directory of another run is an error.
Observers of folds and trials are read back with TensorBoard's and MLflow's own readers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import ClassVar

import attrs
import numpy as np
import pytest

import mml
from mml.io._artifact import to_document
from mml.observers import AbstractObserver, JSONLLogger
from mml.splitters import KFoldSplitter
from mml.strategies import AbstractExecutor, LocalExecutor, cross_validate, sweep
from mml.training import _checkpoints

from .conftest import make_experiment, make_featureset

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
N_EPOCHS = 12  # 32 training rows per fold, batches of 16: 24 steps per fold


def cv_experiment() -> mml.Experiment:
    return make_experiment(make_featureset(), n_epochs=N_EPOCHS)


def run_cv(directory=None, **kwargs):
    return cross_validate(
        cv_experiment(),
        featureset="toy",
        splitter=KFoldSplitter(3, seed=0),
        key=7,
        keep_states=True,
        directory=directory,
        **kwargs,
    )


@pytest.fixture(scope="module")
def reference():
    return run_cv()


def assert_same_tensors(a, b) -> None:
    """Every array/tensor leaf of two values, bit for bit (and the same documents around them)."""
    doc_a, arrays_a, _ = to_document(a)
    doc_b, arrays_b, _ = to_document(b)
    assert doc_a == doc_b
    assert sorted(arrays_a) == sorted(arrays_b) and arrays_a
    for name in arrays_a:
        assert arrays_a[name].dtype == arrays_b[name].dtype
        assert np.array_equal(arrays_a[name], arrays_b[name]), name


def assert_same_cv(got, want) -> None:
    assert got == want
    for fa, fb in zip(got.folds, want.folds):
        assert fa.history.rows() == fb.history.rows()
        assert_same_tensors(fa.state, fb.state)
        for name, t in fa.state.graph.params["mlp"].params.items():
            assert torch.equal(t, fb.state.graph.params["mlp"].params[name]), name


@attrs.frozen
class CountingExecutor(AbstractExecutor):
    """Runs jobs locally and records how many it was given (test only)."""

    kind: ClassVar[str] = "executor.test_resume_counting"
    seen: list = attrs.field(factory=list, eq=False)

    def map(self, jobs):
        self.seen.append(len(jobs))
        return LocalExecutor().map(jobs)


@pytest.fixture
def started(monkeypatch):
    """The checkpoint every job started from (``None``: a fresh ``mml.init``)."""
    seen: list = []
    real = mml.training.latest_checkpoint

    def spy(directory):
        found = real(directory)
        seen.append(found)
        return found

    monkeypatch.setattr(mml.training, "latest_checkpoint", spy)
    return seen


CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from mml.training import _checkpoints
real = _checkpoints.CheckpointWriter._policy_save

def slow(self, *args, **kwargs):  # an effect only: the numbers are the same
    real(self, *args, **kwargs)
    time.sleep(0.04)

_checkpoints.CheckpointWriter._policy_save = slow
from tests.strategies.test_strategy_resume import run_cv
run_cv(sys.argv[1], checkpoint=2)
"""


def test_a_sigkilled_cross_validation_resumes_to_the_uninterrupted_result(reference, tmp_path, started):
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD.format(root=str(ROOT))))
    out = tmp_path / "cv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(out)], env=env)
    index = out / "fold-1" / "checkpoints" / _checkpoints.INDEX
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:  # poll the checkpoint index of fold 1
            try:
                names = json.loads(index.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                names = []
            if any(n.endswith(("-step-8", "-step-10", "-step-12")) for n in names):
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the CV finished before it could be killed"
    assert (out / "fold-0" / "result").is_dir() and not (out / "fold-1" / "result").exists()
    assert not (out / "fold-0" / "checkpoints").exists()  # a finished fold's checkpoints are dropped
    mtime = (out / "fold-0" / "result" / "manifest.json").stat().st_mtime_ns
    cut = mml.load(_checkpoints.latest_checkpoint(out / "fold-1" / "checkpoints"))
    assert 0 < cut.step < 2 * N_EPOCHS

    counting = CountingExecutor()
    resumed = run_cv(out, checkpoint=2, executor=counting)
    assert counting.seen == [2]  # fold 0 loaded; folds 1 and 2 ran
    assert (out / "fold-0" / "result" / "manifest.json").stat().st_mtime_ns == mtime  # not rewritten
    assert started[0] is not None and started[0].parent == out / "fold-1" / "checkpoints"  # fold 1 continued
    assert started[1] is None  # fold 2 had not started
    assert_same_cv(resumed, reference)
    again = run_cv(out, executor=counting)  # everything loaded now
    assert counting.seen == [2, 0]
    assert_same_cv(again, reference)


def test_a_cv_directory_of_another_run_is_refused(tmp_path):
    exp = cv_experiment()
    kw = {"featureset": "toy", "directory": tmp_path}
    cross_validate(exp, splitter=KFoldSplitter(2, seed=0), key=0, **kw)
    for other in (
        {"splitter": KFoldSplitter(2, seed=1), "key": 0},
        {"splitter": KFoldSplitter(2, seed=0), "key": 1},
    ):
        with pytest.raises(mml.ConfigError, match=r"fold-0' holds fold 0 of another run"):
            cross_validate(exp, **other, **kw)
    with pytest.raises(mml.ConfigError, match="needs directory="):
        cross_validate(exp, splitter=KFoldSplitter(2, seed=0), key=0, featureset="toy", checkpoint=5)
    with pytest.raises(mml.ConfigError, match=r"takes mml\.observers\.AbstractObserver"):
        cross_validate(exp, splitter=KFoldSplitter(2, seed=0), key=0, featureset="toy", observers=[print])


def test_an_interrupted_sweep_trial_continues_from_its_checkpoint(tmp_path, monkeypatch, started):
    exp = make_experiment(make_featureset(), n_epochs=4)
    grid = {"plan.phases.fit.n_epochs": [3, 4]}
    want = sweep(exp, grid, key=0, keep_states=True)
    real = _checkpoints.CheckpointWriter._policy_save
    calls = []

    def interrupt(self, name, *args):  # the process dies right after the 5th checkpoint of trial 1
        real(self, name, *args)
        calls.append(name)
        if "trial-0001" in str(self.root) and len(calls) > 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(_checkpoints.CheckpointWriter, "_policy_save", interrupt)
    with pytest.raises(KeyboardInterrupt):
        sweep(exp, grid, key=0, keep_states=True, directory=tmp_path, checkpoint=1)
    monkeypatch.setattr(_checkpoints.CheckpointWriter, "_policy_save", real)
    assert (tmp_path / "trial-0000").is_dir() and not (tmp_path / "trial-0001").exists()
    started.clear()
    counting = CountingExecutor()
    got = sweep(exp, grid, key=0, keep_states=True, directory=tmp_path, checkpoint=1, executor=counting)
    assert counting.seen == [1] and len(started) == 1 and started[0] is not None
    assert got == want
    for a, b in zip(got.trials, want.trials):
        assert a.outcome.history.rows() == b.outcome.history.rows()
        assert_same_tensors(a.outcome.state, b.outcome.state)
    with pytest.raises(mml.ConfigError, match="holds trial 0 of another run"):
        sweep(exp, grid, key=1, directory=tmp_path)


class Labels(AbstractObserver):
    """Records the sub-runs it was asked for and every row their events carried."""

    def __init__(self):
        self.runs: dict[str, list] = {}
        self.closed = []

    def subrun(self, label, params=None):
        rows = self.runs.setdefault(label, [])
        outer = self

        class Child(AbstractObserver):
            def observe(self, state, ctx):
                rows.extend(mml.observers.rows_of(ctx, state))

            def close(self, history=None):
                outer.closed.append((label, history.status))

        return Child()

    def close(self, history=None):
        self.closed.append(("all", history.status))


def _history_rows(h):
    return [(p, e, b, s, n, v) for p, e, b, s, n, v in h.rows()]


def test_observers_get_every_fold_and_read_back_equal_the_histories(tmp_path):
    pytest.importorskip("tensorboardX")
    ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    from mml.observers import MLflowLogger, TensorBoardLogger

    exp = make_experiment(make_featureset(), n_epochs=2)
    labels = Labels()
    jsonl = JSONLLogger(tmp_path / "m.jsonl")
    tb = TensorBoardLogger(tmp_path / "tb")
    mlf = MLflowLogger(tmp_path / "mlruns", experiment="cv", run_name="cv")
    res = cross_validate(
        exp,
        featureset="toy",
        splitter=KFoldSplitter(3, seed=0),
        key=0,
        directory=tmp_path / "cv",
        observers=[labels, jsonl, tb, mlf],
    )
    assert sorted(labels.runs) == ["fold-0", "fold-1", "fold-2"]
    assert labels.closed[-1] == ("all", "completed") and len(labels.closed) == 4
    client = MlflowClient(tracking_uri=mlf.tracking_uri)
    children = client.search_runs(
        [client.get_run(mlf.run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{mlf.run_id}'",
    )
    by_name = {r.info.run_name: r for r in children}
    assert sorted(by_name) == ["fold-0", "fold-1", "fold-2"]
    assert client.get_run(mlf.run_id).info.status == "FINISHED"
    for fold in res.folds:
        label = f"fold-{fold.fold}"
        h = fold.history
        rows = [(p, e, b, s, n, v) for p, _ev, e, b, s, n, v in labels.runs[label]]
        assert rows == _history_rows(h)  # every phase's rows, batch and epoch level, in order
        lines = [json.loads(x) for x in (tmp_path / f"m-{label}.jsonl").read_text().splitlines()]
        assert [(r["phase"], r["epoch"], r["batch"], r["step"], r["name"], r["value"]) for r in lines] == rows
        assert {r["event"] for r in lines} == {"batch", "epoch_end", "eval"}
        acc = ea_mod.EventAccumulator(str(tmp_path / "tb" / label))
        acc.Reload()
        want = h.epochs().where(phase="fit", name="loss")
        got = acc.Scalars("fit/loss")
        assert [e.step for e in got] == want.step.tolist()
        np.testing.assert_allclose([e.value for e in got], want.value, rtol=1e-6)  # float32 in the file
        val = (
            acc.Scalars("val/mlp.mse") if "val/mlp.mse" in acc.Tags()["scalars"] else acc.Scalars("val/loss")
        )
        assert len(val) == 1
        run = by_name[label]
        assert run.info.status == "FINISHED" and run.data.params == {"fold": str(fold.fold)}
        mh = sorted(client.get_metric_history(run.info.run_id, "fit/loss"), key=lambda m: m.step)
        assert [m.value for m in mh] == want.value.tolist()

    # a rerun loads every fold and feeds the observers the same rows (the logs are rewritten whole)
    again = Labels()
    cross_validate(
        exp,
        featureset="toy",
        splitter=KFoldSplitter(3, seed=0),
        key=0,
        directory=tmp_path / "cv",
        observers=[again],
    )
    assert again.runs == labels.runs


def test_sweep_observers_name_each_trial_with_its_values(tmp_path):
    exp = make_experiment(make_featureset(), n_epochs=1)
    labels = Labels()
    res = sweep(
        exp,
        {"plan.phases.fit.n_epochs": [1, 2]},
        key=0,
        observers=[labels, JSONLLogger(tmp_path / "s.jsonl")],
    )
    assert sorted(labels.runs) == ["trial-0000", "trial-0001"]
    for t in res.trials:
        label = f"trial-{t.index:04d}"
        rows = [(p, e, b, s, n, v) for p, _ev, e, b, s, n, v in labels.runs[label]]
        assert rows == _history_rows(t.outcome.history) and rows
        assert len((tmp_path / f"s-{label}.jsonl").read_text().splitlines()) == len(rows)
