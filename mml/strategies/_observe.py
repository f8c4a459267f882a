"""The shell of a strategy: resume policies and observers of its folds and trials.

Observers (:mod:`mml.observers`) are effects of the driver process; they never travel to a
worker. When a fold or trial finishes (on any executor, or loaded from its directory), each
observer's :meth:`~mml.observers.AbstractObserver.subrun` for it is fed that run's events,
rebuilt from its History (:func:`replay`): the same rows, in the same order, that the
History holds — so what a logger wrote equals the fold's History.

>>> from mml.training import History
>>> h = History.from_rows([("fit", 0, 0, 1, "loss", 2.0), ("fit", 0, -1, 1, "loss", 2.0)])
>>> [(c.event, c.step, dict(c.losses)) for c in contexts_of(h.where(phase="fit"), eval_phase=False)]
[('batch', 1, {'loss': 2.0}), ('epoch_end', 1, {'loss': 2.0})]
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mml.callbacks import Checkpointing
from mml.errors import ConfigError
from mml.training import EvalPhase, ExecutionContext, Experiment, History

#: the default checkpoint interval of a strategy's runs, in steps (the same as ``mml run``'s)
DEFAULT_STEPS = 100

__all__ = ["DEFAULT_STEPS", "check_observers", "contexts_of", "replay", "feed", "close_all", "resume_policy"]


def check_observers(observers: Sequence[Any], where: str) -> tuple[Any, ...]:
    """``observers`` as a tuple of :class:`~mml.observers.AbstractObserver` (anything else is a ConfigError)."""
    from mml.observers import AbstractObserver

    out = tuple(observers)
    for obs in out:
        if not isinstance(obs, AbstractObserver):
            raise ConfigError(
                f"{where}(observers=...) takes mml.observers.AbstractObserver values, got {type(obs).__name__}; "
                "subclass AbstractObserver and override the hooks you need"
            )
    return out


def resume_policy(checkpoint: Any, directory: Any, where: str) -> Checkpointing | None:
    """The checkpoint policy of a strategy's runs (its directory is set per fold/trial later).

    ``None`` without a directory; with one: ``checkpoint=None`` checkpoints every
    :data:`DEFAULT_STEPS` steps (as ``mml run``) and at each phase end, an int ``N`` every ``N`` steps, a :class:`~mml.callbacks.Checkpointing`
    its own interval (its ``directory`` is replaced by the fold's or trial's).

    >>> resume_policy(5, "d", "sweep").every_steps, resume_policy(None, None, "sweep")
    (5, None)
    """
    if directory is None:
        if checkpoint is not None:
            raise ConfigError(
                f"{where}(checkpoint=...) needs directory=...: the checkpoints of each run are written under it"
            )
        return None
    here = os.fspath(directory)
    if checkpoint is None:
        return Checkpointing(every_steps=DEFAULT_STEPS, keep=1, mode="disk", directory=here)
    if isinstance(checkpoint, bool) or not isinstance(checkpoint, (int, Checkpointing)):
        raise ConfigError(
            f"{where}(checkpoint=...) takes a number of steps (int >= 1) or a Checkpointing(...), got {checkpoint!r}"
        )
    if isinstance(checkpoint, int):
        if checkpoint < 1:
            raise ConfigError(
                f"{where}(checkpoint=N) checkpoints every N steps: N must be >= 1, got {checkpoint}"
            )
        return Checkpointing(every_steps=checkpoint, keep=1, mode="disk", directory=here)
    import attrs

    return attrs.evolve(checkpoint, mode="disk", directory=here)


def contexts_of(history: History, *, eval_phase: bool) -> Iterator[ExecutionContext]:
    """The contexts one phase's History rows stand for: consecutive rows of one ``(epoch, batch, step)`` are one.

    Batch rows (``batch >= 0``) are ``"batch"`` events, epoch-level rows ``"epoch_end"``
    (``"eval"`` in an eval phase). The values are the context's ``losses``, in row order, so
    :func:`~mml.observers.rows_of` of the contexts gives back the History's rows.
    """
    current: tuple[str, int, int, int] | None = None
    values: dict[str, float] = {}
    for phase, epoch, batch, step, name, value in history.rows():
        at = (phase, epoch, batch, step)
        if at != current or name in values:
            if current is not None:
                yield _context(current, values, eval_phase)
            current, values = at, {}
        values[name] = value
    if current is not None:
        yield _context(current, values, eval_phase)


def _context(at: tuple[str, int, int, int], values: dict[str, float], eval_phase: bool) -> ExecutionContext:
    phase, epoch, batch, step = at
    event = "batch" if batch >= 0 else ("eval" if eval_phase else "epoch_end")
    return ExecutionContext(phase, epoch, batch, step, {}, {}, values, event=event)


def replay(observer: Any, experiment: Experiment, history: History) -> None:
    """Feed ``observer`` the events of a finished run of ``experiment`` from its ``history``.

    Every leaf phase that ran gets ``phase_start``, its contexts (:func:`contexts_of`, with
    state ``None``) and ``phase_end`` with its rows; a failed run's phases end at the failed
    one. ``close`` is the caller's.
    """
    phases = experiment.phases
    failed = history.failure.phase if history.status == "failed" and history.failure is not None else None
    labels = [p.label for p in phases]
    last = len(phases) - 1
    if history.status == "failed":
        with_rows = [i for i, p in enumerate(phases) if len(history.where(phase=p.label))]
        last = labels.index(failed) if failed in labels else (with_rows[-1] if with_rows else -1)
    for phase in phases[: last + 1]:
        own = history.where(phase=phase.label)
        observer.phase_start(phase)
        for ctx in contexts_of(own, eval_phase=isinstance(phase, EvalPhase)):
            observer.observe(None, ctx)
        observer.phase_end(phase, own)


def feed(
    observers: Sequence[Any],
    label: str,
    params: Mapping[str, Any],
    experiment: Experiment,
    history: History,
) -> None:
    """Each observer's sub-run ``label`` gets the run's events (:func:`replay`), then ``close(history)``."""
    for obs in observers:
        child = obs.subrun(label, params)
        try:
            replay(child, experiment, history)
        finally:
            child.close(history)


def close_all(observers: Sequence[Any], status: str | None) -> None:
    """Close every observer once: with a History of the strategy's worst ``status`` (``None``: it raised)."""
    history = None if status is None else History(status=status)
    for obs in observers:
        obs.close(history)
