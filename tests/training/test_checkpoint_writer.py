"""The checkpoint writer: the History's encoding, the background writes, their errors and kills.

Resume equality for every step's checkpoint (written by this writer) is in ``test_resume.py``.
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

import attrs
import numpy as np
import pytest

import mml
from mml.callbacks import Checkpointing
from mml.errors import ArtifactError
from mml.training import History, checkpoint_history, latest_checkpoint
from mml.training._checkpoints import CheckpointHistory, _Encoder, with_history

torch = pytest.importorskip("torch")

ROWS = [
    ("fit", 0, 0, 1, "loss", 0.5),
    ("fit", 0, 0, 1, "mae", 0.25),
    ("fit", 0, -1, 1, "val_loss", float("nan")),
    ("fine-tune-longer", 1, 0, 2, "loss", 0.125),
]


def test_checkpoint_history_gives_the_history_back_row_for_row_and_dtype_for_dtype():
    h = History.from_rows(ROWS, status="stopped")
    c = CheckpointHistory.of(h)
    assert c.phase_labels == ("fine-tune-longer", "fit") and c.name_labels == ("loss", "mae", "val_loss")
    assert c.phase.dtype == np.int32 and c.phase.tolist() == [1, 1, 1, 0]
    back = mml.io.roundtrip(c).to_history()
    assert back == h and back.status == "stopped"
    assert back.phase.dtype == h.phase.dtype == np.dtype("<U16") and back.name.dtype == np.dtype("<U8")
    empty = CheckpointHistory.of(History()).to_history()
    assert empty == History() and empty.phase.dtype == History().phase.dtype


def test_the_incremental_encoding_equals_encoding_the_whole_history_at_every_checkpoint():
    before = History.from_rows(ROWS[:2])
    rows: list = []
    enc = _Encoder()
    for row in [*ROWS, ("fit", 2, 0, 3, "a-new-metric", 1.0)]:
        rows.append(row)
        got = enc.encode(before, rows).to_history()
        assert got == before.merge(History.from_rows(rows)), len(rows)
        assert got.name.dtype == before.merge(History.from_rows(rows)).name.dtype
    other = History.from_rows(ROWS[3:])  # the next phase: a new `before` and a new list start over
    assert enc.encode(other, []).to_history() == other


def _positioned():
    from mml.training import Position

    exp = _small_experiment()
    return attrs.evolve(mml.init(exp, 0), position=Position("p", "plan/fit"))


def test_a_checkpoint_carries_its_history_in_binary_arrays_not_json_strings(tmp_path):
    h = History.from_rows(ROWS * 50)
    s = _positioned()
    mml.save(with_history(s, h), tmp_path / "c")
    config = (tmp_path / "c" / "config.json").read_text()
    assert config.count("val_loss") == 1  # one label, not one string per row
    assert checkpoint_history(mml.load(tmp_path / "c")) == h


def test_a_checkpoint_that_boxed_a_history_itself_still_resumes():
    from mml.training._state import box

    h = History.from_rows(ROWS)
    s = _positioned()
    s = attrs.evolve(s, position=attrs.evolve(s.position, history=box(h)))
    assert checkpoint_history(mml.io.roundtrip(s)) == h


def _small_experiment():
    from .test_resume import plan_experiment

    return plan_experiment()


def test_checkpoint_names_and_contents_agree_and_the_last_is_written_when_run_returns(tmp_path):
    exp = _small_experiment()
    policy = Checkpointing(every_steps=2, keep=1000, mode="disk", directory=str(tmp_path))
    state, history = mml.run(exp, mml.init(exp, 0), checkpoint=policy)
    names = json.loads((tmp_path / "checkpoints.json").read_text())
    assert names[-1] == f"plan.test-end-step-{state.step}"  # the end-of-run write was waited for
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == sorted(
        [*names, "checkpoints.json"]
    )
    for name in names:
        ckpt = mml.load(tmp_path / name)
        assert ckpt.step == int(name.rsplit("-", 1)[1])
        rows = checkpoint_history(ckpt)
        assert rows is not None and len(rows) and int(rows.step.max()) <= ckpt.step
        n = len(rows)  # the run's rows up to this checkpoint: a prefix of the finished run's
        assert (
            rows.phase.tolist() == history.phase[:n].tolist()
            and rows.step.tolist() == history.step[:n].tolist()
        )
        assert np.array_equal(rows.value, history.value[:n], equal_nan=True)
    last = mml.load(tmp_path / names[-1])
    assert checkpoint_history(last).where(phase="fit") == history.where(phase="fit")


def test_a_failed_background_write_is_raised_naming_the_checkpoint(tmp_path, monkeypatch):
    import mml.io._artifact as artifact

    real = artifact._write_artifact
    calls = []

    def failing(target, *args):
        calls.append(target.name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(target, *args)

    monkeypatch.setattr(artifact, "_write_artifact", failing)
    exp = _small_experiment()
    policy = Checkpointing(every_steps=3, keep=5, mode="disk", directory=str(tmp_path))
    with pytest.raises(
        ArtifactError, match=r"could not write the checkpoint .*plan\.fit-step-6.*No space left"
    ):
        mml.run(exp, mml.init(exp, 0), checkpoint=policy)
    assert len(calls) == 2  # raised at the next checkpoint: no write after the failed one was taken
    assert json.loads((tmp_path / "checkpoints.json").read_text()) == ["plan.fit-step-3"]


def test_a_failed_last_write_is_raised_by_the_run_end(tmp_path, monkeypatch):
    import mml.io._artifact as artifact

    real = artifact._write_artifact

    def failing(target, *args):
        if "test-end" in target.name:
            time.sleep(0.2)  # still in flight when the run reaches its end
            raise OSError(5, "Input/output error")
        return real(target, *args)

    monkeypatch.setattr(artifact, "_write_artifact", failing)
    exp = _small_experiment()
    policy = Checkpointing(every_steps=100, keep=5, mode="disk", directory=str(tmp_path))
    with pytest.raises(ArtifactError, match=r"plan\.test-end-step-\d+.*Input/output error"):
        mml.run(exp, mml.init(exp, 0), checkpoint=policy)


SLOW_KILL = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    import mml
    import mml.io._artifact as artifact
    from training.test_resume import plan_experiment
    from mml.callbacks import Checkpointing

    directory, marker = sys.argv[1], sys.argv[2]
    real = artifact._write_file
    seen = []

    def slow(path, data):  # the third checkpoint's files: half written, then the parent kills us
        seen.append(path)
        if len(seen) == 2 * 3 + 2 and path.parent.name.startswith("."):
            open(marker, "w").close()
            time.sleep(60)
        return real(path, data)

    artifact._write_file = slow
    exp = plan_experiment()
    policy = Checkpointing(every_steps=3, keep=2, mode="disk", directory=directory)
    mml.run(exp, mml.init(exp, 0), checkpoint=policy)
    """
)


