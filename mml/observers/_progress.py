"""The live progress line of a run: :func:`progress_line` (pure) and :class:`ProgressDisplay`.

The line puts what tells you *where the run is* first — phase, epoch M/N with a bar, batch
b/B, elapsed and remaining time — and the numbers after, cut last when the terminal is
narrow. The current batch's loss is labelled as such; the last finished epoch's values
(mean training losses, validation metrics) follow ``ep N:``.

>>> line = progress_line(80, phase="train", epoch=11, n_epochs=60, batch=30, n_batches=45,
...                      elapsed=5.0, batch_loss=0.0551, epoch_metrics={"val_loss": 0.0821})
>>> len(line) <= 80, line.startswith("train")
(True, True)
>>> print(line)
train ╸┈┈┈ ep 12/60 b 31/45 0:05<0:21 batch loss 0.0551 | ep 11: val_loss 0.0821
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from mml.observers._base import AbstractObserver

__all__ = ["ProgressDisplay", "progress_line", "should_show_progress"]


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


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-:--"
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _bar(fraction: float, width: int) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    full = int(fraction * width)
    half = fraction * width - full >= 0.5 and full < width
    return "━" * full + ("╸" if half else "") + "┈" * (width - full - int(half))


def _fmt(metrics: Mapping[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in metrics.items())


def progress_line(
    width: int,
    *,
    phase: str,
    epoch: int,
    n_epochs: int,
    batch: int | None = None,
    n_batches: int | None = None,
    elapsed: float = 0.0,
    batch_loss: float | None = None,
    epoch_metrics: Mapping[str, float] | None = None,
) -> str:
    """One progress line at most ``width`` characters wide (a pure function of its arguments).

    ``epoch`` and ``batch`` are 0-based positions of the step in flight (``batch=None``
    between epochs); ``n_batches`` is the epoch length when known (after the first epoch).
    The remaining time assumes the epochs left take as long as those done.

    >>> progress_line(40, phase="fit", epoch=0, n_epochs=2, batch=4, elapsed=1.0)
    'fit ┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈┈ ep 1/2 b 5 0:01'
    """
    done = float(epoch)
    if batch is not None and n_batches:
        done += min(batch + 1, n_batches) / n_batches
    fraction = done / n_epochs if n_epochs else 1.0
    eta = elapsed * (1 - fraction) / fraction if fraction > 0 else math.inf
    where = f"ep {min(epoch + 1, n_epochs)}/{n_epochs}"
    if batch is not None:
        where += f" b {batch + 1}/{n_batches}" if n_batches else f" b {batch + 1}"
    clock = _clock(elapsed) + (f"<{_clock(eta)}" if fraction > 0 and fraction < 1 else "")
    tail = []
    if batch_loss is not None:
        tail.append(f"batch loss {batch_loss:.4g}")
    if epoch_metrics and epoch > 0:
        tail.append(f"ep {epoch}: {_fmt(epoch_metrics)}")  # the values of the last finished epoch
    rest = f" {where} {clock}"
    bar_width = max(4, min(20 if not tail else 10, width - len(phase) - len(rest) - 1 - (44 if tail else 0)))
    head = f"{phase} {_bar(fraction, bar_width)}{rest}"
    if len(head) > width:  # very narrow: drop the bar first, then cut
        head = f"{phase}{rest}"
    line = head + (" " + " | ".join(tail) if tail else "")
    if len(line) > width:
        line = line[: max(width - 1, 0)] + "…"
    return line


def _shown(values: Mapping[str, float], terms: set[str]) -> dict[str, float]:
    """Epoch values worth a place on the line: one loss term duplicates its total, so hide it."""
    hide = set()
    if len(terms) == 1:
        (t,) = terms
        hide = {t, f"val_{t}", f"val_loss_{t}"}
    return {k: float(v) for k, v in values.items() if k not in hide and k != "loss"} | (
        {"loss": float(values["loss"])} if "loss" in values else {}
    )


class ProgressDisplay(AbstractObserver):
    """The live line of ``mml run``: :func:`progress_line` redrawn ten times a second.

    Text is printed literally (no markup is interpreted). ``width`` defaults to the
    terminal's width.
    """

    def __init__(self, *, width: int | None = None, file: Any = None) -> None:
        self.width = width
        self.file = sys.stdout if file is None else file
        self._live: Any = None
        self._console: Any = None
        self._phase: Any = None
        self._t0 = 0.0
        self._last = 0.0
        self._n_batches: int | None = None
        self._batches_seen = 0
        self._epoch_metrics: dict[str, float] = {}
        self._terms: set[str] = set()

    def _draw(self, line_kwargs: dict[str, Any], force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        from rich.text import Text

        if self._live is None:
            from rich.console import Console
            from rich.live import Live

            self._console = Console(file=self.file, width=self.width)
            self._live = Live(console=self._console, auto_refresh=False, transient=False)
            self._live.start()
        width = self.width or self._console.width
        kwargs: dict[str, Any] = {
            "phase": getattr(self._phase, "label", "phase"),
            "n_epochs": self._n_epochs(),
        }
        line = progress_line(width, elapsed=now - self._t0, **kwargs, **line_kwargs)
        self._live.update(Text(line, no_wrap=True, overflow="ellipsis"), refresh=True)

    def _n_epochs(self) -> int:
        return int(getattr(self._phase, "n_epochs", 1) or 1)

    def phase_start(self, phase: Any) -> None:
        """Start a new line for the phase."""
        self._phase = phase
        self._t0 = time.monotonic()
        self._last = 0.0
        self._n_batches = None
        self._batches_seen = 0
        self._epoch_metrics = {}
        self._terms = set()

    def observe(self, state: Any, ctx: Any) -> None:
        """Redraw after a batch (at most ten times a second) and after every epoch."""
        if ctx.event == "batch":
            self._batches_seen = max(self._batches_seen, ctx.batch + 1)
            self._terms = {k for k in ctx.losses if k != "loss"}
            loss = ctx.losses.get("loss")
            self._draw(
                {
                    "epoch": ctx.epoch,
                    "batch": ctx.batch,
                    "n_batches": self._n_batches,
                    "batch_loss": None if loss is None else float(loss),
                    "epoch_metrics": self._epoch_metrics,
                }
            )
        elif ctx.event == "epoch_end":
            self._n_batches = self._batches_seen or self._n_batches
            self._batches_seen = 0
            self._epoch_metrics = _shown({**ctx.losses, **ctx.metrics}, self._terms)
            self._draw({"epoch": ctx.epoch + 1, "epoch_metrics": self._epoch_metrics}, force=True)

    def phase_end(self, phase: Any, history: Any) -> None:
        """Leave the phase's last line on screen, with its status."""
        if self._live is not None:
            from rich.text import Text

            status = getattr(history, "status", "")
            width = self.width or self._console.width
            line = progress_line(
                width,
                phase=f"{phase.label} ({status})",
                epoch=self._n_epochs() if status == "completed" else self._last_epoch(history),
                n_epochs=self._n_epochs(),
                elapsed=time.monotonic() - self._t0,
                epoch_metrics=self._epoch_metrics,
            )
            self._live.update(Text(line, no_wrap=True, overflow="ellipsis"), refresh=True)
            self._live.stop()
            self._live = None

    def _last_epoch(self, history: Any) -> int:
        try:
            return int(history.epoch.max()) + 1 if len(history) else 0
        except (AttributeError, ValueError):
            return 0

    def close(self, history: Any = None) -> None:
        """Stop the live display if a phase left it running."""
        if self._live is not None:
            self._live.stop()
            self._live = None
