"""Validators for optimizer and schedule hyperparameters (they raise :class:`~mml.ConfigError`).

>>> import attrs
>>> @attrs.frozen
... class Spec:
...     lr: float = attrs.field(converter=float, validator=non_negative)
>>> Spec(0.1).lr
0.1
>>> Spec(-1.0)
Traceback (most recent call last):
...
mml.errors.ConfigError: Spec.lr must be >= 0, got -1.0
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from mml.errors import ConfigError

__all__ = [
    "non_negative",
    "positive",
    "positive_int",
    "non_negative_int",
    "unit_interval",
    "optional_positive",
    "fraction_pair",
    "float_pair",
    "to_float",
    "optional_float",
]


def _name(inst: Any, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(inst).__name__}.{attribute.name}"


def non_negative(inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    """attrs validator: a finite number >= 0."""
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{_name(inst, attribute)} must be >= 0, got {value!r}")


def positive(inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    """attrs validator: a finite number > 0."""
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{_name(inst, attribute)} must be > 0, got {value!r}")


def optional_positive(inst: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    """attrs validator: ``None`` (off) or a finite number > 0."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{_name(inst, attribute)} must be None (off) or > 0, got {value!r}")


def positive_int(inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    """attrs validator: an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{_name(inst, attribute)} must be an integer >= 1, got {value!r}")


def non_negative_int(inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    """attrs validator: an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{_name(inst, attribute)} must be an integer >= 0, got {value!r}")


def unit_interval(inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    """attrs validator: a number in ``[0, 1)`` (a decay rate)."""
    if not (0.0 <= value < 1.0):
        raise ConfigError(f"{_name(inst, attribute)} must be in [0, 1), got {value!r}")


def fraction_pair(inst: Any, attribute: attrs.Attribute[Any], value: tuple[float, ...]) -> None:
    """attrs validator: two decay rates, each in ``[0, 1)`` (Adam's ``betas``)."""
    if len(value) != 2 or not all(0.0 <= b < 1.0 for b in value):
        raise ConfigError(f"{_name(inst, attribute)} must be two numbers in [0, 1), got {value!r}")


def float_pair(value: Any) -> tuple[float, ...]:
    """attrs converter: a sequence of numbers to a tuple of floats."""
    try:
        return tuple(to_float(v) for v in value)
    except (TypeError, ConfigError) as exc:
        raise ConfigError(f"expected a pair of numbers such as (0.9, 0.999), got {value!r}") from exc


def to_float(value: Any) -> float:
    """attrs converter: a number to a float (a bool or a string is a :class:`~mml.ConfigError`)."""
    if isinstance(value, (bool, str, bytes)):
        raise ConfigError(f"expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"expected a number, got {value!r}") from exc


def optional_float(value: Any) -> float | None:
    """attrs converter: ``None`` stays ``None``, anything else becomes a float."""
    return None if value is None else to_float(value)
