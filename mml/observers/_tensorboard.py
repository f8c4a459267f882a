"""TensorBoard event files via ``tensorboardX`` (no TensorFlow needed): :class:`TensorBoardLogger`.

Scalars are tagged ``"<phase>/<name>"`` at the run's global ``step``; batch-level losses
(``batches=True``) go under ``"<phase>/batch/<name>"``. Open the directory with
``tensorboard --logdir DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mml.errors import ConfigError
from mml.observers._base import AbstractObserver, rows_of

__all__ = ["TensorBoardLogger"]


class TensorBoardLogger(AbstractObserver):
    """Write every epoch-level value (and optionally every batch loss) as a TensorBoard scalar.

    >>> import importlib.util
    >>> if importlib.util.find_spec("tensorboardX"):
    ...     import tempfile
    ...     TensorBoardLogger(tempfile.mkdtemp()).close()
    """

    def __init__(self, logdir: str | os.PathLike[str], *, batches: bool = False) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError as exc:
            raise ConfigError("TensorBoardLogger needs tensorboardX: pip install 'mml[tensorboard]'") from exc
        self.logdir = Path(logdir)
        self.batches = batches
        self._writer: Any = SummaryWriter(str(self.logdir))

    def observe(self, state: Any, ctx: Any) -> None:
        """Add the context's values as scalars."""
        if self._writer is None or (ctx.event == "batch" and not self.batches):
            return
        for phase, event, _epoch, _batch, step, name, value in rows_of(ctx, state):
            tag = f"{phase}/batch/{name}" if event == "batch" else f"{phase}/{name}"
            self._writer.add_scalar(tag, value, step)

    def subrun(self, label: str, params: Any = None) -> AbstractObserver:
        """A logger writing into ``logdir/<label>``: TensorBoard shows each fold or trial as its own run."""
        return TensorBoardLogger(self.logdir / label, batches=self.batches)

    def phase_end(self, phase: Any, history: Any) -> None:
        """Flush the event file."""
        if self._writer is not None:
            self._writer.flush()

    def close(self, history: Any = None) -> None:
        """Close the event file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
