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

import html as _html
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["featureset_html", "history_html", "eval_html", "graph_html", "experiment_html", "table"]

#: one style block per view (cells carry no inline styles, which keeps views small)
_STYLE = (
    "<style>table.mml{border-collapse:collapse;font-family:monospace;font-size:12px;margin:2px 0}"
    "table.mml td,table.mml th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
    "table.mml caption{text-align:left;font-weight:bold}</style>"
)


def _e(x: Any) -> str:
    return _html.escape(str(x))


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], caption: str | None = None) -> str:
    """An HTML table of ``rows`` (every cell escaped).

    >>> table(["a"], [["<b>"]])
    '<table class="mml"><tr><th>a</th></tr><tr><td>&lt;b&gt;</td></tr></table>'
    """
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="mml">{cap}<tr>{head}</tr>{body}</table>'


def _view(*parts: str) -> str:
    return "<div>" + _STYLE + "".join(parts) + "</div>"


def _num(v: float) -> str:
    return f"{v:.6g}"


def featureset_html(fs: Any) -> str:
    """A FeatureSet's keys (domain, shape, dtype, representations), splits and records."""
    from mml.data import DATA_DOMAINS

    rows = []
    for domain in DATA_DOMAINS:
        for k in fs.keys(domain):
            shape = fs.key_shape(domain, k)
            rows.append(
                [domain, k, str(tuple(shape)), fs.key_dtype(domain, k, "raw"), "+".join(fs.reps(domain, k))]
            )
    parts = [
        table(
            ["domain", "key", "shape", "dtype", "reps"], rows, f"FeatureSet {fs.label!r}: {len(fs)} samples"
        )
    ]
    if fs.split_indices:
        parts.append(table(["split", "samples"], [[n, len(i)] for n, i in fs.split_indices.items()]))
    if fs.records:
        parts.append(table(["#", "record"], [[i, r.describe()] for i, r in enumerate(fs.records)]))
    return _view(*parts)


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


def graph_html(graph: Any, shapes: Any = None) -> str:
    """A ModelGraph's nodes (type, model, upstreams) and its mermaid source, folded."""
    rows = []
    for label in graph.topological_order:
        node = graph[label]
        model = getattr(node, "model", None)
        ups = ", ".join(f"{r!r}" for r, dst in graph.edges if dst == label)
        rows.append([label, type(node).__name__, type(model).__name__ if model is not None else "-", ups])
    chart = _e(graph.to_mermaid(shapes))
    return _view(
        table(["node", "type", "model", "upstream"], rows, "ModelGraph"),
        f"<details><summary>mermaid</summary><pre>{chart}</pre></details>",
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
