"""RayExecutor against a real local Ray (one start for the whole module: ``num_cpus=2``)."""

from __future__ import annotations

import os

import attrs
import pytest

import mml
from mml.strategies import Job, LocalExecutor, RayExecutor, cross_validate, sweep

torch = pytest.importorskip("torch")
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    # workers are separate processes: they import this checkout's mml through PYTHONPATH
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
        log_to_driver=False,
        configure_logging=False,
    )
    yield
    ray.shutdown()


def test_cv_folds_on_ray_equal_the_local_executor_bit_for_bit(exp):
    kw = dict(featureset="toy", splitter=mml.KFoldSplitter(2, seed=0), key=3, keep_states=True)
    local = cross_validate(exp, executor=LocalExecutor(), **kw)
    on_ray = cross_validate(exp, executor=RayExecutor(), **kw)
    assert on_ray == local
    assert all(r.state == loc.state for r, loc in zip(on_ray.folds, local.folds))
    assert on_ray.pooled["val"] == local.pooled["val"]


def test_sweep_trials_on_ray_from_shared_storage_equal_local_and_failures_are_failed_trials(
    exp, tmp_path, capsys
):
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import TorchModule

    grid = {"graph.nodes.mlp.optimizer.lr": [1e-2, 1e30]}  # the second trial's loss overflows
    local = sweep(exp, grid, key=0)
    shared = RayExecutor(shared_dir=os.fspath(tmp_path / "jobs"), max_retries=0)
    on_ray = sweep(exp, grid, key=0, executor=shared, progress=True)
    assert on_ray == local
    progress = capsys.readouterr().err
    assert "trial 1/2 completed" in progress and "trial 2/2 failed" in progress  # as each task finished
    ok, blown = on_ray.trials
    assert ok.status == "completed" and blown.status == "failed"
    assert blown.outcome.failure.type == "mml.errors:TrainingError"
    assert blown.outcome.failure.phase == "fit" and "non-finite loss" in blown.outcome.failure.message
    with pytest.raises(mml.TrainingError, match=r"1 of 2 sweep trials failed: trial 1: TrainingError"):
        on_ray.raise_for_status()
    assert not list((tmp_path / "jobs").iterdir())  # the job artifacts are cleaned up

    # a worker that dies (the module factory aborts the process) is a failed job, not a crashed sweep
    dying = ModelGraph.of(
        ModelNode(
            "mlp",
            TorchModule("os:abort", output_shape=(1,)),
            FeatureSetRef("toy"),
            optimizer=mml.optim.sgd(0.1),
        )
    )
    jobs = [Job(exp, mml.random.key(0)), Job(attrs.evolve(exp, graph=dying), mml.random.key(0))]
    good, dead = RayExecutor(max_retries=0).map(jobs)
    assert good == LocalExecutor().map(jobs[:1])[0]
    assert dead.status == "failed" and dead.failure.type.startswith("ray.exceptions:")


def test_a_pruned_search_on_ray_equals_the_local_one(fs):
    pytest.importorskip("optuna")
    from mml.callbacks import Evaluation
    from mml.strategies import LogUniform, search, set_path

    from .conftest import make_experiment

    exp = set_path(make_experiment(fs, n_epochs=3), "plan.phases.fit.callbacks", (Evaluation(split="val"),))
    kw = dict(n_trials=5, key=1, metric="val/loss", prune_phase="plan.phases.fit", n_startup_trials=2)
    space = {"graph.nodes.mlp.optimizer.lr": LogUniform(1e-5, 1e-1)}
    local = search(exp, space, **kw)
    assert search(exp, space, executor=RayExecutor(), **kw) == local
    assert any(t.status == "stopped" for t in local.trials)  # the MedianPruning callback ran in the workers
