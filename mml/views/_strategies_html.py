"""Notebook views of many runs: a cross-validation's folds and a sweep's trials (never arrays).

A :class:`~mml.strategies.CVResult` shows one row per fold (status, rows, its metrics), the
mean and standard deviation over the folds that finished, and the metrics of the pooled
out-of-fold predictions; a :class:`~mml.strategies.SweepResult` one row per trial (status,
the values it set, its metrics). At most ``_MAX_METRICS`` metric columns and ``_MAX_ROWS``
rows are shown (the rest are counted), so a view stays small however large the job.

>>> from mml.strategies import CVResult
>>> "0 folds" in cv_html(CVResult("toy", "train", "val", ()))
True
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from mml._html import escape as _e, table, view as _view
from mml.views._html import _num

__all__ = ["cv_html", "sweep_html"]

_MAX_METRICS = 4
_MAX_ROWS = 20


def _metric_names(per_run: Sequence[Mapping[str, float]]) -> tuple[list[str], int]:
    """The metric columns (in first-seen order, at most ``_MAX_METRICS``) and how many were left out."""
    names: dict[str, None] = {}
    for m in per_run:
        names.update(dict.fromkeys(m))
    listed = list(names)
    return listed[:_MAX_METRICS], max(0, len(listed) - _MAX_METRICS)


def _cell(metrics: Mapping[str, float], name: str) -> str:
    return _num(metrics[name]) if name in metrics else "-"


def _caption(what: str, shown: int, total: int, left_out: int) -> str:
    parts = [what]
    if shown < total:
        parts.append(f"first {shown} of {total}")
    if left_out:
        parts.append(f"{left_out} more metrics not shown (all of them: .to_pandas())")
    return ", ".join(parts)


def cv_html(result: Any) -> str:
    """A CVResult: per-fold status, rows and metrics, their mean ± std, and the pooled metrics."""
    folds = result.folds
    per_fold = [f.metrics() for f in folds]
    names, left_out = _metric_names(per_fold)
    rows = [
        [f.fold, f.status, len(f.train_rows), len(f.val_rows), *(_cell(m, n) for n in names)]
        for f, m in zip(folds[:_MAX_ROWS], per_fold[:_MAX_ROWS])
    ]
    done = [m for f, m in zip(folds, per_fold) if f.status != "failed"]
    if done and names:
        mean_row: list[Any] = ["mean ± std", f"{len(done)} of {len(folds)}", "", ""]
        for n in names:
            vals = [m[n] for m in done if n in m and math.isfinite(m[n])]
            if not vals:
                mean_row.append("-")
            elif len(vals) == 1:
                mean_row.append(_num(vals[0]))
            else:
                mean_row.append(f"{_num(statistics.fmean(vals))} ± {_num(statistics.stdev(vals))}")
        rows.append(mean_row)
    header = ["fold", "status", "train rows", "val rows", *names]
    fold_table = table(header, rows, _caption("folds", min(len(folds), _MAX_ROWS), len(folds), left_out))
    pooled = result.pooled_metrics()
    pooled_table = (
        table(
            ["metric", "value"], [[k, _num(v)] for k, v in pooled.items()], "pooled out-of-fold predictions"
        )
        if pooled
        else ""
    )
    failed = [f for f in folds if f.status == "failed"]
    errors = (
        table(
            ["fold", "error"],
            [[f.fold, str(f.outcome.error)[:300]] for f in failed[:_MAX_ROWS]],
            "failed folds",
        )
        if failed
        else ""
    )
    head = (
        f"<b>CVResult</b> ({len(folds)} folds of FeatureSet {_e(result.featureset)!s}: "
        f"{_e(result.train_split)} → {_e(result.val_split)}, status {_e(result.status)})"
    )
    return _view(head, fold_table if folds else "", pooled_table, errors)


def sweep_html(result: Any) -> str:
    """A SweepResult: per-trial status, the values it set and its metrics."""
    trials = result.trials
    per_trial = [t.outcome.metrics() for t in trials]
    names, left_out = _metric_names(per_trial)
    paths = list(result.paths)
    rows = []
    for t, m in zip(trials[:_MAX_ROWS], per_trial[:_MAX_ROWS]):
        values = [_num(t.params[p]) if p in t.params else "-" for p in paths]
        rows.append([t.index, t.status, *values, *(_cell(m, n) for n in names)])
    trial_table = table(
        ["trial", "status", *paths, *names],
        rows,
        _caption("trials", min(len(trials), _MAX_ROWS), len(trials), left_out),
    )
    head = f"<b>SweepResult</b> ({len(trials)} trials over {_e(', '.join(paths) or '(no paths)')}, status {_e(result.status)})"
    return _view(head, trial_table if trials else "")
