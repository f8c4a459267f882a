"""Callback dispatch pinned by value: order, metrics threading, control, messages in full (issue 17).

:func:`mml.training._dispatch.dispatch` is called directly with small hand-written callbacks on a
toy ``TrainState`` (no graph), so every result is known exactly.
"""

from __future__ import annotations

import attrs
import pytest

import mml
from mml.callbacks import AbstractCallback, CallbackResult
from mml.callbacks._base import Event
from mml.training import TrainState
from mml.training._dispatch import dispatch


def _state() -> TrainState:
    return TrainState(graph=None, key=mml.random.key(0))


@attrs.frozen
class Adder(AbstractCallback):
    """Adds ``step`` to its state and logs ``name`` = the metric ``reads`` (if logged before) + ``value``."""

    kind = "callback.test_dispatch_adder"
    name: str = "a"
    value: int = 1
    reads: str | None = None
    stop: bool = False
    restore: object = None
    checkpoint: object = None

    def on_epoch_end(self, event, state):
        seen = event.metrics.get(self.reads, 0.0) if self.reads else 0.0
        # the state the hook sees is the state after the earlier callbacks
        before = event.state.callback_state("p/0")
        return CallbackResult(
            state=(state or 0) + self.value,
            metrics={
                self.name: seen + self.value,
                f"{self.name}.saw_slot0": -1 if before is None else before,
            },
            stop=self.stop,
            restore=self.restore,
            checkpoint=self.checkpoint,
        )


@attrs.frozen
class Silent(AbstractCallback):
    """Overrides the hook but returns ``None`` (nothing changed)."""

    kind = "callback.test_dispatch_silent"

    def on_epoch_end(self, event, state):
        return None


@attrs.frozen
class OtherHook(AbstractCallback):
    """Overrides only ``on_batch_end``: ``on_epoch_end`` must skip it."""

    kind = "callback.test_dispatch_other"

    def on_batch_end(self, event, state):  # pragma: no cover - never called here
        raise AssertionError("on_batch_end must not run for on_epoch_end")


@attrs.frozen
class Raiser(AbstractCallback):
    kind = "callback.test_dispatch_raiser"
    exc: object = None

    def on_phase_start(self, event, state):
        raise self.exc

    def on_epoch_start(self, event, state):
        raise self.exc

    def on_batch_end(self, event, state):
        raise self.exc


def _event(hook="on_epoch_end", **kw):
    return Event(hook, phase="p", epoch=3, batch=7, step=11, **kw)


def test_metrics_thread_through_the_callbacks_in_order_and_only_new_ones_are_logged():
    cbs = [Adder("a", 1), Silent(), OtherHook(), Adder("b", 5, reads="a"), Adder("c", 2, reads="loss")]
    slots = ["p/0", "p/1", "p/2", "p/3", "p/4"]
    state, logged, stop = dispatch(cbs, slots, "on_epoch_end", _event(metrics={"loss": 0.25}), _state())
    assert logged == {
        "a": 1.0,
        "a.saw_slot0": -1.0,
        "b": 6.0,  # b reads the metric a logged before it
        "b.saw_slot0": 1.0,  # and the state a left
        "c": 2.25,  # c reads the event's own metric
        "c.saw_slot0": 1.0,
    }
    assert all(type(v) is float for v in logged.values())
    assert stop is False
    assert state.callback_state("p/0") == 1 and state.callback_state("p/3") == 5
    assert state.callback_state("p/4") == 2
    # a callback returning None, or not overriding the hook, leaves its slot alone
    assert "p/1" not in state.callback_states and "p/2" not in state.callback_states
    assert state.graph is None and state.step == 0


def test_nothing_to_run_gives_the_same_state_and_no_metrics():
    s = _state()
    got = dispatch([OtherHook(), Silent()], ["p/0", "p/1"], "on_epoch_end", _event(metrics={"x": 1.0}), s)
    assert got[0] is s and got[1] == {} and got[2] is False


def test_stop_is_the_or_of_the_callbacks_and_restore_and_checkpoints_are_applied():
    graph = object()
    saves: list = ["earlier"]
    cbs = [
        Adder("a", 1, stop=True, checkpoint="ck1"),
        Adder("b", 1, stop=False, restore=graph),
        Adder("c", 1, checkpoint="ck2"),
    ]
    state, logged, stop = dispatch(cbs, ["p/0", "p/1", "p/2"], "on_epoch_end", _event(), _state(), saves)
    assert stop is True and logged["c"] == 1.0
    assert state.graph is graph
    assert saves == ["earlier", "ck1", "ck2"]
    # without a saves list, checkpoints are dropped (no error)
    state, _, stop = dispatch(cbs[2:], ["p/0"], "on_epoch_end", _event(), _state(), None)
    assert stop is False and state.graph is None
    only_last = dispatch(
        [Adder("a", 1), Adder("b", 1, stop=True)], ["p/0", "p/1"], "on_epoch_end", _event(), _state()
    )
    assert only_last[2] is True


@pytest.mark.parametrize(
    ("hook", "where"),
    [
        ("on_phase_start", ("p", None, None)),
        ("on_epoch_start", ("p", 3, None)),
        ("on_batch_end", ("p", 3, 7)),
    ],
)
def test_an_mml_error_becomes_a_callback_error_with_the_position(hook, where):
    cause = mml.DataError("bad column 'x'")
    with pytest.raises(mml.CallbackError) as info:
        dispatch([Raiser(cause)], ["p/0"], hook, _event(hook), _state())
    assert (
        str(info.value) == f"callback Raiser failed in {hook} (phase 'p', epoch 3, batch 7): bad column 'x'"
    )
    assert info.value.__cause__ is cause
    assert info.value._mml_location == where


@pytest.mark.parametrize(
    ("hook", "where"),
    [
        ("on_phase_start", ("p", None, None)),
        ("on_epoch_start", ("p", 3, None)),
        ("on_batch_end", ("p", 3, 7)),
    ],
)
def test_any_other_exception_becomes_a_callback_error_that_says_the_state_is_kept(hook, where):
    cause = KeyError("k")
    with pytest.raises(mml.CallbackError) as info:
        dispatch([Raiser(cause)], ["p/0"], hook, _event(hook), _state())
    assert str(info.value) == (
        f"callback Raiser raised KeyError in {hook} (phase 'p', epoch 3, batch 7): 'k'; the run is marked "
        "failed and the state before this hook is kept"
    )
    assert info.value.__cause__ is cause
    assert info.value._mml_location == where


def test_a_callback_error_passes_through_unchanged():
    inner = mml.CallbackError("inner")
    with pytest.raises(mml.CallbackError) as info:
        dispatch([Raiser(inner)], ["p/0"], "on_batch_end", _event("on_batch_end"), _state())
    assert info.value is inner and str(inner) == "inner"
    assert getattr(inner, "_mml_location", None) is None
