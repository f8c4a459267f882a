"""A History from a real run saves and loads: eval results, phase results, errors as records."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mml
from mml.callbacks import AbstractCallback, CallbackResult
from mml.data import SampleData
from mml.training import (
    ErrorRecord,
    EvalPhase,
    ExecutionContext,
    Experiment,
    History,
    PhaseGroup,
    PhaseResult,
)

from .conftest import make_featureset, mlp_graph, simple_experiment

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def toy() -> mml.FeatureSet:
    return make_featureset()


def _fit_then_eval(fs: mml.FeatureSet, **train_kw) -> mml.Experiment:
    exp = simple_experiment(fs, n_epochs=1, **train_kw)
    test = EvalPhase.simple("test", featureset="toy", heads=["mlp"], split="val")
    return attrs.evolve(exp, plan=PhaseGroup("plan", [exp.plan, test]))


def _same_phases(a: History, b: History) -> None:
    # PhaseResult compares by identity (it holds wall times), so compare what was saved
    assert len(a.phases) == len(b.phases)
    for p, q in zip(a.phases, b.phases):
        assert (p.label, p.kind, p.status, p.n_steps, p.seconds) == (
            q.label,
            q.kind,
            q.status,
            q.n_steps,
            q.seconds,
        )
        assert p.failure == q.failure
        assert p.eval == q.eval


def test_history_with_eval_phase_roundtrips(toy, tmp_path):
    exp = _fit_then_eval(toy)
    _, h = mml.run(exp, mml.init(exp, 0))
    assert h.status == "completed", h.error
    res = h.eval_result("test")
    assert res.sample_uuids["default"].dtype == np.dtype("S16") and len(res.sample_uuids["default"]) == 30

    back = mml.io.roundtrip(h)
    assert back == h
    _same_phases(h, back)
    np.testing.assert_array_equal(back.eval_result("test").outputs["mlp"], res.outputs["mlp"])
    np.testing.assert_array_equal(
        back.eval_result("test").sample_uuids["default"], res.sample_uuids["default"]
    )

    mml.save(h, tmp_path / "history")
    loaded = mml.load(tmp_path / "history")
    assert isinstance(loaded, History) and loaded == h
    _same_phases(h, loaded)
    assert loaded.raise_for_status() is loaded


def test_failed_history_roundtrips_and_raises_a_training_error(toy, tmp_path):
    exp = _fit_then_eval(toy, optimizer=None)
    exp = Experiment(exp.featuresets, mlp_graph(lr=1e30), exp.plan)  # the loss blows up
    _, h = mml.run(exp, mml.init(exp, 0))
    assert h.status == "failed"
    rec = h.failure
    assert rec is not None and rec.type == "mml.errors:TrainingError"
    assert rec.phase == "fit" and rec.epoch == 0 and rec.batch is not None
    assert f"batch {rec.batch}" in rec.message and "non-finite loss" in rec.message
    assert h.phase_result("fit").failure == rec

    # in memory: the original exception (same object, traceback kept)
    original = h.error
    assert isinstance(original, mml.TrainingError) and h.error is original
    with pytest.raises(mml.TrainingError) as info:
        h.raise_for_status()
    assert info.value is original

    mml.save(h, tmp_path / "failed")
    loaded = mml.load(tmp_path / "failed")
    assert loaded == h and loaded.failure == rec
    _same_phases(h, loaded)
    with pytest.raises(mml.TrainingError) as info:
        loaded.raise_for_status()
    assert info.value is not original and str(info.value) == str(original)
    assert "mml.errors:TrainingError in phase 'fit', epoch 0" in info.value.__notes__[0]


@attrs.frozen
class Boom(AbstractCallback):
    kind: ClassVar[str] = "callback.test_history_boom"
    at_epoch: int = 1

    def on_epoch_end(self, event: Any, state: Any) -> CallbackResult | None:
        if event.epoch == self.at_epoch:
            raise ValueError("user bug")
        return None


def test_callback_error_record_says_where(toy):
    exp = simple_experiment(toy, n_epochs=3, callbacks=[Boom(at_epoch=1)])
    _, h = mml.run(exp, mml.init(exp, 0))
    rec = h.failure
    assert rec is not None and rec.type == "mml.errors:CallbackError"
    # an epoch hook: phase and epoch known, no batch
    assert (rec.phase, rec.epoch, rec.batch) == ("fit", 1, None)
    assert isinstance(h.error, mml.CallbackError) and isinstance(h.error.__cause__, ValueError)
    back = mml.io.roundtrip(h)
    assert back.failure == rec and type(back.error) is mml.TrainingError and str(back.error) == rec.message


def test_constructor_takes_an_exception_or_a_record():
    exc = KeyError("x")
    h = History(status="failed", error=exc)
    assert h.failure == ErrorRecord("builtins:KeyError", "'x'") and h.error is exc
    assert History(status="failed", error=h.failure) == h
    assert attrs.evolve(h, error=None).failure is None
    assert PhaseResult("a", "phase.train", "failed", exc).error is exc
    with pytest.raises(TypeError, match="exception or an ErrorRecord"):
        History(error="boom")  # type: ignore[arg-type]


def test_merge_keeps_the_first_failure():
    a = History(status="failed", error=mml.TrainingError("first"))
    b = History(status="failed", error=mml.TrainingError("second"))
    assert a.merge(b).failure == a.failure and History().merge(b).failure == b.failure
    assert History().merge(History()).failure is None


_texts = st.text(max_size=20)
_opt_int = st.none() | st.integers(-1, 10**6)


@settings(max_examples=25, deadline=None)
@given(type_=_texts, message=_texts, phase=st.none() | _texts, epoch=_opt_int, batch=_opt_int)
def test_error_record_roundtrips(type_, message, phase, epoch, batch):
    rec = ErrorRecord(type_, message, phase, epoch, batch)
    back = mml.io.roundtrip(rec)
    assert back == rec and hash(back) == hash(rec)
    assert str(back.to_exception()) == message and back.to_exception() is back.to_exception()


def test_recorded_contexts_roundtrip_as_execution_contexts(toy, tmp_path):
    exp = simple_experiment(toy, n_epochs=1, record="all")
    _, h = mml.run(exp, mml.init(exp, 0))
    mml.save(h, tmp_path / "h")
    loaded = mml.load(tmp_path / "h")
    before, after = h.phase_result("fit").contexts, loaded.phase_result("fit").contexts
    assert len(before) == len(after) == 6
    for a, b in zip(before, after):
        assert isinstance(b, ExecutionContext)
        assert (a.phase, a.epoch, a.batch, a.step, a.event) == (b.phase, b.epoch, b.batch, b.step, b.event)
        assert dict(a.losses) == dict(b.losses)
        assert isinstance(b.input("mlp"), SampleData)
        assert torch.equal(a.input("mlp").features, b.input("mlp").features)
        assert isinstance(b.output("mlp"), torch.Tensor) and torch.equal(a.output("mlp"), b.output("mlp"))
