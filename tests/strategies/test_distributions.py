from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

import mml
from mml.strategies import Choice, IntUniform, LogUniform, Uniform, grid_trials, random_trials

seeds = st.integers(0, 2**32 - 1)
finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=50)
@given(seeds, finite, st.floats(0, 1e6), st.integers(-100, 100), st.integers(0, 50))
def test_draws_are_pure_and_in_bounds(seed, low, width, ilow, iwidth):
    k = mml.random.key(seed)
    dists = [
        Uniform(low, low + width),
        LogUniform(1e-6, 1e-6 + width + 1e-3),
        IntUniform(ilow, ilow + iwidth),
        Choice(["a", (1, 2), 3.5]),
    ]
    for d in dists:
        v = d.sample(k)
        assert v == d.sample(k)  # same key, same draw
        assert mml.io.roundtrip(d) == d
    u, lu, iu, ch = (d.sample(k) for d in dists)
    assert low <= u <= low + width
    assert 1e-6 <= lu <= 1e-6 + width + 1e-3
    assert isinstance(iu, int) and ilow <= iu <= ilow + iwidth
    assert ch in ("a", (1, 2), 3.5)


def test_int_uniform_reaches_both_ends_and_log_uniform_spreads_over_decades():
    k = mml.random.key(0)
    ints = {IntUniform(1, 3).sample(mml.random.fold_in(k, i)) for i in range(200)}
    assert ints == {1, 2, 3}
    logs = [math.log10(LogUniform(1e-5, 1e-1).sample(mml.random.fold_in(k, i))) for i in range(400)]
    assert sum(v < -4 for v in logs) > 50 and sum(v > -2 for v in logs) > 50  # about 1/4 per decade


@settings(max_examples=30)
@given(st.lists(st.lists(st.integers(), min_size=1, max_size=3), min_size=1, max_size=3))
def test_grid_is_the_cartesian_product(columns):
    grid = {f"p{i}": col for i, col in enumerate(columns)}
    trials = grid_trials(grid)
    assert len(trials) == math.prod(len(c) for c in columns)
    assert trials[0] == {p: col[0] for p, col in grid.items()}
    assert trials[-1] == {p: col[-1] for p, col in grid.items()}


@settings(max_examples=25)
@given(seeds, st.integers(1, 5))
def test_random_trials_are_seeded_and_adding_a_path_keeps_the_other_draws(seed, n):
    k = mml.random.key(seed)
    space = {"lr": LogUniform(1e-4, 1e-1), "h": [8, 16, 32]}
    a = random_trials(space, n, key=k)
    assert a == random_trials(space, n, key=k) and len(a) == n
    b = random_trials({**space, "d": Uniform(0.0, 0.5)}, n, key=k)
    assert [{p: t[p] for p in space} for t in b] == list(a)
    assert all(t["h"] in (8, 16, 32) for t in a)


def test_bad_distributions_and_spaces_raise_config_errors():
    with pytest.raises(mml.ConfigError, match="low <= high"):
        Uniform(1.0, 0.0)
    with pytest.raises(mml.ConfigError, match="needs low > 0"):
        LogUniform(0.0, 1.0)
    with pytest.raises(mml.ConfigError, match="bounds are ints"):
        IntUniform(0.5, 2)
    with pytest.raises(mml.ConfigError, match="at least one option"):
        Choice([])
    with pytest.raises(mml.ConfigError, match="no finite grid; use Choice"):
        grid_trials({"lr": Uniform(0.0, 1.0)})
    with pytest.raises(mml.ConfigError, match="wrap a single value in a list"):
        grid_trials({"plan.label": "abc"})
    with pytest.raises(mml.ConfigError, match="n_trials must be an int >= 1"):
        random_trials({"a": [1]}, 0, key=mml.random.key(0))
    with pytest.raises(mml.ConfigError, match="non-empty mapping"):
        grid_trials({})


def test_grid_accepts_choice_and_int_uniform():
    assert grid_trials({"a": Choice([1, 2]), "b": IntUniform(0, 1)}) == (
        {"a": 1, "b": 0},
        {"a": 1, "b": 1},
        {"a": 2, "b": 0},
        {"a": 2, "b": 1},
    )
