"""Vectorised training: K jobs (folds, trials, ensemble members) as one stacked model per step.

:func:`run_vectorized` trains K compatible jobs (see :func:`vectorize_problem`) together: every
member keeps its own key, batches (its own sampler stream over its own rows), dropout masks,
learning rate and other optimizer numbers, step count, callbacks and early stopping, but one
step runs the K forward and backward passes as batched matrix products over ``(K, ...)``
weights (``SequentialMLP``; CNNs through their own forward under ``torch.func.vmap``) and one
stacked optimizer update. Where members' batches differ in size (folds of
unequal size) the smaller ones are zero-padded and masked out of their losses; a member
without a batch (a shorter epoch), stopped early or failed is left unchanged by the step.
Evaluation phases run per member through :func:`mml.training.run_phase`.

What is the same as the member's own :func:`~mml.strategies.run_job`, bit for bit: the fold
rows, scaler params, initial weights, batch order and contents, dropout masks, the History's
rows (phase, epoch, batch, step, name) and the statuses; and, given its gradients, the
optimizer update of a member whose numbers (learning rate, betas, ...) and step every member
shares. What is equal to float tolerance (~1e-6 relative): the losses, weights and
predictions — a batched matrix product sums in a different order than the single-model one.
:class:`VectorizedExecutor` runs jobs this way and falls back to another executor, with a
:class:`NotVectorizedWarning` naming why, when they cannot be stacked.

>>> VectorizedExecutor()
VectorizedExecutor(fallback=LocalExecutor())
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import ClassVar

import attrs

from mml.errors import ConfigError, MMLError, TrainingError
from mml.strategies._executors import AbstractExecutor, LocalExecutor
from mml.strategies._jobs import Job, RunOutcome, failed_outcome
from mml.strategies._predictions import Predictions
from mml.strategies._vectorized_check import plan_leaves, vectorize_problem
from mml.training import EvalPhase, History, TrainPhase, TrainState

__all__ = ["VectorizedExecutor", "NotVectorizedWarning", "run_vectorized"]


class NotVectorizedWarning(UserWarning):
    """Jobs asked to train vectorised ran one by one instead; the message says why."""


@attrs.frozen
class VectorizedExecutor(AbstractExecutor):
    """Train all jobs as one stacked model (:func:`run_vectorized`); else run them on ``fallback``.

    The fallback warns with :class:`NotVectorizedWarning`, naming what could not be stacked
    (a scikit-learn or Keras node, a shape-changing hyperparameter, ...).

    >>> VectorizedExecutor().fallback
    LocalExecutor()
    """

    kind: ClassVar[str] = "executor.vectorized"
    fallback: AbstractExecutor = attrs.field(factory=LocalExecutor)

    def map(self, jobs: Sequence[Job]) -> tuple[RunOutcome, ...]:
        if not jobs:
            return ()
        problem = vectorize_problem(jobs)
        if problem is not None:
            warnings.warn(
                NotVectorizedWarning(f"training {len(jobs)} jobs one by one: {problem}"), stacklevel=3
            )
            return self.fallback.map(jobs)
        return run_vectorized(jobs)


def run_vectorized(jobs: Sequence[Job]) -> tuple[RunOutcome, ...]:
    """Run compatible jobs together; one :class:`RunOutcome` per job, as :func:`run_job` gives it.

    Raises :class:`~mml.ConfigError` naming the problem when the jobs cannot be stacked
    (:class:`VectorizedExecutor` falls back instead).

    >>> run_vectorized([])
    Traceback (most recent call last):
    ...
    mml.errors.ConfigError: run_vectorized: there are no jobs; use VectorizedExecutor() to fall back to one by one
    """
    from mml.training import init, run_phase

    problem = vectorize_problem(jobs)
    if problem is not None:
        raise ConfigError(f"run_vectorized: {problem}; use VectorizedExecutor() to fall back to one by one")
    members: list[_Member] = []
    for job in jobs:
        try:
            members.append(_Member(job, init(job.experiment, job.key)))
        except Exception as exc:  # a member that cannot start fails alone
            members.append(_Member(job, None, failed=failed_outcome(exc)))
    leaves = [plan_leaves(job.experiment.plan) for job in jobs]
    for j, leaf in enumerate(leaves[0]):
        live = [m for m in members if m.state is not None and m.history.status != "failed"]
        if not live:
            break
        if isinstance(leaf, TrainPhase):
            idx = [members.index(m) for m in live]
            _train_together(live, [leaves[i][j] for i in idx])
        else:
            for m, i in zip(live, [members.index(m) for m in live]):
                if m.state is not None:  # (always: a member that could not start is not live)
                    m.state, h = run_phase(m.job.experiment, leaves[i][j], m.state)
                    m.history = m.history.merge(h)
    return tuple(m.outcome() for m in members)


class _Member:
    """One job's running state between phases (not a value: never saved)."""

    def __init__(self, job: Job, state: TrainState | None, failed: RunOutcome | None = None) -> None:
        self.job = job
        self.state = state
        self.failed = failed
        self.history = History()

    def outcome(self) -> RunOutcome:
        if self.failed is not None:
            return self.failed
        preds = {}
        for phase in plan_leaves(self.job.experiment.plan):
            if isinstance(phase, EvalPhase):
                try:
                    result = self.history.eval_result(phase.label)
                except TrainingError:
                    continue
                preds[phase.label] = Predictions.from_eval(result)
        return RunOutcome(
            history=attrs.evolve(self.history, phases=()),
            status=self.history.status,
            predictions=preds,
            state=self.state if self.job.keep_state else None,
        )


def _train_together(members: list[_Member], phases: list[TrainPhase]) -> None:
    from mml.strategies._vectorized_loop import StackedPhase
    from mml.training import run_phase

    try:
        stacked = StackedPhase(members, phases)
    except MMLError:
        # a phase that cannot start (no batch of its split, an unknown stream, ...): each member
        # runs it on its own, which records the failure exactly as its sequential run does
        for m, ph in zip(members, phases):
            assert m.state is not None  # (live members only)
            m.state, h = run_phase(m.job.experiment, ph, m.state)
            m.history = m.history.merge(h)
        return
    stacked.run()
