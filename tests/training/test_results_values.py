"""History, PhaseResult, EvalResult and ErrorRecord pinned by value (issue 17, mutation testing).

Aggregations are checked against numpy on hand-made rows; every message in full.
"""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.training._results import (
    STATUSES,
    ErrorRecord,
    EvalResult,
    History,
    PhaseResult,
    _error_record,
    _locate,
    _str_array,
)

ROWS = [
    ("fit", 0, 0, 1, "loss", 4.0),
    ("fit", 0, 1, 2, "loss", 2.0),
    ("fit", 0, 0, 1, "mlp.mse", 3.0),
    ("fit", 0, 1, 2, "mlp.mse", 1.0),
    ("fit", 0, -1, 2, "loss", 3.0),
    ("fit", 1, 0, 3, "loss", 1.0),
    ("fit", 1, 1, 4, "loss", 7.0),
    ("fit", 1, -1, 4, "loss", 4.0),
    ("tune", 0, 0, 5, "loss", 0.5),
]


def hist(**kw) -> History:
    return History.from_rows(ROWS, **kw)


def test_statuses():
    assert STATUSES == ("completed", "stopped", "failed")


def test_str_array():
    empty = _str_array([])
    assert empty.shape == (0,) and empty.dtype == np.dtype("<U1")
    arr = _str_array(["b", "a", "b", "ccc"])
    assert arr.tolist() == ["b", "a", "b", "ccc"] and arr.dtype == np.dtype("<U3")


def test_from_rows_columns_and_dtypes():
    h = hist()
    assert len(h) == 9
    assert h.phase.tolist() == [r[0] for r in ROWS]
    assert h.epoch.tolist() == [r[1] for r in ROWS] and h.epoch.dtype == np.int64
    assert h.batch.tolist() == [r[2] for r in ROWS] and h.batch.dtype == np.int64
    assert h.step.tolist() == [r[3] for r in ROWS] and h.step.dtype == np.int64
    assert h.name.tolist() == [r[4] for r in ROWS]
    assert h.value.tolist() == [r[5] for r in ROWS] and h.value.dtype == np.float64
    assert h.rows() == ROWS
    assert all(type(x) is t for r in h.rows() for x, t in zip(r, (str, int, int, int, str, float)))
    e = History.from_rows([], status="stopped")
    assert len(e) == 0 and e.status == "stopped" and e.rows() == []
    assert History().status == "completed" and History().failure is None and History().phases == ()
    for col in ("epoch", "batch", "step"):
        assert getattr(History(), col).dtype == np.int64
    assert History().value.dtype == np.float64 and History().phase.dtype == np.dtype("<U1")


def test_where_batches_epochs():
    h = hist()
    assert h.where(phase="tune").rows() == [ROWS[8]]
    assert h.where(epoch=1, batch=-1).rows() == [ROWS[7]]
    assert h.where(name=["mlp.mse"], batch=(0,)).rows() == [ROWS[2]]
    assert h.where(step={1, 5}).values().tolist() == [4.0, 3.0, 0.5]
    assert h.where(step=frozenset([2])).values().tolist() == [2.0, 1.0, 3.0]
    assert h.where().rows() == ROWS
    assert h.batches().rows() == [r for r in ROWS if r[2] >= 0]
    assert h.epochs().rows() == [ROWS[4], ROWS[7]]
    with pytest.raises(mml.ConfigError) as info:
        h.where(stage=0)
    assert str(info.value) == "unknown History axis 'stage'; axes are phase, epoch, batch, step, name"
    s = hist(status="stopped").where(phase="fit")
    assert s.status == "stopped"


@pytest.mark.parametrize(
    ("how", "ref"),
    [("mean", np.mean), ("sum", np.sum), ("min", np.min), ("max", np.max), ("last", lambda a: a[-1])],
)
def test_collapse_batch_against_numpy(how, ref):
    out = hist(status="stopped").batches().collapse("batch", how)
    assert out.status == "stopped"
    assert out.rows() == [
        ("fit", 0, -1, 2, "loss", float(ref(np.array([4.0, 2.0])))),
        ("fit", 0, -1, 2, "mlp.mse", float(ref(np.array([3.0, 1.0])))),
        ("fit", 1, -1, 4, "loss", float(ref(np.array([1.0, 7.0])))),
        ("tune", 0, -1, 5, "loss", 0.5),
    ]


def test_collapse_epoch_and_step():
    h = hist().batches()
    assert h.collapse("epoch", "sum").rows() == [
        ("fit", -1, 0, 3, "loss", 5.0),
        ("fit", -1, 1, 4, "loss", 9.0),
        ("fit", -1, 0, 1, "mlp.mse", 3.0),
        ("fit", -1, 1, 2, "mlp.mse", 1.0),
        ("tune", -1, 0, 5, "loss", 0.5),
    ]
    by_step = History.from_rows([("a", 0, 0, 1, "x", 1.0), ("a", 0, 0, 2, "x", 3.0)])
    assert by_step.collapse("step", "max").rows() == [("a", 0, 0, -1, "x", 3.0)]
    assert by_step.collapse("step").rows() == [("a", 0, 0, -1, "x", 2.0)]


