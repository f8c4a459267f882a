"""Folding the plan: :func:`run_phase` folds one phase's steps, :func:`run` the whole plan.

A failure inside a phase does not raise: the History has status ``"failed"`` and its error,
and the returned state is the last good one. Effects (progress, logs) are the shell's.

>>> import mml
>>> callable(run_phase) and callable(run)
True
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any

import attrs

from mml.backends import detach, move_params, resolve_device
from mml.callbacks import Event
from mml.errors import CallbackError, DeviceError, MMLError, TrainingError
from mml.training._checkpoints import CheckpointWriter, checkpoint_history
from mml.training._dispatch import dispatch
from mml.training._evaluate import evaluate
from mml.training._experiment import Experiment
from mml.training._loop import _train_steps, steps
from mml.training._phases import AbstractPhase, EvalPhase, PhaseGroup, TrainPhase
from mml.training._results import ErrorRecord, History, PhaseResult
from mml.training._state import ExecutionContext, Position, TrainState
from mml.training._validate import check_state

__all__ = ["run", "run_phase"]


def _detach_outputs(ctx: ExecutionContext) -> ExecutionContext:
    outs = {r: {n: detach(y) for n, y in o.items()} for r, o in ctx.outputs.items()}
    return attrs.evolve(ctx, outputs=outs)


_HINTS: tuple[tuple[type[BaseException], tuple[str, ...], str], ...] = (
    (
        RuntimeError,
        ("shapes cannot be multiplied", "size mismatch", "must match the size"),
        "a node received inputs of another size than its first layer was built for: check the node's "
        "upstream keys and any declared output_shape of the node feeding it",
    ),
    (
        IndexError,
        ("out of bounds", "Target"),
        "a class id is outside [0, n_classes): give the classification head output_shape=(n_classes,)",
    ),
    (
        TypeError,
        ("argument", "positional", "not callable", "unsupported operand"),
        "a Loss or metric names a callable that is not one: it must take (outputs, targets) and return a "
        "scalar tensor",
    ),
)


def foreign_failure(exc: Exception, phase: str) -> TrainingError:
    """A :class:`TrainingError` for an error raised inside a run by code that is not mml's (a user loss,
    a backend), naming the phase, the original error and — where mml can tell — the likely fix.

    The original exception is the new one's ``__cause__`` (in the process that ran it).

    >>> e = foreign_failure(IndexError("Target 2 is out of bounds."), "fit")
    >>> "phase 'fit'" in str(e) and "output_shape=(n_classes,)" in str(e), type(e.__cause__).__name__
    (True, 'IndexError')
    """
    text = str(exc)
    hint = next(
        (h for t, needles, h in _HINTS if isinstance(exc, t) and any(n in text for n in needles)),
        "see the original error (History.error.__cause__ in this process)",
    )
    wrapped = TrainingError(f"phase {phase!r} failed: {type(exc).__name__}: {text}; {hint}")
    wrapped.__cause__ = exc
    where = getattr(exc, "_mml_location", None)
    if where is not None:
        wrapped._mml_location = where  # type: ignore[attr-defined]
    return wrapped


def plan_fingerprint(experiment: Experiment) -> str:
    """A short, stable digest of the experiment's plan: the plan a :class:`Position` belongs to.

    >>> import mml
    >>> from mml.training import EvalPhase
    >>> exp = mml.Experiment({}, mml.graph.ModelGraph.of(), EvalPhase("test", {}))  # doctest: +SKIP
    >>> len(plan_fingerprint(exp))  # doctest: +SKIP
    16
    """
    from mml.io import unstructure

    doc = json.dumps(unstructure(experiment.plan), sort_keys=True, default=str)
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()[:16]


def run_phase(
    experiment: Experiment, phase: AbstractPhase, state: TrainState, *, observer: Any = None
) -> tuple[TrainState, History]:
    """Fold :func:`steps` of one (leaf) phase: ``(final state, History)``.

    A failure (non-finite loss, a callback that raised) does not raise: the History has
    status ``"failed"`` and the error, and the returned state is the last good one.
    ``observer(state, ctx)`` (the shell's effects) sees every yielded pair. A state positioned
    inside this phase continues there.
    """
    if isinstance(phase, PhaseGroup):
        raise TrainingError("run_phase takes one phase; use run() for a plan or a PhaseGroup")
    check_state(experiment, state, "run_phase")
    pos = state.position
    path = pos.phase if pos is not None and pos.phase.rsplit("/", 1)[-1] == phase.label else phase.label
    fp = pos.plan if pos is not None else ""
    writer = CheckpointWriter()
    try:
        state, h = _fold_phase(experiment, phase, state, fp, path, History(), observer, writer)
    except BaseException:
        writer.close(raise_error=False)
        raise
    writer.close()  # the callbacks' last checkpoint is written when this returns
    return state.without_position(), h


def _on_device(state: TrainState, phase: EvalPhase) -> TrainState:
    """The state to evaluate: with ``phase.device`` set, torch nodes' params moved there (the run's state is not)."""
    if phase.device is None:
        return state
    try:
        dev = resolve_device(phase.device)
    except DeviceError as exc:
        raise TrainingError(f"EvalPhase {phase.label!r}: {exc}") from exc
    moved = {n: move_params(rec, dev) for n, rec in state.graph.params.items()}
    return state.with_graph(state.graph.with_params(moved))


def _fold_phase(
    experiment: Experiment,
    phase: AbstractPhase,
    state: TrainState,
    fp: str,
    path: str,
    before: History,
    observer: Any,
    writer: CheckpointWriter,
) -> tuple[TrainState, History]:
    t0 = time.perf_counter()
    rows: list[tuple[str, int, int, int, str, float]] = []
    recorded: list[ExecutionContext] = []
    record = getattr(phase, "record", "none")
    status = "completed"
    error: ErrorRecord | None = None
    eval_result = None
    pos = state.position
    here = pos is not None and pos.phase == path and pos.plan == fp
    n_steps = pos.n_steps if here and pos is not None else 0
    current = state
    label = phase.label

    try:
        if here and pos is not None and pos.stage == "ended":
            pass  # its steps and hooks ran before the checkpoint: only the bookkeeping is left
        elif isinstance(phase, EvalPhase):
            eval_result = evaluate(
                experiment,
                _on_device(state, phase),
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
            if isinstance(phase, TrainPhase):
                stream = _train_steps(experiment, phase, state, (fp, path))
            else:
                stream = steps(experiment, phase, state)
            for current, ctx in stream:
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
                writer.after(current, ctx, before, rows, path)
        if current.stop:
            status = "stopped"
        if not isinstance(phase, TrainPhase):
            current = attrs.evolve(current, position=Position(fp, path, "ended", n_steps=n_steps))
        writer.phase_end(current, before, rows, path)
    except TrainingError as exc:
        status = "failed"
        error = ErrorRecord.from_exception(exc, phase=label)
        good = getattr(exc, "state", None)
        current = good if good is not None else current
    except MMLError:
        raise  # mml's own refusals (bad config, bad data) are raised as documented
    except Exception as exc:  # a foreign error inside the run: a failed History, not a crash
        status = "failed"
        error = ErrorRecord.from_exception(foreign_failure(exc, label), phase=label)
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
    checkpoint: Any = None,
) -> tuple[TrainState, History]:
    """Run the whole plan: ``(final state, History)``. Neither argument is changed.

    A fresh state (:func:`mml.init`) starts the plan at its beginning, and so does a state
    positioned in another plan (fine-tuning); a state taken during a run of this plan
    continues from the position it records, and the result equals the uninterrupted run's
    bit for bit; the state a finished run returned is at the plan's end: running it again
    returns it with an empty History (``state.without_position()`` runs the plan again from
    its weights). See ``docs/training.md``, "Resume". ``checkpoint`` (a
    :class:`~mml.callbacks.Checkpointing` with ``mode="disk"``) writes resumable checkpoints
    of the whole run into its directory: every ``every_steps`` steps (or epochs), and at the
    end of every phase; :func:`mml.training.latest_checkpoint` finds the newest.

    Effects live in the shell: ``progress`` (default: on when stdout is a TTY and not in CI)
    draws a progress display; ``log`` writes every logged value to a ``.jsonl`` or ``.csv``
    file; ``observers`` (:mod:`mml.observers`: TensorBoard, MLflow, your own) see every
    event of every phase. They never change the numbers. A failed phase stops the run; the
    History says where and why.
    """
    from mml.training._shell import Shell

    check_state(experiment, state, "run")
    shell = Shell.create(progress=progress, log=log, observers=observers)
    history = None
    try:
        writer = CheckpointWriter(_check_policy(checkpoint))
        try:
            result = _run_plan(experiment, state, shell, writer)
        except BaseException:
            writer.close(raise_error=False)
            raise
        writer.close()  # the last checkpoint is written when the run returns
        history = result[1]
        return result
    finally:
        shell.close(history)


def _check_policy(policy: Any) -> Any:
    from mml.callbacks import Checkpointing
    from mml.errors import ConfigError

    if policy is None:
        return None
    if not isinstance(policy, Checkpointing) or policy.mode != "disk":
        raise ConfigError(
            "run(checkpoint=...) takes Checkpointing(mode='disk', directory=..., every_steps=...), "
            f"got {policy!r}"
        )
    return policy


def _flatten(plan: AbstractPhase, prefix: str = "") -> list[tuple[str, str, AbstractPhase]]:
    """The plan as the sequence the run walks: ``(kind, path, phase)``, kind ``group_start``/``phase``/``group_end``."""
    path = f"{prefix}/{plan.label}" if prefix else plan.label
    if isinstance(plan, PhaseGroup):
        items: list[tuple[str, str, AbstractPhase]] = [("group_start", path, plan)]
        for p in plan.phases:
            items.extend(_flatten(p, path))
        return [*items, ("group_end", path, plan)]
    return [("phase", path, plan)]


def _run_plan(
    experiment: Experiment, state: TrainState, shell: Any, writer: CheckpointWriter
) -> tuple[TrainState, History]:
    cbs = experiment.callbacks
    slots = tuple(f"experiment/{i}" for i in range(len(cbs)))
    history = History()
    base = Event("on_experiment_start", experiment=experiment)
    fp = plan_fingerprint(experiment)
    items = _flatten(experiment.plan)
    pos = state.position
    first = 0
    if pos is not None and pos.plan == fp and pos.stage == "done":
        return state, History()  # the plan ran to its end: nothing is left to continue
    found = [
        i
        for i, (kind, path, _) in enumerate(items)
        if pos is not None and kind == "phase" and path == pos.phase
    ]
    if pos is not None and pos.plan == fp and found:
        first = found[0]
        saved = checkpoint_history(state)
        history = history if saved is None else saved
        state = attrs.evolve(state, position=attrs.evolve(pos, history=None))
    else:  # a fresh state, or one positioned in another plan: a starting point for this one
        state = state.without_position()
        try:
            for cb, slot in zip(cbs, slots):
                state = state.with_callback_state(slot, cb.init())
            state, _, _ = dispatch(cbs, slots, "on_experiment_start", base, state)
        except CallbackError as exc:
            return state, History(status="failed", error=exc)

    def run_leaf(
        plan: AbstractPhase, path: str, state: TrainState, history: History
    ) -> tuple[TrainState, History]:
        p = state.position
        if p is None or p.phase != path:  # a phase positioned here has had its start hooks
            ev = attrs.evolve(
                base, hook="on_phase_start", phase=plan.label, phase_value=plan, state=state, step=state.step
            )
            state, _, _ = dispatch(cbs, slots, "on_phase_start", ev, state)
        shell.phase_start(plan)
        state, h = _fold_phase(experiment, plan, state, fp, path, history, shell.observe, writer)
        shell.phase_end(plan, h)
        history = history.merge(h)
        ev = attrs.evolve(
            base, hook="on_phase_end", phase=plan.label, phase_value=plan, state=state, step=state.step
        )
        state, logged, _ = dispatch(cbs, slots, "on_phase_end", ev, state)
        if logged:
            history = history.merge(
                History.from_rows(
                    [(plan.label, state.epoch, -1, state.step, k, v) for k, v in logged.items()]
                )
            )
        return state, history

    try:
        for kind, path, node in items[first:]:
            if kind == "phase":
                state, history = run_leaf(node, path, state, history)
                if history.status == "failed":
                    break
            else:
                hook = f"on_{kind}"
                ev = attrs.evolve(base, hook=hook, group=node.label, state=state)
                state, _, _ = dispatch(cbs, slots, hook, ev, state)
        ev = attrs.evolve(base, hook="on_experiment_end", state=state)
        state, _, _ = dispatch(cbs, slots, "on_experiment_end", ev, state)
    except CallbackError as exc:
        history = history.merge(History(status="failed", error=exc))
    if history.status == "failed":
        return state, history  # positioned at the last good step
    return attrs.evolve(state, position=Position(fp, "", "done")), history
