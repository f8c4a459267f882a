"""Comparing runs: one table of config differences, final metrics, best epoch and wall time.

:func:`compare` takes Histories (and optionally their configs); :func:`compare_runs` reads
``mml run`` directories. ``mml compare RUN_DIR...`` prints the same table.

>>> from mml.training import History, PhaseResult
>>> def run(v):
...     return History.from_rows([("fit", 0, -1, 3, "val_loss", v)],
...                              phases=(PhaseResult("fit", "phase.train", "completed", seconds=1.5),))
>>> c = compare({"a": run(0.5), "b": run(0.25)}, configs={"a": {"lr": 0.1}, "b": {"lr": 0.01}})
>>> c.differences
{'lr': ('0.1', '0.01')}
>>> c.value("b", "fit", "val_loss")
0.25
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from mml.errors import ArtifactError, ConfigError

__all__ = ["Comparison", "compare", "compare_runs", "flatten"]


def flatten(doc: Any, prefix: str = "") -> dict[str, str]:
    """A nested config as ``{"a.b[0].c": "value"}`` (values as JSON text).

    >>> flatten({"plan": {"phases": [{"n_epochs": 3}]}})
    {'plan.phases[0].n_epochs': '3'}
    """
    out: dict[str, str] = {}
    if isinstance(doc, Mapping):
        for k, v in doc.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(doc, (list, tuple)):
        for i, v in enumerate(doc):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = json.dumps(doc) if not isinstance(doc, str) else doc
    return out


@attrs.frozen
class Comparison:
    """Runs side by side: per run its final metrics (``(phase, metric, units) -> value``), best epoch,
    wall time and status, plus the config keys whose values differ (``key -> values by run``)."""

    runs: tuple[str, ...]
    metrics: Mapping[str, Mapping[tuple[str, str, str], float]]
    best_epoch: Mapping[str, int | None]
    seconds: Mapping[str, float]
    status: Mapping[str, str]
    differences: Mapping[str, tuple[str, ...]]

    def value(self, run: str, phase: str, metric: str) -> float:
        """One final metric of one run (``"loss"`` finds ``"loss (total)"``)."""
        for (p, m, _u), v in self.metrics[run].items():
            if p == phase and m in (metric, f"{metric} (total)"):
                return v
        known = ", ".join(m for p, m, _u in self.metrics.get(run, {}) if p == phase) or "none"
        raise ConfigError(f"run {run!r} has no metric {metric!r} in phase {phase!r}; it has: {known}")

    def rows(self) -> list[list[str]]:
        """The table as text cells: a header row, then one row per metric/config key."""
        header = ["", "", *self.runs]
        rows = [header]
        for key, values in self.differences.items():
            rows.append(["config", key, *values])
        keys: list[tuple[str, str, str]] = []
        for r in self.runs:
            keys += [k for k in self.metrics[r] if k not in keys]
        for p, m, u in keys:
            cells = [
                f"{self.metrics[r][(p, m, u)]:.6g}" if (p, m, u) in self.metrics[r] else "-"
                for r in self.runs
            ]
            rows.append([p, f"{m} [{u}]" if u else m, *cells])
        rows.append(
            [
                "run",
                "best epoch",
                *[str(self.best_epoch[r]) if self.best_epoch[r] is not None else "-" for r in self.runs],
            ]
        )
        rows.append(["run", "wall time (s)", *[f"{self.seconds[r]:.2f}" for r in self.runs]])
        rows.append(["run", "status", *[self.status[r] for r in self.runs]])
        return rows


def compare(
    histories: Mapping[str, Any],
    *,
    configs: Mapping[str, Any] | None = None,
    experiments: Mapping[str, Any] | None = None,
    summaries: Mapping[str, Any] | None = None,
) -> Comparison:
    """Compare runs by name: their final metrics and config differences.

    A run's metrics are its ``summaries[name]`` rows if given (what ``mml run`` wrote to
    ``summary.json``), else :func:`mml.views.summary_rows` of its History (with its
    experiment, if given, for the units).
    """
    from mml.views._summary import summary_rows

    names = tuple(histories)
    metrics, best, seconds, status = {}, {}, {}, {}
    for n, h in histories.items():
        rows = (summaries or {}).get(n)
        if rows is None:
            rows = summary_rows(h, (experiments or {}).get(n))
        metrics[n] = {(str(p), str(m), str(u)): float(v) for p, m, u, v in rows}
        b = h.epochs().where(name="best_epoch")
        best[n] = int(b.value[-1]) if len(b) else None
        seconds[n] = float(sum(p.seconds for p in h.phases))
        status[n] = h.status
    diffs: dict[str, tuple[str, ...]] = {}
    if configs:
        flat = {n: flatten(configs.get(n, {})) for n in names}
        for key in sorted(set().union(*flat.values())):
            values = tuple(flat[n].get(key, "-") for n in names)
            if len(set(values)) > 1:
                diffs[key] = values
    return Comparison(names, metrics, best, seconds, status, diffs)


def _run_name(path: Path, taken: set[str]) -> str:
    name = path.name or str(path)
    i = 2
    while name in taken:
        name, i = f"{path.name}#{i}", i + 1
    return name


def compare_runs(run_dirs: list[str | os.PathLike[str]]) -> tuple[Comparison, dict[str, Any]]:
    """Compare ``mml run`` directories: ``(Comparison, histories by run name)``.

    Each directory must hold ``history`` (the saved History artifact); ``summary.json``
    (the final metrics with units) and ``config.json`` (the resolved config, for the
    differences) are used when present. Histories hold only mml's own types, so loading
    them needs no ``trusted=``.
    """
    import mml

    histories: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    summaries: dict[str, Any] = {}
    for d in map(Path, run_dirs):
        name = _run_name(d, set(histories))
        if not (d / "history").exists():
            raise ArtifactError(
                f"{d}: not an mml run directory (no 'history' artifact); write one with `mml run CONFIG --out {d}`"
            )
        histories[name] = mml.load(d / "history")
        for fname, into in (("config.json", configs), ("summary.json", summaries)):
            if (d / fname).exists():
                try:
                    into[name] = json.loads((d / fname).read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise ArtifactError(f"{d / fname}: not readable JSON ({exc})") from exc
    return compare(histories, configs=configs, summaries=summaries), histories