def test_collapse_keeps_phases_and_failure():
    pr = PhaseResult("fit", "phase.train", "failed", mml.TrainingError("x"))
    h = History.from_rows(ROWS, status="failed", phases=(pr,), error=pr.failure)
    out = h.collapse("batch", "last")
    assert out.phases == (pr,) and out.failure == pr.failure and out.status == "failed"


def test_collapse_messages():
    with pytest.raises(mml.ConfigError) as info:
        hist().collapse("phase")
    assert str(info.value) == "collapse takes 'batch', 'epoch' or 'step', got 'phase'"
    with pytest.raises(mml.ConfigError) as info:
        hist().collapse("batch", "median")
    assert str(info.value) == "collapse how= must be one of mean, sum, min, max, last, got 'median'"


def test_names_values_last():
    h = hist()
    assert h.names() == ("loss", "mlp.mse")
    assert h.values("mlp.mse").tolist() == [3.0, 1.0]
    assert h.values().tolist() == [r[5] for r in ROWS]
    assert h.last("loss") == 0.5 and h.last("mlp.mse") == 1.0
    with pytest.raises(mml.TrainingError) as info:
        h.last("val_loss")
    assert str(info.value) == "no metric 'val_loss' in the History; logged: loss, mlp.mse"
    with pytest.raises(mml.TrainingError) as info:
        History().last("loss")
    assert str(info.value) == "no metric 'loss' in the History; logged: nothing"


def test_repr():
    pr = (PhaseResult("fit", "phase.train", "completed"), PhaseResult("ev", "phase.eval", "stopped"))
    assert repr(hist(phases=pr)) == (
        "History(9 rows, status='completed', phases=[fit:completed, ev:stopped], names=[loss, mlp.mse])"
    )
    nine = History.from_rows([("p", 0, 0, i, f"m{i}", 0.0) for i in range(9)])
    assert repr(nine) == (
        "History(9 rows, status='completed', phases=[], names=[m0, m1, m2, m3, m4, m5, m6, m7, ...])"
    )
    eight = History.from_rows([("p", 0, 0, i, f"m{i}", 0.0) for i in range(8)])
    assert repr(eight).endswith("names=[m0, m1, m2, m3, m4, m5, m6, m7])")


def test_phase_and_eval_results():
    ev = EvalResult("ev", {"loss": 0.25}, {"m": np.zeros((2, 1))})
    pr = (
        PhaseResult("fit", "phase.train", "completed"),
        PhaseResult("ev", "phase.eval", "completed", eval=ev),
    )
    h = hist(phases=pr)
    assert h.phase_result("fit") is pr[0] and h.phase_result("ev") is pr[1]
    assert h.eval_result("ev") is ev
    with pytest.raises(mml.TrainingError) as info:
        h.phase_result("test")
    assert str(info.value) == "no phase 'test' in this History; phases: fit, ev"
    with pytest.raises(mml.TrainingError) as info:
        h.eval_result("fit")
    assert str(info.value) == "phase 'fit' is not an eval phase (it has no EvalResult)"
    p = PhaseResult("fit", "phase.train", "completed")
    assert (p.failure, p.n_steps, p.seconds, p.eval, p.contexts, p.ok, p.error) == (
        None,
        0,
        0.0,
        None,
        (),
        True,
        None,
    )
    assert PhaseResult("fit", "phase.train", "stopped").ok is True
    assert PhaseResult("fit", "phase.train", "failed").ok is False


def test_to_pandas():
    df = hist().to_pandas()
    assert list(df.columns) == ["phase", "epoch", "batch", "step", "name", "value"]
    assert [tuple(r) for r in df.itertuples(index=False)] == ROWS
    assert df["epoch"].dtype == np.int64 and df["value"].dtype == np.float64


def test_merge():
    a = History.from_rows(ROWS[:2], status="completed", phases=(PhaseResult("a", "k", "completed"),))
    b = History.from_rows(ROWS[2:3], status="stopped", phases=(PhaseResult("b", "k", "stopped"),))
    m = a.merge(b)
    assert m.rows() == ROWS[:3] and m.status == "stopped" and [p.label for p in m.phases] == ["a", "b"]
    assert b.merge(a).status == "stopped" and b.merge(a).rows() == [ROWS[2], *ROWS[:2]]
    err = mml.TrainingError("boom")
    f = History(status="failed", error=err)
    assert a.merge(f).status == "failed" and a.merge(f).failure == f.failure
    assert f.merge(a).status == "failed" and f.merge(a).failure == f.failure
    assert a.merge(History()).rows() == ROWS[:2]
    assert History().merge(a).rows() == ROWS[:2]
    g = History(status="failed", error=ValueError("first"))
    assert g.merge(f).failure.message == "first"
    assert History(status="stopped").merge(History()).status == "stopped"


