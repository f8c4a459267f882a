"""Learning-rate schedules: frozen values with a pure ``__call__(step) -> float``.

``step`` is the 0-based index of the update being made, the same number an optimizer's
``update`` receives. A schedule can stand wherever a learning rate is expected:

>>> import mml.optim as optim
>>> s = optim.LinearWarmup(optim.Cosine(0.1, total_steps=100), warmup_steps=10)
>>> round(s(0), 6), round(s(5), 6), round(s(10), 6), round(s(110), 6)
(0.0, 0.05, 0.1, 0.0)
>>> opt = optim.adam(lr=s)
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from mml.errors import ConfigError
from mml.optim._checks import non_negative, non_negative_int, positive, positive_int, to_float

__all__ = [
    "AbstractSchedule",
    "Constant",
    "StepDecay",
    "Exponential",
    "Cosine",
    "LinearWarmup",
    "as_learning_rate",
    "learning_rate_at",
]


def _check_step(step: int) -> None:
    if step < 0:
        raise ConfigError(f"a schedule step is the 0-based index of an update and must be >= 0, got {step!r}")


class AbstractSchedule(abc.ABC):
    """A learning-rate schedule: a frozen value mapping the update index to a learning rate.

    Concrete schedules are final; to customise one, wrap it (as :class:`LinearWarmup` does).

    >>> Constant(0.5)(1000)
    0.5
    """

    _mml_union = True

    @abc.abstractmethod
    def __call__(self, step: int) -> float:
        """The learning rate for the update with 0-based index ``step``."""


@attrs.frozen
class Constant(AbstractSchedule):
    """The same learning rate at every step.

    >>> Constant(1e-3)(0) == Constant(1e-3)(10**6) == 1e-3
    True
    """

    kind: ClassVar[str] = "schedule.constant"

    lr: float = attrs.field(converter=to_float, validator=non_negative)

    def __call__(self, step: int) -> float:
        """``lr``, whatever the step."""
        _check_step(step)
        return self.lr


@attrs.frozen
class StepDecay(AbstractSchedule):
    """``lr * gamma ** (step // step_size)`` (like ``torch.optim.lr_scheduler.StepLR``).

    >>> s = StepDecay(1.0, step_size=10, gamma=0.5)
    >>> s(0), s(9), s(10), s(25)
    (1.0, 1.0, 0.5, 0.25)
    """

    kind: ClassVar[str] = "schedule.step_decay"

    lr: float = attrs.field(converter=to_float, validator=non_negative)
    step_size: int = attrs.field(validator=positive_int)
    gamma: float = attrs.field(default=0.1, converter=to_float, validator=positive)

    def __call__(self, step: int) -> float:
        """The decayed learning rate."""
        _check_step(step)
        return self.lr * self.gamma ** (step // self.step_size)


@attrs.frozen
class Exponential(AbstractSchedule):
    """``lr * gamma ** step`` (like ``torch.optim.lr_scheduler.ExponentialLR``).

    >>> s = Exponential(1.0, gamma=0.5)
    >>> s(0), s(1), s(3)
    (1.0, 0.5, 0.125)
    """

    kind: ClassVar[str] = "schedule.exponential"

    lr: float = attrs.field(converter=to_float, validator=non_negative)
    gamma: float = attrs.field(converter=to_float, validator=positive)

    def __call__(self, step: int) -> float:
        """The decayed learning rate."""
        _check_step(step)
        return self.lr * self.gamma**step


@attrs.frozen
class Cosine(AbstractSchedule):
    """Cosine annealing from ``lr`` to ``min_lr`` over ``total_steps``, then ``min_lr``.

    ``min_lr + (lr - min_lr) * (1 + cos(pi * step / total_steps)) / 2`` for
    ``step <= total_steps`` (the closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR``
    with ``T_max=total_steps`` and ``eta_min=min_lr``); after ``total_steps`` it stays at
    ``min_lr`` rather than rising again.

    >>> s = Cosine(1.0, total_steps=4, min_lr=0.0)
    >>> [round(s(t), 4) for t in range(6)]
    [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.0]
    """

    kind: ClassVar[str] = "schedule.cosine"

    lr: float = attrs.field(converter=to_float, validator=non_negative)
    total_steps: int = attrs.field(validator=positive_int)
    min_lr: float = attrs.field(default=0.0, converter=to_float, validator=non_negative)

    def __attrs_post_init__(self) -> None:
        if self.min_lr > self.lr:
            raise ConfigError(
                f"Cosine.min_lr ({self.min_lr}) is larger than Cosine.lr ({self.lr}); "
                "the schedule anneals from lr down to min_lr"
            )

    def __call__(self, step: int) -> float:
        """The annealed learning rate."""
        _check_step(step)
        if step >= self.total_steps:
            return self.min_lr
        cos = math.cos(math.pi * step / self.total_steps)
        return self.min_lr + (self.lr - self.min_lr) * (1.0 + cos) / 2.0


def _as_schedule(value: Any) -> AbstractSchedule:
    if isinstance(value, AbstractSchedule):
        return value
    if isinstance(value, Mapping):
        from mml.io import structure_checked

        return structure_checked(dict(value), AbstractSchedule)
    return Constant(to_float(value))


@attrs.frozen
class LinearWarmup(AbstractSchedule):
    """A linear warm-up in front of another schedule.

    For ``step < warmup_steps`` the rate rises linearly from ``start_factor * schedule(0)``
    towards ``schedule(0)``; from ``warmup_steps`` on it is ``schedule(step - warmup_steps)``,
    so the wrapped schedule starts after the warm-up (like ``torch.optim.lr_scheduler.LinearLR``
    followed by the wrapped scheduler in ``SequentialLR``). A bare number is taken as
    :class:`Constant`.

    >>> s = LinearWarmup(1.0, warmup_steps=4, start_factor=0.2)
    >>> [round(s(t), 2) for t in range(6)]
    [0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
    """

    kind: ClassVar[str] = "schedule.linear_warmup"

    schedule: AbstractSchedule = attrs.field(converter=_as_schedule)
    warmup_steps: int = attrs.field(validator=non_negative_int)
    start_factor: float = attrs.field(default=0.0, converter=to_float)

    @start_factor.validator
    def _check_start_factor(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not (0.0 <= value <= 1.0):
            raise ConfigError(f"LinearWarmup.start_factor must be in [0, 1], got {value!r}")

    def __call__(self, step: int) -> float:
        """The warmed-up learning rate."""
        _check_step(step)
        if step >= self.warmup_steps:
            return self.schedule(step - self.warmup_steps)
        factor = self.start_factor + (1.0 - self.start_factor) * step / self.warmup_steps
        return factor * self.schedule(0)


def as_learning_rate(value: Any) -> float | AbstractSchedule:
    """attrs converter for an optimizer's ``lr``: a number (to float) or a schedule.

    A schedule's document (a mapping with a ``kind``) is rebuilt into the schedule, which is
    how an optimizer's ``lr`` comes back from a saved config.

    >>> as_learning_rate(1), as_learning_rate(Constant(0.1))
    (1.0, Constant(lr=0.1))
    """
    if isinstance(value, AbstractSchedule):
        return value
    if isinstance(value, Mapping):
        return _as_schedule(value)
    lr = to_float(value)
    if not (math.isfinite(lr) and lr >= 0):
        raise ConfigError(f"a learning rate must be a finite number >= 0 or a schedule, got {value!r}")
    return lr


def learning_rate_at(lr: float | AbstractSchedule, step: int) -> float:
    """The learning rate ``lr`` gives at ``step`` (a float is constant).

    >>> learning_rate_at(0.1, 5), learning_rate_at(Exponential(1.0, 0.5), 2)
    (0.1, 0.25)
    """
    if isinstance(lr, AbstractSchedule):
        return lr(step)
    _check_step(step)
    return lr
