"""TrainState, Boxed, Position and ExecutionContext pinned by value (issue 17, mutation testing)."""

from __future__ import annotations

import attrs
import pytest

import mml
from mml._fields import FrozenDict
from mml.training._state import (
    GRAPH_OPTIMIZER,
    Boxed,
    ExecutionContext,
    Position,
    TrainState,
    box,
    unbox,
)

from .conftest import make_featureset, simple_experiment


def bare() -> TrainState:
    return TrainState(graph=None, key=mml.random.key(0))


def test_graph_optimizer_key():
    assert GRAPH_OPTIMIZER == "*graph*"


def test_box_and_unbox():
    key = mml.random.key(3)
    b = box(key)
    assert b == Boxed("mml.random:Key", key) and b.value is key
    assert box(b) is b
    assert box(2.5) == Boxed("", 2.5)
    assert box({"a": 1}) == Boxed("", {"a": 1})
    assert unbox(b) is key and unbox(None) is None and unbox(box(0)) == 0


def test_a_boxed_document_revives_as_its_type():
    doc = mml.io.unstructure(mml.random.key(3))
    b = Boxed("mml.random:Key", doc)
    assert b.value == mml.random.key(3) and type(b.value).__name__ == "Key"
    # a value that is already the type is kept as it is (same object)
    key = mml.random.key(4)
    assert Boxed("mml.random:Key", key).value is key
    # plain data and frozen mappings are never revived
    assert Boxed("", {"a": 1}).value == {"a": 1}
    frozen = FrozenDict({"a": 1})
    assert Boxed("mml.random:Key", frozen).value is frozen
    assert mml.io.roundtrip(b) == b


def test_a_boxed_type_must_describe_its_value():
    with pytest.raises(mml.ConfigError) as info:
        Boxed("mml.random:Nope", mml.random.key(1))
    assert str(info.value) == (
        "Boxed.type is 'mml.random:Nope' but the value is a mml.random:Key; "
        "build it with box(value) (or evolve both fields together)"
    )
    Boxed("", 3)  # plain data: nothing to compare


def test_position_defaults_and_sums():
    p = Position("f00d", "plan/train")
    assert (p.plan, p.phase, p.stage, p.epoch, p.batch, p.n_steps, p.sums, p.history) == (
        "f00d",
        "plan/train",
        "running",
        0,
        0,
        0,
        (),
        None,
    )


def test_train_state_defaults():
    s = bare()
    assert s.opt_states == {} and s.opt_steps == {} and s.callback_states == {}
    assert (s.step, s.epoch, s.batch, s.fitted, s.stop, s.position) == (0, 0, 0, (), False, None)
    assert s.opt_state("m") is None and s.callback_state("fit/0") is None


def test_new_records_leave_the_old_one_unchanged():
    s = bare()
    a = s.with_opt_state("m", 1.5).with_opt_steps("m", 4).with_callback_state("fit/0", {"n": 2})
    assert a.opt_state("m") == 1.5 and a.opt_steps == {"m": 4} and a.callback_state("fit/0") == {"n": 2}
    assert a.opt_states["m"] == Boxed("", 1.5)
    b = a.with_opt_state("m", 2.5).with_opt_steps("m", 5).with_opt_state("n", 0.5)
    assert (b.opt_state("m"), b.opt_state("n"), dict(b.opt_steps)) == (2.5, 0.5, {"m": 5})
    assert a.opt_state("m") == 1.5 and a.opt_steps == {"m": 4}
    assert s.opt_states == {} and s.callback_states == {}
    moved = s.advance(batch=3).advance(batch=4)
    assert (moved.step, moved.batch, moved.epoch) == (2, 4, 0) and (s.step, s.batch) == (0, 0)
    assert s.with_stop().stop is True and s.with_stop().with_stop(False).stop is False
    assert s.with_stop(True).stop is True
    f = s.mark_fitted("a").mark_fitted("b").mark_fitted("a")
    assert f.fitted == ("a", "b")
    same = s.mark_fitted("a")
    assert same.mark_fitted("a") is same
    assert s.without_position() is s
    p = attrs.evolve(s, position=Position("p", "plan/fit"))
    assert p.without_position() == s and p.position == Position("p", "plan/fit")
    assert s.with_graph("g").graph == "g" and s.graph is None


def test_params_and_with_params_on_a_real_state():
    exp = simple_experiment(make_featureset(), n_epochs=1)
    s = mml.init(exp, 0)
    rec = s.params("mlp")
    assert rec is s.graph.params["mlp"]
    other = mml.init(exp, 1).params("mlp")
    t = s.with_params("mlp", other)
    assert t.params("mlp") == other and s.params("mlp") is rec


def test_repr_in_full():
    s = attrs.evolve(
        bare()
        .with_opt_state(GRAPH_OPTIMIZER, mml.optim.adam(0.1).init({}))
        .with_opt_steps(GRAPH_OPTIMIZER, 4)
        .with_opt_state("m", 2.5)
        .with_callback_state("fit/0", {"a": 1})
        .mark_fitted("a")
        .mark_fitted("b")
        .with_stop(),
        position=Position("f00d", "plan/fit", stage="ended", epoch=2, batch=5),
        step=7,
        epoch=1,
        batch=3,
    )
    assert repr(s) == (
        "TrainState(step=7, epoch=1, batch=3, stop=True, key=Key(seed=0, words=...)\n"
        "  optimizer state '*graph*': AdamState, 4 updates\n"
        "  optimizer state 'm': float, 0 updates\n"
        "  callback state 'fit/0': dict\n"
        "  fitted (frozen by a FitPhase): a, b\n"
        "  position: plan/fit (ended), epoch 2, batch 5\n"
        ")"
    )
    assert repr(bare()) == "TrainState(step=0, epoch=0, batch=0, stop=False, key=Key(seed=0, words=...)\n)"


def test_repr_indents_the_graph_state():
    exp = simple_experiment(make_featureset(), n_epochs=1)
    s = mml.init(exp, 0)
    lines = repr(s).split("\n")
    graph_lines = repr(s.graph).split("\n")
    assert lines[1] == "  graph: " + graph_lines[0]
    assert lines[2 : 1 + len(graph_lines)] == ["  " + g for g in graph_lines[1:]]


def test_execution_context_readers_and_defaults():
    ctx = ExecutionContext(
        "fit",
        1,
        2,
        3,
        {"default": {"h": "x"}, "anchor": {"h": "y"}},
        {"default": {"m": 1.0}, "anchor": {"m": 2.0}},
        {},
    )
    assert ctx.output("m") == 1.0 and ctx.output("m", "anchor") == 2.0
    assert ctx.input("h") == "x" and ctx.input("h", role="anchor") == "y"
    assert (ctx.stream, ctx.event, dict(ctx.metrics), ctx.streams, ctx.checkpoints) == (
        "default",
        "batch",
        {},
        (),
        (),
    )


class Holder:
    @attrs.frozen
    class Inner:
        n: int = 0


def test_repr_names_a_nested_state_class_by_its_qualified_name():
    s = bare().with_opt_state("m", Holder.Inner(3)).with_callback_state("fit/0", Holder.Inner(1))
    assert s.opt_states["m"].type == f"{__name__}:Holder.Inner"
    lines = repr(s).split("\n")
    assert lines[1] == "  optimizer state 'm': Holder.Inner, 0 updates"
    assert lines[2] == "  callback state 'fit/0': Inner"
