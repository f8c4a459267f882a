"""The imperative shell: a fan-out of observers (progress display, metric logs, trackers).

The shell reads the ``(state, context)`` pairs the core yields and hands them to every
observer (:mod:`mml.observers`); it never feeds anything back, so turning any of them on or
off never changes the numbers.

>>> s = Shell.create(progress=False, log=None)
>>> s.close()
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mml.observers import AbstractObserver, should_show_progress

__all__ = ["Shell", "should_show_progress"]


class Shell:
    """Effects of a run: each hook is forwarded to every observer, in order."""

    def __init__(self, observers: Sequence[AbstractObserver]) -> None:
        self.observers = tuple(observers)

    @classmethod
    def create(
        cls,
        *,
        progress: bool | None,
        log: str | os.PathLike[str] | None,
        observers: Sequence[AbstractObserver] = (),
    ) -> Shell:
        """A shell; ``progress=None`` means "on when interactive"; ``log`` a ``.jsonl``/``.csv`` path."""
        from mml.errors import ConfigError

        chosen: list[AbstractObserver] = []
        if should_show_progress() if progress is None else progress:
            from mml.observers import ProgressDisplay

            chosen.append(ProgressDisplay())
        if log is not None:
            from mml.observers import CSVLogger, JSONLLogger

            chosen.append(CSVLogger(log) if Path(log).suffix == ".csv" else JSONLLogger(log))
        for obs in observers:
            if not isinstance(obs, AbstractObserver):
                raise ConfigError(
                    f"observers= takes mml.observers.AbstractObserver values, got {type(obs).__name__}; "
                    "subclass AbstractObserver and override the hooks you need"
                )
            chosen.append(obs)
        return cls(chosen)

    def phase_start(self, phase: Any) -> None:
        """Called before a leaf phase runs."""
        for o in self.observers:
            o.phase_start(phase)

    def observe(self, state: Any, ctx: Any) -> None:
        """Called with every ``(state, context)`` the core yields."""
        for o in self.observers:
            o.observe(state, ctx)

    def phase_end(self, phase: Any, history: Any) -> None:
        """Called after a leaf phase ran."""
        for o in self.observers:
            o.phase_end(phase, history)

    def close(self, history: Any = None) -> None:
        """End every observer (``history`` is ``None`` if the run raised)."""
        for o in self.observers:
            o.close(history)
