"""Checkpoints of the run's state, in memory or on disk (atomic writes with ``mml.save``).

>>> Checkpointing(every_n=2, keep=3).mode
'memory'
>>> Checkpointing(every_steps=100, mode="disk", directory="ckpt").on
'epoch'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import attrs

from mml.callbacks._base import AbstractCallback, CallbackResult, Event
from mml.errors import ConfigError
from mml.graph import GraphState

__all__ = ["CheckpointRequest", "Checkpointing", "CheckpointState", "MemoryCheckpoint"]


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


@attrs.frozen
class CheckpointRequest:
    """A disk checkpoint a hook asks the run to write (``path``), and older ones to delete (``drop``).

    >>> CheckpointRequest("ckpt/fit-epoch-2").drop
    ()
    """

    path: str
    drop: tuple[str, ...] = ()


def _check(instance: Checkpointing, attribute: Any, value: Any) -> None:
    if instance.on not in ("epoch", "batch", "phase"):
        raise ConfigError(f"Checkpointing.on must be 'epoch', 'batch' or 'phase', got {instance.on!r}")
    if instance.mode not in ("memory", "disk"):
        raise ConfigError(f"Checkpointing.mode must be 'memory' or 'disk', got {instance.mode!r}")
    if instance.mode == "disk" and not instance.directory:
        raise ConfigError("Checkpointing(mode='disk') needs directory=...")
    if instance.every_n < 1 or instance.keep < 1:
        raise ConfigError("Checkpointing.every_n and keep must be >= 1")
    if instance.every_steps is not None and (instance.every_steps < 1 or instance.on != "epoch"):
        raise ConfigError(
            "Checkpointing(every_steps=N) checkpoints every N training steps: N must be >= 1, and give "
            "either every_steps= or on='batch'/'phase', not both"
        )


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
    directory: str | None = None
    every_steps: int | None = attrs.field(default=None, validator=_check)

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
        on = "step" if self.every_steps is not None else self.on
        path = str(Path(str(self.directory)) / f"{event.phase}-{on}-{n}")
        paths = (*state.paths, path)
        request = CheckpointRequest(path, paths[: -self.keep])
        return CallbackResult(
            state=CheckpointState(state.memory, paths[-self.keep :], state.count + 1), checkpoint=request
        )

    def on_epoch_end(self, event: Event, state: CheckpointState) -> CallbackResult | None:
        """Save every ``every_n`` epochs (``on="epoch"``)."""
        if self.on != "epoch" or self.every_steps is not None or (event.epoch + 1) % self.every_n:
            return None
        return self._save(event, state, event.epoch + 1)

    def on_batch_end(self, event: Event, state: CheckpointState) -> CallbackResult | None:
        """Save every ``every_n`` steps (``on="batch"``) or every ``every_steps`` steps."""
        every = (
            self.every_steps if self.every_steps is not None else (self.every_n if self.on == "batch" else 0)
        )
        if not every or event.step % every:
            return None
        return self._save(event, state, event.step)

    def on_phase_end(self, event: Event, state: CheckpointState) -> CallbackResult | None:
        """Save at the end of the phase (``on="phase"``)."""
        if self.on != "phase":
            return None
        return self._save(event, state, event.step)
