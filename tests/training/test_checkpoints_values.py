"""Checkpoints pinned by value (issue 17, mutation testing): the policy's file names and index,
keep-last-k, strays, the encoding's damage checks and every message in full.

The plan is tiny: 30 training rows in batches of 15 (2 steps an epoch), 2 epochs, then an
evaluation, so every name below is counted by hand: steps 1..4, epochs 1..2 (the state's
epoch counter after epoch ``e`` is ``e + 1``), the phase ends at step 4.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import mml
from mml.callbacks import Checkpointing
from mml.errors import ArtifactError
from mml.training import (
    AppliedLoss,
    EvalPhase,
    Experiment,
    History,
    PhaseGroup,
    Position,
    TrainPhase,
    checkpoint_history,
    latest_checkpoint,
)
from mml.training._checkpoints import (
    INDEX,
    CheckpointHistory,
    CheckpointWriter,
    _Encoder,
    _labels,
    _safe,
    with_history,
)
from mml.training._state import TrainState, box

from .conftest import make_featureset, mlp_graph

torch = pytest.importorskip("torch")

DAMAGED = "the checkpoint is damaged — resume from another one"


def tiny(callbacks=(), n_epochs=2):
    fit = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["mlp"],
        losses=AppliedLoss("mse", "mlp"),
        n_epochs=n_epochs,
        sampler=mml.SimpleSampler(15),
        callbacks=callbacks,
    )
    test = EvalPhase.simple(
        "test", featureset="toy", heads=["mlp"], losses=[AppliedLoss("mse", "mlp")], split="val"
    )
    return Experiment({"toy": make_featureset(n=40)}, mlp_graph(hidden=(2,)), PhaseGroup("plan", [fit, test]))


def policy_run(tmp_path, **kw):
    exp = tiny()
    state, history = mml.run(
        exp, mml.init(exp, 0), checkpoint=Checkpointing(mode="disk", directory=str(tmp_path), **kw)
    )
    index = json.loads((tmp_path / INDEX).read_text(encoding="utf-8"))
    on_disk = sorted(p.name for p in tmp_path.iterdir())
    return exp, state, history, index, on_disk


END = ["plan.fit-end-step-4", "plan.test-end-step-4"]


@pytest.mark.parametrize(
    ("kw", "names"),
    [
        (
            dict(every_steps=1),
            ["plan.fit-step-1", "plan.fit-step-2", "plan.fit-step-3", "plan.fit-step-4", *END],
        ),
        (dict(every_steps=3), ["plan.fit-step-3", *END]),
        (dict(on="batch", every_n=2), ["plan.fit-step-2", "plan.fit-step-4", *END]),
        (dict(on="epoch", every_n=1), ["plan.fit-epoch-1", "plan.fit-epoch-2", *END]),
        (dict(on="epoch", every_n=2), ["plan.fit-epoch-2", *END]),
        (dict(on="epoch", every_n=1, every_steps=3), ["plan.fit-step-3", *END]),  # every_steps wins
        (dict(on="phase"), END),
    ],
)
def test_the_policy_names_its_checkpoints_by_phase_path_and_step_or_epoch(tmp_path, kw, names):
    _, state, _, index, on_disk = policy_run(tmp_path, keep=100, **kw)
    assert index == names
    assert on_disk == sorted([*names, INDEX])  # no temporary index or half-written checkpoint left
    for name in names:
        ckpt = mml.load(tmp_path / name)
        n = int(name.rsplit("-", 1)[1])
        assert (ckpt.epoch if "-epoch-" in name else ckpt.step) == n
        assert ckpt.position.phase == ("plan/test" if "test" in name else "plan/fit")
        assert ckpt.position.stage == ("ended" if "-end-" in name else "running")
    assert latest_checkpoint(tmp_path) == tmp_path / names[-1]
    assert state.step == 4


@pytest.mark.parametrize("keep", [1, 2, 3])
def test_keep_holds_the_newest_k_on_disk_and_in_the_index(tmp_path, keep):
    all_names = ["plan.fit-step-1", "plan.fit-step-2", "plan.fit-step-3", "plan.fit-step-4", *END]
    _, _, _, index, on_disk = policy_run(tmp_path, every_steps=1, keep=keep)
    assert index == all_names[-keep:]
    assert on_disk == sorted([*all_names[-keep:], INDEX])


def test_a_checkpoint_resumes_to_the_uninterrupted_run(tmp_path):
    exp, state, history, index, _ = policy_run(tmp_path, every_steps=1, keep=100)
    for name in index:
        again, h = mml.run(exp, mml.load(tmp_path / name))
        assert again == state
        assert h == history and h.rows() == history.rows()


def test_a_writer_continues_the_index_it_finds(tmp_path):
    (tmp_path / "plan.old-step-1").mkdir()
    (tmp_path / "plan.old-step-1" / "manifest.json").write_text("{}")
    (tmp_path / INDEX).write_text(json.dumps(["plan.old-step-1"]))
    _, _, _, index, on_disk = policy_run(tmp_path, every_steps=2, keep=100)
    assert index == ["plan.old-step-1", "plan.fit-step-2", "plan.fit-step-4", *END]
    assert "plan.old-step-1" in on_disk


def test_a_writer_continues_its_index_and_keeps_k_of_both_runs(tmp_path):
    (tmp_path / "plan.old-step-1").mkdir()
    (tmp_path / "plan.old-step-1" / "manifest.json").write_text("{}")
    (tmp_path / INDEX).write_text(json.dumps(["plan.old-step-1", "plan.fit-step-2"]))
    _, _, _, index, on_disk = policy_run(tmp_path, every_steps=2, keep=5)
    # plan.fit-step-2 was listed already: it is rewritten and moves to its new place, once
    assert index == ["plan.old-step-1", "plan.fit-step-2", "plan.fit-step-4", *END]
    _, _, _, index, on_disk = policy_run(tmp_path, every_steps=2, keep=2)
    assert index == END and on_disk == sorted([*END, INDEX])


def test_a_damaged_index_is_started_again(tmp_path):
    (tmp_path / INDEX).write_text("not json [")
    _, _, _, index, _ = policy_run(tmp_path, every_steps=4, keep=100)
    assert index == ["plan.fit-step-4", *END]


def test_the_writer_makes_the_directory_with_its_parents(tmp_path):
    where = tmp_path / "a" / "b"
    w = CheckpointWriter(Checkpointing(mode="disk", directory=str(where), every_steps=1))
    assert where.is_dir() and w.root == where and w.names == [] and list(where.iterdir()) == []
    w.close()


def test_callback_checkpoints_drop_the_older_ones(tmp_path):
    cb = Checkpointing(mode="disk", directory=str(tmp_path), keep=2)
    exp = tiny(callbacks=[cb], n_epochs=3)
    mml.run(exp, mml.init(exp, 0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit-epoch-2", "fit-epoch-3"]
    assert [mml.load(tmp_path / n).step for n in ("fit-epoch-2", "fit-epoch-3")] == [4, 6]
    assert checkpoint_history(mml.load(tmp_path / "fit-epoch-2")).step.tolist() == [
        1,
        1,
        2,
        2,
        2,
        2,
        3,
        3,
        4,
        4,
        4,
        4,
    ]


def test_a_failed_write_names_the_checkpoint_and_keeps_the_cause(tmp_path, monkeypatch):
    import mml.io._artifact as artifact

    def failing(target, *args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(artifact, "_write_artifact", failing)
    exp = tiny()
    with pytest.raises(ArtifactError) as info:
        mml.run(
            exp,
            mml.init(exp, 0),
            checkpoint=Checkpointing(mode="disk", directory=str(tmp_path), every_steps=1),
        )
    assert str(info.value) == (
        f"could not write the checkpoint {tmp_path / 'plan.fit-step-1'}: [Errno 28] No space left on device"
    )
    assert isinstance(info.value.__cause__, OSError)
    assert not (tmp_path / INDEX).exists()


def test_an_mml_error_of_a_write_is_raised_as_it_is(tmp_path, monkeypatch):
    import mml.io._artifact as artifact

    boom = ArtifactError("the store refused")

    def failing(target, *args):
        raise boom

    monkeypatch.setattr(artifact, "_write_artifact", failing)
    exp = tiny()
    with pytest.raises(ArtifactError) as info:
        mml.run(
            exp,
            mml.init(exp, 0),
            checkpoint=Checkpointing(mode="disk", directory=str(tmp_path), every_steps=1),
        )
    assert info.value is boom


def test_a_synchronous_writer_writes_at_once_and_a_background_one_by_close(tmp_path):
    exp = tiny()
    state = mml.init(exp, 0)
    state = attrs_evolve(state, position=Position("fp", "plan/fit", n_steps=0), step=7)
    for background in (False, True):
        d = tmp_path / str(background)
        w = CheckpointWriter(
            Checkpointing(mode="disk", directory=str(d), every_steps=1), background=background
        )
        w.phase_end(state, History(), [("fit", 0, 0, 7, "loss", 0.5)], "plan/fit")
        w.close()
        assert json.loads((d / INDEX).read_text()) == ["plan.fit-end-step-7"]
        back = mml.load(d / "plan.fit-end-step-7")
        assert back.step == 7 and checkpoint_history(back).rows() == [("fit", 0, 0, 7, "loss", 0.5)]


def test_no_position_no_phase_end_checkpoint_and_no_policy_no_files(tmp_path):
    exp = tiny()
    state = mml.init(exp, 0)
    w = CheckpointWriter(Checkpointing(mode="disk", directory=str(tmp_path), every_steps=1))
    w.phase_end(state, History(), [], "plan/fit")  # a state without a position is not a checkpoint
    w.close()
    assert list(tmp_path.iterdir()) == []
    none = CheckpointWriter()
    assert none.policy is None and none.names == []
    none.phase_end(attrs_evolve(state, position=Position("fp", "plan/fit")), History(), [], "plan/fit")
    none.close()


def attrs_evolve(obj, **kw):
    import attrs

    return attrs.evolve(obj, **kw)


def test_close_raises_the_pending_error_once_and_not_when_told_not_to(tmp_path, monkeypatch):
    import mml.io._artifact as artifact

    def failing(target, *args):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(artifact, "_write_artifact", failing)
    state = attrs_evolve(mml.init(tiny(), 0), position=Position("fp", "plan/fit"))
    w = CheckpointWriter(Checkpointing(mode="disk", directory=str(tmp_path), every_steps=1), background=True)
    w.phase_end(state, History(), [], "plan/fit")
    with pytest.raises(ArtifactError, match=r"plan\.fit-end-step-0: \[Errno 5\] Input/output error$"):
        w.close()
    w.close()  # nothing pending any more
    w2 = CheckpointWriter(
        Checkpointing(mode="disk", directory=str(tmp_path / "b"), every_steps=1), background=True
    )
    w2.phase_end(state, History(), [], "plan/fit")
    w2.close(raise_error=False)
    assert w2._pool is None and w2._pending is None


# -- latest_checkpoint ---------------------------------------------------------------------


def test_latest_checkpoint_is_the_newest_listed_directory(tmp_path):
    assert latest_checkpoint(tmp_path) is None  # no index
    (tmp_path / INDEX).write_text("{broken")
    assert latest_checkpoint(tmp_path) is None
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").write_text("a file, not a checkpoint")
    (tmp_path / INDEX).write_text(json.dumps(["a", "b", "c", "gone"]))
    assert latest_checkpoint(tmp_path) == tmp_path / "b"
    assert latest_checkpoint(str(tmp_path)) == tmp_path / "b"
    (tmp_path / INDEX).write_text(json.dumps(["b", "a"]))
    assert latest_checkpoint(tmp_path) == tmp_path / "a"
    (tmp_path / INDEX).write_text(json.dumps(["gone"]))
    assert latest_checkpoint(tmp_path) is None


def test_safe_names():
    assert _safe("plan/inner/fit") == "plan.inner.fit" and _safe("fit") == "fit"


# -- the encoding --------------------------------------------------------------------------

ROWS = [
    ("fit", 0, 0, 1, "loss", 0.5),
    ("fit", 0, -1, 1, "val_loss", 0.25),
    ("b-tune", 1, 0, 2, "loss", 0.125),
]


def test_the_encoding_sorts_its_labels_and_codes_the_rows():
    h = History.from_rows(ROWS, status="stopped")
    c = CheckpointHistory.of(h)
    assert c.phase_labels == ("b-tune", "fit") and c.name_labels == ("loss", "val_loss")
    assert c.phase.tolist() == [1, 1, 0] and c.name.tolist() == [0, 1, 0]
    assert c.phase.dtype == np.int32 and c.name.dtype == np.int32
    assert c.epoch.tolist() == [0, 0, 1] and c.batch.tolist() == [0, -1, 0] and c.step.tolist() == [1, 1, 2]
    assert c.value.tolist() == [0.5, 0.25, 0.125] and c.status == "stopped" and c.failure is None
    back = c.to_history()
    assert back.rows() == ROWS and back.status == "stopped"


def test_the_encoding_keeps_phases_without_their_contexts_and_the_failure():
    from mml.training import ExecutionContext, PhaseResult

    ctx = ExecutionContext("fit", 0, 0, 0, {}, {}, {"loss": 1.0})
    pr = PhaseResult("fit", "phase.train", "failed", mml.TrainingError("nan"), 3, 1.5, None, (ctx,))
    h = History.from_rows(ROWS, status="failed", phases=(pr,), error=mml.TrainingError("nan"))
    c = CheckpointHistory.of(h)
    (p,) = c.phases
    assert (p.label, p.kind, p.status, p.n_steps, p.seconds, p.contexts) == (
        "fit",
        "phase.train",
        "failed",
        3,
        1.5,
        (),
    )
    assert p.failure.message == "nan" and c.failure.message == "nan"
    back = c.to_history()
    assert back.failure.message == "nan" and back.phases[0].contexts == () and back.status == "failed"


def test_an_empty_history_encodes_and_decodes():
    c = CheckpointHistory.of(History())
    assert c.phase_labels == () and c.name_labels == () and len(c.value) == 0
    back = c.to_history()
    assert back == History() and back.phase.dtype == np.dtype("<U1") and back.name.dtype == np.dtype("<U1")
    assert _labels(("a",), np.zeros(0, np.int32)).dtype == np.dtype("<U1")
    assert _labels(("a", "bc"), np.array([1, 0, 1], np.int32)).tolist() == ["bc", "a", "bc"]


def _columns(n=2, **over):
    cols = dict(
        phase_labels=("fit",),
        name_labels=("loss", "mae"),
        phase=np.zeros(n, np.int32),
        name=np.arange(n, dtype=np.int32) % 2,
        epoch=np.zeros(n, np.int64),
        batch=np.zeros(n, np.int64),
        step=np.ones(n, np.int64),
        value=np.ones(n),
    )
    cols.update(over)
    return cols


@pytest.mark.parametrize("column", ["phase", "name", "epoch", "batch", "step"])
def test_a_column_of_another_length_is_damage(column):
    short = _columns()[column][:1]
    with pytest.raises(ArtifactError) as info:
        CheckpointHistory(**_columns(**{column: short}))
    assert str(info.value) == f"CheckpointHistory: column {column!r} has 1 rows, 'value' has 2; {DAMAGED}"


@pytest.mark.parametrize(("column", "n_labels"), [("phase", 1), ("name", 2)])
@pytest.mark.parametrize("bad", ["low", "high"])
def test_a_code_outside_its_labels_is_damage(column, n_labels, bad):
    codes = np.array([0, -1 if bad == "low" else n_labels], np.int32)
    with pytest.raises(ArtifactError) as info:
        CheckpointHistory(**_columns(**{column: codes}))
    assert str(info.value) == (
        f"CheckpointHistory: column {column!r} has codes outside its {n_labels} labels; {DAMAGED}"
    )


def test_the_largest_code_and_no_rows_are_not_damage():
    c = CheckpointHistory(**_columns(name=np.array([1, 1], np.int32)))
    assert c.to_history().name.tolist() == ["mae", "mae"]
    empty = CheckpointHistory(
        **_columns(
            0, phase_labels=(), name_labels=(), phase=np.zeros(0, np.int32), name=np.zeros(0, np.int32)
        )
    )
    assert len(empty.to_history()) == 0


def test_the_incremental_encoder_equals_the_whole_encoding_and_restarts_on_a_new_phase():
    enc = _Encoder()
    before = History.from_rows(ROWS[:1])
    rows: list = []
    first = enc.encode(before, rows)
    assert first.to_history() == before
    rows.append(("tune", 0, 0, 2, "mae", 2.0))
    rows.append(("tune", 0, 0, 2, "loss", 3.0))
    mid = enc.encode(before, rows)
    assert mid.phase_labels == ("fit", "tune") and mid.name_labels == ("loss", "mae")
    assert mid.to_history() == before.merge(History.from_rows(rows))
    assert enc.encode(before, rows).to_history() == mid.to_history()  # nothing new: the same rows
    rows.append(("tune", 0, -1, 2, "val", 4.0))
    assert enc.encode(before, rows).to_history() == before.merge(History.from_rows(rows))
    after = before.merge(History.from_rows(rows))
    new_rows = [("more", 0, 0, 3, "loss", 5.0)]
    assert enc.encode(after, new_rows).to_history() == after.merge(History.from_rows(new_rows))
    failed = History(status="failed", error=ValueError("x"))
    c = enc.encode(failed, [])
    assert c.status == "failed" and c.failure.message == "x"


# -- checkpoint_history / with_history -----------------------------------------------------


def test_checkpoint_history_reads_both_encodings_and_refuses_anything_else():
    key = mml.random.key(0)
    plain = TrainState(graph=None, key=key)
    assert checkpoint_history(plain) is None
    positioned = TrainState(graph=None, key=key, position=Position("p", "plan/fit"))
    assert checkpoint_history(positioned) is None
    h = History.from_rows(ROWS)
    boxed_history = attrs_evolve(positioned, position=Position("p", "plan/fit", history=box(h)))
    assert checkpoint_history(boxed_history) is h
    encoded = with_history(positioned, h)
    assert encoded.position.history.type == "mml.training._checkpoints:CheckpointHistory"
    assert checkpoint_history(encoded).rows() == ROWS
    record = CheckpointHistory.of(h)
    assert with_history(positioned, record).position.history.value is record
    assert with_history(plain, h) is plain
    odd = attrs_evolve(positioned, position=Position("p", "plan/fit", history=box(3)))
    with pytest.raises(ArtifactError) as info:
        checkpoint_history(odd)
    assert str(info.value) == (
        "the checkpoint's position carries a int as its history, not a History; "
        "it was not written by mml.run — start from mml.init or another checkpoint"
    )


def test_a_background_write_holds_the_state_as_it_was_when_taken(tmp_path, monkeypatch):
    import threading

    import mml.io._artifact as artifact

    real = artifact._write_artifact
    gate = threading.Event()

    def gated(*args):
        assert gate.wait(30)
        return real(*args)

    monkeypatch.setattr(artifact, "_write_artifact", gated)
    state = attrs_evolve(mml.init(tiny(), 0), position=Position("fp", "plan/fit"))
    params = state.params("mlp").params
    name = sorted(params)[0]
    want = params[name].detach().clone()
    w = CheckpointWriter(Checkpointing(mode="disk", directory=str(tmp_path), every_steps=1), background=True)
    w.phase_end(state, History(), [], "plan/fit")
    with torch.no_grad():
        params[name].add_(1.0)  # the caller's tensor changes while the write waits
    gate.set()
    w.close()
    back = mml.load(tmp_path / "plan.fit-end-step-0")
    assert torch.equal(back.params("mlp").params[name], want)


def test_a_listed_checkpoint_already_gone_is_dropped_without_an_error(tmp_path):
    (tmp_path / INDEX).write_text(json.dumps(["plan.gone-step-1", "plan.gone-step-2"]))
    _, _, _, index, on_disk = policy_run(tmp_path, every_steps=4, keep=2)
    assert index == END and on_disk == sorted([*END, INDEX])


def test_the_encoder_restarts_when_only_the_rows_list_is_new():
    enc = _Encoder()
    before = History.from_rows(ROWS[:1])
    first = [("tune", 0, 0, 2, "mae", 2.0)]
    assert enc.encode(before, first).to_history() == before.merge(History.from_rows(first))
    second = [("more", 0, 0, 3, "loss", 5.0)]
    assert enc.encode(before, second).to_history() == before.merge(History.from_rows(second))
    other = History.from_rows(ROWS[1:2])
    assert enc.encode(other, second).to_history() == other.merge(History.from_rows(second))
