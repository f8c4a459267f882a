"""Writing resumable checkpoints: an effect of the run, never an input to its numbers.

A checkpoint is the :class:`~mml.training.TrainState` the fold yielded at a step, epoch end or
phase end — it records its :class:`~mml.training.Position` — with the run's History up to
there boxed into the position, saved with :func:`mml.save` (atomic). Loading it and handing
it to :func:`mml.run` continues the run exactly (see ``docs/training.md``, "Resume").

A run-level policy (``mml.run(..., checkpoint=Checkpointing(...))``, what ``mml run`` uses)
also keeps an index, ``checkpoints.json`` (names, newest last), so that the newest is found
without loading any other and keep-last-k holds across a killed and resumed process.

>>> latest_checkpoint("/nonexistent") is None
True
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from mml.training._results import History
from mml.training._state import ExecutionContext, TrainState, box

__all__ = ["CheckpointWriter", "latest_checkpoint", "with_history"]

INDEX = "checkpoints.json"


def with_history(state: TrainState, history: History) -> TrainState:
    """``state`` with ``history`` (recorded step contexts left out) boxed into its position.

    >>> import mml
    >>> from mml.training import Position
    >>> s = TrainState(graph=None, key=mml.random.key(0), position=Position("p", "plan/fit"))
    >>> with_history(s, History()).position.history.value.status
    'completed'
    """
    if state.position is None:
        return state
    lean = attrs.evolve(history, phases=tuple(attrs.evolve(p, contexts=()) for p in history.phases))
    return attrs.evolve(state, position=attrs.evolve(state.position, history=box(lean)))


def _safe(path: str) -> str:
    return path.replace("/", ".")


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The newest checkpoint a run-level policy wrote into ``directory`` (``None`` if none)."""
    index = Path(directory) / INDEX
    try:
        names = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for name in reversed(names):
        if (Path(directory) / name).is_dir():
            return Path(directory) / name
    return None


class CheckpointWriter:
    """Writes the checkpoints of one run: callbacks' requests and an optional run-level policy.

    Not a value: the shell's handle on the files. ``policy`` is a
    :class:`~mml.callbacks.Checkpointing` (``mode="disk"``); ``every_steps`` (or
    ``on="batch"``/``every_n``) sets the step interval, ``on="epoch"`` the epoch interval, and a
    checkpoint is written at the end of every phase.
    """

    def __init__(self, policy: Any = None) -> None:
        self.policy = policy
        self.names: list[str] = []
        if policy is not None:
            self.root = Path(str(policy.directory))
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                self.names = list(json.loads((self.root / INDEX).read_text(encoding="utf-8")))
            except (OSError, ValueError):
                self.names = []

    def _save(self, path: Path, state: TrainState, history: History) -> None:
        from mml.io import save

        save(with_history(state, history), path)

    def after(
        self, state: TrainState, ctx: ExecutionContext, history: Callable[[], History], path: str
    ) -> None:
        """After the run recorded ``ctx``: write what callbacks asked for and what the policy says is due."""
        for req in ctx.checkpoints:
            self._save(Path(req.path), state, history())
            for old in req.drop:
                shutil.rmtree(old, ignore_errors=True)
        p = self.policy
        if p is None:
            return
        name = None
        if ctx.event == "batch":
            every = p.every_steps or (p.every_n if p.on == "batch" else None)
            if every and state.step % every == 0:
                name = f"{_safe(path)}-step-{state.step}"
        elif ctx.event == "epoch_end" and p.on == "epoch" and not p.every_steps:
            if state.epoch % p.every_n == 0:
                name = f"{_safe(path)}-epoch-{state.epoch}"
        if name is not None:
            self._policy_save(name, state, history())

    def phase_end(self, state: TrainState, history: History, path: str) -> None:
        """After a phase ended (its position at ``stage="ended"``): the policy's checkpoint."""
        if self.policy is not None and state.position is not None:
            self._policy_save(f"{_safe(path)}-end-step-{state.step}", state, history)

    def _policy_save(self, name: str, state: TrainState, history: History) -> None:
        self._save(self.root / name, state, history)
        names = [n for n in self.names if n != name] + [name]
        keep, drop = names[-self.policy.keep :], names[: -self.policy.keep]
        tmp = self.root / f".{INDEX}.tmp"
        tmp.write_text(json.dumps(keep), encoding="utf-8")
        os.replace(tmp, self.root / INDEX)  # the index names only complete checkpoints
        for old in drop:
            shutil.rmtree(self.root / old, ignore_errors=True)
        self.names = keep
