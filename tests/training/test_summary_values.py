"""summary_rows (what ``mml run`` prints) pinned on hand-made Histories (issue 17)."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

import mml
from mml.training import EvalResult, History, PhaseResult
from mml.views._summary import summary_rows, targets_scaled

from .conftest import make_featureset, simple_experiment

TRAIN_ROWS = [
    ("fit", 0, 0, 1, "fit.a", 2.0),
    ("fit", 0, 0, 1, "fit.b", 1.0),
    ("fit", 0, 0, 1, "loss", 3.0),
    ("fit", 0, -1, 1, "fit.a", 2.0),
    ("fit", 0, -1, 1, "fit.b", 1.0),
    ("fit", 0, -1, 1, "loss", 3.0),
    ("fit", 0, -1, 1, "val_loss", 4.0),
    ("fit", 0, -1, 1, "val_r2", 0.1),
    ("fit", 0, -1, 1, "lr_scale", 1.0),
    ("fit", 0, -1, 1, "best_epoch", 0.0),
    ("fit", 1, -1, 2, "fit.a", 1.0),
    ("fit", 1, -1, 2, "fit.b", 0.5),
    ("fit", 1, -1, 2, "loss", 1.5),
    ("fit", 1, -1, 2, "val_loss", 5.0),
    ("fit", 1, -1, 2, "val_r2", 0.05),
    ("fit", 1, -1, 2, "lr_scale", 0.5),
    ("fit", 1, -1, 2, "best_epoch", 0.0),
]
TRAIN = (PhaseResult("fit", "phase.train", "completed"),)


def test_a_train_phase_reports_the_returned_epoch():
    h = History.from_rows(TRAIN_ROWS, phases=TRAIN)
    assert summary_rows(h) == [
        ("fit", "fit.a", "scaled", 2.0),
        ("fit", "fit.b", "scaled", 1.0),
        ("fit", "val_r2", "", 0.1),
        ("fit", "lr_scale", "", 1.0),
        ("fit", "val_loss (total)", "scaled", 4.0),
        ("fit", "loss (total)", "scaled", 3.0),
        ("fit", "returned epoch (best)", "", 0.0),
        ("fit", "epochs run", "", 2.0),
    ]


def test_without_a_restore_the_last_epoch_is_reported():
    h = History.from_rows([r for r in TRAIN_ROWS if r[4] != "best_epoch"], phases=TRAIN)
    assert summary_rows(h) == [
        ("fit", "fit.a", "scaled", 1.0),
        ("fit", "fit.b", "scaled", 0.5),
        ("fit", "val_r2", "", 0.05),
        ("fit", "lr_scale", "", 0.5),
        ("fit", "val_loss (total)", "scaled", 5.0),
        ("fit", "loss (total)", "scaled", 1.5),
        ("fit", "epochs run", "", 2.0),
    ]


def test_one_loss_term_keeps_one_row_of_term_and_total():
    rows = [
        ("fit", 0, 0, 1, "m.mse", 2.0),
        ("fit", 0, 0, 1, "loss", 2.0),
        ("fit", 0, -1, 1, "m.mse", 2.0),
        ("fit", 0, -1, 1, "loss", 2.0),
        ("fit", 0, -1, 1, "val_m.mse", 3.0),
        ("fit", 0, -1, 1, "val_loss", 3.0),
    ]
    assert summary_rows(History.from_rows(rows, phases=TRAIN)) == [
        ("fit", "m.mse", "scaled", 2.0),
        ("fit", "val_m.mse", "scaled", 3.0),
        ("fit", "epochs run", "", 1.0),
    ]
    weighted = [(*r[:5], r[5] * 2) if r[4] in ("loss", "val_loss") else r for r in rows]
    assert summary_rows(History.from_rows(weighted, phases=TRAIN)) == [
        ("fit", "m.mse", "scaled", 2.0),
        ("fit", "val_m.mse", "scaled", 3.0),
        ("fit", "val_loss (total)", "scaled", 6.0),
        ("fit", "loss (total)", "scaled", 4.0),
        ("fit", "epochs run", "", 1.0),
    ]


def test_a_train_phase_without_epoch_rows_has_no_rows():
    h = History.from_rows([("fit", 0, 0, 1, "loss", 1.0)], phases=TRAIN)
    assert summary_rows(h) == []


def test_eval_regression_rows_against_numpy():
    y = np.array([[1.0], [2.0], [4.0]])
    p = np.array([[1.5], [2.0], [3.0]])
    ev = EvalResult("test", {"m.mse": 0.4, "loss": 0.4}, {"m": p, "z": p}, {"m": y})
    h = History.from_rows(
        [("test", 0, -1, 2, "m.mse", 0.4), ("test", 0, -1, 2, "loss", 0.4)],
        phases=(PhaseResult("test", "phase.eval", "completed", eval=ev),),
    )
    mse = float(np.mean((p - y) ** 2))
    r2 = 1 - float(np.sum((p - y) ** 2) / np.sum((y - y.mean()) ** 2))
    got = summary_rows(h)
    assert [r[:3] for r in got] == [
        ("test", "m.mse", "scaled"),
        ("test", "m rmse", "scaled"),
        ("test", "m mae", "scaled"),
        ("test", "m r2", ""),
    ]
    assert got[0][3] == 0.4
    assert got[1][3] == pytest.approx(np.sqrt(mse)) and got[2][3] == pytest.approx(0.5)
    assert got[3][3] == pytest.approx(r2)


def test_eval_classification_rows_against_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    y = np.array([[0], [1], [1], [2]])
    p = np.array([[2.0, 0.1, 0.0], [0.0, 1.0, 0.5], [0.3, 0.2, 1.0], [0.0, 0.0, 3.0]])
    ev = EvalResult("cls", {}, {"c": p}, {"c": y})
    got = summary_rows(History(phases=(PhaseResult("cls", "phase.eval", "completed", eval=ev),)))
    pred = p.argmax(1)
    assert [r[:3] for r in got] == [
        ("cls", "c accuracy", ""),
        ("cls", "c balanced_accuracy", ""),
        ("cls", "c f1", ""),
        ("cls", "c log_loss", ""),
    ]
    assert got[0][3] == pytest.approx(sk.accuracy_score(y.ravel(), pred))
    assert got[1][3] == pytest.approx(sk.balanced_accuracy_score(y.ravel(), pred))


def test_units_follow_the_experiment():
    assert targets_scaled(None) is True
    fs = make_featureset(n=40)
    raw = simple_experiment(fs)
    assert targets_scaled(raw) is False
    scaled = simple_experiment(mml.scalers.fit_transform(fs, "standard", domain="targets", fit_on="train"))
    assert targets_scaled(scaled) is True
    scaled_features = simple_experiment(
        mml.scalers.fit_transform(fs, "standard", domain="features", fit_on="train")
    )
    assert targets_scaled(scaled_features) is False
    h = History.from_rows([r for r in TRAIN_ROWS if r[4] != "best_epoch"], phases=TRAIN)
    assert summary_rows(h, raw)[0] == ("fit", "fit.a", "raw", 1.0)


def test_the_best_epoch_is_read_by_name():
    rows = [r for r in TRAIN_ROWS if r[4] != "best_epoch"]
    rows.insert(3, ("fit", 0, -1, 1, "best_epoch", 0.0))
    rows.insert(9, ("fit", 1, -1, 2, "best_epoch", 0.0))  # best_epoch is not the last row
    got = summary_rows(History.from_rows(rows, phases=TRAIN))
    assert ("fit", "returned epoch (best)", "", 0.0) in got and ("fit", "fit.a", "scaled", 2.0) in got


def test_eval_loss_total_with_two_terms_and_raw_units():
    from mml.training import EvalPhase, PhaseGroup

    y = np.array([[1.0], [2.0], [4.0]])
    p = np.array([[1.5], [2.0], [3.0]])
    ev = EvalResult("test", {}, {"m": p}, {"m": y})
    h = History.from_rows(
        [("test", 0, -1, 2, "m.mse", 0.4), ("test", 0, -1, 2, "m.mae", 0.5), ("test", 0, -1, 2, "loss", 0.9)],
        phases=(PhaseResult("test", "phase.eval", "completed", eval=ev),),
    )
    fs = mml.scalers.fit_transform(make_featureset(n=40), "standard", domain="targets", fit_on="train")
    base = simple_experiment(fs)
    plan = PhaseGroup(
        "plan",
        [
            base.plan,
            EvalPhase.simple("test", featureset="toy", heads=["mlp"], split="val", inverse_transform=True),
        ],
    )
    exp = attrs.evolve(base, plan=plan)
    got = summary_rows(h, exp)
    assert [r[:3] for r in got] == [
        ("test", "m.mse", "scaled"),
        ("test", "m.mae", "scaled"),
        ("test", "loss (total)", "scaled"),
        ("test", "m rmse", "raw"),
        ("test", "m mae", "raw"),
        ("test", "m r2", ""),
    ]
    assert got[2][3] == 0.9
    assert [r[2] for r in summary_rows(h, base)][3:5] == ["scaled", "scaled"]
