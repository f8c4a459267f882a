"""The final table describes the returned model, with units; notebook views stay small; plots draw."""

import numpy as np
import pytest

from mml.views import summary_rows

from ..training.conftest import early_stopped_run

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def run():
    exp, state, history = early_stopped_run()
    assert history.status in ("completed", "stopped"), history.error
    return exp, state, history


def test_train_rows_are_the_returned_epoch(run):
    exp, _, history = run
    rows = {(p, m): (u, v) for p, m, u, v in summary_rows(history, exp)}
    best = int(history.where(phase="fit").last("best_epoch"))
    assert rows[("fit", "returned epoch (best)")] == ("", float(best))
    at_best = history.epochs().where(phase="fit", epoch=best)
    assert rows[("fit", "val_mlp.mse")] == ("scaled", at_best.last("val_mlp.mse"))
    # one loss term: its total is the same number, shown once
    assert ("fit", "val_loss (total)") not in rows and ("fit", "loss (total)") not in rows
    assert rows[("fit", "val_r2")] == ("", at_best.last("val_r2"))
    last_epoch = int(history.epochs().where(phase="fit", name="loss").epoch.max())
    if last_epoch != best:  # the table does not show the last epoch's (discarded) numbers
        assert rows[("fit", "val_r2")][1] != history.epochs().where(phase="fit", epoch=last_epoch).last(
            "val_r2"
        )
    assert rows[("fit", "epochs run")] == ("", float(last_epoch + 1))


def test_eval_rows_separate_terms_from_total_with_units(run):
    exp, _, history = run
    rows = {(p, m): (u, v) for p, m, u, v in summary_rows(history, exp)}
    mse, mae = rows[("test", "mlp.mse")], rows[("test", "mlp.mae")]
    total = rows[("test", "loss (total)")]
    assert mse[0] == mae[0] == total[0] == "scaled"
    assert total[1] == pytest.approx(mse[1] + mae[1])
    ev = history.eval_result("test")
    raw_mae = float(np.mean(np.abs(ev.outputs["mlp"] - ev.targets["mlp"])))
    assert rows[("test", "mlp mae")] == ("raw", pytest.approx(raw_mae))
    assert rows[("test", "mlp r2")][0] == ""


def test_notebook_views_are_compact(run):
    exp, _, history = run
    h = history._repr_html_()
    assert len(h) < 5000 and "History" in h and "fit" in h and "tensor" not in h
    assert len(repr(history)) < 300
    ev = history.eval_result("test")
    assert "EvalResult" in ev._repr_html_() and len(repr(ev)) < 300
    fs_html = exp.featuresets["toy"]._repr_html_()
    assert "<table" in fs_html and "train" in fs_html and "standard" in fs_html
    g = exp.graph._repr_html_()
    assert "mlp" in g and "flowchart" in g
    assert "fit" in exp._repr_html_()


def test_history_and_eval_plots(run, tmp_path):
    pytest.importorskip("matplotlib")
    _, _, history = run
    fig = history.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loss_ax, metric_ax = fig.axes[:2]
    labels = {line.get_label() for line in loss_ax.get_lines()}
    assert {"loss", "val_loss"} & labels and any(lbl.startswith("returned epoch") for lbl in labels)
    assert "val_r2" in {line.get_label() for line in metric_ax.get_lines()}
    fig2 = history.eval_result("test").plot(tmp_path / "eval.png")
    assert (tmp_path / "eval.png").stat().st_size > 1000 and len(fig2.axes) == 2


def test_compare_function(run):
    from mml.views import compare

    exp, _, history = run
    c = compare(
        {"a": history, "b": history}, configs={"a": {"lr": 1}, "b": {"lr": 2}}, experiments={"a": exp}
    )
    assert c.differences == {"lr": ("1", "2")}
    assert c.value("a", "test", "loss") == c.value("b", "test", "loss")
    assert c.rows()[0] == ["", "", "a", "b"]
