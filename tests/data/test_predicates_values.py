"""Predicates pinned value by value (issue 17): every operator against numpy, bounds, messages.

Expected masks are numpy's own comparisons (``np.less``, ``np.isin``, ...) on the same values.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest

import mml
from mml.data import FeatureSet
from mml.data._predicates import And, Between, Compare, IsIn, Not, Or, col
from mml.errors import SchemaError

T = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
C = np.array(["a", "b", "c", "a", "b"])


def _fs() -> FeatureSet:
    return FeatureSet.from_dict(
        {"t": T, "c": C, "v": np.zeros((5, 2)), "y": np.arange(5)},
        features=["t", "v"],
        targets="y",
        tags="c",
        label="P",
    )


def _raises(exc: type[Exception], fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(exc) as err:
        fn(*args, **kwargs)
    return str(err.value)


@pytest.mark.parametrize(
    ("op", "fn"),
    [
        ("==", operator.eq),
        ("!=", operator.ne),
        ("<", operator.lt),
        ("<=", operator.le),
        (">", operator.gt),
        (">=", operator.ge),
    ],
)
def test_every_comparison_matches_numpy(op: str, fn) -> None:  # type: ignore[no-untyped-def]
    fs = _fs()
    p = Compare("t", op, 3.0)
    got = p.evaluate(fs)
    assert got.dtype == np.bool_ and got.tolist() == fn(T, 3.0).tolist()
    built = {
        "==": col("t") == 3.0,
        "!=": col("t") != 3.0,
        "<": col("t") < 3.0,
        "<=": col("t") <= 3.0,
        ">": col("t") > 3.0,
        ">=": col("t") >= 3.0,
    }[op]
    assert built == p
    assert p.columns() == frozenset({"t"})
    assert p.evaluate(fs.view().take([4, 0])).tolist() == fn(T[[4, 0]], 3.0).tolist()


def test_unknown_comparison_message() -> None:
    assert (
        _raises(SchemaError, Compare, "t", "=~", 1)
        == "unknown comparison '=~'; use one of ==, !=, <, <=, >, >="
    )


def test_a_string_comparison_is_a_bool_array() -> None:
    got = (col("c") == "a").evaluate(_fs())
    assert got.dtype == np.bool_ and got.tolist() == [True, False, False, True, False]


def test_isin_and_not_in() -> None:
    fs = _fs()
    p = col("c").isin(["a", "c"])
    assert p == IsIn("c", ("a", "c")) and p.negate is False
    assert p.evaluate(fs).tolist() == np.isin(C, ["a", "c"]).tolist()
    q = col("c").not_in(iter(["a", "c"]))
    assert q == IsIn("c", ("a", "c"), negate=True)
    assert q.evaluate(fs).tolist() == (~np.isin(C, ["a", "c"])).tolist()
    assert IsIn("t", [2.0, 5.0]).evaluate(fs).tolist() == [False, True, False, False, True]
    assert p.columns() == q.columns() == frozenset({"c"})


@pytest.mark.parametrize(
    ("inclusive", "mask"),
    [
        ("both", [False, True, True, True, False]),
        ("left", [False, True, True, False, False]),
        ("right", [False, False, True, True, False]),
        ("neither", [False, False, True, False, False]),
    ],
)
def test_between_bounds(inclusive: str, mask: list[bool]) -> None:
    p = col("t").between(2.0, 4.0, inclusive)
    assert p == Between("t", 2.0, 4.0, inclusive)
    got = p.evaluate(_fs())
    assert got.dtype == np.bool_ and got.tolist() == mask
    assert p.columns() == frozenset({"t"})


def test_between_default_is_both() -> None:
    assert col("t").between(2.0, 4.0) == Between("t", 2.0, 4.0, "both")
    assert Between("t", 2.0, 4.0).inclusive == "both"
    with pytest.raises(ValueError, match="'inclusive' must be in"):
        Between("t", 0.0, 1.0, "all")


def test_and_or_not_over_three_terms() -> None:
    fs = _fs()
    a, b, c = col("t") > 1.0, col("t") < 5.0, col("c") != "b"
    assert (a & b) == And((a, b)) and (a | b) == Or((a, b)) and ~a == Not(a)
    assert And((a, b, c)).evaluate(fs).tolist() == [False, False, True, True, False]
    assert Or((col("t") == 1.0, col("t") == 3.0, col("c") == "b")).evaluate(fs).tolist() == [
        True,
        True,
        True,
        False,
        True,
    ]
    assert (~(col("t") >= 3.0)).evaluate(fs).tolist() == [True, True, False, False, False]
    assert Not(c).columns() == frozenset({"c"})
    assert And((a, c)).columns() == Or((a, c)).columns() == frozenset({"t", "c"})
    assert And((a,)).evaluate(fs).tolist() == [False, True, True, True, True]
    assert Or((a,)).evaluate(fs).tolist() == [False, True, True, True, True]


def test_column_exprs_are_not_hashable_and_build_compares() -> None:
    e = col("t")
    assert e.name == "t"
    with pytest.raises(TypeError):
        hash(e)
    assert (e == 1) == Compare("t", "==", 1)
    assert (e != 1) == Compare("t", "!=", 1)


def test_tensor_columns_are_refused() -> None:
    assert _raises(SchemaError, (col("v") > 0).evaluate, _fs()) == (
        "predicates compare scalar columns; 'v' holds per-sample arrays of shape (2,)"
    )


def test_predicates_round_trip_and_filter() -> None:
    p = ((col("t") < 2.0) | col("c").isin(["c"])) & ~col("t").between(4.0, 5.0, "neither")
    assert mml.io.roundtrip(p) == p
    assert _fs().view().filter(p).indices.tolist() == [0, 2]
