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

import itertools
from collections.abc import Iterator
from typing import Any

import attrs

from mml.backends import feed_data, is_accelerator, replace_fields
from mml.callbacks import Event
from mml.errors import TrainingError
from mml.random import Key, as_key, fold_in
from mml.training._dispatch import dispatch
from mml.training._evaluate import eval_steps, evaluate
from mml.training._experiment import Experiment
from mml.training._fit import fit_nodes
from mml.training._phases import AbstractPhase, EvalPhase, FitPhase, PhaseGroup, TrainPhase
from mml.training._plan import TrainPlan
from mml.training._results import _locate
from mml.training._state import ExecutionContext, Position, TrainState
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
    experiment: Experiment, phase: TrainPhase, state: TrainState, where: tuple[str, str] | None = None
) -> Iterator[tuple[TrainState, ExecutionContext]]:
    """The steps of a training phase; ``where`` is ``(plan fingerprint, phase path)`` for positions.

    A state positioned inside this phase (``stage="running"``) continues there: callback states
    are kept, the epoch's stream is skipped to the recorded batch and the epoch's loss sums
    carry on, so the rest equals an uninterrupted run's bit for bit.
    """
    plan = _TrainPlan(experiment, phase, state)
    pos = state.position
    resume = (
        pos is not None
        and pos.stage == "running"
        and (
            pos.phase == where[1] and pos.plan == where[0]
            if where
            else pos.phase.rsplit("/", 1)[-1] == phase.label
        )
    )
    if where is None:
        where = (pos.plan, pos.phase) if resume and pos is not None else ("", phase.label)
    here = Position(where[0], where[1])
    cbs, slots = plan.callbacks, plan.slots
    base = Event(
        "on_phase_start", phase=phase.label, experiment=experiment, phase_value=phase, evaluate=evaluate
    )
    saves: list[Any] = []
    if resume and pos is not None:
        state = attrs.evolve(prepare_train_state(plan, state), position=None)
        first_epoch, done, n_steps, stopped = pos.epoch, pos.batch, pos.n_steps, state.stop
        carried = pos.sums
    else:
        state = attrs.evolve(prepare_train_state(plan, state), epoch=0, batch=0, stop=False, position=None)
        for cb, slot in zip(cbs, slots):
            state = state.with_callback_state(slot, cb.init())
        ev = attrs.evolve(base, step=state.step)  # the steps earlier phases took (as on_phase_end)
        state, _, stop = dispatch(cbs, slots, "on_phase_start", ev, state)
        first_epoch, done, n_steps, stopped, carried = 0, 0, 0, stop, ()
    for epoch in range(first_epoch, phase.n_epochs):
        mid = epoch == first_epoch and done > 0  # resumed inside this epoch: its start hooks ran
        if stopped and not mid:
            break
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        index = -1
        if mid:
            for name, total, count in carried:
                sums[name], counts[name] = total, count
            index = done - 1
        else:
            ev = attrs.evolve(base, hook="on_epoch_start", epoch=epoch, step=state.step)
            state, _, stop = dispatch(cbs, slots, "on_epoch_start", ev, state)
            stopped = stopped or stop  # no step of this epoch runs; its end hooks do
        schedule = plan.schedule(epoch)
        if mid:
            schedule = itertools.islice(schedule, done, None)
        for index, (sp, batches) in enumerate(() if stopped else schedule, start=done if mid else 0):
            if plan.batch_callbacks:
                ev = attrs.evolve(base, hook="on_batch_start", epoch=epoch, batch=index, step=state.step)
                state, _, stop = dispatch(cbs, slots, "on_batch_start", ev, state)
                if stop:  # the phase ends after this hook: this step is not taken
                    stopped, index = True, index - 1  # the epoch's end sees its last step done
                    break
            try:
                new_state, ctx = train_step(plan, sp, state, batches, epoch, index)
            except TrainingError as exc:
                exc.state = state  # type: ignore[attr-defined]
                _locate(exc, phase.label, epoch, index)
                raise
            state = new_state
            n_steps += 1
            for k, v in ctx.losses.items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            if plan.batch_callbacks:
                ev = attrs.evolve(
                    base, hook="on_batch_end", epoch=epoch, batch=index, step=state.step, context=ctx
                )
                state, logged, stop = dispatch(cbs, slots, "on_batch_end", ev, state, saves)
                if logged:
                    ctx = attrs.evolve(ctx, metrics=logged)
                if saves:
                    ctx = attrs.evolve(ctx, checkpoints=tuple(saves))
                    saves.clear()
                stopped = stopped or stop
            at = replace_fields(here, epoch=epoch, batch=index + 1, n_steps=n_steps, sums=_sums(sums, counts))
            state = replace_fields(state, position=at, stop=stopped)
            yield state, ctx
            if stopped:
                break
        means = {k: v / counts[k] for k, v in sums.items()}
        ev = attrs.evolve(base, hook="on_epoch_end", epoch=epoch, batch=index, step=state.step, metrics=means)
        state, logged, stop = dispatch(cbs, slots, "on_epoch_end", ev, state, saves)
        stopped = stopped or stop
        at = replace_fields(here, epoch=epoch + 1, batch=0, n_steps=n_steps)
        state = attrs.evolve(state, epoch=epoch + 1, stop=stopped, position=at)
        yield (
            state,
            ExecutionContext(
                phase.label,
                epoch,
                -1,
                state.step,
                {},
                {},
                means,
                event="epoch_end",
                metrics=logged,
                checkpoints=tuple(saves),
            ),
        )
        saves.clear()
    ev = attrs.evolve(base, hook="on_phase_end", epoch=state.epoch, step=state.step)
    state, logged, _ = dispatch(cbs, slots, "on_phase_end", ev, state, saves)
    ended = replace_fields(here, stage="ended", epoch=state.epoch, n_steps=n_steps)
    state = attrs.evolve(state, stop=stopped, position=ended)
    yield (
        state,
        ExecutionContext(
            phase.label,
            state.epoch,
            -1,
            state.step,
            {},
            {},
            {},
            event="phase_end",
            metrics=logged,
            checkpoints=tuple(saves),
        ),
    )


def _sums(sums: dict[str, float], counts: dict[str, int]) -> tuple[tuple[str, float, int], ...]:
    return tuple((k, v, counts[k]) for k, v in sums.items())


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
