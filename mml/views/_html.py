"""Compact notebook views (``_repr_html_``): tables of what a value *is*, never array dumps.

Every view is plain HTML (no scripts, nothing fetched from the network), escaped, and small:
a History's view holds a summary, the final metrics of the model the run returned and its
last rows, and stays under 5 kB however long the run was. A ModelGraph is drawn as inline
SVG. ``tests/views/test_browser_views.py`` renders each view in headless Chromium.

>>> from mml.training import History
>>> h = History.from_rows([("fit", e, -1, e, "loss", 1.0 / (e + 1)) for e in range(500)])
>>> html = history_html(h)
>>> len(html) < 5000, "500 rows" in html
(True, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mml._html import escape as _e, table, view as _view
from mml.data import featureset_html
from mml.graph import graph_html

__all__ = ["featureset_html", "history_html", "eval_html", "graph_html", "experiment_html", "table"]

#: at most this many final-metric rows in a History's view (the rest are counted, not shown)
_MAX_METRICS = 16


def _num(v: Any) -> str:
    """A number as every view shows it (6 significant digits); anything else as its text."""
    return f"{v:.6g}" if isinstance(v, (int, float)) else str(v)


def history_html(history: Any, *, last: int = 8) -> str:
    """A History's status, per-phase summary, final metrics and last epoch-level rows (never arrays).

    The final metrics are those of the model the run returned (the best epoch's when
    ``EarlyStopping(restore_best=True)`` restored it), as in the table ``mml run`` prints.
    """
    from mml.views._summary import _returned_epoch, summary_rows

    status = history.status
    if history.failure is not None:
        msg = str(history.failure.message)
        status += ": " + (msg if len(msg) <= 300 else msg[:299] + "…")
    phases = []
    for p in history.phases:
        rows = history.where(phase=p.label)
        ep_rows = rows.epochs()
        trained = set(ep_rows.where(name="loss").epoch.tolist()) if "loss" in ep_rows.names() else set()
        n_epochs = len(trained or set(ep_rows.epoch.tolist()))
        best = _returned_epoch(ep_rows) if len(ep_rows) else None
        returned = "-" if p.kind != "phase.train" else ("last" if best is None else f"{best} (best)")
        phases.append([p.label, p.kind, p.status, n_epochs, returned, p.n_steps, f"{p.seconds:.2f} s"])
    summary = table(["phase", "kind", "status", "epochs", "returned epoch", "steps", "time"], phases)
    final = [
        [ph, m, _num(v)]
        for ph, m, _, v in summary_rows(history)
        if m not in ("epochs run", "returned epoch (best)")
    ]
    more = len(final) - _MAX_METRICS
    metrics = table(
        ["phase", "metric", "value"],
        final[:_MAX_METRICS],
        "final metrics (the returned model)" + (f", {more} more not shown" if more > 0 else ""),
    )
    ep = history.epochs()
    idx = np.arange(len(ep))[-last:]
    tail = table(
        ["phase", "epoch", "step", "name", "value"],
        [[ep.phase[i], ep.epoch[i], ep.step[i], ep.name[i], _num(float(ep.value[i]))] for i in idx],
        f"last {len(idx)} of {len(ep)} epoch-level rows",
    )
    head = f"<b>History</b> ({len(history)} rows, status {_e(status)})"
    return _view(head, summary, metrics if final else "", tail)


def _eval_metrics(result: Any) -> list[list[str]]:
    """``[node, metric, value]`` of each node's outputs against its targets (regression or classification)."""
    from mml.callbacks import classification_metrics, regression_metrics
    from mml.views._summary import _CLASSIFICATION_ROWS, _is_classification

    rows = []
    for node, out in result.outputs.items():
        if node not in result.targets:
            continue
        y, p = np.asarray(result.targets[node]), np.asarray(out)
        if _is_classification(y, p):
            values = classification_metrics(y, p, _CLASSIFICATION_ROWS)
        elif y.shape == p.shape and p.dtype.kind == "f" and len(y):
            m = regression_metrics(y, p)
            values = {"rmse": float(np.sqrt(m["mse"])), "mae": m["mae"], "r2": m["r2"]}
        else:
            continue
        rows += [[node, k, _num(v)] for k, v in values.items()]
    return rows


def eval_html(result: Any) -> str:
    """An EvalResult's output and target shapes, its losses and each node's metrics.

    The metrics are in the units of ``outputs`` and ``targets`` (raw units when the eval phase
    ran with ``inverse_transform=True``).

    >>> from mml.training import EvalResult
    >>> r = EvalResult("test", {"loss": 0.5}, {"mlp": np.array([[1.0], [2.0]])}, {"mlp": np.array([[1.0], [3.0]])})
    >>> html = eval_html(r)
    >>> "(2, 1)" in html, "<td>r2</td><td>0.5</td>" in html
    (True, True)
    """
    shapes = []
    for node, out in result.outputs.items():
        tgt = result.targets.get(node)
        shapes.append([node, str(np.shape(out)), "-" if tgt is None else str(np.shape(tgt))])
    losses = table(["loss", "value"], [[k, _num(v)] for k, v in result.losses.items()])
    metrics = _eval_metrics(result)
    return _view(
        f"<b>EvalResult</b> {_e(result.phase)}",
        table(["node", "outputs", "targets"], shapes),
        losses,
        table(["node", "metric", "value"], metrics, "metrics of outputs against targets") if metrics else "",
    )


def experiment_html(experiment: Any) -> str:
    """An Experiment's FeatureSets, graph (drawn as SVG) and phases."""
    phases = []
    for p in experiment.phases:
        inputs = ", ".join(f"{h} <- {b.featureset}[{b.split or 'all'}]" for h, b in p.inputs.items())
        losses = ", ".join(f"{a.loss.name}@{a.node}" for a in p.losses)
        callbacks = ", ".join(type(c).__name__ for c in p.callbacks)
        phases.append(
            [p.label, type(p).__name__, "-" if p.n_epochs is None else p.n_epochs, inputs, losses, callbacks]
        )
    parts = [f"<b>Experiment</b> {_e(experiment.label)}"]
    parts += [featureset_html(fs) for fs in experiment.featuresets.values()]
    parts.append(graph_html(experiment.graph))
    parts.append(table(["phase", "type", "epochs", "inputs", "losses", "callbacks"], phases, "plan"))
    return _view(*parts)
