"""Search-space distributions for random search: :class:`Choice`, :class:`Uniform`,
:class:`LogUniform`, :class:`IntUniform`.

Each is a frozen value with ``sample(key)``: the same key gives the same draw.

>>> import mml
>>> k = mml.random.key(0)
>>> Uniform(0.0, 1.0).sample(k) == Uniform(0.0, 1.0).sample(k)
True
>>> 1e-4 <= LogUniform(1e-4, 1e-1).sample(k) <= 1e-1
True
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from mml.errors import ConfigError
from mml.random import Key, numpy_rng

__all__ = ["AbstractDistribution", "Choice", "Uniform", "LogUniform", "IntUniform", "as_distribution"]


def _frozen_value(value: Any) -> Any:
    """Lists (as JSON gives them back) become tuples, recursively, so values stay hashable."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen_value(v) for v in value)
    return value


class AbstractDistribution(abc.ABC):
    """A distribution over the values of one sweep path.

    >>> isinstance(Choice((1, 2)), AbstractDistribution)
    True
    """

    _mml_union = True
    kind: ClassVar[str]

    @abc.abstractmethod
    def sample(self, key: Key) -> Any:
        """One draw, a pure function of ``key``."""

    def grid(self) -> tuple[Any, ...]:
        """The finite set of values a grid sweep enumerates (only :class:`Choice` has one)."""
        raise ConfigError(
            f"{type(self).__name__} is continuous and has no finite grid; use Choice([...]) or a list for "
            "grid sweeps, or pass n_trials= for random search"
        )


def _options(value: Any) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"Choice takes a sequence of options, got {value!r}; e.g. Choice([16, 32, 64])")
    out = tuple(_frozen_value(v) for v in value)
    if not out:
        raise ConfigError("Choice needs at least one option")
    return out


@attrs.frozen
class Choice(AbstractDistribution):
    """One of ``options``, each equally likely.

    >>> import mml
    >>> Choice(["relu", "gelu"]).sample(mml.random.key(1)) in ("relu", "gelu")
    True
    >>> Choice([(8,), (16, 16)]).grid()
    ((8,), (16, 16))
    """

    kind: ClassVar[str] = "distribution.choice"
    options: tuple[Any, ...] = attrs.field(converter=_options)

    def sample(self, key: Key) -> Any:
        return self.options[int(numpy_rng(key).integers(len(self.options)))]

    def grid(self) -> tuple[Any, ...]:
        return self.options


def _check_bounds(instance: Any, low: float, high: float, *, positive: bool = False) -> None:
    name = type(instance).__name__
    for v in (low, high):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{name} bounds are finite numbers, got low={low!r}, high={high!r}")
    if not low <= high:
        raise ConfigError(f"{name} needs low <= high, got low={low!r}, high={high!r}")
    if positive and low <= 0:
        raise ConfigError(f"{name} samples on a log scale and needs low > 0, got low={low!r}")


@attrs.frozen
class Uniform(AbstractDistribution):
    """A float uniform on ``[low, high]``.

    >>> import mml
    >>> 0.1 <= Uniform(0.1, 0.5).sample(mml.random.key(0)) <= 0.5
    True
    """

    kind: ClassVar[str] = "distribution.uniform"
    low: float
    high: float

    def __attrs_post_init__(self) -> None:
        _check_bounds(self, self.low, self.high)

    def sample(self, key: Key) -> float:
        return float(numpy_rng(key).uniform(self.low, self.high))


@attrs.frozen
class LogUniform(AbstractDistribution):
    """A float whose logarithm is uniform on ``[log low, log high]`` (learning rates, weight decay).

    >>> import mml
    >>> 1e-5 <= LogUniform(1e-5, 1e-2).sample(mml.random.key(0)) <= 1e-2
    True
    """

    kind: ClassVar[str] = "distribution.log_uniform"
    low: float
    high: float

    def __attrs_post_init__(self) -> None:
        _check_bounds(self, self.low, self.high, positive=True)

    def sample(self, key: Key) -> float:
        v = math.exp(float(numpy_rng(key).uniform(math.log(self.low), math.log(self.high))))
        return min(max(v, float(self.low)), float(self.high))  # exp(log(x)) may round outside


@attrs.frozen
class IntUniform(AbstractDistribution):
    """An int uniform on ``low..high``, both ends included.

    >>> import mml
    >>> IntUniform(1, 3).sample(mml.random.key(0)) in (1, 2, 3)
    True
    >>> IntUniform(1, 3).grid()
    (1, 2, 3)
    """

    kind: ClassVar[str] = "distribution.int_uniform"
    low: int
    high: int

    def __attrs_post_init__(self) -> None:
        for v in (self.low, self.high):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"IntUniform bounds are ints, got low={self.low!r}, high={self.high!r}")
        _check_bounds(self, self.low, self.high)

    def sample(self, key: Key) -> int:
        return int(numpy_rng(key).integers(self.low, self.high + 1))

    def grid(self) -> tuple[Any, ...]:
        return tuple(range(self.low, self.high + 1))


def as_distribution(path: str, value: Any) -> AbstractDistribution:
    """A distribution from a sweep value: distributions as they are, a sequence as a :class:`Choice`.

    >>> as_distribution("lr", [0.1, 0.01])
    Choice(options=(0.1, 0.01))
    """
    if isinstance(value, AbstractDistribution):
        return value
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(
            f"sweep values for path {path!r} must be a sequence of candidates or a distribution "
            f"(Choice, Uniform, LogUniform, IntUniform), got {value!r}; wrap a single value in a list"
        )
    return Choice(value)
