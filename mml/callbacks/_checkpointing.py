"""Checkpoints of the run's state, in memory or on disk (atomic writes with ``mml.save``).

>>> Checkpointing(every_n=2, keep=3).mode
'memory'
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

import attrs

from mml.callbacks._base import AbstractCallback, CallbackResult, Event
from mml.errors import ConfigError
from mml.graph import GraphState

__all__ = ["Checkpointing", "CheckpointState", "MemoryCheckpoint"]


@attrs.frozen
class MemoryCheckpoint:
    """The graph state at a point of the run."""

    phase: str
    epoch: int
    step: int
    graph: GraphState


@attrs.frozen
class CheckpointState:
    """Checkpoints kept so far (memory) and paths written (disk), newest last."""

    memory: tuple[MemoryCheckpoint, ...] = ()
    paths: tuple[str, ...] = ()
    count: int = 0


def _check(instance: Checkpointing, attribute: Any, value: Any) -> None:
    if instance.on not in ("epoch", "batch", "phase"):
        raise ConfigError(f"Checkpointing.on must be 'epoch', 'batch' or 'phase', got {instance.on!r}")
    if instance.mode not in ("memory", "disk"):
        raise ConfigError(f"Checkpointing.mode must be 'memory' or 'disk', got {instance.mode!r}")
    if instance.mode == "disk" and not instance.directory:
        raise ConfigError("Checkpointing(mode='disk') needs directory=...")
    if instance.every_n < 1 or instance.keep < 1:
        raise ConfigError("Checkpointing.every_n and keep must be >= 1")


@attrs.frozen
class Checkpointing(AbstractCallback):
    """Keep the last ``keep`` checkpoints, every ``every_n`` epochs / batches (or at phase end).

    ``mode="memory"`` keeps the graph states in the callback's state (free: tensors are
    never changed in place); ``mode="disk"`` writes the whole ``TrainState`` with
    :func:`mml.save` (atomic: a staging directory swapped into place) to
    ``directory/<phase>-<on>-<n>`` and deletes older ones beyond ``keep``. Writing is the
    one effect of this callback; it never changes the numbers.
    """

    kind: ClassVar[str] = "callback.checkpointing"

    every_n: int = 1
    on: str = "epoch"
    keep: int = 1
    mode: str = "memory"
    directory: str | None = attrs.field(default=None, validator=_check)

    def init(self) -> CheckpointState:
        """Nothing saved yet."""
        return CheckpointState()

    def _save(self, event: Event, state: CheckpointState, n: int) -> CallbackResult:
        ts = event.state
        if self.mode == "memory":
            cp = MemoryCheckpoint(event.phase or "", event.epoch, ts.step, ts.graph)
            return CallbackResult(
                state=CheckpointState((*state.memory, cp)[-self.keep :], state.paths, state.count + 1)
            )
        from mml.io import save

        path = Path(str(self.directory)) / f"{event.phase}-{self.on}-{n}"
        save(ts, path)
        paths = (*state.paths, str(path))
        for old in paths[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return CallbackResult(state=CheckpointState(state.memory, paths[-self.keep :], state.count + 1))

    def on_epoch_end(self, event: Event, state: CheckpointState) -> CallbackResult | None:
        """Save every ``every_n`` epochs (``on="epoch"``)."""
        if self.on != "epoch" or (event.epoch + 1) % self.every_n:
            return None
        return self._save(event, state, event.epoch + 1)

    def on_batch_end(self, event: Event, state: CheckpointState) -> CallbackResult | None:
        """Save every ``every_n`` steps (``on="batch"``)."""
        if self.on != "batch" or event.step % self.every_n:
            return None
        return self._save(event, state, event.step)

    def on_phase_end(self, event: Event, state: CheckpointState) -> CallbackResult | None:
        """Save at the end of the phase (``on="phase"``)."""
        if self.on != "phase":
            return None
        return self._save(event, state, event.step)