def test_raise_for_status():
    h = hist()
    assert h.raise_for_status() is h
    err = ValueError("boom")
    with pytest.raises(ValueError) as info:
        History(status="failed", error=err).raise_for_status()
    assert info.value is err
    assert History(status="failed").raise_for_status().status == "failed"  # no record: nothing to raise
    assert History(status="stopped", error=err).raise_for_status().status == "stopped"


def test_error_record_from_an_exception_and_its_location():
    exc = ValueError("bad")
    r = ErrorRecord.from_exception(exc, phase="fit", epoch=1, batch=2)
    assert (r.type, r.message, r.phase, r.epoch, r.batch) == ("builtins:ValueError", "bad", "fit", 1, 2)
    assert r.to_exception() is exc and str(r) == "bad"
    located = ValueError("x")
    _locate(located, "inner", 3, None)
    _locate(located, "outer", 9, 9)  # the first call wins
    r = ErrorRecord.from_exception(located, phase="arg", epoch=7, batch=8)
    assert (r.phase, r.epoch, r.batch) == ("inner", 3, 8)
    full = ValueError("z")
    _locate(full, "where", 4, 6)
    r = ErrorRecord.from_exception(full, phase="arg", epoch=7, batch=8)
    assert (r.phase, r.epoch, r.batch) == ("where", 4, 6)
    nowhere = ValueError("y")
    _locate(nowhere, None)
    r = ErrorRecord.from_exception(nowhere, phase="p", epoch=1, batch=2)
    assert (r.phase, r.epoch, r.batch) == ("p", 1, 2)
    assert ErrorRecord.from_exception(mml.ConfigError("c")).type == "mml.errors:ConfigError"
    assert ErrorRecord("t", "m") == ErrorRecord("t", "m")
    assert (ErrorRecord("t", "m").phase, ErrorRecord("t", "m").epoch, ErrorRecord("t", "m").batch) == (
        None,
    ) * 3


@pytest.mark.parametrize(
    ("where", "note"),
    [
        (
            ("fit", 2, 5),
            "originally mml.errors:CallbackError in phase 'fit', epoch 2, batch 5 (loaded from a saved History)",
        ),
        ((None, 2, None), "originally mml.errors:CallbackError in epoch 2 (loaded from a saved History)"),
        ((None, None, 0), "originally mml.errors:CallbackError in batch 0 (loaded from a saved History)"),
        ((None, None, None), "originally mml.errors:CallbackError (loaded from a saved History)"),
    ],
)
def test_a_loaded_record_rebuilds_a_training_error_with_a_note(where, note):
    r = mml.io.roundtrip(ErrorRecord("mml.errors:CallbackError", "callback failed", *where))
    e = r.to_exception()
    assert type(e) is mml.TrainingError and str(e) == "callback failed" and e.__notes__ == [note]
    assert r.to_exception() is e  # cached


def test_error_record_converter():
    assert _error_record(None) is None
    r = ErrorRecord("t", "m")
    assert _error_record(r) is r
    assert _error_record(KeyError("k")).type == "builtins:KeyError"
    with pytest.raises(TypeError) as info:
        _error_record("boom")
    assert str(info.value) == "error= takes an exception or an ErrorRecord, got str"


def test_eval_result_repr_and_metrics():
    r = EvalResult(
        "test",
        {"loss": 0.123456, "m.mse": 2.0},
        {"clf": np.array([[2.0, 0.0], [0.0, 1.0]]), "emb": np.zeros((2, 3))},
        {"clf": np.array([[0], [0]])},
    )
    assert repr(r) == "EvalResult('test', outputs {clf: (2, 2), emb: (2, 3)}, losses {loss=0.1235, m.mse=2})"
    assert r.metrics(["accuracy"]) == {"accuracy": 0.5}
    assert r.metrics(["accuracy"], node="clf") == {"accuracy": 0.5}
    assert r.sample_uuids == {} and EvalResult("x", {}, {}).targets == {}
    with pytest.raises(mml.TrainingError) as info:
        r.metrics(["accuracy"], node="emb")
    assert str(info.value) == "node 'emb' has no outputs with targets in 'test'; nodes: clf"
    both = EvalResult(
        "t",
        {},
        {"a": np.zeros((2, 1)), "b": np.zeros((2, 1))},
        {"a": np.zeros((2, 1)), "b": np.zeros((2, 1))},
    )
    with pytest.raises(mml.TrainingError) as info:
        both.metrics(["mae"], node="z")
    assert str(info.value) == "node 'z' has no outputs with targets in 't'; nodes: a, b"
    two = EvalResult(
        "t",
        {},
        {"a": np.zeros((2, 1)), "b": np.zeros((2, 1))},
        {"a": np.zeros((2, 1)), "b": np.zeros((2, 1))},
    )
    with pytest.raises(mml.TrainingError) as info:
        two.metrics(["mae"])
    assert str(info.value) == "name the node: the nodes with targets are a, b"
    assert two.metrics(["mae"], node="b") == {"mae": 0.0}
    none = EvalResult("t", {}, {"a": np.zeros((2, 1))})
    with pytest.raises(mml.TrainingError) as info:
        none.metrics(["mae"])
    assert str(info.value) == "name the node: the nodes with targets are (none)"
