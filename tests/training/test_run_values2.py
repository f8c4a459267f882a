"""run / run_phase pinned by value, second part (issue 17): the eval context in full, metric
rows, stopped and failed phases (the state they return, the error they record), the
experiment-level hooks in order, logged phase-end metrics and the resume paths."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import pytest

import mml
from mml.callbacks import AbstractCallback, CallbackResult, Evaluation
from mml.training import (
    AppliedLoss,
    EvalPhase,
    Experiment,
    PhaseGroup,
    Position,
    TrainPhase,
    plan_fingerprint,
    run_phase,
    steps,
)
from mml.training._run import foreign_failure

from .conftest import make_featureset, mlp_graph

torch = pytest.importorskip("torch")


@attrs.frozen
class StopAt(AbstractCallback):
    kind: ClassVar[str] = "callback.test_run2_stop_at"
    step: int = 2

    def on_batch_end(self, event: Any, state: Any) -> CallbackResult | None:
        return CallbackResult(stop=True) if event.step >= self.step else None


@attrs.frozen
class Recorder(AbstractCallback):
    """Experiment-level: counts its hooks in its state, logs the count at every phase end."""

    kind: ClassVar[str] = "callback.test_run2_recorder"
    fail_in: str = ""

    def init(self) -> Any:
        return ()

    def _hook(self, name: str, event: Any, state: Any) -> CallbackResult:
        if name == self.fail_in:
            raise ValueError(f"boom in {name}")
        where = event.group if name.startswith("on_group") else event.phase
        return CallbackResult(state=(*state, (event.hook, where, event.state.step)))

    def on_experiment_start(self, event, state):
        return self._hook("on_experiment_start", event, state)

    def on_experiment_end(self, event, state):
        return self._hook("on_experiment_end", event, state)

    def on_group_start(self, event, state):
        return self._hook("on_group_start", event, state)

    def on_group_end(self, event, state):
        return self._hook("on_group_end", event, state)

    def on_phase_start(self, event, state):
        return self._hook("on_phase_start", event, state)

    def on_phase_end(self, event, state):
        res = self._hook("on_phase_end", event, state)
        return CallbackResult(state=res.state, metrics={"hooks": float(len(res.state))})


def fit_phase(n_epochs=2, callbacks=(), record="none"):
    return TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["mlp"],
        losses=AppliedLoss("mse", "mlp"),
        n_epochs=n_epochs,
        sampler=mml.SimpleSampler(15),
        callbacks=callbacks,
        record=record,
    )


TEST = EvalPhase.simple(
    "test", featureset="toy", heads=["mlp"], losses=[AppliedLoss("mse", "mlp")], split="val"
)


def experiment(plan, callbacks=()):
    return Experiment({"toy": make_featureset(n=40)}, mlp_graph(hidden=(2,)), plan, callbacks=callbacks)


def test_the_eval_observer_sees_one_context_in_full():
    exp = experiment(fit_phase())
    trained, _ = run_phase(exp, fit_phase(), mml.init(exp, 0))
    seen = []
    after, h = run_phase(exp, TEST, trained, observer=lambda s, c: seen.append((s, c)))
    ((state, ctx),) = seen
    res = h.eval_result("test")
    assert state is trained
    assert (ctx.phase, ctx.epoch, ctx.batch, ctx.step, ctx.event) == ("test", 0, -1, 4, "eval")
    assert dict(ctx.inputs) == {} and ctx.output("mlp") is res.outputs["mlp"]
    assert dict(ctx.losses) == dict(res.losses) and set(res.losses) == {"mlp.mse", "loss"}
    assert h.status == "completed" and after == trained


def test_epoch_metrics_are_rows_at_the_epoch_end_step():
    phase = fit_phase(callbacks=[Evaluation(split="val")])
    exp = experiment(phase)
    _, h = run_phase(exp, phase, mml.init(exp, 0))
    expected = [
        ("fit", ctx.epoch, -1, ctx.step, "val_loss", ctx.metrics["val_loss"])
        for _, ctx in steps(exp, phase, mml.init(exp, 0))
        if ctx.event == "epoch_end"
    ]
    assert [r[:4] for r in expected] == [("fit", 0, -1, 2), ("fit", 1, -1, 4)]
    assert h.where(name="val_loss").rows() == expected
    assert h.where(batch=-1).names() == ("mlp.mse", "loss", "val_mlp.mse", "val_loss")


def test_a_batch_metric_is_a_row_of_its_batch():
    @attrs.frozen
    class Count(AbstractCallback):
        kind: ClassVar[str] = "callback.test_run2_count"

        def on_batch_end(self, event, state):
            return CallbackResult(metrics={"n": float(event.step)})

    phase = fit_phase(n_epochs=1, callbacks=[Count()])
    exp = experiment(phase)
    _, h = run_phase(exp, phase, mml.init(exp, 0))
    assert h.where(name="n").rows() == [("fit", 0, 0, 1, "n", 1.0), ("fit", 0, 1, 2, "n", 2.0)]


def test_a_stopped_phase_says_so_and_returns_a_state_without_the_flag():
    phase = fit_phase(n_epochs=3, callbacks=[StopAt(step=3)])
    exp = experiment(phase)
    state, h = run_phase(exp, phase, mml.init(exp, 0))
    assert h.status == "stopped" and h.phases[0].status == "stopped" and h.failure is None
    assert state.stop is False and state.step == 3 and h.phases[0].n_steps == 3
    assert h.batches().step.max() == 3


def _failing_stream(exc, after_steps=1):
    def fake(experiment, phase, state, where=None):
        stream = steps(experiment, phase, state)
        n = 0
        first = None
        for s, ctx in stream:
            yield s, ctx
            first = s if first is None else first
            n += ctx.event == "batch"
            if n == after_steps:
                if isinstance(exc, mml.TrainingError):
                    exc.state = first  # the "last good" state the error carries: not the latest one
                raise exc

    return fake


def test_a_foreign_error_fails_the_phase_with_the_wrapped_message(monkeypatch):
    import mml.training._run as run_module

    exc = RuntimeError("size mismatch, got 3")
    monkeypatch.setattr(run_module, "_train_steps", _failing_stream(exc, 2))
    phase = fit_phase()
    exp = experiment(phase)
    state, h = run_phase(exp, phase, mml.init(exp, 0))
    want = str(foreign_failure(exc, "fit"))
    assert h.status == "failed" and h.phases[0].status == "failed"
    assert h.failure.type == "mml.errors:TrainingError" and h.failure.message == want
    assert h.failure.phase == "fit" and h.phases[0].failure.message == want
    assert h.error.__cause__ is exc and h.phases[0].n_steps == 2
    assert state.step == 2 and h.rows()[-1][3] == 2


def test_a_training_error_fails_the_phase_and_returns_its_good_state(monkeypatch):
    import mml.training._run as run_module

    exc = mml.TrainingError("loss is nan")
    monkeypatch.setattr(run_module, "_train_steps", _failing_stream(exc, 3))
    phase = fit_phase()
    exp = experiment(phase)
    state, h = run_phase(exp, phase, mml.init(exp, 0))
    assert h.status == "failed" and h.failure.message == "loss is nan" and h.error is exc
    assert h.failure.type == "mml.errors:TrainingError" and h.failure.phase == "fit"
    assert state == exc.state.without_position() and state.step == 1 and h.phases[0].n_steps == 3


def test_a_training_error_without_a_state_returns_the_last_state(monkeypatch):
    import mml.training._run as run_module

    exc = mml.CallbackError("bad hook")

    def fake(experiment, phase, state, where=None):
        for s, ctx in steps(experiment, phase, state):
            yield s, ctx
            if ctx.event == "batch":
                raise exc

    monkeypatch.setattr(run_module, "_train_steps", fake)
    phase = fit_phase()
    exp = experiment(phase)
    state, h = run_phase(exp, phase, mml.init(exp, 0))
    assert h.status == "failed" and h.error is exc and state.step == 1


def test_mmls_own_refusals_are_raised(monkeypatch):
    import mml.training._run as run_module

    exc = mml.ConfigError("bad config")
    monkeypatch.setattr(run_module, "_train_steps", _failing_stream(exc, 1))
    phase = fit_phase()
    exp = experiment(phase)
    with pytest.raises(mml.ConfigError) as info:
        run_phase(exp, phase, mml.init(exp, 0))
    assert info.value is exc


def test_an_eval_phase_on_an_unknown_device_fails_with_the_phase_named():
    exp = experiment(PhaseGroup("plan", [fit_phase()]))
    bad = attrs.evolve(TEST, device="nodevice:7")
    _, h = run_phase(exp, bad, mml.init(exp, 0))
    assert h.status == "failed" and h.failure.message.startswith("EvalPhase 'test': ")
    assert h.failure.type == "mml.errors:TrainingError" and h.phases[0].eval is None
    cpu = attrs.evolve(TEST, device="cpu")
    _, on_cpu = run_phase(exp, cpu, mml.init(exp, 0))
    _, plain = run_phase(exp, TEST, mml.init(exp, 0))
    assert dict(on_cpu.eval_result("test").losses) == dict(plain.eval_result("test").losses)


PLAN_HOOKS = [
    ("on_experiment_start", None, 0),
    ("on_group_start", "plan", 0),
    ("on_phase_start", "fit", 0),
    ("on_phase_end", "fit", 4),
    ("on_phase_start", "test", 4),
    ("on_phase_end", "test", 4),
    ("on_group_end", "plan", 4),
    ("on_experiment_end", None, 4),
]


def test_experiment_hooks_run_in_plan_order_and_log_at_phase_ends():
    exp = experiment(PhaseGroup("plan", [fit_phase(), TEST]), callbacks=[Recorder()])
    state, h = mml.run(exp, mml.init(exp, 0), progress=False)
    assert state.callback_state("experiment/0") == tuple(PLAN_HOOKS)
    assert h.where(name="hooks").rows() == [("fit", 2, -1, 4, "hooks", 4.0), ("test", 2, -1, 4, "hooks", 6.0)]
    assert h.status == "completed" and state.position == Position(plan_fingerprint(exp), "", "done")
    assert [p.label for p in h.phases] == ["fit", "test"]


@pytest.mark.parametrize(
    ("hook", "kept"),
    [
        ("on_experiment_start", 0),
        ("on_phase_start", 2),
        ("on_group_end", 6),
        ("on_experiment_end", 7),
    ],
)
def test_a_failing_experiment_hook_fails_the_run(hook, kept):
    exp = experiment(PhaseGroup("plan", [fit_phase(), TEST]), callbacks=[Recorder(fail_in=hook)])
    state, h = mml.run(exp, mml.init(exp, 0), progress=False)
    assert h.status == "failed" and h.failure.type == "mml.errors:CallbackError"
    assert f"raised ValueError in {hook}" in h.failure.message and f"boom in {hook}" in h.failure.message
    assert (state.callback_state("experiment/0") or ()) == tuple(PLAN_HOOKS[:kept])
    assert state.position is None or state.position.stage != "done"


def test_a_failed_phase_stops_the_plan():
    exp = experiment(
        PhaseGroup("plan", [attrs.evolve(TEST, device="nodevice:7"), fit_phase()]), callbacks=[Recorder()]
    )
    state, h = mml.run(exp, mml.init(exp, 0), progress=False)
    assert h.status == "failed" and [p.label for p in h.phases] == ["test"]
    assert (state.step == 0 and state.position is None) or state.position.stage != "done"
    hooks = [x[0] for x in state.callback_state("experiment/0")]
    # the plan stops at the failed phase; the experiment's end hook still runs, the group's does not
    assert hooks == [
        "on_experiment_start",
        "on_group_start",
        "on_phase_start",
        "on_phase_end",
        "on_experiment_end",
    ]


def test_a_state_of_another_plan_starts_this_one_from_its_beginning():
    exp = experiment(PhaseGroup("plan", [fit_phase(), TEST]), callbacks=[Recorder()])
    fresh, want = mml.run(exp, mml.init(exp, 0), progress=False)
    elsewhere = attrs.evolve(mml.init(exp, 0), position=Position("0123456789abcdef", "plan/test", "ended"))
    state, h = mml.run(exp, elsewhere, progress=False)
    assert state == fresh and h == want and h.rows() == want.rows()
    done_elsewhere = attrs.evolve(mml.init(exp, 0), position=Position("0123456789abcdef", "", "done"))
    state, h = mml.run(exp, done_elsewhere, progress=False)
    assert state == fresh and h.rows() == want.rows()


def test_resuming_from_each_checkpoint_skips_the_hooks_already_run(tmp_path):
    import json

    from mml.callbacks import Checkpointing

    exp = experiment(PhaseGroup("plan", [fit_phase(), TEST]), callbacks=[Recorder()])
    policy = Checkpointing(mode="disk", directory=str(tmp_path), every_steps=1, keep=100)
    final, history = mml.run(exp, mml.init(exp, 0), progress=False, checkpoint=policy)
    names = json.loads((tmp_path / "checkpoints.json").read_text())
    assert names == [
        "plan.fit-step-1",
        "plan.fit-step-2",
        "plan.fit-step-3",
        "plan.fit-step-4",
        "plan.fit-end-step-4",
        "plan.test-end-step-4",
    ]
    for name in names:
        ckpt = mml.load(tmp_path / name)
        state, h = mml.run(exp, ckpt, progress=False)
        assert state == final, name
        assert state.callback_state("experiment/0") == tuple(PLAN_HOOKS)
        assert h.rows() == history.rows() and h.status == "completed"
        assert [p.label for p in h.phases] == ["fit", "test"]


def test_run_phase_continues_a_state_positioned_inside_the_phase(tmp_path):

    from mml.callbacks import Checkpointing

    phase = fit_phase()
    exp = experiment(PhaseGroup("plan", [phase, TEST]))
    policy = Checkpointing(mode="disk", directory=str(tmp_path), every_steps=1, keep=100)
    mml.run(exp, mml.init(exp, 0), progress=False, checkpoint=policy)
    whole, wh = run_phase(exp, phase, mml.init(exp, 0))
    ckpt = mml.load(tmp_path / "plan.fit-step-1")
    rest, h = run_phase(exp, phase, ckpt)
    assert rest == whole and rest.position is None
    assert h.rows() == wh.rows()[2:]  # the rows of steps 2..4: step 1's two rows are the checkpoint's
    assert h.phases[0].n_steps == 4
    # positioned at the end of the phase: only the bookkeeping is left, no step is run again
    ended = mml.load(tmp_path / "plan.fit-end-step-4")
    again, h2 = run_phase(exp, phase, ended)
    assert again == whole and len(h2) == 0 and h2.phases[0].n_steps == 4 and h2.status == "completed"


def test_observers_are_closed_with_none_when_the_run_raises(monkeypatch):
    import mml.training._run as run_module
    from mml.observers import AbstractObserver

    closed = []

    class Close(AbstractObserver):
        def close(self, history=None):
            closed.append(history)

    exc = mml.ConfigError("bad config")
    monkeypatch.setattr(run_module, "_train_steps", _failing_stream(exc, 1))
    exp = experiment(fit_phase())
    with pytest.raises(mml.ConfigError):
        mml.run(exp, mml.init(exp, 0), progress=False, observers=[Close()])
    assert closed == [None]
    monkeypatch.undo()
    _, h = mml.run(exp, mml.init(exp, 0), progress=False, observers=[Close()])
    assert closed[1] is h


@pytest.mark.parametrize("level", ["run_phase", "run"])
def test_an_error_on_its_way_out_is_not_replaced_by_a_failed_background_write(monkeypatch, tmp_path, level):
    import functools

    import mml.io._artifact as artifact
    import mml.training._run as run_module
    from mml.callbacks import Checkpointing
    from mml.training._checkpoints import CheckpointWriter

    def failing(target, *args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(artifact, "_write_artifact", failing)
    monkeypatch.setattr(run_module, "CheckpointWriter", functools.partial(CheckpointWriter, background=True))
    exc = mml.ConfigError("bad config")
    monkeypatch.setattr(run_module, "_train_steps", _failing_stream(exc, 1))
    phase = fit_phase(callbacks=[Checkpointing(mode="disk", directory=str(tmp_path), on="batch")])
    exp = experiment(phase)
    with pytest.raises(mml.ConfigError) as info:
        if level == "run":
            mml.run(exp, mml.init(exp, 0), progress=False)
        else:
            run_phase(exp, phase, mml.init(exp, 0))
    assert info.value is exc
