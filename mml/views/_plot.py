"""Plots (matplotlib, the ``plot`` extra): learning curves, predictions against truth, run overlays.

Every function returns the matplotlib ``Figure`` (drawn with the non-interactive ``Agg``
canvas, so it works on a headless machine) and saves it when given ``path``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mml.errors import ConfigError

__all__ = ["plot_history", "plot_eval", "plot_runs"]


def _figure(n: int, *, width: float = 5.0, height: float = 3.4) -> tuple[Any, Any]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ConfigError("plots need matplotlib: pip install 'mml[plot]'") from exc
    fig = Figure(figsize=(width * n, height), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    return fig, axes


def _save(fig: Any, path: str | os.PathLike[str] | None) -> Any:
    if path is not None:
        fig.savefig(os.fspath(path), dpi=110)
    return fig


def _curves(history: Any) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """phase -> name -> (epochs, values) of the epoch-level rows of every train phase."""
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    ep = history.epochs()
    for p in history.phases:
        if p.kind != "phase.train":
            continue
        rows = ep.where(phase=p.label)
        curves = {}
        for n in rows.names():
            if n in ("best_epoch",):
                continue
            r = rows.where(name=n)
            curves[n] = (r.epoch.astype(float), r.value.astype(float))
        for total in ("loss", "val_loss"):  # one loss term: the term's curve *is* the total's
            twins = [
                n
                for n in curves
                if "." in n and n != total and np.array_equal(curves[n][1], curves.get(total, (0, None))[1])
            ]
            for n in twins:
                del curves[n]
        if curves:
            out[p.label] = curves
    return out


def plot_history(history: Any, path: str | os.PathLike[str] | None = None, *, log_scale: bool = True) -> Any:
    """Loss and metric curves per train phase: training against validation, the returned epoch marked.

    Losses (``loss``, ``val_loss`` and their terms) share the left panel of each phase;
    other metrics (``val_r2``, ``val_mae``, ...) the right one. A vertical line marks the
    epoch whose weights were returned when an EarlyStopping restored the best.
    """
    curves = _curves(history)
    if not curves:
        raise ConfigError("plot_history: the History has no epoch-level rows of a train phase to plot")
    fig, axes = _figure(2 * len(curves))
    for i, (phase, named) in enumerate(curves.items()):
        ax_loss, ax_metric = axes[2 * i], axes[2 * i + 1]
        rows = history.where(phase=phase)
        best_epoch = int(rows.last("best_epoch")) if "best_epoch" in rows.names() else None
        positive = True
        for n, (x, y) in named.items():
            is_loss = n in ("loss", "val_loss") or "." in n  # totals and per-node loss terms
            ax = ax_loss if is_loss else ax_metric
            positive &= bool((y > 0).all()) if is_loss else True
            ax.plot(x, y, "--" if n.startswith("val_") else "-", label=n, linewidth=1.4)
        for ax, title in ((ax_loss, "losses"), (ax_metric, "metrics")):
            ax.set_title(f"{phase}: {title}", fontsize=10)
            ax.set_xlabel("epoch")
            if best_epoch is not None:
                ax.axvline(
                    best_epoch,
                    color="0.4",
                    linestyle=":",
                    linewidth=1.0,
                    label=f"returned epoch {best_epoch}",
                )
            if ax.get_lines():
                ax.legend(fontsize=8)
        if log_scale and positive and ax_loss.get_lines():
            ax_loss.set_yscale("log")
    return _save(fig, path)


def plot_eval(result: Any, path: str | os.PathLike[str] | None = None, *, node: str | None = None) -> Any:
    """Predicted against true (with the identity line) and residuals against true, for one node.

    Units are those of the EvalResult: raw target units after ``inverse_transform=True``.
    Multi-output nodes are flattened (every output column against its target).
    """
    nodes = [n for n in result.outputs if n in result.targets]
    if not nodes:
        raise ConfigError(f"plot_eval: EvalResult {result.phase!r} has no node with both outputs and targets")
    if node is None:
        node = nodes[0]
    elif node not in nodes:
        raise ConfigError(f"plot_eval: node {node!r} has no outputs and targets; nodes: {', '.join(nodes)}")
    y = np.asarray(result.targets[node], dtype=float).reshape(-1)
    p = np.asarray(result.outputs[node], dtype=float).reshape(-1)
    if y.shape != p.shape:
        raise ConfigError(f"plot_eval: node {node!r} outputs {p.shape} values for {y.shape} targets")
    fig, (ax1, ax2) = _figure(2)
    lo, hi = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    ax1.scatter(y, p, s=6, alpha=0.6)
    ax1.plot([lo, hi], [lo, hi], color="0.3", linewidth=1.0)
    ax1.set(xlabel="true", ylabel="predicted", title=f"{result.phase}: {node} predicted vs true")
    ax2.scatter(y, p - y, s=6, alpha=0.6)
    ax2.axhline(0.0, color="0.3", linewidth=1.0)
    ax2.set(xlabel="true", ylabel="predicted - true", title=f"{result.phase}: {node} residuals")
    return _save(fig, path)


def plot_runs(
    histories: Mapping[str, Any] | Sequence[Any],
    path: str | os.PathLike[str] | None = None,
    *,
    metric: str = "val_loss",
) -> Any:
    """One curve of ``metric`` per run (epoch-level rows of train phases), for comparing runs."""
    named = (
        dict(histories) if isinstance(histories, Mapping) else {str(i): h for i, h in enumerate(histories)}
    )
    fig, (ax,) = _figure(1, width=6.0)
    drawn = 0
    for name, h in named.items():
        r = h.epochs().where(name=metric)
        if len(r):
            ax.plot(np.arange(len(r)), r.value, label=name, linewidth=1.4)
            drawn += 1
    if not drawn:
        raise ConfigError(f"plot_runs: no run logged {metric!r} at epoch level")
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} by run")
    ax.legend(fontsize=8)
    return _save(fig, path)
