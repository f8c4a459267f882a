from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import attrs
import numpy as np
import pytest

import mml
from mml.strategies import (
    AbstractExecutor,
    Choice,
    IntUniform,
    LocalExecutor,
    LogUniform,
    SweepResult,
    apply_params,
    sweep,
)

torch = pytest.importorskip("torch")

GRID = {"plan.phases.fit.n_epochs": [1, 2], "graph.nodes.mlp.model.hidden": [(2,), (6, 3)]}


@attrs.frozen
class RefusingExecutor(AbstractExecutor):
    """Fails the test if it is asked to run anything."""

    kind: ClassVar[str] = "executor.test_refuse"

    def map(self, jobs: Sequence[object]) -> tuple:
        raise AssertionError(f"{len(jobs)} jobs were run although the sweep is invalid")


def test_grid_sweep_runs_every_combination_with_its_values(exp):
    res = sweep(exp, GRID, key=0)
    assert [t.params for t in res.trials] == [
        {"plan.phases.fit.n_epochs": 1, "graph.nodes.mlp.model.hidden": (2,)},
        {"plan.phases.fit.n_epochs": 1, "graph.nodes.mlp.model.hidden": (6, 3)},
        {"plan.phases.fit.n_epochs": 2, "graph.nodes.mlp.model.hidden": (2,)},
        {"plan.phases.fit.n_epochs": 2, "graph.nodes.mlp.model.hidden": (6, 3)},
    ]
    for t in res.trials:
        epochs = t.outcome.history.where(phase="fit").epochs().epoch
        assert len(np.unique(epochs)) == t.params["plan.phases.fit.n_epochs"]
    df = res.to_pandas()
    assert list(df.columns[:4]) == ["trial", "status", *GRID]
    assert len(df) == 4 and "val/loss" in df.columns and "val/mlp/r2" in df.columns


def test_best_and_ranking(exp):
    res = sweep(exp, GRID, key=0)
    losses = [t.metric("val/loss") for t in res.trials]
    assert res.best("val/loss").index == int(np.argmin(losses))
    assert res.best("val/mlp/r2", mode="max").index == int(
        np.argmax([t.metric("val/mlp/r2") for t in res.trials])
    )
    ranked = res.ranked("val/loss")
    assert [t.metric("val/loss") for t in ranked] == sorted(losses)
    assert res.best("fit/loss").metric("fit/loss") == min(t.metric("fit/loss") for t in res.trials)
    with pytest.raises(mml.ConfigError, match="qualify it as 'phase/loss'"):
        res.best("loss")
    with pytest.raises(
        mml.TrainingError, match="no successful trial logged metric 'nope'; metrics logged: fit/loss"
    ):
        res.best("nope")
    with pytest.raises(mml.ConfigError, match="mode must be 'min' or 'max'"):
        res.best("val/loss", mode="lowest")


def test_sweeps_are_pure_deterministic_and_replayable(exp):
    before = mml.io.roundtrip(exp)
    a = sweep(exp, GRID, key=7, keep_states=True)
    assert exp == before
    assert a == sweep(exp, GRID, key=7, keep_states=True)
    # shared_key: every trial is the plain run of its experiment from mml.init(exp_t, key)
    t = a.trials[3]
    exp_t = apply_params(exp, t.params)
    state, history = mml.run(exp_t, mml.init(exp_t, 7), progress=False)
    assert state == t.outcome.state and history == t.outcome.history
    b = sweep(exp, GRID, key=7, shared_key=False)
    assert b.trials[0].outcome.history != a.trials[0].outcome.history


def test_random_search_draws_from_distributions(exp):
    space = {
        "graph.nodes.mlp.optimizer.lr": LogUniform(1e-4, 1e-1),
        "graph.nodes.mlp.model.hidden": Choice([(2,), (4, 4)]),
        "plan.phases.fit.n_epochs": IntUniform(1, 2),
    }
    res = sweep(exp, space, key=1, n_trials=3)
    assert len(res.trials) == 3
    for t in res.trials:
        assert 1e-4 <= t.params["graph.nodes.mlp.optimizer.lr"] <= 1e-1
        assert t.params["graph.nodes.mlp.model.hidden"] in ((2,), (4, 4))
    assert res == sweep(exp, space, key=1, n_trials=3)
    assert res != sweep(exp, space, key=2, n_trials=3)


def test_sweep_results_round_trip(exp):
    res = sweep(exp, {"graph.nodes.mlp.optimizer": [mml.optim.adam(1e-3), mml.optim.sgd(1e-2)]}, key=0)
    back = mml.io.roundtrip(res)
    assert back == res and back.trials[1].params["graph.nodes.mlp.optimizer"] == mml.optim.sgd(1e-2)
    small = sweep(exp, {"plan.phases.fit.n_epochs": [1]}, key=0, executor=LocalExecutor())
    assert mml.io.roundtrip(small) == small
    assert isinstance(small, SweepResult) and small.to_pandas().shape[0] == 1


def test_invalid_sweeps_fail_before_anything_runs(exp):
    refuse = RefusingExecutor()
    with pytest.raises(mml.ConfigError, match="has no field 'n_epoch'"):
        sweep(exp, {"plan.phases.fit.n_epoch": [1, 2]}, key=0, executor=refuse)
    with pytest.raises(mml.ConfigError, match="n_epochs must be an int >= 1"):
        sweep(exp, {"plan.phases.fit.n_epochs": [1, 0]}, key=0, executor=refuse)
    with pytest.raises(mml.ConfigError, match="no finite grid"):
        sweep(exp, {"graph.nodes.mlp.optimizer.lr": LogUniform(1e-4, 1e-1)}, key=0, executor=refuse)
    with pytest.raises(mml.ConfigError, match="sweep takes an Experiment"):
        sweep("exp", GRID, key=0)  # type: ignore[arg-type]


def test_progress_prints_a_line_per_finished_trial_with_an_eta(exp, capsys):
    grid = {"plan.phases.fit.n_epochs": [1, 2, 1]}
    assert sweep(exp, grid, key=0, progress=True) == sweep(exp, grid, key=0)  # an effect only
    lines = capsys.readouterr().err.strip().splitlines()
    assert [ln.split(" after ")[0] for ln in lines] == [
        "[sweep] trial 1/3 completed",
        "[sweep] trial 2/3 completed",
        "[sweep] trial 3/3 completed",
    ]
    assert lines[0].endswith(" s") and "1 done, ETA " in lines[0] and lines[-1].endswith("3 done, ETA 0.0 s")
    mml.strategies.cross_validate(exp, featureset="toy", splitter=mml.KFoldSplitter(2), key=0, progress=True)
    assert capsys.readouterr().err.count("[cv] fold ") == 2
