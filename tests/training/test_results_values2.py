"""History and EvalResult hand their display to mml.views with every argument (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest

import mml.views
from mml.training._results import EvalResult, History


@pytest.fixture
def calls(monkeypatch):
    seen = []

    def fake(name):
        def f(*args, **kwargs):
            seen.append((name, args, kwargs))
            return name

        return f

    for name in ("eval_html", "plot_eval", "history_html", "plot_history"):
        monkeypatch.setattr(mml.views, name, fake(name))
    return seen


def test_the_display_hooks_pass_the_value_and_every_option(calls):
    r = EvalResult("test", {"loss": 0.5}, {"mlp": np.zeros((2, 1))}, {"mlp": np.ones((2, 1))})
    h = History.from_rows([("fit", 0, 0, 1, "loss", 1.0)])
    assert r._repr_html_() == "eval_html" and h._repr_html_() == "history_html"
    assert r.plot() == "plot_eval" and r.plot("a.png", node="mlp") == "plot_eval"
    assert h.plot() == "plot_history" and h.plot("b.png", log_scale=False) == "plot_history"
    assert calls == [
        ("eval_html", (r,), {}),
        ("history_html", (h,), {}),
        ("plot_eval", (r, None), {"node": None}),
        ("plot_eval", (r, "a.png"), {"node": "mlp"}),
        ("plot_history", (h, None), {"log_scale": True}),
        ("plot_history", (h, "b.png"), {"log_scale": False}),
    ]


def test_from_rows_casts_numpy_scalars_to_the_column_dtypes():
    rows = [("fit", np.int32(1), np.int32(-1), np.int32(3), "loss", np.float32(0.5))]
    h = History.from_rows(rows)
    assert (h.epoch.dtype, h.batch.dtype, h.step.dtype, h.value.dtype) == (np.int64,) * 3 + (np.float64,)
    assert h.rows() == [("fit", 1, -1, 3, "loss", 0.5)]
