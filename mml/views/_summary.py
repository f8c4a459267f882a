"""The final metrics of a run as rows: what ``mml run`` prints and ``mml compare`` compares.

One row per metric: ``(phase, metric, units, value)``. ``units`` says what the number is
measured in: ``"scaled"`` (the units the model sees, after the target scalers),
``"raw"`` (the targets' own units, after ``inverse_transform``) or ``""`` (counts, unitless
indices). Values describe the model the run *returned*: when an ``EarlyStopping(...,
restore_best=True)`` put back the best epoch's weights, a train phase's rows are that epoch's
values. Each loss term has its own row; their weighted sum is ``loss (total)``.

>>> from mml.training import History, PhaseResult
>>> h = History.from_rows([("fit", 0, -1, 5, "loss", 0.5), ("fit", 1, -1, 10, "loss", 0.25)],
...                       phases=(PhaseResult("fit", "phase.train", "completed"),))
>>> summary_rows(h)
[('fit', 'loss (total)', 'scaled', 0.25), ('fit', 'epochs run', '', 2.0)]
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["summary_rows", "targets_scaled"]


def targets_scaled(experiment: Any) -> bool:
    """Whether any FeatureSet of ``experiment`` has a scaler on its targets (so losses are "scaled")."""
    if experiment is None:
        return True
    from mml.scalers import ScalerRecord

    return any(
        isinstance(r, ScalerRecord) and r.domain == "targets"
        for fs in experiment.featuresets.values()
        for r in fs.records
    )


def _returned_epoch(rows: Any) -> int | None:
    """The epoch whose weights a train phase returned, if a callback restored one."""
    if "best_epoch" in rows.names():
        return int(rows.last("best_epoch"))
    return None


def _name(n: str) -> str:
    return f"{n} (total)" if n in ("loss", "val_loss") else n


def _drop_single_totals(values: dict[str, float], terms: set[str]) -> dict[str, float]:
    """With one loss term the total *is* the term: keep one row of the two."""
    if len(terms) != 1:
        return values
    (t,) = terms
    out = dict(values)
    for total, term in (("loss", t), ("val_loss", f"val_{t}")):
        if total in out and term in out and out[total] == out[term]:
            del out[total]
    return out


def summary_rows(history: Any, experiment: Any = None) -> list[tuple[str, str, str, float]]:
    """The run's final metrics, one ``(phase, metric, units, value)`` row each (see the module doc)."""
    from mml.callbacks import classification_metrics, regression_metrics

    unit = "scaled" if targets_scaled(experiment) else "raw"
    out: list[tuple[str, str, str, float]] = []
    for result in history.phases:
        phase = result.label
        rows = history.where(phase=phase)
        if result.kind == "phase.eval":
            ev = result.eval
            names = [n for n in rows.names() if n != "loss"] + (["loss"] if "loss" in rows.names() else [])
            values = _drop_single_totals({n: rows.last(n) for n in names}, set(names) - {"loss"})
            out += [(phase, _name(n), unit, v) for n, v in values.items()]
            for node in sorted(ev.outputs) if ev is not None else ():
                y = np.asarray(ev.targets.get(node)) if node in ev.targets else None
                p = np.asarray(ev.outputs[node])
                if y is None:
                    continue
                if _is_classification(y, p):
                    for name, v in classification_metrics(y, p, _CLASSIFICATION_ROWS).items():
                        out.append((phase, f"{node} {name}", "", v))
                    continue
                if y.shape != p.shape or p.dtype.kind != "f":
                    continue
                m = regression_metrics(y, p)
                u = "raw" if _inverted(experiment, phase) else unit
                out.append((phase, f"{node} rmse", u, float(np.sqrt(m["mse"]))))
                out.append((phase, f"{node} mae", u, m["mae"]))
                out.append((phase, f"{node} r2", "", m["r2"]))
            continue
        epochs = rows.epochs()
        if not len(epochs):
            continue
        trained = sorted(set(epochs.where(name="loss").epoch.tolist() if "loss" in epochs.names() else []))
        best = _returned_epoch(epochs)
        at = epochs.where(epoch=best) if best is not None and best in trained else epochs
        names = [n for n in at.names() if n not in ("loss", "best_epoch", "val_loss")]
        names += [n for n in ("val_loss", "loss") if n in at.names()]
        terms = set(rows.batches().names()) - {"loss"}
        for n, v in _drop_single_totals({n: at.last(n) for n in names}, terms).items():
            u = "" if n == "lr_scale" or n.endswith("r2") else unit
            out.append((phase, _name(n), u, v))
        if best is not None:
            out.append((phase, "returned epoch (best)", "", float(best)))
        out.append((phase, "epochs run", "", float(len(trained) or len(set(epochs.epoch.tolist())))))
    return out


#: the classification metrics of an eval phase's table
_CLASSIFICATION_ROWS = ("accuracy", "balanced_accuracy", "f1", "log_loss")


def _is_classification(y: np.ndarray, p: np.ndarray) -> bool:
    """Integer class ids against one score per class."""
    return (
        y.dtype.kind in "iu"
        and y.reshape(len(y), -1).shape[1] == 1
        and p.ndim == 2
        and p.shape[1] > 1
        and len(y) == len(p)
    )


def _inverted(experiment: Any, phase_label: str) -> bool:
    """Whether eval phase ``phase_label`` reported outputs in raw units."""
    if experiment is None:
        return False
    hit = next((p for p in experiment.phases if p.label == phase_label), None)  # the leaf phases
    return bool(getattr(hit, "inverse_transform", False))
