"""Callback dispatch: one hook of every callback of a phase (or experiment), in order.

Each callback reads the event and its own state and returns new state, metrics and control;
:func:`dispatch` threads them through the :class:`~mml.training.TrainState`. A callback that
raises becomes a :class:`~mml.CallbackError` naming the callback, hook and position.

>>> callable(dispatch)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from mml.callbacks import AbstractCallback, Event
from mml.errors import CallbackError, MMLError
from mml.training._results import _locate
from mml.training._state import TrainState

__all__ = ["dispatch"]


def _locate_hook(exc: BaseException, hook: str, event: Event) -> None:
    # only the axes the hook has: a phase-level hook's event carries epoch/batch defaults
    epoch = event.epoch if "epoch" in hook or "batch" in hook else None
    batch = event.batch if "batch" in hook else None
    _locate(exc, event.phase, epoch, batch)


def dispatch(
    callbacks: Sequence[AbstractCallback],
    slots: Sequence[str],
    hook: str,
    event: Event,
    state: TrainState,
    saves: list[Any] | None = None,
) -> tuple[TrainState, dict[str, float], bool]:
    """Run ``hook`` of every callback that overrides it: ``(state, logged metrics, stop)``.

    Checkpoints callbacks ask for are appended to ``saves`` (when given).
    """
    metrics: dict[str, float] = dict(event.metrics)
    logged: dict[str, float] = {}
    stop = False
    for cb, slot in zip(callbacks, slots):
        if not cb.overrides(hook):
            continue
        ev = attrs.evolve(event, state=state, metrics=metrics)
        try:
            res = getattr(cb, hook)(ev, state.callback_state(slot))
        except MMLError as exc:
            if isinstance(exc, CallbackError):
                raise
            err = CallbackError(
                f"callback {type(cb).__name__} failed in {hook} (phase {event.phase!r}, epoch {event.epoch}, "
                f"batch {event.batch}): {exc}"
            )
            _locate_hook(err, hook, event)
            raise err from exc
        except Exception as exc:
            err = CallbackError(
                f"callback {type(cb).__name__} raised {type(exc).__name__} in {hook} (phase {event.phase!r}, "
                f"epoch {event.epoch}, batch {event.batch}): {exc}; the run is marked failed and the state "
                "before this hook is kept"
            )
            _locate_hook(err, hook, event)
            raise err from exc
        if res is None:
            continue
        state = state.with_callback_state(slot, res.state)
        for k, v in res.metrics.items():
            metrics[k] = logged[k] = float(v)
        if res.restore is not None:
            state = state.with_graph(res.restore)
        if res.checkpoint is not None and saves is not None:
            saves.append(res.checkpoint)
        stop = stop or res.stop
    return state, logged, stop
