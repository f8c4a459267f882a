"""run / run_phase pinned by value: History rows, recorded contexts, positions, messages (issue 17)."""

from __future__ import annotations

import hashlib
import json

import pytest

import mml
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
from mml.training._run import _check_policy, _flatten, foreign_failure

from .conftest import make_featureset

torch = pytest.importorskip("torch")

NAMES = ("lin.mse", "lin.mae", "loss")


def _exp(record="none", plan=None):
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import SequentialMLP

    g = ModelGraph.of(
        ModelNode("lin", SequentialMLP(hidden=()), FeatureSetRef("toy"), optimizer=mml.optim.sgd(0.1))
    )
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["lin"],
        losses=[AppliedLoss("mse", "lin"), AppliedLoss("mae", "lin", weight=0.5)],
        n_epochs=2,
        sampler=mml.SimpleSampler(16),
        record=record,
    )
    return Experiment({"toy": make_featureset(n=40)}, g, plan if plan is not None else phase), phase


def _expected_rows(exp, phase):
    rows = []
    for _, ctx in steps(exp, phase, mml.init(exp, 0)):
        if ctx.event == "batch":
            rows += [("fit", ctx.epoch, ctx.batch, ctx.step + 1, n, ctx.losses[n]) for n in NAMES]
        elif ctx.event == "epoch_end":
            rows += [("fit", ctx.epoch, -1, ctx.step, n, ctx.losses[n]) for n in NAMES]
    return rows


def test_history_rows_of_a_train_phase():
    exp, phase = _exp()
    state, h = run_phase(exp, phase, mml.init(exp, 0))
    expected = _expected_rows(exp, phase)
    assert [r[:5] for r in expected][:4] == [
        ("fit", 0, 0, 1, "lin.mse"),
        ("fit", 0, 0, 1, "lin.mae"),
        ("fit", 0, 0, 1, "loss"),
        ("fit", 0, 1, 2, "lin.mse"),
    ]
    assert h.rows() == expected and len(h) == 4 * 3 + 2 * 3
    assert h.status == "completed" and h.failure is None
    (pr,) = h.phases
    assert (pr.label, pr.kind, pr.status, pr.n_steps, pr.contexts, pr.eval) == (
        "fit",
        "phase.train",
        "completed",
        4,
        (),
        None,
    )
    assert pr.seconds > 0
    assert state.position is None and state.step == 4 and state.stop is False


@pytest.mark.parametrize(("record", "epochs"), [("all", [0, 0, 1, 1]), ("last_epoch", [1, 1]), ("none", [])])
def test_recorded_contexts(record, epochs):
    exp, phase = _exp(record)
    _, h = run_phase(exp, phase, mml.init(exp, 0))
    ctxs = h.phases[0].contexts
    assert [c.epoch for c in ctxs] == epochs
    assert all(c.event == "batch" and not c.output("lin").requires_grad for c in ctxs)


def test_an_eval_phase_logs_its_losses_at_the_state_step():
    exp, phase = _exp()
    state, _ = run_phase(exp, phase, mml.init(exp, 0))
    ev = EvalPhase.simple(
        "test", featureset="toy", heads=["lin"], split="val", losses=[AppliedLoss("mse", "lin")]
    )
    seen = []
    after, h = run_phase(exp, ev, state, observer=lambda s, c: seen.append((c.event, c.phase, c.step)))
    res = h.eval_result("test")
    assert h.rows() == [
        ("test", 0, -1, 4, "lin.mse", res.losses["lin.mse"]),
        ("test", 0, -1, 4, "loss", res.losses["loss"]),
    ]
    assert seen == [("eval", "test", 4)]
    assert h.phases[0].kind == "phase.eval" and h.phases[0].n_steps == 0
    assert after.position is None and after.step == 4


def test_run_ends_positioned_at_done_and_a_rerun_does_nothing():
    exp, phase = _exp()
    state, h = mml.run(exp, mml.init(exp, 0), progress=False)
    fp = plan_fingerprint(exp)
    assert state.position == Position(fp, "", "done")
    again, h2 = mml.run(exp, state, progress=False)
    assert again is state and len(h2) == 0 and h2.phases == ()
    assert h.rows() == _expected_rows(exp, phase)


