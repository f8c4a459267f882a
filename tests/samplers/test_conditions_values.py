"""SimilarityCondition by value: distances, intervals, inclusive bounds, scores, weights and every
message in full (issue 17: mutation testing of ``mml/samplers/_conditions.py``)."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.samplers import SimilarityCondition, dissimilar, similar

SQUARED = "tests.samplers.metrics:squared"
HERE = "tests.samplers.test_conditions_values"


def raising(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A metric that fails."""
    raise ZeroDivisionError("no distance here")


def negative(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a - b - 1.0


def not_finite(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.full(np.broadcast_shapes(np.shape(a), np.shape(b)), np.nan)


def zero(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.zeros(np.broadcast_shapes(np.shape(a), np.shape(b)))


def as_list(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Distances as a Python list: the condition turns them into a float64 array."""
    return [abs(float(x) - float(y)) for x, y in zip(np.ravel(a), np.ravel(b))]


A = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
B = np.array([0.7, 0.75, 1.0, 1.25, 1.3, 0.75 - 2**-40])


def test_defaults() -> None:
    c = SimilarityCondition()
    assert (c.relation, c.tolerance, c.metric, c.weight_mode, c.min_weight, c.max_weight, c.fn) == (
        "similar",
        0.0,
        "absolute",
        "binary",
        0.0,
        1.0,
        None,
    )
    assert c.similar and c.has_interval
    assert not dissimilar().similar and dissimilar().relation == "dissimilar"
    assert not similar(0.1, metric=SQUARED).has_interval


def test_similar_and_dissimilar_pass_every_option() -> None:
    for make, relation in ((similar, "similar"), (dissimilar, "dissimilar")):
        c = make(0.25, metric="relative", weight_mode="exponential", min_weight=0.5, max_weight=2.0)
        assert c == SimilarityCondition(relation, 0.25, "relative", "exponential", 0.5, 2.0, None)
        f = make(0.5, metric=SQUARED, weight_mode="linear", min_weight=0.25, max_weight=0.75)
        assert f == SimilarityCondition(relation, 0.5, "callable", "linear", 0.25, 0.75, SQUARED)
        assert make() == SimilarityCondition(relation)


def test_absolute_distance_interval_and_inclusive_bounds() -> None:
    c = similar(0.25)
    np.testing.assert_array_equal(c.distance(A, B), np.abs(A - B))
    lo, hi = c.interval(np.array([1.0, -2.0]))
    assert lo.tolist() == [0.75, -2.25] and hi.tolist() == [1.25, -1.75]
    assert c.holds(A, B).tolist() == [False, True, True, True, False, False]
    assert dissimilar(0.25).holds(A, B).tolist() == [True, False, False, False, True, True]


def test_relative_distance_interval_and_bounds() -> None:
    c = similar(0.25, metric="relative")
    a = np.array([2.0, -4.0, 0.0, 0.0, 4.0])
    b = np.array([3.0, -2.0, 0.0, 1.0, 5.0])
    d = c.distance(a, b)  # |a - b| / |a|; 0 where a == b (also at a == 0); inf for a == 0 != b
    assert d.tolist() == [0.5, 0.5, 0.0, np.inf, 0.25]
    lo, hi = c.interval(np.array([4.0, -4.0]))
    assert lo.tolist() == [3.0, -5.0] and hi.tolist() == [5.0, -3.0]
    assert c.holds(a, b).tolist() == [False, False, True, False, True]
    assert c.holds(np.array([4.0, 4.0]), np.array([3.0, 2.999])).tolist() == [True, False]


def test_equal_metric() -> None:
    c = similar(metric="equal")
    a, b = np.array([1.0, 1.0, 2.0]), np.array([1.0, 3.0, 2.0])
    d = c.distance(a, b)
    assert d.dtype == np.float64 and d.tolist() == [0.0, 1.0, 0.0]
    lo, hi = c.interval(np.array([5.0]))
    assert lo.tolist() == [5.0] and hi.tolist() == [5.0]
    assert c.holds(a, b).tolist() == [True, False, True]
    assert dissimilar(metric="equal").holds(a, b).tolist() == [False, True, False]


def test_callable_metric_holds_inclusively() -> None:
    c = similar(0.0625, metric=SQUARED)
    a, b = np.array([1.0, 1.0, 1.0]), np.array([1.25, 1.25 + 2**-30, 1.0])
    assert c.distance(a, b).tolist() == [0.0625, (0.25 + 2**-30) ** 2, 0.0]
    assert c.holds(a, b).tolist() == [True, False, True]
    assert dissimilar(0.0625, metric=SQUARED).holds(a, b).tolist() == [False, True, False]
    # the distances come back as float64 whatever the function returns; zero is a distance
    z = similar(0.0, metric=f"{HERE}:zero")
    assert z.holds(a, b).tolist() == [True, True, True]
    lst = similar(0.25, metric=f"{HERE}:as_list").distance(np.array([1.0, 2.0]), np.array([1.5, 2.0]))
    assert isinstance(lst, np.ndarray) and lst.dtype == np.float64 and lst.tolist() == [0.5, 0.0]


def test_scores() -> None:
    a = np.ones(4)
    b = np.array([1.0, 1.125, 1.25, 1.5])
    assert similar(0.25).score(a, b).tolist() == [1.0, 0.5, 0.0, 0.0]
    a5, b5 = np.ones(5), np.array([1.0, 1.125, 1.25, 1.5, 2.0])
    assert dissimilar(0.25).score(a5, b5).tolist() == [0.0, 0.0, 0.0, 0.5, 0.75]
    # tolerance 0: every kept candidate scores 1, whatever the distance
    s0 = similar(0.0).score(np.array([1.0, 2.0]), np.array([1.0, 5.0]))
    assert s0.dtype == np.float64 and s0.tolist() == [1.0, 1.0]
    assert dissimilar(0.0).score(np.array([1.0]), np.array([3.0])).tolist() == [1.0]
    # relative at a == 0: distance inf scores 0 when similar, 1 when dissimilar
    a0, b0 = np.array([0.0, 0.0]), np.array([0.0, 1.0])
    assert similar(0.5, metric="relative").score(a0, b0).tolist() == [1.0, 0.0]
    assert dissimilar(0.5, metric="relative").score(a0, b0).tolist() == [0.0, 1.0]


def test_weights_of_scores() -> None:
    s = np.array([0.0, 0.5, 1.0])
    kw = {"min_weight": 0.5, "max_weight": 2.0}
    b = similar(0.1, **kw).weight_of_score(s)
    assert b.dtype == np.float64 and b.tolist() == [2.0, 2.0, 2.0]
    assert similar(0.1, weight_mode="linear", **kw).weight_of_score(s).tolist() == [0.5, 1.25, 2.0]
    assert similar(0.1, weight_mode="exponential", **kw).weight_of_score(s).tolist() == [0.5, 1.0, 2.0]
    # weight = weight_of_score(score)
    c = similar(0.25, weight_mode="linear", **kw)
    w = c.weight(np.ones(4), np.array([1.0, 1.125, 1.25, 1.5]))
    assert w.tolist() == [2.0, 1.25, 0.5, 0.5]
    ints = similar(0.1, max_weight=3.0).weight_of_score(np.array([0, 1]))
    assert ints.dtype == np.float64 and ints.tolist() == [3.0, 3.0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"relation": "near"}, "SimilarityCondition.relation must be one of similar, dissimilar, got 'near'"),
        ({"tolerance": -1.0}, "SimilarityCondition.tolerance must be a finite number >= 0, got -1.0"),
        ({"tolerance": float("nan")}, "SimilarityCondition.tolerance must be a finite number >= 0, got nan"),
        ({"tolerance": float("inf")}, "SimilarityCondition.tolerance must be a finite number >= 0, got inf"),
        ({"min_weight": -0.5}, "SimilarityCondition.min_weight must be a finite number >= 0, got -0.5"),
        ({"max_weight": -1.0}, "SimilarityCondition.max_weight must be a finite number >= 0, got -1.0"),
        (
            {"metric": "cosine"},
            "SimilarityCondition.metric must be one of absolute, relative, equal, callable, got 'cosine'",
        ),
        (
            {"weight_mode": "exp"},
            "SimilarityCondition.weight_mode must be one of binary, linear, exponential, got 'exp'",
        ),
        (
            {"weight_mode": "exponential"},
            "weight_mode='exponential' interpolates geometrically from min_weight to max_weight; "
            "min_weight must be > 0, got 0.0 (e.g. min_weight=0.01)",
        ),
        ({"min_weight": 2.0}, "SimilarityCondition min_weight 2.0 is above max_weight 1.0; swap them"),
        (
            {"metric": "equal", "tolerance": 0.1},
            "metric='equal' takes no tolerance, got 0.1; use metric='absolute' for a tolerance",
        ),
        (
            {"metric": "callable"},
            "a distance function is given as metric='callable' with fn='package.module:name' (or "
            "similar(tol, metric='package.module:name')); got metric='callable', fn=None",
        ),
        (
            {"fn": SQUARED},
            "a distance function is given as metric='callable' with fn='package.module:name' (or "
            "similar(tol, metric='package.module:name')); got metric='absolute', "
            "fn='tests.samplers.metrics:squared'",
        ),
        (
            {"metric": "callable", "fn": "squared"},
            "SimilarityCondition.fn names a distance function by import path 'package.module:name' "
            "(a function object cannot be saved), got 'squared'",
        ),
        (
            {"metric": "callable", "fn": 3},
            "SimilarityCondition.fn names a distance function by import path 'package.module:name' "
            "(a function object cannot be saved), got 3",
        ),
        (
            {"metric": "callable", "fn": "tests.samplers.metrics:NOT_A_FUNCTION"},
            "similarity metric 'tests.samplers.metrics:NOT_A_FUNCTION' is not a function; "
            "name a function fn(a, b) -> distances",
        ),
        (
            {"metric": "callable", "fn": "builtins:int"},
            "similarity metric 'builtins:int' is not a function; name a function fn(a, b) -> distances",
        ),
    ],
)
def test_messages_in_full(kwargs: dict, message: str) -> None:
    with pytest.raises(mml.SamplerError) as info:
        SimilarityCondition(**kwargs)
    assert str(info.value) == message


def test_bounds_of_the_checks_are_inclusive() -> None:
    assert SimilarityCondition(tolerance=0.0).tolerance == 0.0
    assert SimilarityCondition(min_weight=1.0, max_weight=1.0).min_weight == 1.0
    e = SimilarityCondition(weight_mode="exponential", min_weight=1e-300)
    assert e.min_weight == 1e-300
    assert SimilarityCondition(metric="equal", tolerance=0.0).metric == "equal"
    assert (
        SimilarityCondition(tolerance=3).tolerance == 3.0
        and type(SimilarityCondition(tolerance=3).tolerance) is float
    )


def test_a_long_fn_is_cut_to_200_characters() -> None:
    long = "x" * 300
    with pytest.raises(mml.SamplerError) as info:
        SimilarityCondition(metric="callable", fn=long)
    assert str(info.value).endswith("got '" + "x" * 199)


def test_errors_of_the_distance_function_are_named() -> None:
    a, b = np.array([1.0, 2.0]), np.array([1.0, 3.0])
    with pytest.raises(mml.SamplerError) as info:
        similar(0.1, metric=f"{HERE}:raising").holds(a, b)
    assert str(info.value) == (
        f"similarity metric '{HERE}:raising' raised ZeroDivisionError: no distance here"
    )
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    for name in ("negative", "not_finite"):
        with pytest.raises(mml.SamplerError) as info:
            similar(0.1, metric=f"{HERE}:{name}").distance(a, b)
        assert (
            str(info.value) == f"similarity metric '{HERE}:{name}' returned negative or non-finite distances"
        )
    with pytest.raises(mml.SamplerError) as info:
        similar(0.1, metric="tests.samplers.metrics:first_only").distance(a[:, None], b[None, :])
    assert str(info.value) == (
        "similarity metric 'tests.samplers.metrics:first_only' returned shape (1,) for inputs broadcasting "
        "to (2, 2); it must compute the distances elementwise (numpy broadcasting)"
    )


@pytest.mark.parametrize("field", ["tolerance", "min_weight", "max_weight"])
@pytest.mark.parametrize("bad", ["a", None, True, [0.1]])
def test_a_non_number_is_a_sampler_error_naming_the_field(field, bad):
    from mml.errors import SamplerError
    from mml.samplers import SimilarityCondition

    with pytest.raises(SamplerError) as err:
        SimilarityCondition(**{field: bad})
    assert str(err.value) == f"SimilarityCondition.{field} must be a finite number >= 0, got {bad!r}"
