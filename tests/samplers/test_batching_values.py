"""Batching by value: group codes, stratified batches and epoch orders worked out by hand from the
algorithm in ``stratified_batches``'s docstring (issue 17: mutation testing of
``mml/samplers/_batching.py``)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mml.samplers._batching import _codes, _drop, batch_order, batching_aux, count_units, stratified_batches


def plain(aux: dict) -> dict:
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in aux.items()}


def test_codes_follow_first_appearance() -> None:
    c = _codes(np.array([5.0, 3.0, 5.0, 1.0, 3.0]))
    assert c.dtype == np.int64 and c.tolist() == [0, 1, 0, 2, 1]
    assert _codes(np.array([2.0, 1.0, 0.0])).tolist() == [0, 1, 2]
    assert _codes(np.array([7.0])).tolist() == [0]


def test_batching_aux() -> None:
    groups = np.array([5.0, 3.0, 5.0, 1.0, 3.0])
    assert batching_aux(None, None, False) == {}
    assert batching_aux(None, None, True) == {}
    assert plain(batching_aux(groups, None, False)) == {
        "group_id": [0, 1, 0, 2, 1],
        "group_sizes": [2, 2, 1],
        "units": 3,
    }
    strata = np.array([2.0, 1.0, 2.0, 2.0])
    assert plain(batching_aux(None, strata, False)) == {"strata": [1, 0, 1, 1], "strict": False, "units": 4}
    # strict: every stratum trimmed to the smallest (1) -> 2 units
    assert plain(batching_aux(None, strata, True)) == {"strata": [1, 0, 1, 1], "strict": True, "units": 2}
    # with groups the strata are those of each group's first item (rows 0, 1, 3)
    both = plain(batching_aux(groups, np.array([1.0, 0.0, 9.0, 0.0, 1.0]), True))
    assert both == {
        "group_id": [0, 1, 0, 2, 1],
        "group_sizes": [2, 2, 1],
        "strata": [1, 0, 0],
        "strict": True,
        "units": 2,
    }
    loose = plain(batching_aux(groups, np.array([1.0, 0.0, 9.0, 0.0, 1.0]), False))
    assert loose["units"] == 3 and loose["strata"] == [1, 0, 0] and loose["strict"] is False
    a = batching_aux(groups, np.array([1.0, 0.0, 9.0, 0.0, 1.0]), False)
    assert a["strata"].dtype == np.int64 and a["group_sizes"].dtype == np.int64
    # a group id that only appears late still gets its size counted
    assert batching_aux(np.array([0.0, 1.0, 2.0, 2.0, 2.0]), None, False)["group_sizes"].tolist() == [1, 1, 3]


def test_batching_aux_of_nothing() -> None:
    assert plain(batching_aux(np.zeros(0), None, False)) == {"group_id": [], "group_sizes": [], "units": 0}
    assert plain(batching_aux(None, np.zeros(0), True)) == {"strata": [], "strict": True, "units": 0}
    assert plain(batching_aux(np.zeros(0), np.zeros(0), True)) == {
        "group_id": [],
        "group_sizes": [],
        "strata": [],
        "strict": True,
        "units": 0,
    }


def test_count_units() -> None:
    assert count_units({}, 7) == 7
    assert count_units({"units": np.int64(3)}, 7) == 3 and type(count_units({"units": np.int64(3)}, 7)) is int
    assert count_units({"units": 0}, 7) == 0


@pytest.mark.parametrize(
    "labels, batch_size, strict, order, bounds",
    [
        # docstring example: 4 + 2 in batches of 3 -> two (0, 0, 1) batches
        ([0, 0, 0, 0, 1, 1], 3, False, [0, 1, 4, 2, 3, 5], [0, 3, 6]),
        # strict: trimmed to one of each class
        ([0, 1, 1, 1, 1, 1, 2, 2], 4, True, [0, 1, 6], [0, 3]),
        # counts (3, 2, 1), batch 4: full batch floor shares (2, 1, 0), the last batch's 2 by
        # largest remainder (classes 0 and 1), class 2's extra in the full batch
        ([0, 0, 0, 1, 1, 2], 4, False, [0, 1, 3, 5, 2, 4], [0, 4, 6]),
        # counts (5, 3, 2), batch 3: last batch gets class 0 (largest remainder), extras (1, 3, 2)
        # laid out from turns (0, 1, 1): batches {0, 1, 7}, {2, 5, 8}, {3, 6, 9}, {4}
        ([0, 0, 0, 0, 0, 1, 1, 1, 2, 2], 3, False, [0, 1, 7, 2, 5, 8, 3, 6, 9, 4], [0, 3, 6, 9, 10]),
        # counts (5, 3, 2) in view order 1,1,0,0,0,1,0,2,2,0, batch 4: floors (2, 1, 0), last
        # batch (1, 1, 0), class 2's two extras in batches 0 and 1
        ([1, 1, 0, 0, 0, 1, 0, 2, 2, 0], 4, False, [0, 2, 3, 7, 1, 4, 6, 8, 5, 9], [0, 4, 8, 10]),
        # one class, batch larger than n
        ([3, 3, 3], 5, False, [0, 1, 2], [0, 3]),
        # exact multiple: no last batch
        ([0, 1, 0, 1], 2, False, [0, 1, 2, 3], [0, 2, 4]),
        # strict with a class of 2 and one of 4, batch 2
        ([1, 1, 1, 1, 0, 0], 2, True, [0, 4, 1, 5], [0, 2, 4]),
        # strict, batch 3, 2 + 2 kept: the last batch (1) goes to class 0 (tie by class), the
        # full batch takes class 1's extra
        ([0, 0, 1, 1, 1], 3, True, [0, 2, 3, 1], [0, 3, 4]),
    ],
)
def test_stratified_batches_by_hand(
    labels: list[int], batch_size: int, strict: bool, order: list[int], bounds: list[int]
) -> None:
    o, b = stratified_batches(np.array(labels), batch_size, None, strict=strict)
    assert o.tolist() == order and b.tolist() == bounds
    assert o.dtype == np.int64 and b.dtype == np.int64


def test_stratified_batches_of_nothing() -> None:
    o, b = stratified_batches(np.zeros(0), 3, None)
    assert o.tolist() == [] and b.tolist() == [0] and o.dtype == np.int64 and b.dtype == np.int64
    o, b = stratified_batches(np.zeros(0), 3, np.random.default_rng(0), strict=True)
    assert o.tolist() == [] and b.tolist() == [0]


def test_shuffled_stratified_batches_keep_the_shares() -> None:
    labels = np.array([0] * 7 + [1] * 5 + [2] * 3)
    for seed in range(20):
        o, b = stratified_batches(labels, 4, np.random.default_rng(seed))
        assert sorted(o.tolist()) == list(range(15)) and b.tolist() == [0, 4, 8, 12, 15]
        for x, y in itertools.pairwise(b):
            got = np.bincount(labels[o[x:y]], minlength=3)
            assert np.all(np.abs(got - (y - x) * np.array([7, 5, 3]) / 15) < 1 + 1e-12), (seed, got)
        so, sb = stratified_batches(labels, 3, np.random.default_rng(seed), strict=True)
        assert sb.tolist() == [0, 3, 6, 9] and sorted(np.bincount(labels[so]).tolist()) == [3, 3, 3]
        for x, y in itertools.pairwise(sb):
            assert sorted(labels[so[x:y]].tolist()) == [0, 1, 2]


def test_batch_order_plain() -> None:
    o, b = batch_order({}, 5, 2, False, None)
    assert o.tolist() == [0, 1, 2, 3, 4] and b.tolist() == [0, 2, 4, 5] and o.dtype == np.int64
    o, b = batch_order({}, 5, 2, True, None)
    assert o.tolist() == [0, 1, 2, 3, 4] and b.tolist() == [0, 2, 4]
    o, b = batch_order({}, 4, 2, True, None)
    assert b.tolist() == [0, 2, 4] and b.dtype == np.int64
    o, b = batch_order({}, 0, 3, False, None)
    assert o.tolist() == [] and b.tolist() == [0]
    o, b = batch_order({}, 6, 4, False, np.random.default_rng(0))
    assert sorted(o.tolist()) == list(range(6)) and o.tolist() != list(range(6)) and b.tolist() == [0, 4, 6]


def test_batch_order_stratified() -> None:
    aux = batching_aux(None, np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 2.0]), False)
    o, b = batch_order(aux, 10, 3, False, None)
    assert o.tolist() == [0, 1, 7, 2, 5, 8, 3, 6, 9, 4] and b.tolist() == [0, 3, 6, 9, 10]
    o, b = batch_order(aux, 10, 3, True, None)
    assert o.tolist() == [0, 1, 7, 2, 5, 8, 3, 6, 9, 4] and b.tolist() == [0, 3, 6, 9]
    strict = batching_aux(None, np.array([1.0, 1.0, 1.0, 1.0, 0.0, 0.0]), True)
    o, b = batch_order(strict, 6, 2, False, None)
    assert o.tolist() == [0, 4, 1, 5] and b.tolist() == [0, 2, 4]


def test_batch_order_grouped() -> None:
    groups = np.array([5.0, 3.0, 5.0, 1.0, 3.0])  # groups {0, 2}, {1, 4}, {3}
    aux = batching_aux(groups, None, False)
    o, b = batch_order(aux, 5, 2, False, None)
    assert o.tolist() == [0, 2, 1, 4, 3] and b.tolist() == [0, 4, 5] and b.dtype == np.int64
    o, b = batch_order(aux, 5, 2, True, None)
    assert o.tolist() == [0, 2, 1, 4, 3] and b.tolist() == [0, 4]
    o, b = batch_order(aux, 5, 1, False, None)
    assert b.tolist() == [0, 2, 4, 5]
    # group strata (1, 1, 0) (rows 0, 1, 3): batch 0 holds groups {0, 2}, batch 1 group {1}
    st = batching_aux(groups, np.array([1.0, 1.0, 7.0, 0.0, 7.0]), False)
    o, b = batch_order(st, 5, 2, False, None)
    assert o.tolist() == [0, 2, 3, 1, 4] and b.tolist() == [0, 3, 5]
    o, b = batch_order(st, 5, 2, True, None)
    assert o.tolist() == [0, 2, 3, 1, 4] and b.tolist() == [0, 3]
    # shuffled: whole groups, every row once
    for seed in range(10):
        o, b = batch_order(aux, 5, 2, False, np.random.default_rng(seed))
        assert sorted(o.tolist()) == [0, 1, 2, 3, 4]
        parts = [sorted(o[x:y].tolist()) for x, y in itertools.pairwise(b)]
        cells = [sorted({int(groups[i]) for i in p}) for p in parts]
        assert sorted(x for c in cells for x in c) == [1, 3, 5]
        assert all(sorted(np.flatnonzero(np.isin(groups, c)).tolist()) == p for c, p in zip(cells, parts))


def test_drop() -> None:
    assert _drop(np.array([0, 2, 3]), 2, True).tolist() == [0, 2]
    assert _drop(np.array([0, 2, 3]), 2, False).tolist() == [0, 2, 3]
    assert _drop(np.array([0, 2, 4]), 2, True).tolist() == [0, 2, 4]
    assert _drop(np.array([0, 1]), 2, True).tolist() == [0]
    assert _drop(np.array([0]), 2, True).tolist() == [0]


def test_batching_aux_arrays_are_read_only() -> None:
    aux = batching_aux(np.array([5.0, 3.0, 5.0]), np.array([1.0, 0.0, 1.0]), True)
    assert [k for k, v in aux.items() if isinstance(v, np.ndarray) and v.flags.writeable] == []
    assert sorted(k for k, v in aux.items() if isinstance(v, np.ndarray)) == [
        "group_id",
        "group_sizes",
        "strata",
    ]


def test_shuffled_ties_and_orders_inside_batches_are_random() -> None:
    # three classes of one unit, batches of 2: which class the last batch gets is a tie
    last = set()
    for seed in range(30):
        o, b = stratified_batches(np.array([0, 1, 2]), 2, np.random.default_rng(seed))
        assert b.tolist() == [0, 2, 3]
        last.add(int(o[2]))
    assert last == {0, 1, 2}
    o, b = stratified_batches(np.array([0, 1, 2]), 2, None)
    assert o.tolist() == [1, 2, 0]  # without rng: the first class (by sorted order) takes the last batch
    # inside a batch the units come in random order, not in view order
    labels = np.repeat([0, 1], 8)
    ascending = [
        all(np.all(np.diff(o[x:y]) > 0) for x, y in itertools.pairwise(b))
        for o, b in (stratified_batches(labels, 8, np.random.default_rng(s)) for s in range(5))
    ]
    assert not any(ascending)


def test_without_rng_each_class_keeps_view_order() -> None:
    # the last batch takes each class's last units in view order (the sort by class is stable)
    labels = np.random.default_rng(0).integers(0, 3, 500)
    o, b = stratified_batches(labels, 7, None)
    assert b[-1] - b[-2] == 500 % 7
    tail = o[b[-2] :]
    for c in np.unique(labels[tail]):
        mine = np.sort(tail[labels[tail] == c])
        np.testing.assert_array_equal(mine, np.flatnonzero(labels == c)[-len(mine) :])
