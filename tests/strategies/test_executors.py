from __future__ import annotations

import io
import sys
import types
import zipfile

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
    assert outcome_from_reply(reply, 0) == run_job(job)


class _FakeRay(types.ModuleType):
    """Just enough of the Ray API to run tasks in-process: checks that RayExecutor sends bytes only."""

    def __init__(self) -> None:
        super().__init__("ray")
        self.started = False
        self.sent: list[object] = []

    def is_initialized(self) -> bool:
        return self.started

    def init(self, address=None, ignore_reinit_error=False) -> None:
        self.started = True
        self.address = address

    def remote(self, num_cpus=1):
        def wrap(fn):
            outer = self

            class Task:
                def remote(self, payload):
                    assert isinstance(payload, bytes)
                    outer.sent.append(payload)
                    return fn(payload)

            self.num_cpus = num_cpus
            return Task()

        return wrap

    def get(self, refs):
        return list(refs)


def test_ray_executor_uses_the_document_job_function(exp, monkeypatch):
    fake = _FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    kw = dict(featureset="toy", splitter=mml.KFoldSplitter(2, seed=0), key=3)
    res = cross_validate(exp, executor=RayExecutor(address="auto", num_cpus_per_trial=2), **kw)
    assert res == cross_validate(exp, **kw)
    assert fake.started and fake.address == "auto" and fake.num_cpus == 2 and len(fake.sent) == 2


def test_ray_executor_without_ray_says_how_to_install_it(exp, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(mml.BackendError, match=r"pip install 'mml\[ray\]'"):
        RayExecutor().map([Job(exp, mml.random.key(0))])


def test_worker_errors_come_back_as_mml_errors():
    reply = run_job_bytes(b"not a zip")
    with pytest.raises(mml.ArtifactError, match="job 4 failed in a worker with ArtifactError"):
        outcome_from_reply(reply, 4)
    with pytest.raises(mml.ShapeError, match="mlp: 3 != 4"):
        outcome_from_reply(pack_value(JobReply(error_type="ShapeError", error_message="mlp: 3 != 4")), 0)
    with pytest.raises(mml.TrainingError, match="with RuntimeError: boom"):
        outcome_from_reply(pack_value(JobReply(error_type="RuntimeError", error_message="boom")), 0)


def test_unpacking_refuses_unsafe_archives():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.json", "{}")
    with pytest.raises(mml.ArtifactError, match="unsafe path"):
        unpack_value(buf.getvalue())
    with pytest.raises(mml.ArtifactError, match="is bytes"):
        unpack_value("text")  # type: ignore[arg-type]


def test_executors_are_values():
    for ex in (LocalExecutor(), ProcessExecutor(2, "forkserver"), RayExecutor("ray://h:10001", 0.5)):
        assert mml.io.roundtrip(ex) == ex and hash(ex) == hash(mml.io.roundtrip(ex))
    with pytest.raises(mml.ConfigError, match="max_workers must be an int >= 1"):
        ProcessExecutor(0)
    with pytest.raises(mml.ConfigError, match="start_method must be one of"):
        ProcessExecutor(2, "thread")
    with pytest.raises(mml.ConfigError, match="num_cpus_per_trial must be a number > 0"):
        RayExecutor(num_cpus_per_trial=0)
    assert LocalExecutor().map([]) == () and ProcessExecutor(1).map([]) == ()
