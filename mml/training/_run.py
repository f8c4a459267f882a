"""Folding the plan: :func:`run_phase` folds one phase's steps, :func:`run` the whole plan.

A failure inside a phase does not raise: the History has status ``"failed"`` and its error,
and the returned state is the last good one. Effects (progress, logs) are the shell's.

>>> import mml
>>> callable(run_phase) and callable(run)
True
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import attrs

from mml.backends._feed import detach
from mml.callbacks._base import Event
from mml.errors import CallbackError, TrainingError
from mml.training._dispatch import dispatch
from mml.training._evaluate import evaluate
from mml.training._experiment import Experiment
from mml.training._loop import steps
from mml.training._phases import AbstractPhase, EvalPhase, PhaseGroup
from mml.training._results import ErrorRecord, History, PhaseResult
from mml.training._state import ExecutionContext, TrainState

__all__ = ["run", "run_phase"]


def _detach_outputs(ctx: ExecutionContext) -> ExecutionContext:
    outs = {r: {n: detach(y) for n, y in o.items()} for r, o in ctx.outputs.items()}
    return attrs.evolve(ctx, outputs=outs)


def run_phase(
    experiment: Experiment, phase: AbstractPhase, state: TrainState, *, observer: Any = None
) -> tuple[TrainState, History]:
    """Fold :func:`steps` of one (leaf) phase: ``(final state, History)``.

    A failure (non-finite loss, a callback that raised) does not raise: the History has
    status ``"failed"`` and the error, and the returned state is the last good one.
    ``observer(state, ctx)`` (the shell's effects) sees every yielded pair.
    """
    if isinstance(phase, PhaseGroup):
        raise TrainingError("run_phase takes one phase; use run() for a plan or a PhaseGroup")
    t0 = time.perf_counter()
    rows: list[tuple[str, int, int, int, str, float]] = []
    recorded: list[ExecutionContext] = []
    record = getattr(phase, "record", "none")
    status = "completed"
    error: ErrorRecord | None = None
    eval_result = None
    n_steps = 0
    current = state
    label = phase.label
    try:
        if isinstance(phase, EvalPhase):
            eval_result = evaluate(
                experiment,
                state,
                phase.inputs,
                losses=phase.losses,
                batch_size=phase.batch_size,
                nodes=phase.nodes,
                inverse_transform=phase.inverse_transform,
                label=label,
            )
            rows.extend((label, 0, -1, state.step, k, v) for k, v in eval_result.losses.items())
            if observer is not None:
                ctx = ExecutionContext(
                    label,
                    0,
                    -1,
                    state.step,
                    {},
                    {"default": eval_result.outputs},
                    eval_result.losses,
                    event="eval",
                )
                observer(current, ctx)
        else:
            for current, ctx in steps(experiment, phase, state):
                ev = ctx.event
                if ev == "batch":
                    n_steps += 1
                    e, b, s = ctx.epoch, ctx.batch, ctx.step + 1
                    for name, v in ctx.losses.items():
                        rows.append((label, e, b, s, name, v))
                    for name, v in ctx.metrics.items():
                        rows.append((label, e, b, s, name, v))
                    if record != "none":
                        if record == "last_epoch" and recorded and recorded[-1].epoch != ctx.epoch:
                            recorded.clear()
                        recorded.append(_detach_outputs(ctx))
                elif ev in ("epoch_end", "phase_end"):
                    for name, v in ctx.losses.items():
                        rows.append((label, ctx.epoch, -1, ctx.step, name, v))
                    for name, v in ctx.metrics.items():
                        rows.append((label, ctx.epoch, -1, ctx.step, name, v))
                if observer is not None:
                    observer(current, ctx)
            if current.stop:
                status = "stopped"
    except TrainingError as exc:
        status = "failed"
        error = ErrorRecord.from_exception(exc, phase=label)
        good = getattr(exc, "state", None)
        current = good if good is not None else current
    result = PhaseResult(
        label, phase.kind, status, error, n_steps, time.perf_counter() - t0, eval_result, tuple(recorded)
    )
    current = attrs.evolve(current, stop=False) if current.stop else current
    return current, History.from_rows(rows, status=status, phases=(result,), error=error)


def run(
    experiment: Experiment,
    state: TrainState,
    *,
    progress: bool | None = None,
    log: str | None = None,
    observers: Sequence[Any] = (),
) -> tuple[TrainState, History]:
    """Run the whole plan: ``(final state, History)``. Neither argument is changed.

    Effects live in the shell: ``progress`` (default: on when stdout is a TTY and not in CI)
    draws a progress display; ``log`` writes every logged value to a ``.jsonl`` or ``.csv``
    file; ``observers`` (:mod:`mml.observers`: TensorBoard, MLflow, your own) see every
    event of every phase. They never change the numbers. A failed phase stops the run; the
    History says where and why.
    """
    from mml.training._shell import Shell

    shell = Shell.create(progress=progress, log=log, observers=observers)
    history = None
    try:
        result = _run_plan(experiment, state, shell)
        history = result[1]
        return result
    finally:
        shell.close(history)


def _run_plan(experiment: Experiment, state: TrainState, shell: Any) -> tuple[TrainState, History]:
    cbs = experiment.callbacks
    slots = tuple(f"experiment/{i}" for i in range(len(cbs)))
    history = History()
    base = Event("on_experiment_start", experiment=experiment)
    try:
        for cb, slot in zip(cbs, slots):
            state = state.with_callback_state(slot, cb.init())
        state, _, _ = dispatch(cbs, slots, "on_experiment_start", base, state)
    except CallbackError as exc:
        return state, History(status="failed", error=exc)

    def walk(plan: AbstractPhase, state: TrainState, history: History) -> tuple[TrainState, History]:
        if isinstance(plan, PhaseGroup):
            ev = attrs.evolve(base, hook="on_group_start", group=plan.label, state=state)
            state, _, _ = dispatch(cbs, slots, "on_group_start", ev, state)
            for p in plan.phases:
                state, history = walk(p, state, history)
                if history.status == "failed":
                    return state, history
            ev = attrs.evolve(base, hook="on_group_end", group=plan.label, state=state)
            state, _, _ = dispatch(cbs, slots, "on_group_end", ev, state)
            return state, history
        ev = attrs.evolve(base, hook="on_phase_start", phase=plan.label, phase_value=plan, state=state)
        state, _, _ = dispatch(cbs, slots, "on_phase_start", ev, state)
        shell.phase_start(plan)
        state, h = run_phase(experiment, plan, state, observer=shell.observe)
        shell.phase_end(plan, h)
        history = history.merge(h)
        ev = attrs.evolve(base, hook="on_phase_end", phase=plan.label, phase_value=plan, state=state)
        state, logged, _ = dispatch(cbs, slots, "on_phase_end", ev, state)
        if logged:
            history = history.merge(
                History.from_rows(
                    [(plan.label, state.epoch, -1, state.step, k, v) for k, v in logged.items()]
                )
            )
        return state, history

    try:
        state, history = walk(experiment.plan, state, history)
        ev = attrs.evolve(base, hook="on_experiment_end", state=state)
        state, _, _ = dispatch(cbs, slots, "on_experiment_end", ev, state)
    except CallbackError as exc:
        history = history.merge(History(status="failed", error=exc))
    return state, history