def test_plan_fingerprint_is_the_sha256_of_the_plan_document():
    exp, _ = _exp()
    doc = json.dumps(mml.io.unstructure(exp.plan), sort_keys=True, default=str)
    assert plan_fingerprint(exp) == hashlib.sha256(doc.encode("utf-8")).hexdigest()[:16]
    other, _ = _exp(record="all")
    assert plan_fingerprint(other) != plan_fingerprint(exp)


def test_flatten_walks_groups():
    a = EvalPhase("a", {})
    b = EvalPhase("b", {})
    inner = PhaseGroup("inner", [b])
    plan = PhaseGroup("plan", [a, inner])
    assert _flatten(plan) == [
        ("group_start", "plan", plan),
        ("phase", "plan/a", a),
        ("group_start", "plan/inner", inner),
        ("phase", "plan/inner/b", b),
        ("group_end", "plan/inner", inner),
        ("group_end", "plan", plan),
    ]
    assert _flatten(a) == [("phase", "a", a)]


def test_messages():
    exp, phase = _exp()
    with pytest.raises(mml.TrainingError) as info:
        run_phase(exp, PhaseGroup("g", [phase]), mml.init(exp, 0))
    assert str(info.value) == "run_phase takes one phase; use run() for a plan or a PhaseGroup"
    assert _check_policy(None) is None
    with pytest.raises(mml.ConfigError) as info:
        _check_policy("every 10")
    assert str(info.value) == (
        "run(checkpoint=...) takes Checkpointing(mode='disk', directory=..., every_steps=...), got 'every 10'"
    )
    mem = mml.callbacks.Checkpointing()
    assert mem.mode != "disk"
    with pytest.raises(mml.ConfigError) as info:
        _check_policy(mem)
    assert str(info.value).endswith(f"got {mem!r}")


@pytest.mark.parametrize(
    ("exc", "hint"),
    [
        (
            RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x1)"),
            "a node received inputs of another size than its first layer was built for: check the node's "
            "upstream keys and any declared output_shape of the node feeding it",
        ),
        (
            RuntimeError("size mismatch, got 3"),
            "a node received inputs of another size than its first layer was built for: check the node's "
            "upstream keys and any declared output_shape of the node feeding it",
        ),
        (
            RuntimeError("The size of tensor a must match the size of tensor b"),
            "a node received inputs of another size than its first layer was built for: check the node's "
            "upstream keys and any declared output_shape of the node feeding it",
        ),
        (
            IndexError("Target 2 is out of bounds."),
            "a class id is outside [0, n_classes): give the classification head output_shape=(n_classes,)",
        ),
        (
            TypeError("f() takes 1 positional argument but 2 were given"),
            "a Loss or metric names a callable that is not one: it must take (outputs, targets) and return a "
            "scalar tensor",
        ),
        (
            TypeError("'int' object is not callable"),
            "a Loss or metric names a callable that is not one: it must take (outputs, targets) and return a "
            "scalar tensor",
        ),
        (RuntimeError("boom"), "see the original error (History.error.__cause__ in this process)"),
        (
            IndexError("shapes cannot be multiplied"),
            "see the original error (History.error.__cause__ in this process)",
        ),
        (ValueError("argument"), "see the original error (History.error.__cause__ in this process)"),
    ],
)
def test_foreign_failures_name_the_phase_and_the_fix(exc, hint):
    wrapped = foreign_failure(exc, "fit")
    assert type(wrapped) is mml.TrainingError and wrapped.__cause__ is exc
    assert str(wrapped) == f"phase 'fit' failed: {type(exc).__name__}: {exc}; {hint}"
    assert getattr(wrapped, "_mml_location", None) is None


def test_a_foreign_failure_keeps_the_location():
    exc = ValueError("x")
    exc._mml_location = ("fit", 1, 2)
    assert foreign_failure(exc, "fit")._mml_location == ("fit", 1, 2)
