"""The shell pinned by value (issue 17): which observers it builds, the order and the exact
arguments every hook gets, and the message for a value that is not an observer."""

from __future__ import annotations

import pytest

import mml
from mml.observers import AbstractObserver
from mml.training._shell import Shell

from .conftest import simple_experiment

pytest.importorskip("torch")


class Tape(AbstractObserver):
    def __init__(self, name, tape):
        self.name, self.tape = name, tape

    def phase_start(self, phase):
        self.tape.append((self.name, "start", phase))

    def observe(self, state, ctx):
        self.tape.append((self.name, "observe", state, ctx))

    def phase_end(self, phase, history):
        self.tape.append((self.name, "end", phase, history))

    def close(self, history=None):
        self.tape.append((self.name, "close", history))


def test_every_hook_reaches_every_observer_in_order_with_its_arguments():
    tape: list = []
    shell = Shell.create(progress=False, log=None, observers=[Tape("a", tape), Tape("b", tape)])
    assert [o.name for o in shell.observers] == ["a", "b"]
    phase, state, ctx, hist = object(), object(), object(), object()
    shell.phase_start(phase)
    shell.observe(state, ctx)
    shell.phase_end(phase, hist)
    shell.close(hist)
    assert tape == [
        ("a", "start", phase),
        ("b", "start", phase),
        ("a", "observe", state, ctx),
        ("b", "observe", state, ctx),
        ("a", "end", phase, hist),
        ("b", "end", phase, hist),
        ("a", "close", hist),
        ("b", "close", hist),
    ]
    shell.close()
    assert tape[-1] == ("b", "close", None)


def test_a_run_hands_the_observers_its_states_contexts_and_history(toy):
    tape: list = []
    exp = simple_experiment(toy, n_epochs=1)
    state, history = mml.run(exp, mml.init(exp, 0), progress=False, observers=[Tape("a", tape)])
    kinds = [t[1] for t in tape]
    assert kinds[0] == "start" and kinds[-2:] == ["end", "close"]
    observed = [t for t in tape if t[1] == "observe"]
    batches = [t for t in observed if t[3].event == "batch"]
    assert [t[2].step for t in batches] == [1, 2, 3, 4, 5, 6] and [t[3].step for t in batches] == [
        0,
        1,
        2,
        3,
        4,
        5,
    ]
    assert tape[-1] == ("a", "close", history) and state.step == batches[-1][2].step
    assert tape[-2][3].rows() == history.rows()


def test_progress_none_asks_whether_to_show_it(monkeypatch):
    import mml.training._shell as shell_module
    from mml.observers._progress import ProgressDisplay

    monkeypatch.setattr(shell_module, "should_show_progress", lambda: True)
    (shown,) = Shell.create(progress=None, log=None).observers
    assert isinstance(shown, ProgressDisplay)
    monkeypatch.setattr(shell_module, "should_show_progress", lambda: False)
    assert Shell.create(progress=None, log=None).observers == ()
    assert Shell.create(progress=False, log=None).observers == ()
    (forced,) = Shell.create(progress=True, log=None).observers
    assert isinstance(forced, ProgressDisplay)
    shown.close(None)
    forced.close(None)


def test_the_log_suffix_picks_the_logger(tmp_path):
    from mml.observers._files import CSVLogger, JSONLLogger

    (csv,) = Shell.create(progress=False, log=tmp_path / "m.csv").observers
    (jsonl,) = Shell.create(progress=False, log=str(tmp_path / "m.jsonl")).observers
    (other,) = Shell.create(progress=False, log=str(tmp_path / "m.txt")).observers
    assert type(csv) is CSVLogger and type(jsonl) is JSONLLogger and type(other) is JSONLLogger
    for s in (csv, jsonl, other):
        s.close(None)
    tape: list = []
    built = Shell.create(progress=True, log=str(tmp_path / "n.csv"), observers=[Tape("t", tape)]).observers
    assert [type(o).__name__ for o in built] == ["ProgressDisplay", "CSVLogger", "Tape"]
    for o in built:
        o.close(None)


def test_a_value_that_is_not_an_observer_is_refused():
    tape: list = []
    with pytest.raises(mml.ConfigError) as info:
        Shell.create(progress=False, log=None, observers=[Tape("a", tape), print])
    assert str(info.value) == (
        "observers= takes mml.observers.AbstractObserver values, got builtin_function_or_method; "
        "subclass AbstractObserver and override the hooks you need"
    )
