"""Optuna TPE search with median pruning from the trials' epochs, resumable sweep directories, progress."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import attrs
import numpy as np
import pytest

import mml
from mml.strategies import (
    AbstractExecutor,
    Job,
    LocalExecutor,
    LogUniform,
    MedianPruning,
    apply_params,
    run_job,
    search,
    sweep,
    trial_metric_by_epoch,
)

from .conftest import make_experiment

torch = pytest.importorskip("torch")
pytest.importorskip("optuna")

SPACE = {"graph.nodes.mlp.optimizer.lr": LogUniform(1e-5, 1e-1)}


@attrs.frozen
class CountingExecutor(AbstractExecutor):
    """Runs jobs locally and records how many it was given (test only)."""

    kind: ClassVar[str] = "executor.test_counting"
    seen: list = attrs.field(factory=list, eq=False)

    def map(self, jobs: Sequence[object]) -> tuple:
        self.seen.append(len(jobs))
        return LocalExecutor().map(jobs)


@pytest.fixture
def pexp(fs):
    from mml.callbacks import Evaluation

    exp = make_experiment(fs, n_epochs=3)
    return mml.strategies.set_path(exp, "plan.phases.fit.callbacks", (Evaluation(split="val"),))


def _search(exp, **kw):
    kw.setdefault("n_trials", 6)
    return search(
        exp, SPACE, key=1, metric="val/loss", prune_phase="plan.phases.fit", n_startup_trials=2, **kw
    )


def test_tpe_search_prunes_by_the_median_of_earlier_trials_and_replays(pexp):
    res = _search(pexp)
    assert res == _search(pexp)  # same key, same search
    curves = [trial_metric_by_epoch(t, "fit", "val_loss") for t in res.trials]
    pruned = [t for t in res.trials if trial_metric_by_epoch(t, "fit", "pruned")]
    assert pruned and len(pruned) < len(res.trials)  # the rule fired, and not on everything
    for t in res.trials:
        finished = [
            curves[i] for i in range(t.index) if not trial_metric_by_epoch(res.trials[i], "fit", "pruned")
        ]
        at = trial_metric_by_epoch(t, "fit", "pruned")
        if len(finished) < 2:
            assert not at  # startup trials are never pruned
            continue
        for epoch, value in curves[t.index].items():
            median = float(np.median([c[epoch] for c in finished if epoch in c]))
            assert (value > median) == (epoch in at)  # stopped exactly where it was worse than the median
            if epoch in at:
                assert t.status == "stopped" and max(curves[t.index]) == epoch
                break
    # a trial is a plain run from its key and values
    done = next(t for t in res.trials if t.status == "completed")
    replay = run_job(Job(apply_params(pexp, done.params), mml.random.key(1)))
    assert replay.history == done.outcome.history
    best = res.best("val/loss")
    assert best.status == "completed" and best.metric("val/loss") == min(
        t.metric("val/loss") for t in res.trials if t.status == "completed"
    )


def test_a_search_directory_resumes_without_rerunning_finished_trials(pexp, tmp_path, capsys):
    counting = CountingExecutor()
    first = _search(pexp, n_trials=3, directory=tmp_path, executor=counting)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".run")) == [
        "trial-0000",
        "trial-0001",
        "trial-0002",
    ]
    resumed = _search(pexp, n_trials=5, directory=tmp_path, executor=counting, progress=True)
    assert counting.seen == [1, 1, 1, 1, 1]  # 3 trials, then only the 2 new ones
    assert resumed.trials[:3] == first.trials
    assert resumed == _search(pexp, n_trials=5)  # the same as an uninterrupted search
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 5 and lines[-1].startswith("[search] trial 5/5 ") and "ETA 0.0 s" in lines[-1]
    assert "best " in lines[0] and "ETA" in lines[0]
    with pytest.raises(mml.ConfigError, match="other values than this search proposes"):
        search(pexp, SPACE, key=2, metric="val/loss", n_trials=1, directory=tmp_path)


def test_a_sweep_directory_resumes_and_checks_its_trials(exp, tmp_path):
    grid = {"plan.phases.fit.n_epochs": [1, 2]}
    counting = CountingExecutor()
    a = sweep(exp, grid, key=0, directory=tmp_path, executor=counting)
    b = sweep(exp, grid, key=0, directory=tmp_path, executor=counting)
    assert a == b == sweep(exp, grid, key=0) and counting.seen == [2, 0]
    with pytest.raises(mml.ConfigError, match="holds a trial 0 with other values"):
        sweep(exp, {"plan.phases.fit.n_epochs": [3]}, key=0, directory=tmp_path)


def test_median_pruning_is_a_value_and_names_a_missing_monitor(exp):
    cb = MedianPruning("val_loss", "max", (0.5, float("nan")))
    assert mml.io.roundtrip(cb) == cb
    ev = mml.callbacks.Event("on_epoch_end", phase="fit", epoch=0, metrics={"loss": 1.0})
    with pytest.raises(mml.ConfigError, match="add an Evaluation callback"):
        cb.on_epoch_end(ev, cb.init())
    assert (
        cb.on_epoch_end(attrs.evolve(ev, metrics={"val_loss": 0.7}), cb.init()) is None
    )  # max: 0.7 is better
    assert (
        cb.on_epoch_end(attrs.evolve(ev, epoch=1, metrics={"val_loss": 0.1}), cb.init()) is None
    )  # no threshold
