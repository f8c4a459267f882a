"""The observer interface and the one definition of "the rows an event logs".

>>> import mml
>>> from mml.training import ExecutionContext
>>> ctx = ExecutionContext("fit", 0, 3, 4, {}, {}, {"loss": 0.5, "mlp.mse": 0.5})
>>> rows_of(ctx)
[('fit', 'batch', 0, 3, 4, 'loss', 0.5), ('fit', 'batch', 0, 3, 4, 'mlp.mse', 0.5)]

With the state the fold yielded beside it, the step is the state's (the number of updates
made so far, as in the History's rows):

>>> from mml.training import TrainState
>>> rows_of(ctx, TrainState(graph=None, key=mml.random.key(0), step=5))[0]
('fit', 'batch', 0, 3, 5, 'loss', 0.5)
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

__all__ = ["AbstractObserver", "rows_of", "Row"]

#: ``(phase, event, epoch, batch, step, name, value)``
Row = tuple[str, str, int, int, int, str, float]


def rows_of(ctx: Any, state: Any = None) -> list[Row]:
    """The values one yielded context logs, one row per name: losses first, then metrics.

    A ``"batch"`` context logs the step's losses; an ``"epoch_end"`` context the epoch's mean
    losses and what callbacks logged (``val_loss``, ...); a ``"phase_end"`` context the
    phase-level metrics. The same rows, in the same order, reach every logger, and they
    equal the History's rows (``step`` is ``state.step`` when the state is given).
    """
    values = {**ctx.losses, **ctx.metrics}
    step = int(ctx.step if state is None else state.step)
    return [
        (str(ctx.phase), str(ctx.event), int(ctx.epoch), int(ctx.batch), step, str(k), float(v))
        for k, v in values.items()
    ]


class AbstractObserver(abc.ABC):  # noqa: B024 - every hook is optional; the base only names them
    """What the shell calls during :func:`mml.run`; every hook is optional (the default does nothing).

    Hooks are effects: they receive values and return nothing. ``phase_start(phase)`` runs
    before a leaf phase, ``observe(state, ctx)`` for every ``(state, context)`` pair the fold
    yields (``ctx.event`` is ``"batch"``, ``"epoch_end"`` or ``"phase_end"``),
    ``phase_end(phase, history)`` after it with the phase's History, and ``close(history)``
    once at the end of the run with the whole History (``None`` if the run raised).

    >>> class Count(AbstractObserver):
    ...     def __init__(self):
    ...         self.n = 0
    ...     def observe(self, state, ctx):
    ...         self.n += 1
    >>> Count().n
    0
    """

    def phase_start(self, phase: Any) -> None:  # noqa: B027 - optional hook
        """Called before a leaf phase runs."""

    def observe(self, state: Any, ctx: Any) -> None:  # noqa: B027 - optional hook
        """Called with every ``(state, context)`` pair the fold yields."""

    def phase_end(self, phase: Any, history: Any) -> None:  # noqa: B027 - optional hook
        """Called after a leaf phase ran, with its History."""

    def close(self, history: Any = None) -> None:  # noqa: B027 - optional hook
        """Called once when the run ends (``history`` is ``None`` if the run raised)."""

    def subrun(self, label: str, params: Mapping[str, Any] | None = None) -> AbstractObserver:
        """The observer for one run inside a strategy: a CV fold (``"fold-2"``) or a sweep/search trial (``"trial-0003"``).

        :func:`~mml.strategies.cross_validate`, :func:`~mml.strategies.sweep` and
        :func:`~mml.strategies.search` call it once per fold or trial, feed the returned
        observer that run's events and close it with the run's History; they close ``self``
        once, at the end. ``params`` are the run's values (a trial's hyperparameters, a
        fold's index). The default forwards the events to ``self`` and ignores ``close``;
        the shipped loggers write one run per fold/trial (a TensorBoard run directory, a
        nested MLflow run, a sibling ``.jsonl``/``.csv`` file). Override it to tell runs apart.

        >>> class Count(AbstractObserver):
        ...     n = 0
        ...     def observe(self, state, ctx):
        ...         self.n += 1
        >>> c = Count()
        >>> c.subrun("fold-0").observe(None, None); c.subrun("fold-1").close(); c.n
        1
        """
        return _Within(self, label)


class _Within(AbstractObserver):
    """A sub-run's view of an observer that does not split its runs: events forwarded, ``close`` left to the parent."""

    def __init__(self, parent: AbstractObserver, label: str) -> None:
        self.parent = parent
        self.label = label

    def phase_start(self, phase: Any) -> None:
        self.parent.phase_start(phase)

    def observe(self, state: Any, ctx: Any) -> None:
        self.parent.observe(state, ctx)

    def phase_end(self, phase: Any, history: Any) -> None:
        self.parent.phase_end(phase, history)
