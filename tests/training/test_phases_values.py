"""Phase values pinned: defaults, converters and every validation message in full (issue 17)."""

from __future__ import annotations

import pytest

import mml
from mml.training import AppliedLoss, EvalPhase, FitPhase, InputBinding, PhaseGroup, TrainPhase, iter_phases
from mml.training._phases import BATCH_SCHEDULES, MODES, RECORDING

MSE = AppliedLoss("mse", "m")


def _msg(fn) -> str:
    with pytest.raises(mml.ConfigError) as info:
        fn()
    return str(info.value)


def test_option_tuples():
    assert BATCH_SCHEDULES == ("zip_strict", "zip_cycle", "alternate_strict", "alternate_cycle")
    assert MODES == ("stagewise", "graphwise")
    assert RECORDING == ("all", "last_epoch", "none")


def test_input_binding_defaults_and_conversion():
    b = InputBinding("fs")
    assert (b.featureset, b.split, b.stream) == ("fs", "train", None)
    assert b.sampler == mml.SimpleSampler(256)
    p = TrainPhase("t", {"a": "fs", "b": {"featureset": "g", "split": "val"}, "c": b}, MSE)
    assert p.inputs == {"a": InputBinding("fs"), "b": InputBinding("g", "val"), "c": b}
    assert TrainPhase("t", None, MSE).inputs == {}
    assert _msg(lambda: TrainPhase("t", {"a": 3}, MSE)) == "input of head 'a' must be an InputBinding, got 3"


def test_train_phase_defaults():
    p = TrainPhase("t", {}, MSE)
    assert p.losses == (MSE,) and p.n_epochs == 1 and p.batch_schedule == "zip_strict"
    assert (p.active_nodes, p.trainable, p.callbacks, p.mode, p.device, p.optimizer, p.record) == (
        None,
        None,
        (),
        "stagewise",
        None,
        None,
        "none",
    )
    assert TrainPhase("t", {}, [MSE, MSE]).losses == (MSE, MSE)
    q = TrainPhase("t", {}, MSE, active_nodes="m", trainable=["a", "b"])
    assert q.active_nodes == ("m",) and q.trainable == ("a", "b")
    assert TrainPhase.kind == "phase.train" and EvalPhase.kind == "phase.eval"
    assert FitPhase.kind == "phase.fit" and PhaseGroup.kind == "phase.group"


def test_simple_constructors():
    s = mml.SimpleSampler(16)
    p = TrainPhase.simple(
        "t", featureset="fs", heads=["a", "b"], losses=MSE, n_epochs=3, sampler=s, mode="graphwise"
    )
    assert p.inputs == {"a": InputBinding("fs", "train", s), "b": InputBinding("fs", "train", s)}
    assert p.n_epochs == 3 and p.mode == "graphwise" and p.losses == (MSE,)
    d = TrainPhase.simple("t", featureset="fs", heads=["a"], losses=MSE, split="val")
    assert d.n_epochs == 1 and d.mode == "stagewise" and d.label == "t"
    assert d.inputs["a"] == InputBinding("fs", "val", mml.SimpleSampler(256))
    e = EvalPhase.simple("e", featureset="fs", heads=["a"])
    assert e.inputs["a"] == InputBinding("fs", "test", mml.SimpleSampler(1024, shuffle=False))
    assert e.batch_size == 1024 and e.losses == () and e.nodes is None and e.inverse_transform is False
    e2 = EvalPhase.simple("e", featureset="fs", heads=["a"], split="val", batch_size=8, nodes="a")
    assert e2.inputs["a"] == InputBinding("fs", "val", mml.SimpleSampler(8, shuffle=False))
    assert e2.batch_size == 8 and e2.nodes == ("a",) and e2.device is None


def test_messages_in_full():
    assert _msg(lambda: TrainPhase("", {}, MSE)) == "a phase label is a non-empty string without '/', got ''"
    assert (
        _msg(lambda: TrainPhase("a/b", {}, MSE))
        == "a phase label is a non-empty string without '/', got 'a/b'"
    )
    assert _msg(lambda: EvalPhase(3, {})) == "a phase label is a non-empty string without '/', got 3"
    assert _msg(lambda: TrainPhase("t", {}, [])) == (
        "TrainPhase 't' has no losses; pass losses=[AppliedLoss('mse', node=...)]"
    )
    assert _msg(lambda: TrainPhase("t", {}, ["mse"])) == (
        "losses must be AppliedLoss values, got 'mse'; e.g. AppliedLoss('mse', node='mlp')"
    )
    assert _msg(lambda: TrainPhase("t", {}, MSE, callbacks=[3])) == (
        "callbacks must be mml callback values (AbstractCallback), got 3"
    )
    for bad in (0, -1, 1.0, True, "2"):
        assert _msg(lambda bad=bad: TrainPhase("t", {}, MSE, n_epochs=bad)) == (
            f"TrainPhase.n_epochs must be an int >= 1, got {bad!r}"
        )
    assert TrainPhase("t", {}, MSE, n_epochs=1).n_epochs == 1
    assert _msg(lambda: EvalPhase("e", {}, batch_size=0)) == "EvalPhase.batch_size must be an int >= 1, got 0"
    assert _msg(lambda: TrainPhase("t", {}, MSE, batch_schedule="zip")) == (
        "TrainPhase.batch_schedule must be one of zip_strict, zip_cycle, alternate_strict, alternate_cycle; "
        "got 'zip'"
    )
    assert _msg(lambda: TrainPhase("t", {}, MSE, mode="layerwise")) == (
        "TrainPhase.mode must be one of stagewise, graphwise; got 'layerwise'"
    )
    assert _msg(lambda: TrainPhase("t", {}, MSE, record="some")) == (
        "TrainPhase.record must be one of all, last_epoch, none; got 'some'"
    )
    assert _msg(lambda: PhaseGroup("g", [3])) == (
        "a PhaseGroup holds phases (TrainPhase, EvalPhase, FitPhase, PhaseGroup), got 3"
    )


def test_fit_phase_and_groups():
    f = FitPhase("pca", {"pca": "fs"})
    assert f.inputs == {"pca": InputBinding("fs")} and f.nodes is None and f.freeze_after_fit is True
    assert FitPhase("pca", {}, nodes="pca").nodes == ("pca",)
    a, b, c = FitPhase("a", {}), FitPhase("b", {}), EvalPhase("c", {})
    g = PhaseGroup("plan", [a, PhaseGroup("inner", [b, PhaseGroup("deep", [c])])])
    assert [p.label for p in iter_phases(g)] == ["a", "b", "c"]
    assert list(iter_phases(a)) == [a]
    assert PhaseGroup("empty", []).phases == ()
