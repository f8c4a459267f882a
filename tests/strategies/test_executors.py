from __future__ import annotations

import io
import sys
import zipfile

import attrs
import pytest

import mml
from mml.strategies import (
    Job,
    LocalExecutor,
    ProcessExecutor,
    RayExecutor,
    cross_validate,
    pack_value,
    run_job,
    run_job_bytes,
    unpack_value,
)
from mml.strategies._jobs import JobReply, outcome_from_reply
from mml.training import ErrorRecord

torch = pytest.importorskip("torch")


def test_process_executor_gives_the_same_results_as_local(exp):
    kw = dict(featureset="toy", splitter=mml.KFoldSplitter(2, seed=0), key=3, keep_states=True)
    local = cross_validate(exp, executor=LocalExecutor(), **kw)
    remote = cross_validate(exp, executor=ProcessExecutor(max_workers=2), **kw)
    assert remote == local
    assert all(r.state == loc.state for r, loc in zip(remote.folds, local.folds))
    assert remote.pooled["val"] == local.pooled["val"]


def test_job_bytes_round_trip_in_process(exp):
    job = Job(exp, mml.random.key(1))
    assert unpack_value(pack_value(job), Job) == job
    reply = run_job_bytes(pack_value(job))
    assert outcome_from_reply(reply) == run_job(job)


def test_ray_executor_without_ray_says_how_to_install_it(exp, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(mml.BackendError, match=r"pip install 'mml\[ray\]'"):
        RayExecutor().map([Job(exp, mml.random.key(0))])


def test_worker_errors_come_back_as_failed_outcomes_with_their_record():
    bad = outcome_from_reply(run_job_bytes(b"not a zip"))
    assert bad.status == "failed" and not bad.ok and bad.metrics() == {}
    assert (
        bad.failure.type == "mml.errors:ArtifactError" and "not a packed mml artifact" in bad.failure.message
    )
    assert bad.error.startswith("ArtifactError: ")
    rec = ErrorRecord("mml.errors:ShapeError", "mlp: 3 != 4", "fit", 0, 2)
    back = outcome_from_reply(pack_value(JobReply(failure=rec)))
    assert back.failure == rec and back.history.status == "failed"
    assert outcome_from_reply(b"garbage").failure.type == "mml.errors:ArtifactError"
    assert "neither" in outcome_from_reply(pack_value(JobReply())).failure.message


def test_a_job_that_cannot_run_is_a_failed_outcome_not_a_crash(exp):
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import TorchModule

    # a module built for 7 input features on 3-feature data: torch raises inside the run
    linear = TorchModule("torch.nn:Linear", {"in_features": 7, "out_features": 1}, output_shape=(1,))
    broken = attrs.evolve(
        exp, graph=ModelGraph.of(ModelNode("mlp", linear, FeatureSetRef("toy"), optimizer=mml.optim.sgd(0.1)))
    )
    # torch's error inside the run is the run's failure (mml.run never raises for it), named with a hint
    out = run_job(Job(broken, mml.random.key(0)))
    assert out.status == "failed" and "shapes cannot be multiplied" in out.failure.message
    assert "7" in out.failure.message and "output_shape" in out.failure.message
    jobs = [Job(exp, mml.random.key(0)), Job(broken, mml.random.key(0))]
    local = LocalExecutor().map(jobs)
    assert local[0] == run_job(jobs[0])
    assert local[1].status == "failed" and local[1].failure is not None and local[1].metrics() == {}
    # the worker function answers the same failed outcome
    assert [outcome_from_reply(run_job_bytes(pack_value(j))) for j in jobs] == list(local)


def test_unpacking_refuses_unsafe_archives():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.json", "{}")
    with pytest.raises(mml.ArtifactError, match="unsafe path"):
        unpack_value(buf.getvalue())
    with pytest.raises(mml.ArtifactError, match="is bytes"):
        unpack_value("text")  # type: ignore[arg-type]


def test_executors_are_values():
    for ex in (
        LocalExecutor(),
        ProcessExecutor(2, "forkserver"),
        RayExecutor("ray://h:10001", 0.5),
        RayExecutor(shared_dir="/mnt/shared/jobs", max_retries=0),
    ):
        assert mml.io.roundtrip(ex) == ex and hash(ex) == hash(mml.io.roundtrip(ex))
    with pytest.raises(mml.ConfigError, match="max_workers must be an int >= 1"):
        ProcessExecutor(0)
    with pytest.raises(mml.ConfigError, match="start_method must be one of"):
        ProcessExecutor(2, "thread")
    with pytest.raises(mml.ConfigError, match="num_cpus_per_trial must be a number > 0"):
        RayExecutor(num_cpus_per_trial=0)
    with pytest.raises(mml.ConfigError, match="shared_dir takes a directory path"):
        RayExecutor(shared_dir="")
    with pytest.raises(mml.ConfigError, match="max_retries must be an int >= 0"):
        RayExecutor(max_retries=-1)
    assert LocalExecutor().map([]) == () and ProcessExecutor(1).map([]) == ()
