"""Notebook views of a cross-validation and a sweep: what they show is the results' own numbers."""

from __future__ import annotations

import re
import statistics

import mml
from mml.strategies import cross_validate, sweep
from mml.views import cv_html, sweep_html
from tests.strategies.conftest import make_experiment, make_featureset


def _cells(html: str) -> list[str]:
    return re.findall(r"<td>(.*?)</td>", html)


def test_cv_view_shows_each_fold_its_metrics_their_mean_and_the_pooled_metrics():
    fs = make_featureset(48)
    exp = make_experiment(fs, n_epochs=2)
    cv = cross_validate(exp, featureset="toy", splitter=mml.KFoldSplitter(3), on="train", key=0)
    html = cv._repr_html_()
    assert html == cv_html(cv)
    assert "3 folds of FeatureSet toy" in html and "status completed" in html
    cells = _cells(html)
    per_fold = [f.metrics() for f in cv.folds]
    first = next(iter(per_fold[0]))
    for f, m in zip(cv.folds, per_fold):
        assert f"{m[first]:.6g}" in cells  # each fold's own value, formatted as shown
        assert str(len(f.val_rows)) in cells
    values = [m[first] for m in per_fold]
    mean_std = f"{statistics.fmean(values):.6g} ± {statistics.stdev(values):.6g}"
    assert mean_std in cells  # the mean row is over the folds, with the sample std (ddof=1)
    assert "3 of 3" in cells
    for name, v in cv.pooled_metrics().items():
        assert name in html and f"{v:.6g}" in cells
    assert "tensor(" not in html and "array(" not in html and len(html) < 8000


def test_sweep_view_shows_each_trial_its_values_and_metrics():
    exp = make_experiment(make_featureset(48), n_epochs=1)
    grid = {"plan.phases.fit.n_epochs": [1, 2, 3]}
    result = sweep(exp, grid, key=0)
    html = result._repr_html_()
    assert html == sweep_html(result)
    assert "3 trials over plan.phases.fit.n_epochs" in html
    rows = [_cells(r) for r in re.findall(r"<tr>(.*?)</tr>", html) if "<td>" in r]
    assert len(rows) == 3
    for row, t in zip(rows, result.trials):
        m = t.outcome.metrics()
        assert row[:3] == [str(t.index), t.status, str(t.params["plan.phases.fit.n_epochs"])]
        assert row[3] == f"{next(iter(m.values())):.6g}"  # its first metric, its own value


def test_views_cap_rows_and_columns_and_name_failures():
    import numpy as np

    from mml.strategies import CVResult, FoldResult, RunOutcome
    from mml.training import History

    rows = [("fit", 0, -1, 1, f"m{j}", float(j)) for j in range(9)]
    folds = [
        FoldResult(i, np.arange(3), np.arange(3, 4), RunOutcome(History.from_rows(rows), "completed"))
        for i in range(25)
    ]
    html = cv_html(CVResult("toy", "train", "val", folds))
    assert "first 20 of 25" in html and "5 more metrics not shown" in html
    assert "fit/m3" in html and "fit/m4" not in html
    assert html.count("<tr>") == 1 + 20 + 1  # header, 20 folds, the mean row
