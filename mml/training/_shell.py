"""The imperative shell: progress display and metrics logging (effects only).

The shell reads the ``(state, context)`` pairs the core yields; it never feeds anything
back, so turning it on or off never changes the numbers.

>>> s = Shell.create(progress=False, log=None)
>>> s.close()
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["Shell", "should_show_progress"]


def should_show_progress() -> bool:
    """Progress is drawn on an interactive terminal or in a Jupyter kernel, never in CI.

    >>> isinstance(should_show_progress(), bool)
    True
    """
    if os.environ.get("CI") or os.environ.get("MML_NO_PROGRESS"):
        return False
    if "ipykernel" in sys.modules:  # a notebook: rich renders its live display as HTML there
        return True
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


def _fmt(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())


class Shell:
    """Effects of a run: a progress line (epochs, batches, loss, val_loss) and a metrics log."""

    def __init__(self, progress: bool, log: str | os.PathLike[str] | None) -> None:
        self.progress = progress
        self.log_path = Path(log) if log is not None else None
        self._file: Any = None
        self._csv: Any = None
        self._last_draw = 0.0
        self._phase: Any = None
        self._nb = 0
        self._display: Any = None  # a rich Progress, created on first use
        self._task: Any = None
        self._epoch_metrics: dict[str, float] = {}
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.log_path, "w", encoding="utf-8", newline="")
            if self.log_path.suffix == ".csv":
                self._csv = csv.writer(self._file)
                self._csv.writerow(["phase", "event", "epoch", "batch", "step", "name", "value"])

    @classmethod
    def create(cls, *, progress: bool | None, log: str | os.PathLike[str] | None) -> Shell:
        """A shell; ``progress=None`` means "on when interactive"."""
        return cls(should_show_progress() if progress is None else progress, log)

    def phase_start(self, phase: Any) -> None:
        """Called before a phase runs."""
        self._phase = phase
        self._nb = 0
        self._task = None

    def _write(self, ctx: Any, values: dict[str, float]) -> None:
        if self._file is None:
            return
        for name, v in values.items():
            if self._csv is not None:
                self._csv.writerow([ctx.phase, ctx.event, ctx.epoch, ctx.batch, ctx.step, name, v])
            else:
                self._file.write(
                    json.dumps(
                        {
                            "phase": ctx.phase,
                            "event": ctx.event,
                            "epoch": ctx.epoch,
                            "batch": ctx.batch,
                            "step": ctx.step,
                            "name": name,
                            "value": v,
                        }
                    )
                    + "\n"
                )

    def observe(self, state: Any, ctx: Any) -> None:
        """Called with every ``(state, context)`` the core yields."""
        if ctx.event != "batch":
            self._write(ctx, {**ctx.losses, **ctx.metrics})
        if not self.progress:
            return
        if ctx.event == "batch":
            self._nb = max(self._nb, ctx.batch + 1)
            now = time.monotonic()
            if now - self._last_draw < 0.1:  # redraw at most ten times a second
                return
            self._last_draw = now
            self._update(epoch=ctx.epoch, batch=f"batch {ctx.batch + 1}", loss=ctx.losses.get("loss"))
        elif ctx.event == "epoch_end":
            self._epoch_metrics = {k: v for k, v in {**ctx.losses, **ctx.metrics}.items() if k != "loss"}
            self._update(epoch=ctx.epoch + 1, batch=f"{self._nb} batches", loss=ctx.losses.get("loss"))

    def _ensure_display(self) -> Any:
        if self._display is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._display = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("epochs  {task.fields[batch]}  loss {task.fields[loss]}  {task.fields[extra]}"),
                TimeElapsedColumn(),
                console=Console(file=sys.stdout),
                transient=False,
            )
            self._display.start()
        return self._display

    def _update(self, *, epoch: int, batch: str, loss: float | None) -> None:
        display = self._ensure_display()
        if self._task is None:
            n_epochs = getattr(self._phase, "n_epochs", 1)
            label = getattr(self._phase, "label", "phase")
            self._task = display.add_task(label, total=n_epochs, batch="", loss="-", extra="")
        display.update(
            self._task,
            completed=epoch,
            batch=batch,
            loss="-" if loss is None else f"{loss:.4g}",
            extra=_fmt(self._epoch_metrics),
        )

    def phase_end(self, phase: Any, history: Any) -> None:
        """Called after a phase ran."""
        if self.progress and self._display is not None:
            if self._task is not None:
                self._display.update(self._task, description=f"{phase.label} ({history.status})")
            self._task = None
            self._epoch_metrics = {}
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Stop the live display and close the log file."""
        if self._display is not None:
            self._display.stop()
            self._display = None
        if self._file is not None:
            self._file.close()
            self._file = None