def test_a_sigkill_during_a_background_write_leaves_the_previous_checkpoint_and_index(tmp_path):
    from .test_resume import plan_experiment

    script = tmp_path / "slow.py"
    script.write_text(SLOW_KILL.format(tests=str(Path(__file__).parents[1])))
    marker, ckdir = tmp_path / "writing", tmp_path / "ckpt"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")]),
    )
    proc = subprocess.Popen([sys.executable, str(script), str(ckdir), str(marker)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "the child ended before its write was cut"
            assert time.monotonic() < deadline, "the child never reached the third write"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    names = json.loads((ckdir / "checkpoints.json").read_text())
    # keep=2: the index still names steps 3 and 6 (it is replaced only after a write); step 9
    # was cut in its staging directory, never published
    assert names == ["plan.fit-step-3", "plan.fit-step-6"]
    assert sorted(p.name for p in ckdir.iterdir() if not p.name.startswith(".")) == [
        "checkpoints.json",
        "plan.fit-step-3",
        "plan.fit-step-6",
    ]
    leftovers = [p.name for p in ckdir.iterdir() if p.name.startswith(".plan.fit-step-9.mml-tmp-")]
    assert len(leftovers) == 1 and not (ckdir / "plan.fit-step-9").exists()
    ckpt = mml.load(latest_checkpoint(ckdir))
    assert ckpt.step == 6
    exp = plan_experiment()
    state, history = mml.run(exp, mml.init(exp, 0))
    policy = Checkpointing(every_steps=3, keep=2, mode="disk", directory=str(ckdir))
    resumed, resumed_history = mml.run(exp, ckpt, checkpoint=policy)
    assert resumed == state and resumed_history == history
    assert not [p for p in ckdir.iterdir() if p.name.startswith(".plan.")]  # the next save cleaned it


def test_a_writer_removes_the_checkpoints_a_killed_run_left_unlisted_and_nothing_else(tmp_path):
    from mml.training._checkpoints import CheckpointWriter

    def artifact(name):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text("{}")

    for name in ("plan.fit-step-3", "plan.fit-step-6", "plan.fit-step-9", "plan.fit-end-step-12"):
        artifact(name)
    (tmp_path / "checkpoints.json").write_text(json.dumps(["plan.fit-step-6", "plan.fit-step-9"]))
    (tmp_path / "plan.fit-step-15").mkdir()  # named like one, but not an artifact: not ours to delete
    (tmp_path / "notes").mkdir()  # the user's
    artifact("best-model")  # an artifact, not named as the policy names its checkpoints
    (tmp_path / "plan.fit-step-18").write_text("a file")
    CheckpointWriter(Checkpointing(every_steps=3, keep=2, mode="disk", directory=str(tmp_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best-model",
        "checkpoints.json",
        "notes",
        "plan.fit-step-15",
        "plan.fit-step-18",
        "plan.fit-step-6",
        "plan.fit-step-9",
    ]
