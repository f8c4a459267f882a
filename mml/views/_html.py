"""Compact notebook views (``_repr_html_``): tables of what a value *is*, never array dumps.

Every view is plain HTML (no scripts), escaped, and small: a History's view holds a summary
and its last rows and stays under 5 kB however long the run was.

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
from mml.data._html import featureset_html
from mml.graph._html import graph_html

__all__ = ["featureset_html", "history_html", "eval_html", "graph_html", "experiment_html", "table"]


def _num(v: float) -> str:
    return f"{v:.6g}"


def history_html(history: Any, *, last: int = 8) -> str:
    """A History's status, per-phase summary and last epoch-level rows (never arrays)."""
    status = history.status + (
        f": {_e(history.failure.message)[:300]}" if history.failure is not None else ""
    )
    phases = []
    for p in history.phases:
        rows = history.where(phase=p.label)
        epochs = sorted(set(rows.epoch.tolist()) - {-1})
        phases.append([p.label, p.kind, p.status, len(epochs), p.n_steps, f"{p.seconds:.2f} s"])
    summary = table(["phase", "kind", "status", "epochs", "steps", "time"], phases)
    ep = history.epochs()
    idx = np.arange(len(ep))[-last:]
    tail = table(
        ["phase", "epoch", "step", "name", "value"],
        [[ep.phase[i], ep.epoch[i], ep.step[i], ep.name[i], _num(float(ep.value[i]))] for i in idx],
        f"last {len(idx)} of {len(ep)} epoch-level rows",
    )
    head = f"<b>History</b> ({len(history)} rows, status {_e(status)})"
    return _view(head, summary, tail)


def eval_html(result: Any) -> str:
    """An EvalResult's losses and the shapes of its outputs and targets."""
    shapes = []
    for node, out in result.outputs.items():
        tgt = result.targets.get(node)
        shapes.append([node, str(np.shape(out)), "-" if tgt is None else str(np.shape(tgt))])
    losses = table(["loss", "value"], [[k, _num(v)] for k, v in result.losses.items()])
    return _view(
        f"<b>EvalResult</b> {_e(result.phase)}", table(["node", "outputs", "targets"], shapes), losses
    )


def experiment_html(experiment: Any) -> str:
    """An Experiment's FeatureSets, graph and phases."""
    phases = []
    for p in experiment.phases:
        inputs = ", ".join(
            f"{h} <- {b.featureset}[{b.split or 'all'}]" for h, b in getattr(p, "inputs", {}).items()
        )
        losses = ", ".join(f"{a.loss.name}@{a.node}" for a in getattr(p, "losses", ()))
        phases.append([p.label, type(p).__name__, getattr(p, "n_epochs", "-"), inputs, losses])
    parts = [f"<b>Experiment</b> {_e(experiment.label)}"]
    parts += [featureset_html(fs) for fs in experiment.featuresets.values()]
    parts.append(graph_html(experiment.graph))
    parts.append(table(["phase", "type", "epochs", "inputs", "losses"], phases, "plan"))
    return _view(*parts)
