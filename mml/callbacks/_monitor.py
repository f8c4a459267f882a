"""Callbacks that watch a metric: :class:`EarlyStopping` and :class:`LRSchedulerOnPlateau`.

Their state (best value, patience counter, best params, lr scale) lives in the
``TrainState``, so reusing one callback value across runs never carries anything over.

>>> EarlyStopping("val_loss", patience=2).init()
EarlyStoppingState(best=inf, wait=0, best_epoch=-1, best_graph=None)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import attrs

from mml.callbacks._base import AbstractCallback, CallbackResult, Event
from mml.errors import ConfigError, TrainingError
from mml.graph import GraphState

__all__ = ["EarlyStopping", "EarlyStoppingState", "LRSchedulerOnPlateau", "PlateauState"]


def _mode(instance: Any, attribute: Any, value: str) -> None:
    if value not in ("min", "max"):
        raise ConfigError(f"{type(instance).__name__}.mode must be 'min' or 'max', got {value!r}")


def _non_negative_int(instance: Any, attribute: Any, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{type(instance).__name__}.{attribute.name} must be an int >= 0, got {value!r}")


def _monitored(event: Event, monitor: str, who: str) -> float:
    if monitor not in event.metrics:
        raise TrainingError(
            f"{who} monitors {monitor!r} but epoch {event.epoch} of phase {event.phase!r} logged only "
            f"{', '.join(event.metrics) or 'nothing'}; put an Evaluation(split=...) callback before it or "
            "monitor 'loss'"
        )
    return float(event.metrics[monitor])


def _better(value: float, best: float, mode: str, min_delta: float) -> bool:
    if math.isnan(value):
        return False
    return value < best - min_delta if mode == "min" else value > best + min_delta


@attrs.frozen
class EarlyStoppingState:
    """Best value so far, epochs without improvement, and (with ``restore_best``) the best params."""

    best: float
    wait: int
    best_epoch: int
    best_graph: GraphState | None = None


@attrs.frozen
class EarlyStopping(AbstractCallback):
    """Stop a phase when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best=True`` the params of the best epoch are put back at the end of the
    phase (whether it stopped early or not).

    >>> EarlyStopping("val_loss", mode="max").init().best
    -inf
    """

    kind: ClassVar[str] = "callback.early_stopping"

    monitor: str = "val_loss"
    mode: str = attrs.field(default="min", validator=_mode)
    patience: int = attrs.field(default=5, validator=_non_negative_int)
    min_delta: float = attrs.field(default=0.0, converter=float)
    restore_best: bool = False

    def init(self) -> EarlyStoppingState:
        """No best value yet."""
        return EarlyStoppingState(math.inf if self.mode == "min" else -math.inf, 0, -1, None)

    def on_epoch_end(self, event: Event, state: EarlyStoppingState) -> CallbackResult:
        """Compare with the best value; stop after ``patience`` epochs without improvement."""
        value = _monitored(event, self.monitor, "EarlyStopping")
        if _better(value, state.best, self.mode, self.min_delta):
            best_graph = event.state.graph if self.restore_best else None
            return CallbackResult(state=EarlyStoppingState(value, 0, event.epoch, best_graph))
        wait = state.wait + 1
        new = attrs.evolve(state, wait=wait)
        return CallbackResult(state=new, stop=wait >= self.patience)

    def on_phase_end(self, event: Event, state: EarlyStoppingState) -> CallbackResult | None:
        """Put the best params back (``restore_best``)."""
        if self.restore_best and state.best_graph is not None:
            return CallbackResult(
                state=state, restore=state.best_graph, metrics={"best_epoch": float(state.best_epoch)}
            )
        return None


@attrs.frozen
class PlateauState:
    """Best value, epochs without improvement, cooldown left and the current lr scale."""

    best: float
    wait: int
    cooldown: int
    scale: float


@attrs.frozen
class LRSchedulerOnPlateau(AbstractCallback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving for ``patience`` epochs.

    The scale lives in the callback's state and reaches every optimizer through its
    ``lr_scale`` argument; it is logged as ``lr_scale``.

    >>> cb = LRSchedulerOnPlateau(factor=0.5)
    >>> cb.lr_scale(cb.init())
    1.0
    """

    kind: ClassVar[str] = "callback.lr_on_plateau"

    monitor: str = "val_loss"
    mode: str = attrs.field(default="min", validator=_mode)
    factor: float = attrs.field(default=0.1, converter=float)
    patience: int = attrs.field(default=10, validator=_non_negative_int)
    min_delta: float = attrs.field(default=0.0, converter=float)
    cooldown: int = attrs.field(default=0, validator=_non_negative_int)
    min_scale: float = attrs.field(default=0.0, converter=float)

    def __attrs_post_init__(self) -> None:
        if not 0.0 < self.factor < 1.0:
            raise ConfigError(f"LRSchedulerOnPlateau.factor must be in (0, 1), got {self.factor}")

    def init(self) -> PlateauState:
        """Scale 1, no best value yet."""
        return PlateauState(math.inf if self.mode == "min" else -math.inf, 0, 0, 1.0)

    def lr_scale(self, state: PlateauState) -> float:
        """The current factor on the learning rate."""
        return 1.0 if state is None else state.scale

    def on_epoch_end(self, event: Event, state: PlateauState) -> CallbackResult:
        """Reduce the scale after ``patience`` epochs without improvement."""
        value = _monitored(event, self.monitor, "LRSchedulerOnPlateau")
        if _better(value, state.best, self.mode, self.min_delta):
            new = PlateauState(value, 0, max(state.cooldown - 1, 0), state.scale)
        elif state.cooldown > 0:
            new = attrs.evolve(state, cooldown=state.cooldown - 1)
        elif state.wait + 1 > self.patience:
            new = PlateauState(state.best, 0, self.cooldown, max(state.scale * self.factor, self.min_scale))
        else:
            new = attrs.evolve(state, wait=state.wait + 1)
        return CallbackResult(state=new, metrics={"lr_scale": new.scale})
