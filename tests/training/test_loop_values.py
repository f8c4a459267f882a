"""The fold pinned by value: every hook's event, what each context carries, stop, resume (issue 17).

A callback that records every event it sees (hook, position, step, context, metrics) runs on the
linear two-loss experiment of ``test_step_values.py`` (2 epochs of 2 batches); the records, the
yielded contexts' metrics and checkpoints, and the positions are compared with hand-written lists.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import numpy as np
import pytest

import mml
from mml.callbacks import AbstractCallback, CallbackResult
from mml.training import PhaseGroup, evaluate, steps

from .test_step_values import _experiment

torch = pytest.importorskip("torch")

LOSS_KEYS = ("lin.mae", "lin.mse", "loss")


@attrs.frozen
class Recorder(AbstractCallback):
    """Records every event; logs ``seen`` (events so far), asks for a checkpoint named after the event."""

    kind: ClassVar[str] = "callback.test_loop_recorder"
    stop_at: tuple = ()  # (hook, epoch, batch) at which the hook returns stop=True

    def init(self):
        return ()

    def _record(self, event, state):
        ctx = event.context
        # the running experiment and phase values, the fold's evaluate and the current state
        ok = (
            event.experiment.featuresets.keys() == {"toy"}
            and event.phase_value.label == event.phase
            and event.evaluate is evaluate
            # a phase started afresh does not carry the position of the phase before it
            and (event.hook != "on_phase_start" or event.state.position is None)
            # (a phase-start event's step is the Event default, 0, like the experiment-level ones)
            and (event.hook == "on_phase_start" or event.state.step == event.step)
        )
        rec = (
            event.hook,
            event.phase,
            event.epoch,
            event.batch,
            event.step,
            None if ctx is None else (ctx.event, ctx.epoch, ctx.batch, ctx.step),
            tuple(sorted(event.metrics)),
            ok,
        )
        return CallbackResult(
            state=(*state, rec),
            metrics={"seen": len(state) + 1},
            stop=(event.hook, event.epoch, event.batch) in self.stop_at,
            checkpoint=f"{event.hook}:{event.epoch}:{event.batch}",
        )

    on_phase_start = on_epoch_start = on_batch_start = on_batch_end = on_epoch_end = on_phase_end = _record


def _recorded(n_epochs=2, stop_at=()):
    exp, phase = _experiment("stagewise", mml.optim.sgd(0.1), n_epochs=n_epochs)
    phase = attrs.evolve(phase, callbacks=(Recorder(stop_at=stop_at),))
    return attrs.evolve(exp, plan=phase), phase


def _run(exp, phase, state):
    return list(steps(exp, phase, state))


def _records(state, slot="fit/0"):
    recs = state.callback_state(slot)
    assert all(r[-1] is True for r in recs)
    return tuple(r[:-1] for r in recs)


def _batch(e, b, step):
    return [
        ("on_batch_start", "fit", e, b, step, None, ()),
        ("on_batch_end", "fit", e, b, step + 1, ("batch", e, b, step), ()),
    ]


FULL = [
    ("on_phase_start", "fit", 0, 0, 0, None, ()),
    ("on_epoch_start", "fit", 0, 0, 0, None, ()),
    *_batch(0, 0, 0),
    *_batch(0, 1, 1),
    ("on_epoch_end", "fit", 0, 1, 2, None, LOSS_KEYS),
    ("on_epoch_start", "fit", 1, 0, 2, None, ()),
    *_batch(1, 0, 2),
    *_batch(1, 1, 3),
    ("on_epoch_end", "fit", 1, 1, 4, None, LOSS_KEYS),
    ("on_phase_end", "fit", 2, 0, 4, None, ()),
]


def _summary(got):
    return [
        (c.event, c.epoch, c.batch, c.step, dict(c.metrics), tuple(c.checkpoints), s.step, s.epoch, s.stop)
        for s, c in got
    ]


def test_every_hook_sees_its_position_and_every_context_carries_what_was_logged():
    exp, phase = _recorded()
    state = mml.init(exp, 0)
    got = _run(exp, phase, state)
    final = got[-1][0]
    assert _records(final) == tuple(FULL)
    assert _summary(got) == [
        ("batch", 0, 0, 0, {"seen": 4.0}, ("on_batch_end:0:0",), 1, 0, False),
        ("batch", 0, 1, 1, {"seen": 6.0}, ("on_batch_end:0:1",), 2, 0, False),
        ("epoch_end", 0, -1, 2, {"seen": 7.0}, ("on_epoch_end:0:1",), 2, 1, False),
        ("batch", 1, 0, 2, {"seen": 10.0}, ("on_batch_end:1:0",), 3, 1, False),
        ("batch", 1, 1, 3, {"seen": 12.0}, ("on_batch_end:1:1",), 4, 1, False),
        ("epoch_end", 1, -1, 4, {"seen": 13.0}, ("on_epoch_end:1:1",), 4, 2, False),
        ("phase_end", 2, -1, 4, {"seen": 14.0}, ("on_phase_end:2:0",), 4, 2, False),
    ]
    # the epoch-end context's losses are the means of its batches' losses
    for idx in (2, 5):
        b1, b2, end = got[idx - 2][1], got[idx - 1][1], got[idx][1]
        assert dict(end.losses) == {k: (b1.losses[k] + b2.losses[k]) / 2 for k in LOSS_KEYS}
        assert end.inputs == {} and end.outputs == {}
    positions = [(s.position.stage, s.position.epoch, s.position.batch, s.position.n_steps) for s, _ in got]
    assert positions == [
        ("running", 0, 1, 1),
        ("running", 0, 2, 2),
        ("running", 1, 0, 2),
        ("running", 1, 1, 3),
        ("running", 1, 2, 4),
        ("running", 2, 0, 4),
        ("ended", 2, 0, 4),
    ]
    assert {(s.position.plan, s.position.phase) for s, _ in got} == {("", "fit")}
    assert all(s.position.sums == () for s, c in got if c.event != "batch")
    assert state.callback_states == {} and state.position is None


def test_a_stop_at_a_batch_end_ends_the_epoch_and_the_phase():
    exp, phase = _recorded(stop_at=(("on_batch_end", 0, 0),))
    got = _run(exp, phase, mml.init(exp, 0))
    final = got[-1][0]
    assert _records(final) == (
        *FULL[:4],
        ("on_epoch_end", "fit", 0, 0, 1, None, LOSS_KEYS),
        ("on_phase_end", "fit", 1, 0, 1, None, ()),
    )
    assert [(c.event, c.epoch, c.batch, s.step, s.epoch, s.stop) for s, c in got] == [
        ("batch", 0, 0, 1, 0, True),
        ("epoch_end", 0, -1, 1, 1, True),
        ("phase_end", 1, -1, 1, 1, True),
    ]
    assert final.position.stage == "ended" and final.position.n_steps == 1


def test_a_stop_at_an_epoch_end_skips_the_later_epochs():
    exp, phase = _recorded(n_epochs=3, stop_at=(("on_epoch_end", 0, 1),))
    got = _run(exp, phase, mml.init(exp, 0))
    assert [(c.event, c.epoch, s.stop) for s, c in got] == [
        ("batch", 0, False),
        ("batch", 0, False),
        ("epoch_end", 0, True),
        ("phase_end", 1, True),
    ]
    assert _records(got[-1][0])[-1] == ("on_phase_end", "fit", 1, 0, 2, None, ())


def test_a_stop_at_the_phase_start_runs_no_step():
    exp, phase = _recorded(stop_at=(("on_phase_start", 0, 0),))
    state = mml.init(exp, 0)
    got = _run(exp, phase, state)
    assert [(c.event, c.epoch, s.step, s.stop) for s, c in got] == [("phase_end", 0, 0, True)]
    assert _records(got[-1][0]) == (FULL[0], ("on_phase_end", "fit", 0, 0, 0, None, ()))
    assert all(
        torch.equal(got[-1][0].params("lin").params[k], v) for k, v in state.params("lin").params.items()
    )


def test_a_stop_at_an_epoch_start_runs_no_step_of_that_epoch():
    exp, phase = _recorded(stop_at=(("on_epoch_start", 1, 0),))
    got = _run(exp, phase, mml.init(exp, 0))
    assert [(c.event, c.epoch, c.batch, s.step, s.stop) for s, c in got] == [
        ("batch", 0, 0, 1, False),
        ("batch", 0, 1, 2, False),
        ("epoch_end", 0, -1, 2, False),
        ("epoch_end", 1, -1, 2, True),
        ("phase_end", 2, -1, 2, True),
    ]
    assert dict(got[3][1].losses) == {}  # no step in that epoch: no means
    assert _records(got[-1][0])[-3:] == (
        ("on_epoch_start", "fit", 1, 0, 2, None, ()),
        ("on_epoch_end", "fit", 1, -1, 2, None, ()),
        ("on_phase_end", "fit", 2, 0, 2, None, ()),
    )


def test_a_stop_at_a_batch_start_takes_no_step_there():
    exp, phase = _recorded(stop_at=(("on_batch_start", 0, 1),))
    got = _run(exp, phase, mml.init(exp, 0))
    assert [(c.event, c.epoch, c.batch, s.step, s.stop) for s, c in got] == [
        ("batch", 0, 0, 1, False),
        ("epoch_end", 0, -1, 1, True),
        ("phase_end", 1, -1, 1, True),
    ]
    assert _records(got[-1][0])[-3:] == (
        ("on_batch_start", "fit", 0, 1, 1, None, ()),
        ("on_epoch_end", "fit", 0, 0, 1, None, LOSS_KEYS),  # the last batch done: 0
        ("on_phase_end", "fit", 1, 0, 1, None, ()),
    )
    assert got[1][1].losses == got[0][1].losses  # the epoch's mean over its one step


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_a_state_taken_inside_the_phase_continues_it_bit_for_bit(cut):
    exp, phase = _recorded()
    state = mml.init(exp, 0)
    full = _run(exp, phase, state)
    resumed = _run(exp, phase, full[cut - 1][0])
    assert _summary(resumed) == _summary(full[cut:])
    for (a, ca), (b, cb) in zip(resumed, full[cut:]):
        assert dict(ca.losses) == dict(cb.losses)
        assert a.position == b.position
        assert all(torch.equal(a.params("lin").params[k], v) for k, v in b.params("lin").params.items())
    assert _records(resumed[-1][0]) == tuple(FULL)
    assert resumed[-1][0].opt_steps == {"lin": 4}


def test_a_state_that_ended_another_phase_starts_this_one_afresh():
    exp, phase = _recorded(n_epochs=1)
    first = _run(exp, phase, mml.init(exp, 0))[-1][0]
    assert first.position.stage == "ended"
    more = attrs.evolve(phase, label="more")
    got = _run(exp, more, first)
    assert {(s.position.plan, s.position.phase) for s, _ in got} == {("", "more")}
    assert [(c.event, c.epoch, c.step) for _, c in got] == [
        ("batch", 0, 2),
        ("batch", 0, 3),
        ("epoch_end", 0, 4),
        ("phase_end", 1, 4),
    ]
    assert _records(got[-1][0], "more/0")[0][:2] == ("on_phase_start", "more")
    # a stopped state of the earlier phase does not stop this one
    stopped = attrs.evolve(first, stop=True)
    assert [c.event for _, c in _run(exp, more, stopped)][-1] == "phase_end"
    assert len(_run(exp, more, stopped)) == 4


def test_a_group_runs_its_phases_in_order_each_from_the_last_state():
    exp, phase = _experiment("stagewise", mml.optim.sgd(0.1), n_epochs=1)
    second = attrs.evolve(phase, label="again")
    group = PhaseGroup("plan", [phase, second])
    exp = attrs.evolve(exp, plan=group)
    state = mml.init(exp, 0)
    got = list(steps(exp, group, state))
    assert [(c.phase, c.event, c.step, s.step) for s, c in got] == [
        ("fit", "batch", 0, 1),
        ("fit", "batch", 1, 2),
        ("fit", "epoch_end", 2, 2),
        ("fit", "phase_end", 2, 2),
        ("again", "batch", 2, 3),
        ("again", "batch", 3, 4),
        ("again", "epoch_end", 4, 4),
        ("again", "phase_end", 4, 4),
    ]
    alone = list(steps(exp, second, list(steps(exp, phase, state))[-1][0]))
    last = alone[-1][0]
    assert all(
        torch.equal(got[-1][0].params("lin").params[k], v) for k, v in last.params("lin").params.items()
    )


def test_an_unknown_phase_type_is_refused_by_name():
    from mml.training._phases import AbstractPhase

    class Odd(AbstractPhase):
        kind = "phase.test_odd"
        label = "odd"

    exp, _ = _experiment("stagewise", mml.optim.sgd(0.1))
    with pytest.raises(mml.TrainingError) as info:
        steps(exp, Odd(), mml.init(exp, 0))
    assert str(info.value) == "unknown phase type Odd"


def test_init_builds_from_the_key_folded_with_init():
    from mml.graph import build
    from mml.random import as_key, fold_in

    exp, _ = _experiment("stagewise", mml.optim.sgd(0.1))
    a, b = mml.init(exp, 7), mml.init(exp, mml.random.key(7))
    ref = build(exp.graph, exp.featuresets, fold_in(as_key(7), "init"))
    for k, v in ref.params["lin"].params.items():
        assert torch.equal(a.params("lin").params[k], v) and torch.equal(b.params("lin").params[k], v)
    assert a.key == as_key(7) and a.step == 0 and a.position is None
    assert not np.array_equal(
        mml.init(exp, 8).params("lin").params["layers.0.weight"].numpy(),
        ref.params["lin"].params["layers.0.weight"].numpy(),
    )


def test_a_non_finite_loss_is_located_at_its_phase_epoch_and_batch():
    from mml.training import AppliedLoss, Loss

    exp, phase = _experiment(
        "stagewise",
        mml.optim.sgd(0.1),
        losses=[AppliedLoss(Loss("tests.training.test_step_values:nan_loss"), "lin", label="bad")],
    )
    state = mml.init(exp, 0)
    with pytest.raises(mml.TrainingError) as info:
        list(steps(exp, phase, state))
    assert info.value._mml_location == ("fit", 0, 0)
    assert info.value.state.step == 0 and info.value.state.opt_steps == {"lin": 0}


def test_to_torch_gives_float32_tensors_of_the_batch():
    from mml.data import SampleData
    from mml.training._loop import _to_torch

    sd = SampleData(features=np.arange(6.0).reshape(3, 2), targets=np.array([[1.0], [2.0], [3.0]]))
    got = _to_torch(sd, torch.device("cpu"))
    assert got.features.dtype == torch.float32 and got.features.device.type == "cpu"
    assert got.features.tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert got.targets.tolist() == [[1.0], [2.0], [3.0]]


def test_a_phase_started_afresh_resets_epoch_batch_and_stop():
    exp, phase = _recorded(n_epochs=1)
    first = _run(exp, phase, mml.init(exp, 0))[-1][0]
    assert (first.epoch, first.batch) == (1, 2)
    more = attrs.evolve(phase, label="more", callbacks=(Recorder(stop_at=(("on_phase_start", 0, 0),)),))
    got = _run(exp, more, attrs.evolve(first, stop=True))
    ((st, ctx),) = got
    assert (ctx.event, st.epoch, st.batch, st.step, st.stop) == ("phase_end", 0, 0, 2, True)
    assert dict(ctx.inputs) == {} and dict(ctx.outputs) == {} and dict(ctx.losses) == {}


def test_a_resumed_state_keeps_its_plan_and_phase_path():
    exp, phase = _recorded()
    full = _run(exp, phase, mml.init(exp, 0))
    cut = full[0][0]
    # a position as mml.run records it: the plan's fingerprint and the phase's path in its group
    moved = attrs.evolve(cut, position=attrs.evolve(cut.position, plan="f00d", phase="plan/fit"))
    resumed = _run(exp, phase, moved)
    assert [(c.event, c.epoch, c.batch) for _, c in resumed] == [
        (c.event, c.epoch, c.batch) for _, c in full[1:]
    ]
    assert {(s.position.plan, s.position.phase) for s, _ in resumed} == {("f00d", "plan/fit")}


def test_with_a_plan_position_only_the_same_plan_and_path_resume():
    from mml.training._loop import _train_steps

    exp, phase = _recorded()
    full = _run(exp, phase, mml.init(exp, 0))
    cut = full[0][0]
    here = attrs.evolve(cut, position=attrs.evolve(cut.position, plan="f00d", phase="plan/fit"))
    same = list(_train_steps(exp, phase, here, ("f00d", "plan/fit")))
    assert [(c.event, c.epoch, c.batch) for _, c in same] == [
        (c.event, c.epoch, c.batch) for _, c in full[1:]
    ]
    for where in (("beef", "plan/fit"), ("f00d", "other/fit")):
        fresh = list(_train_steps(exp, phase, here, where))
        assert len(fresh) == len(full)  # another plan or path: the phase starts at its beginning
        assert _records(fresh[-1][0])[0][0] == "on_phase_start"
        assert {(s.position.plan, s.position.phase) for s, _ in fresh} == {where}
