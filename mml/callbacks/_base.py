"""The callback interface: values with pure hooks.

A callback is a frozen value. Each hook receives an :class:`Event` (what happened, the
current :class:`~mml.training.TrainState`, the step's context) and the callback's own state,
and returns a :class:`CallbackResult` — the new state, metrics to log, and control (stop the
phase, restore earlier params) — or ``None`` for "nothing changed". The state lives in the
``TrainState``, never in the callback object, so one callback value can be reused across
runs without leaking anything from one run into the next.

>>> import attrs
>>> @attrs.frozen
... class CountBatches(AbstractCallback):
...     kind = "callback.doc_count"
...     def init(self):
...         return 0
...     def on_batch_end(self, event, state):
...         return CallbackResult(state=state + 1, metrics={"n_batches": state + 1})
>>> CountBatches().has_batch_hooks
True
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs

from mml._fields import FrozenDict, frozen_dict

__all__ = ["AbstractCallback", "CallbackResult", "Event", "HOOKS", "BATCH_HOOKS"]

HOOKS: tuple[str, ...] = (
    "on_experiment_start",
    "on_experiment_end",
    "on_group_start",
    "on_group_end",
    "on_phase_start",
    "on_phase_end",
    "on_epoch_start",
    "on_epoch_end",
    "on_batch_start",
    "on_batch_end",
)
BATCH_HOOKS: tuple[str, ...] = ("on_batch_start", "on_batch_end")


@attrs.frozen(eq=False)
class Event:
    """What a hook sees: the hook name, where the run is, the state and the step's context.

    ``metrics`` holds what was logged so far for this epoch (the mean training losses at
    ``on_epoch_end``, and metrics returned by callbacks that ran earlier in the list).
    ``experiment`` and ``phase`` are the running values (callbacks such as ``Evaluation`` use
    them to evaluate the current state). ``evaluate`` is the fold's evaluation function
    (:func:`mml.training.evaluate`), handed in by the loop that makes the events so that the
    callbacks, which the training loop imports, import nothing of training.

    >>> Event("on_epoch_end", phase="fit", epoch=2).epoch
    2
    """

    hook: str
    phase: str | None = None
    epoch: int = 0
    batch: int = 0
    step: int = 0
    state: Any = None
    context: Any = None
    metrics: Mapping[str, float] = attrs.field(factory=FrozenDict, converter=frozen_dict)
    experiment: Any = None
    phase_value: Any = None
    group: str | None = None
    evaluate: Callable[..., Any] | None = attrs.field(default=None, repr=False)


@attrs.frozen
class CallbackResult:
    """What a hook returns: new callback state, metrics, and control.

    ``stop`` ends the current phase after this hook; ``restore`` (a graph state) replaces
    the params of the run's state (e.g. the best weights of early stopping).
    ``checkpoint`` asks the run to write a resumable checkpoint once every callback has seen
    this event (an effect the run performs; see :class:`~mml.callbacks.Checkpointing`).

    >>> CallbackResult(state=1, metrics={"x": 2.0}).stop
    False
    """

    state: Any = None
    metrics: Mapping[str, float] = attrs.field(factory=FrozenDict, converter=frozen_dict)
    stop: bool = False
    restore: Any = None
    checkpoint: Any = None


class AbstractCallback(abc.ABC):
    """Base of callbacks: override the hooks you need; each is pure.

    ``init()`` gives the callback's state at the start of a phase (or of the experiment,
    for experiment-level callbacks). ``lr_scale(state)`` lets a callback scale the learning
    rate of every optimizer (multiplied across callbacks). A hook returns a
    :class:`CallbackResult` or ``None``.

    >>> AbstractCallback.HOOKS[0]
    'on_experiment_start'
    """

    _mml_union = True
    kind: ClassVar[str]
    HOOKS: ClassVar[tuple[str, ...]] = HOOKS

    def init(self) -> Any:
        """The callback's initial state (default ``None``)."""
        return None

    def lr_scale(self, state: Any) -> float:
        """Factor on the learning rate while this callback is in ``state`` (default 1)."""
        return 1.0

    def on_experiment_start(self, event: Event, state: Any) -> CallbackResult | None:
        """Before the first phase of a run."""
        return None

    def on_experiment_end(self, event: Event, state: Any) -> CallbackResult | None:
        """After the last phase of a run."""
        return None

    def on_group_start(self, event: Event, state: Any) -> CallbackResult | None:
        """Before the first phase of a :class:`~mml.training.PhaseGroup`."""
        return None

    def on_group_end(self, event: Event, state: Any) -> CallbackResult | None:
        """After the last phase of a :class:`~mml.training.PhaseGroup`."""
        return None

    def on_phase_start(self, event: Event, state: Any) -> CallbackResult | None:
        """Before the first step of a phase."""
        return None

    def on_phase_end(self, event: Event, state: Any) -> CallbackResult | None:
        """After the last step of a phase."""
        return None

    def on_epoch_start(self, event: Event, state: Any) -> CallbackResult | None:
        """Before the first step of an epoch."""
        return None

    def on_epoch_end(self, event: Event, state: Any) -> CallbackResult | None:
        """After the last step of an epoch (``event.metrics`` has the epoch's mean losses)."""
        return None

    def on_batch_start(self, event: Event, state: Any) -> CallbackResult | None:
        """Before a step."""
        return None

    def on_batch_end(self, event: Event, state: Any) -> CallbackResult | None:
        """After a step (``event.context`` is its :class:`~mml.training.ExecutionContext`)."""
        return None

    @property
    def has_batch_hooks(self) -> bool:
        """Whether this callback overrides a per-batch hook (the loop skips the others)."""
        return any(getattr(type(self), h) is not getattr(AbstractCallback, h) for h in BATCH_HOOKS)

    def overrides(self, hook: str) -> bool:
        """Whether this callback overrides ``hook``."""
        return getattr(type(self), hook) is not getattr(AbstractCallback, hook)
