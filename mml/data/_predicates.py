"""Serializable predicates on columns — no lambdas, no eval.

Build them with :func:`col` and Python operators; evaluate on a FeatureSet or a view.

>>> import mml
>>> fs = mml.FeatureSet.from_dict({"t": [1.0, 15.0, 40.0], "y": [0.0, 1.0, 2.0]},
...                               features=["t"], targets=["y"], label="temps")
>>> p = (col("t") < 10) | (col("t") >= 30)
>>> p.evaluate(fs).tolist()
[True, False, True]
>>> mml.io.roundtrip(p) == p
True
"""

from __future__ import annotations

import abc
import operator
from typing import Any, ClassVar

import attrs
import numpy as np

from mml._fields import frozen_tuple
from mml.errors import SchemaError

__all__ = ["AbstractPredicate", "Compare", "IsIn", "Between", "And", "Or", "Not", "ColumnExpr", "col"]

_OPS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
Scalar = bool | int | float | str


def _column_values(source: Any, column: str) -> np.ndarray:
    arr = source.resolve_column_array(column)
    if arr.ndim != 1:
        raise SchemaError(
            f"predicates compare scalar columns; {column!r} holds per-sample arrays of shape {arr.shape[1:]}"
        )
    return arr


class AbstractPredicate(abc.ABC):
    """A boolean condition on the columns of a FeatureSet (combine with ``&``, ``|``, ``~``)."""

    _mml_union: ClassVar[bool] = True

    @abc.abstractmethod
    def evaluate(self, source: Any) -> np.ndarray:
        """A boolean mask, one entry per row of ``source`` (a FeatureSet or a view)."""

    @abc.abstractmethod
    def columns(self) -> frozenset[str]:
        """The column names this predicate reads."""

    def __and__(self, other: AbstractPredicate) -> And:
        return And((self, other))

    def __or__(self, other: AbstractPredicate) -> Or:
        return Or((self, other))

    def __invert__(self) -> Not:
        return Not(self)


def _check_op(instance: Any, attribute: Any, value: str) -> None:
    if value not in _OPS:
        raise SchemaError(f"unknown comparison {value!r}; use one of {', '.join(_OPS)}")


@attrs.frozen
class Compare(AbstractPredicate):
    """``column OP value``; usually written ``col("temp") < 10``."""

    kind: ClassVar[str] = "predicate.compare"
    column: str
    op: str = attrs.field(validator=_check_op)
    value: Scalar

    def evaluate(self, source: Any) -> np.ndarray:
        return np.asarray(_OPS[self.op](_column_values(source, self.column), self.value), dtype=bool)

    def columns(self) -> frozenset[str]:
        return frozenset({self.column})


@attrs.frozen
class IsIn(AbstractPredicate):
    """``column in values`` (or not in, with ``negate=True``)."""

    kind: ClassVar[str] = "predicate.isin"
    column: str
    values: tuple[Scalar, ...] = attrs.field(converter=frozen_tuple)
    negate: bool = False

    def evaluate(self, source: Any) -> np.ndarray:
        mask = np.isin(_column_values(source, self.column), np.asarray(self.values))
        return ~mask if self.negate else mask

    def columns(self) -> frozenset[str]:
        return frozenset({self.column})


@attrs.frozen
class Between(AbstractPredicate):
    """``low <= column <= high`` (bounds inclusive unless ``inclusive`` says otherwise)."""

    kind: ClassVar[str] = "predicate.between"
    column: str
    low: float
    high: float
    inclusive: str = attrs.field(
        default="both", validator=attrs.validators.in_(("both", "left", "right", "neither"))
    )

    def evaluate(self, source: Any) -> np.ndarray:
        v = _column_values(source, self.column)
        lo = v >= self.low if self.inclusive in ("both", "left") else v > self.low
        hi = v <= self.high if self.inclusive in ("both", "right") else v < self.high
        return np.asarray(lo & hi, dtype=bool)

    def columns(self) -> frozenset[str]:
        return frozenset({self.column})


@attrs.frozen
class And(AbstractPredicate):
    """All terms hold."""

    kind: ClassVar[str] = "predicate.and"
    terms: tuple[AbstractPredicate, ...] = attrs.field(converter=frozen_tuple)

    def evaluate(self, source: Any) -> np.ndarray:
        out = self.terms[0].evaluate(source)
        for t in self.terms[1:]:
            out = out & t.evaluate(source)
        return out

    def columns(self) -> frozenset[str]:
        return frozenset().union(*(t.columns() for t in self.terms))


@attrs.frozen
class Or(AbstractPredicate):
    """Any term holds."""

    kind: ClassVar[str] = "predicate.or"
    terms: tuple[AbstractPredicate, ...] = attrs.field(converter=frozen_tuple)

    def evaluate(self, source: Any) -> np.ndarray:
        out = self.terms[0].evaluate(source)
        for t in self.terms[1:]:
            out = out | t.evaluate(source)
        return out

    def columns(self) -> frozenset[str]:
        return frozenset().union(*(t.columns() for t in self.terms))


@attrs.frozen
class Not(AbstractPredicate):
    """The term does not hold."""

    kind: ClassVar[str] = "predicate.not"
    term: AbstractPredicate

    def evaluate(self, source: Any) -> np.ndarray:
        return ~self.term.evaluate(source)

    def columns(self) -> frozenset[str]:
        return self.term.columns()


@attrs.frozen(eq=False)
class ColumnExpr:
    """A column reference that builds predicates with comparison operators (see :func:`col`)."""

    name: str

    def __eq__(self, value: object) -> Compare:  # type: ignore[override]
        return Compare(self.name, "==", value)  # type: ignore[arg-type]

    def __ne__(self, value: object) -> Compare:  # type: ignore[override]
        return Compare(self.name, "!=", value)  # type: ignore[arg-type]

    def __lt__(self, value: Scalar) -> Compare:
        return Compare(self.name, "<", value)

    def __le__(self, value: Scalar) -> Compare:
        return Compare(self.name, "<=", value)

    def __gt__(self, value: Scalar) -> Compare:
        return Compare(self.name, ">", value)

    def __ge__(self, value: Scalar) -> Compare:
        return Compare(self.name, ">=", value)

    __hash__ = None  # type: ignore[assignment]

    def isin(self, values: Any) -> IsIn:
        """``column in values``."""
        return IsIn(self.name, tuple(values))

    def not_in(self, values: Any) -> IsIn:
        """``column not in values``."""
        return IsIn(self.name, tuple(values), negate=True)

    def between(self, low: float, high: float, inclusive: str = "both") -> Between:
        """``low <= column <= high``."""
        return Between(self.name, low, high, inclusive)


def col(name: str) -> ColumnExpr:
    """Refer to a column by key (``"temp"``), ``"domain.key"`` or full name ``"features.temp.raw"``.

    A bare key is looked up in every domain (keys are unique across domains); the raw
    representation is read unless the name says ``transformed``.

    >>> col("temp") >= 30
    Compare(column='temp', op='>=', value=30)
    """
    return ColumnExpr(name)
