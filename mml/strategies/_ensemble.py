"""Deep ensembles: K members of one experiment from K keys, trained together by default.

:func:`ensemble` runs ``experiment`` from ``fold_in(key, i)`` for member ``i`` (so each member
has its own initial weights, batch order and dropout masks) through a
:class:`~mml.strategies.VectorizedExecutor` — K models in one stacked step — or any executor.
:class:`EnsembleResult` keeps every member's outcome and averages their predictions.

>>> EnsembleResult(()).n_members
0
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import numpy as np

from mml.errors import ConfigError, TrainingError
from mml.random import Key, as_key, fold_in
from mml.strategies._executors import AbstractExecutor, resolve_executor
from mml.strategies._jobs import Job, RunOutcome, prediction_metrics
from mml.strategies._predictions import Predictions
from mml.strategies._vectorized import VectorizedExecutor
from mml.training import Experiment, TrainState

__all__ = ["ensemble", "EnsembleResult"]


def _members(value: Iterable[RunOutcome]) -> tuple[RunOutcome, ...]:
    return tuple(value)


@attrs.frozen
class EnsembleResult:
    """The members' outcomes (member ``i`` ran from ``fold_in(key, i)``) and their averaged predictions.

    >>> from mml.training import History
    >>> EnsembleResult((RunOutcome(History(), "completed"),)).status
    'completed'
    """

    members: tuple[RunOutcome, ...] = attrs.field(converter=_members)

    @property
    def n_members(self) -> int:
        """The number of members."""
        return len(self.members)

    @property
    def states(self) -> tuple[TrainState | None, ...]:
        """Each member's final state (``None`` entries unless ``keep_states=True``)."""
        return tuple(m.state for m in self.members)

    @property
    def status(self) -> str:
        """The worst member status (``failed`` > ``stopped`` > ``completed``)."""
        rank = {"completed": 0, "stopped": 1, "failed": 2}
        return max((m.status for m in self.members), key=rank.__getitem__, default="completed")

    def predictions(self, phase: str) -> Predictions:
        """The mean of the members' outputs of eval phase ``phase`` (targets and rows as each member's).

        Members that failed are left out; :class:`~mml.TrainingError` if none has the phase.
        """
        got = [m.predictions[phase] for m in self.members if m.ok and phase in m.predictions]
        if not got:
            raise TrainingError(f"no successful ensemble member has predictions of eval phase {phase!r}")
        first = got[0]
        for p in got[1:]:
            if p.uuids.tolist() != first.uuids.tolist():
                raise TrainingError(f"ensemble members predicted different rows in eval phase {phase!r}")
        outputs = {n: np.mean([np.asarray(p.outputs[n]) for p in got], axis=0) for n in first.outputs}
        return Predictions(phase, outputs, first.targets, first.sample_uuids)

    def metrics(self, phase: str) -> dict[str, float]:
        """``phase/node/mse|mae|r2`` of the averaged predictions."""
        return prediction_metrics(phase, self.predictions(phase))


def ensemble(
    experiment: Experiment,
    n_members: int,
    *,
    key: Key | int,
    executor: AbstractExecutor | None = None,
    keep_states: bool = True,
) -> EnsembleResult:
    """Train ``n_members`` copies of ``experiment``, member ``i`` from ``mml.init(experiment, fold_in(key, i))``.

    By default the members train together in one stacked step
    (:class:`~mml.strategies.VectorizedExecutor`, which falls back to one by one with a
    warning when the experiment cannot be stacked); pass ``executor=`` to choose another.
    Member ``i`` equals a plain ``mml.run`` from ``fold_in(key, i)`` (to float tolerance when
    stacked). See ``docs/strategies.md`` for a full example.

    >>> ensemble("not an experiment", 2, key=0)
    Traceback (most recent call last):
    ...
    mml.errors.ConfigError: ensemble takes an Experiment, got str
    """
    if not isinstance(experiment, Experiment):
        raise ConfigError(f"ensemble takes an Experiment, got {type(experiment).__name__}")
    if isinstance(n_members, bool) or not isinstance(n_members, int) or n_members < 1:
        raise ConfigError(f"ensemble: n_members must be an int >= 1, got {n_members!r}")
    key = as_key(key)
    run_with = VectorizedExecutor() if executor is None else resolve_executor(executor)
    jobs = [Job(experiment, fold_in(key, i), keep_state=keep_states) for i in range(n_members)]
    return EnsembleResult(run_with.map(jobs))
