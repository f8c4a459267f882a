"""Execution as a fold: :func:`steps` lazily yields ``(state, context)`` for every step of a phase.

The functional core lives here: no printing, no files. Every step takes a
:class:`~mml.training.TrainState` and returns a new one; the input state and the experiment
are never changed, so the same ``(experiment, state)`` run twice gives bit-identical results
on the CPU. :func:`mml.training.run_phase` and :func:`mml.run` fold this stream.

>>> import mml
>>> callable(steps) and callable(init)
True
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from mml.backends._feed import feed_data, is_accelerator
from mml.callbacks._base import Event
from mml.errors import TrainingError
from mml.random import Key, as_key, fold_in
from mml.training._dispatch import dispatch
from mml.training._evaluate import eval_steps
from mml.training._experiment import Experiment
from mml.training._fit import fit_nodes
from mml.training._phases import AbstractPhase, EvalPhase, FitPhase, PhaseGroup, TrainPhase
from mml.training._plan import TrainPlan
from mml.training._results import _locate
from mml.training._state import ExecutionContext, TrainState
from mml.training._step import prepare_train_state, train_step

__all__ = ["init", "steps"]

#: whether a head's prepared data move to a device once per phase: any device but the CPU (on
#: the CPU a batch's conversion shares the numpy memory; elsewhere gathering on the device
#: saves one host-to-device copy per step)
_device_data_wanted = is_accelerator


def init(experiment: Experiment, key: Key | int) -> TrainState:
    """Build the graph and initialise every node from ``key``: the run's first state.

    The same key gives bit-identical params. Optimizer states are created when a training
    phase first needs them.
    """
    from mml.graph import build
    from mml.training._classes import with_class_widths

    key = as_key(key)
    gstate = build(with_class_widths(experiment), experiment.featuresets, fold_in(key, "init"))
    return TrainState(graph=gstate, key=key)


def _TrainPlan(experiment: Experiment, phase: TrainPhase, state: TrainState) -> TrainPlan:
    """The plan of a training phase, moving data to accelerators as :data:`_device_data_wanted` says."""
    return TrainPlan(experiment, phase, state, device_data=_device_data_wanted)


def _to_torch(sd: Any, device: Any) -> Any:
    """One head's batch as torch tensors on ``device`` (what a torch step feeds)."""
    return feed_data(sd, "torch", device)


def _train_steps(
    experiment: Experiment, phase: TrainPhase, state: TrainState
) -> Iterator[tuple[TrainState, ExecutionContext]]:
    plan = _TrainPlan(experiment, phase, state)
    state = attrs.evolve(prepare_train_state(plan, state), epoch=0, batch=0, stop=False)
    cbs, slots = plan.callbacks, plan.slots
    for cb, slot in zip(cbs, slots):
        state = state.with_callback_state(slot, cb.init())
    base = Event("on_phase_start", phase=phase.label, experiment=experiment, phase_value=phase)
    state, _, stop = dispatch(cbs, slots, "on_phase_start", base, state)
    stopped = stop
    for epoch in range(phase.n_epochs):
        if stopped:
            break
        ev = attrs.evolve(base, hook="on_epoch_start", epoch=epoch, step=state.step)
        state, _, stop = dispatch(cbs, slots, "on_epoch_start", ev, state)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        index = -1
        for index, (sp, batches) in enumerate(plan.schedule(epoch)):
            if plan.batch_callbacks:
                ev = attrs.evolve(base, hook="on_batch_start", epoch=epoch, batch=index, step=state.step)
                state, _, stop = dispatch(cbs, slots, "on_batch_start", ev, state)
            try:
                new_state, ctx = train_step(plan, sp, state, batches, epoch, index)
            except TrainingError as exc:
                exc.state = state  # type: ignore[attr-defined]
                _locate(exc, phase.label, epoch, index)
                raise
            state = new_state
            for k, v in ctx.losses.items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            if plan.batch_callbacks:
                ev = attrs.evolve(
                    base, hook="on_batch_end", epoch=epoch, batch=index, step=state.step, context=ctx
                )
                state, logged, stop = dispatch(cbs, slots, "on_batch_end", ev, state)
                if logged:
                    ctx = attrs.evolve(ctx, metrics=logged)
                stopped = stopped or stop
            yield state, ctx
            if stopped:
                break
        means = {k: v / counts[k] for k, v in sums.items()}
        ev = attrs.evolve(base, hook="on_epoch_end", epoch=epoch, batch=index, step=state.step, metrics=means)
        state, logged, stop = dispatch(cbs, slots, "on_epoch_end", ev, state)
        stopped = stopped or stop
        state = attrs.evolve(state, epoch=epoch + 1, stop=stopped)
        yield (
            state,
            ExecutionContext(
                phase.label, epoch, -1, state.step, {}, {}, means, event="epoch_end", metrics=logged
            ),
        )
    ev = attrs.evolve(base, hook="on_phase_end", epoch=state.epoch, step=state.step)
    state, logged, _ = dispatch(cbs, slots, "on_phase_end", ev, state)
    state = attrs.evolve(state, stop=stopped)
    yield (
        state,
        ExecutionContext(
            phase.label, state.epoch, -1, state.step, {}, {}, {}, event="phase_end", metrics=logged
        ),
    )


def steps(
    experiment: Experiment, phase: AbstractPhase, state: TrainState
) -> Iterator[tuple[TrainState, ExecutionContext]]:
    """Lazily yield ``(state, context)`` for every step of ``phase`` (a scan over batches).

    Training phases yield one ``"batch"`` context per update, then an ``"epoch_end"``
    context per epoch and a ``"phase_end"`` context; eval phases yield one ``"eval"``
    context; fit phases one ``"fit"`` context per fitted node. ``state`` is never changed.
    """
    if isinstance(phase, TrainPhase):
        return _train_steps(experiment, phase, state)
    if isinstance(phase, EvalPhase):
        return eval_steps(experiment, phase, state)
    if isinstance(phase, FitPhase):
        return fit_nodes(experiment, phase, state)
    if isinstance(phase, PhaseGroup):
        return _group_steps(experiment, phase, state)
    raise TrainingError(f"unknown phase type {type(phase).__name__}")


def _group_steps(
    experiment: Experiment, group: PhaseGroup, state: TrainState
) -> Iterator[tuple[TrainState, ExecutionContext]]:
    for p in group.phases:
        last = state
        for last, ctx in steps(experiment, p, state):
            yield last, ctx
        state = last
