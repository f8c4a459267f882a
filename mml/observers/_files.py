"""Metric logs as files: :class:`JSONLLogger` and :class:`CSVLogger`.

Both write one row per logged value as it happens — every batch step's losses (unless
``batches=False``), every epoch's means and callback metrics, every phase-level metric —
with the columns ``phase, event, epoch, batch, step, name, value`` (``batch == -1`` on
epoch-level rows, as in :class:`mml.training.History`).

>>> import json, tempfile, pathlib
>>> from mml.training import ExecutionContext
>>> path = pathlib.Path(tempfile.mkdtemp()) / "m.jsonl"
>>> log = JSONLLogger(path)
>>> log.observe(None, ExecutionContext("fit", 0, 0, 1, {}, {}, {"loss": 0.25}))
>>> log.close()
>>> json.loads(path.read_text())
{'phase': 'fit', 'event': 'batch', 'epoch': 0, 'batch': 0, 'step': 1, 'name': 'loss', 'value': 0.25}
"""

from __future__ import annotations

import abc
import csv
import json
import os
from pathlib import Path
from typing import Any

from mml.observers._base import AbstractObserver, rows_of

__all__ = ["JSONLLogger", "CSVLogger"]

_COLUMNS = ("phase", "event", "epoch", "batch", "step", "name", "value")


class _FileLogger(AbstractObserver):
    def __init__(self, path: str | os.PathLike[str], *, batches: bool = True) -> None:
        self.path = Path(path)
        self.batches = batches
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: Any = open(self.path, "w", encoding="utf-8", newline="")
        self._start()

    def _start(self) -> None:
        """Write a header, if the format has one."""

    @abc.abstractmethod
    def _row(self, row: tuple[Any, ...]) -> None:
        """Write one row (each format its own way)."""

    def observe(self, state: Any, ctx: Any) -> None:
        """Write the rows of ``ctx`` (batch rows only with ``batches=True``)."""
        if self._file is None or (ctx.event == "batch" and not self.batches):
            return
        for row in rows_of(ctx, state):
            self._row(row)

    def subrun(self, label: str, params: Any = None) -> AbstractObserver:
        """A logger of the same format writing ``<stem>-<label><suffix>`` beside this file (``m-fold-0.jsonl``)."""
        return type(self)(
            self.path.with_name(f"{self.path.stem}-{label}{self.path.suffix}"), batches=self.batches
        )

    def phase_end(self, phase: Any, history: Any) -> None:
        """Flush, so that a killed run keeps what it logged."""
        if self._file is not None:
            self._file.flush()

    def close(self, history: Any = None) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None


class JSONLLogger(_FileLogger):
    """One JSON object per logged value (``.jsonl``); see the module docstring."""

    def _row(self, row: tuple[Any, ...]) -> None:
        self._file.write(json.dumps(dict(zip(_COLUMNS, row))) + "\n")


class CSVLogger(_FileLogger):
    """One CSV row per logged value, with a header row.

    >>> import tempfile, pathlib
    >>> from mml.training import ExecutionContext
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.csv"
    >>> log = CSVLogger(path)
    >>> log.observe(None, ExecutionContext("fit", 0, 0, 1, {}, {}, {"loss": 0.25}))
    >>> log.close()
    >>> path.read_text().splitlines()
    ['phase,event,epoch,batch,step,name,value', 'fit,batch,0,0,1,loss,0.25']
    """

    def _start(self) -> None:
        self._csv = csv.writer(self._file)
        self._csv.writerow(_COLUMNS)

    def _row(self, row: tuple[Any, ...]) -> None:
        self._csv.writerow(row)
