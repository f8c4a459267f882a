"""RandomSplitter / ConditionSplitter values pinned: sizes, labels, strata, messages, rows.

Written against mutation testing (benchmarks/MUTATION.md): every check compares a value, not
only that something runs. Expected sizes are computed by hand (largest remainder, ties to the
split named first, at least one item per positive split); exact labels for a seed are pinned
so that a change in how the random stream is consumed shows.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import mml
from mml.data import FeatureSet, FeatureSetView
from mml.splitters import ConditionSplitter, OverlappingSplitsWarning, RandomSplitter
from mml.splitters._allocate import _exact_labels, _stratum_sizes, allocate, assign_labels
from mml.splitters._base import SplitterRecord, codes_of, read_column, view_rows
from mml.splitters._random import random_labels

NAME_RULE = "use a non-empty name without '/' ('/' is reserved for nested splits made with on=...)"


def _rng(seed: int) -> np.random.Generator:
    return mml.random.numpy_rng(mml.random.key(seed))


def _fs(n: int, g: list[int] | None = None, s: list[int] | None = None) -> FeatureSet:
    data: dict[str, object] = {"x": np.arange(n, dtype=np.float64), "y": np.zeros(n)}
    tags = []
    if g is not None:
        data["g"] = np.asarray(g)
        tags.append("g")
    if s is not None:
        data["s"] = np.asarray(s)
        tags.append("s")
    return FeatureSet.from_dict(data, features=["x", "y"], tags=tags, label="sv")


def _lists(parts: dict[str, np.ndarray]) -> dict[str, list[int]]:
    return {k: v.tolist() for k, v in parts.items()}


# -- allocate ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "ratios", "sizes"),
    [
        (12, [0.7, 0.15, 0.15], [8, 2, 2]),  # 8.4, 1.8, 1.8: the two .8 remainders win
        (3, [0.7, 0.15, 0.15], [1, 1, 1]),  # [2, 1, 0] then split 2 takes one from split 0
        (2, [0.25, 0.25, 0.5], [1, 0, 1]),  # tie .5/.5 goes to the first; 2 < 3 positive: no fix
        (5, [0.3, 0.69, 0.01], [1, 3, 1]),  # [2, 3, 0]: donor is split 0 (surplus .5 > -.45)
        (7, [0.5, 0.49, 0.01], [3, 3, 1]),  # [4, 3, 0]: the donor loses exactly one
        (5, [0.5, 0.5, 0.0], [3, 2, 0]),
        (16, [1 / 32] * 32, [1] * 16 + [0] * 16),  # 16 < 32 positive: no at-least-one fix
    ],
)
def test_allocate_sizes_by_largest_remainder(n: int, ratios: list[float], sizes: list[int]) -> None:
    out = allocate(n, np.array(ratios))
    assert out.tolist() == sizes
    assert out.dtype == np.int64


# -- labels: dtype, exact values for a seed -------------------------------------------------


def test_label_dtype_is_uint8_below_256_splits_else_int32() -> None:
    for k, dtype in ((3, np.uint8), (20, np.uint8), (255, np.uint8), (256, np.int32)):
        ratios = np.full(k, 1 / k)
        assert assign_labels(2 * k, ratios, _rng(0)).dtype == dtype
        strata = np.arange(2 * k) % 2
        assert assign_labels(2 * k, ratios, _rng(0), strata=strata).dtype == dtype
    labels = assign_labels(512, np.full(256, 1 / 256), _rng(0))
    assert np.bincount(labels).tolist() == [2] * 256


def test_assign_labels_exact_values_for_a_seed() -> None:
    assert assign_labels(7, np.array([0.5, 0.3, 0.2]), _rng(0)).tolist() == [0, 0, 0, 2, 1, 1, 0]
    strata = np.array([0, 1, 0, 1, 0, 1, 1])
    assert assign_labels(7, np.array([0.5, 0.5]), _rng(0), strata=strata).tolist() == [0, 1, 1, 0, 1, 0, 1]
    labels = _exact_labels(np.array([3, 3, 1]), np.array([0.5, 0.3, 0.2]), _rng(1), np.uint8)
    assert labels.tolist() == [0, 1, 0, 1, 0, 2, 1]
    assert labels.dtype == np.uint8


def test_assign_labels_with_no_items() -> None:
    out = assign_labels(0, np.array([0.5, 0.5]), _rng(0), strata=np.zeros(0, dtype=np.int64))
    assert out.tolist() == []
    assert out.dtype == np.uint8


def test_more_than_65536_strata_each_split_evenly() -> None:
    # codes above 2**16 must not wrap when rows are grouped by stratum
    m = 70_000
    strata = np.concatenate([np.arange(m), np.arange(m)])
    labels = assign_labels(2 * m, np.array([0.5, 0.5]), _rng(3), strata=strata)
    assert (labels[:m].astype(np.int64) + labels[m:]).tolist() == [1] * m


# -- stratum sizes -------------------------------------------------------------------------


def test_stratum_sizes_floors_plus_weighted_seats() -> None:
    sizes = _stratum_sizes(np.array([6, 4, 3]), np.array([0.5, 0.5]), _rng(0))
    assert sizes.tolist() == [[3, 3], [2, 2], [1, 2]]
    sizes = _stratum_sizes(np.array([5, 5, 1]), np.array([0.7, 0.2, 0.1]), _rng(1))
    assert sizes.tolist() == [[3, 1, 1], [4, 1, 0], [0, 1, 0]]
    # a zero ratio never gets a seat, nor an at-least-one item
    sizes = _stratum_sizes(np.array([1, 1]), np.array([0.5, 0.0, 0.5]), _rng(1))
    assert sizes.tolist() == [[0, 0, 1], [1, 0, 0]]
    sizes = _stratum_sizes(np.array([2, 2]), np.array([0.5, 0.0, 0.5]), _rng(1))
    assert sizes.tolist() == [[1, 0, 1], [1, 0, 1]]


def test_stratum_sizes_give_every_positive_split_an_item() -> None:
    sizes = _stratum_sizes(np.array([3, 1, 2]), np.array([0.6, 0.3, 0.05, 0.05]), _rng(0))
    assert sizes.tolist() == [[2, 1, 0, 0], [0, 0, 0, 1], [1, 0, 1, 0]]
    sizes = _stratum_sizes(np.array([2, 1]), np.array([0.5, 0.49, 0.01]), _rng(0))
    assert sizes.tolist() == [[1, 1, 0], [0, 0, 1]]
    sizes = _stratum_sizes(np.array([1, 1, 1]), np.array([0.9, 0.05, 0.05]), _rng(1))
    assert sizes.tolist() == [[0, 1, 0], [0, 0, 1], [1, 0, 0]]


# -- RandomSplitter rows -------------------------------------------------------------------


def test_random_splitter_rows_for_a_seed() -> None:
    s = RandomSplitter({"train": 0.7, "val": 0.15, "test": 0.15}, seed=3)
    assert _lists(s.split_indices(_fs(12).view())) == {
        "train": [0, 1, 4, 6, 7, 8, 10, 11],
        "val": [2, 5],
        "test": [3, 9],
    }
    s = RandomSplitter({"a": 0.5, "b": 0.3, "c": 0.2}, seed=5)
    assert _lists(s.split_indices(_fs(10).view())) == {"a": [2, 3, 5, 6, 8], "b": [4, 7, 9], "c": [0, 1]}


def test_group_by_splits_groups_by_the_ratios() -> None:
    # 5 groups at 0.6/0.4: 3 and 2 groups
    s = RandomSplitter({"a": 0.6, "b": 0.4}, seed=2, group_by="g")
    fs = _fs(10, g=[0, 0, 1, 1, 1, 2, 3, 3, 4, 4])
    assert _lists(s.split_indices(fs.view())) == {"a": [2, 3, 4, 5, 6, 7], "b": [0, 1, 8, 9]}
    none = FeatureSetView(fs, np.zeros(0, dtype=np.int64))
    assert _lists(s.split_indices(none)) == {"a": [], "b": []}
    labels = random_labels(s, none, np.array([0.6, 0.4]), 2, None, "g", None)
    assert labels.dtype == np.uint8
    assert labels.shape == (0,)


def test_stratify_by_splits_each_stratum() -> None:
    # strata of 6, 4, 3 at 0.5/0.5: 3+3, 2+2 and 1.5+1.5 (the extra one drawn)
    s = RandomSplitter({"a": 0.5, "b": 0.5}, seed=4, stratify_by="s")
    out = s.split_indices(_fs(13, s=[0] * 6 + [1] * 4 + [2] * 3).view())
    assert _lists(out) == {"a": [1, 2, 4, 7, 9, 11, 12], "b": [0, 3, 5, 6, 8, 10]}
    assert np.bincount(np.array([0] * 6 + [1] * 4 + [2] * 3)[out["a"]]).tolist() == [3, 2, 2]


def test_random_splitter_on_a_split_gives_absolute_rows() -> None:
    fs = _fs(12).split(RandomSplitter({"train": 0.5, "test": 0.5}, seed=0))
    out = fs.split(RandomSplitter({"fit": 0.5, "val": 0.5}, seed=1), on="train")
    rows = sorted(out["train/fit"].indices.tolist() + out["train/val"].indices.tolist())
    assert rows == fs["train"].indices.tolist()
    assert len(out["train/fit"]) == 3
    nested, top = out.records[-1], fs.records[-1]
    assert isinstance(nested, SplitterRecord)
    assert isinstance(top, SplitterRecord)
    assert nested.describe() == "split RandomSplitter -> train/fit, train/val (split 'train')"
    assert top.describe() == "split RandomSplitter -> train, test (all rows)"
    assert (
        SplitterRecord(RandomSplitter(), "a", ("a/x",)).describe()
        == "split RandomSplitter -> a/x (split 'a')"
    )


# -- RandomSplitter messages ---------------------------------------------------------------


def test_random_splitter_messages_in_full() -> None:
    with pytest.raises(
        mml.SplitError, match=re.escape(f"RandomSplitter: split name 'a/b' is not allowed; {NAME_RULE}")
    ):
        RandomSplitter({"a/b": 1.0})
    with pytest.raises(
        mml.SplitError, match=re.escape("RandomSplitter: ratio of split 'a' must be in [0, 1], got 1.5")
    ):
        RandomSplitter({"a": 1.5, "b": -0.5})
    assert RandomSplitter({"a": 1.0, "b": 0.0}).ratios == {"a": 1.0, "b": 0.0}
    with pytest.raises(
        mml.SplitError,
        match=re.escape(
            "RandomSplitter: ratios {'a': 0.5, 'b': 0.4} sum to 0.9, not 1; "
            "give fractions that add up to 1 (e.g. {'train': 0.7, 'val': 0.15, 'test': 0.15})"
        ),
    ):
        RandomSplitter({"a": 0.5, "b": 0.4})
    for field in ("group_by", "stratify_by"):
        for bad in ("", 3):
            with pytest.raises(
                mml.SplitError,
                match=re.escape(f"RandomSplitter: {field} names a column (a non-empty str), got {bad!r}"),
            ):
                RandomSplitter(**{field: bad})  # type: ignore[arg-type]
    with pytest.raises(
        mml.SplitError,
        match=re.escape("RandomSplitter: group_by='g' and stratify_by='s' cannot be combined; choose one"),
    ):
        RandomSplitter(group_by="g", stratify_by="s")


def test_column_errors_name_the_splitter_and_the_keys() -> None:
    fs = _fs(4, g=[0, 0, 1, 1])
    for field in ("group_by", "stratify_by"):
        with pytest.raises(
            mml.SchemaError,
            match=re.escape(
                f"RandomSplitter: {field} column 'nope' is not in FeatureSet 'sv'; "
                "available keys: features: x, y; targets: -; tags: g"
            ),
        ):
            RandomSplitter(**{field: "nope"}).split_indices(fs.view())  # type: ignore[arg-type]
    with pytest.raises(mml.SplitError, match=re.escape("Owner: group_by names a column (a str), got 3")):
        read_column(fs.view(), 3, "Owner", "group_by")  # type: ignore[arg-type]
    wide = FeatureSet.from_dict({"x": np.zeros(3), "c": np.zeros((3, 2))}, features="x", tags="c", label="w")
    with pytest.raises(
        mml.SplitError,
        match=re.escape(
            "Owner: group_by column 'c' holds arrays of shape (2,) per sample; "
            "use a scalar column (a tag such as a group id or a class)"
        ),
    ):
        read_column(wide.view(), "c", "Owner", "group_by")


# -- codes_of / view_rows ------------------------------------------------------------------


def test_codes_of_sorted_distinct_values() -> None:
    def codes(values: object) -> tuple[list[int], int]:
        c, m = codes_of(np.asarray(values), "O", "group_by", "g")
        return c.tolist(), m

    assert codes([5, 3, 5, 9]) == ([1, 0, 1, 2], 3)
    assert codes([0, 10**6]) == ([0, 1], 2)
    assert codes([-5, -3, -5]) == ([0, 1, 0], 2)
    assert codes([10**6 + 1, 10**6, 10**6 + 1]) == ([1, 0, 1], 2)
    assert codes(np.array([3, 1], dtype=np.uint8)) == ([1, 0], 2)
    assert codes([True, False, True]) == ([1, 0, 1], 2)
    assert codes(["b", "a", "b"]) == ([1, 0, 1], 2)
    assert codes(np.zeros(0, dtype=np.int64)) == ([], 0)
    with pytest.raises(
        mml.SplitError,
        match=re.escape(
            "O: the values of group_by column 'g' cannot be compared "
            "('<' not supported between instances of 'str' and 'int')"
        ),
    ):
        codes_of(np.array([1, "a"], dtype=object), "O", "group_by", "g")


def test_view_rows_is_none_only_for_all_rows_in_order() -> None:
    fs = _fs(5)
    assert view_rows(fs.view()) is None
    assert view_rows(FeatureSetView(_fs(1), np.array([0]))) is None
    assert view_rows(FeatureSetView(_fs(2), np.array([0, 1]))) is None
    for n, idx in ((2, [1, 0]), (3, [0, 0, 1]), (3, [0, 2, 1]), (5, [0, 1, 2])):
        rows = view_rows(FeatureSetView(_fs(n), np.array(idx)))
        assert rows is not None
        assert rows.tolist() == idx


# -- ConditionSplitter ---------------------------------------------------------------------


def test_condition_splitter_messages_in_full() -> None:
    bad: object
    for bad in ({}, None):
        with pytest.raises(
            mml.SplitError,
            match=re.escape(
                "ConditionSplitter takes a non-empty mapping of split name to predicate, e.g. "
                '{"cold": mml.col("temp") < 10, "hot": mml.col("temp") >= 30}; '
                f"got {bad!r}"
            ),
        ):
            ConditionSplitter(bad)  # type: ignore[arg-type]
    with pytest.raises(
        mml.SplitError, match=re.escape(f"ConditionSplitter: split name ' a' is not allowed; {NAME_RULE}")
    ):
        ConditionSplitter({" a": mml.col("x") > 0})
    with pytest.raises(
        mml.SplitError,
        match=re.escape(
            "ConditionSplitter: the condition of split 'a' must be a predicate built with "
            "mml.col(...) (e.g. mml.col('temp') < 10), got int 3"
        ),
    ):
        ConditionSplitter({"a": 3})  # type: ignore[dict-item]
    assert ConditionSplitter({"b": mml.col("x") > 0, "a": mml.col("x") < 0}).split_names() == ("b", "a")


def test_condition_splitter_missing_column_lists_the_keys() -> None:
    s = ConditionSplitter({"a": mml.col("nope") > 0})
    with pytest.raises(mml.SchemaError) as info:
        s.split_indices(_fs(3, g=[0, 1, 2]).view())
    msg = str(info.value)
    assert msg.startswith(
        "ConditionSplitter: the condition of split 'a' reads column(s) ['nope'] of which some are not in FeatureSet 'sv' ("
    )
    assert msg.endswith("); available keys: features: x, y; targets: -; tags: g")


def test_condition_splitter_rows_of_a_split_view_are_absolute() -> None:
    fs = _fs(6).split(ConditionSplitter({"lo": mml.col("x") < 3, "hi": mml.col("x") >= 3}))
    out = fs.split(ConditionSplitter({"even": mml.col("x") != 4, "four": mml.col("x") == 4}), on="hi")
    assert out["hi/even"].indices.tolist() == [3, 5]
    assert out["hi/four"].indices.tolist() == [4]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = ConditionSplitter({"all": mml.col("x") >= 0}, overlap="error").split_indices(_fs(3).view())
    assert _lists(one) == {"all": [0, 1, 2]}


def test_overlap_report_names_each_overlapping_pair() -> None:
    s = ConditionSplitter(
        {"a": mml.col("x") < 4, "b": mml.col("x") >= 2, "c": mml.col("x") >= 5, "d": mml.col("x") > 100},
        overlap="error",
    )
    expected = (
        "ConditionSplitter on FeatureSet 'sv': splits overlap ('a' & 'b': 2 rows; 'b' & 'c': 1 rows); "
        "make the conditions exclusive (e.g. combine with ~cond), or pass overlap='allow'"
    )
    with pytest.raises(mml.SplitError, match=re.escape(expected)):
        s.split_indices(_fs(6).view())
    warn = ConditionSplitter(dict(s.conditions))
    with pytest.warns(OverlappingSplitsWarning, match=re.escape(expected)):
        out = _fs(6).split(warn)
    assert out["b"].indices.tolist() == [2, 3, 4, 5]
    allow = ConditionSplitter(dict(s.conditions), overlap="allow")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert allow.split_indices(_fs(6).view())["c"].tolist() == [5]


# -- fs.split messages ---------------------------------------------------------------------


def test_split_messages_in_full() -> None:
    fs = _fs(4)
    with pytest.raises(
        mml.SplitError, match=re.escape("RandomSplitter.split_featureset takes a FeatureSet, got int")
    ):
        RandomSplitter().split_featureset(3)  # type: ignore[arg-type]
    with pytest.raises(
        mml.SplitError,
        match=re.escape(
            "FeatureSet.split takes a splitter (RandomSplitter, ConditionSplitter, KFoldSplitter, or a value "
            "with a split_featureset(fs, *, on, key) method), got str 'abc'"
        ),
    ):
        fs.split("abc")  # type: ignore[arg-type]
    with pytest.raises(mml.SplitError, match=re.escape("on= names an existing split (a str), got 3")):
        fs.split(RandomSplitter(), on=3)  # type: ignore[arg-type]
    two = fs.split(RandomSplitter({"a": 0.5, "b": 0.5}))
    with pytest.raises(
        mml.SplitError,
        match=re.escape(
            "FeatureSet 'sv' already has split(s) ['a', 'b']; split another split with on=..., "
            "or drop them first with fs.without_splits('a', 'b')"
        ),
    ):
        two.split(RandomSplitter({"a": 0.5, "b": 0.5}))


def test_stratified_labels_of_2000_rows_for_a_seed() -> None:
    # rows are grouped by stratum with a stable sort: the random order within a stratum is kept
    strata = np.arange(2000) * 7 % 3  # 667, 667, 666 rows
    labels = assign_labels(2000, np.array([0.5, 0.3, 0.2]), _rng(5), strata=strata)
    assert labels[:24].tolist() == [1, 2, 1, 0, 0, 0, 2, 2, 0, 0, 0, 1, 1, 2, 2, 1, 0, 1, 2, 1, 1, 0, 2, 0]
    assert int((labels.astype(np.int64) * np.arange(2000)).sum()) == 1397963
    # 667 * r = 333.5, 200.1, 133.4 and 666 * r = 333, 199.8, 133.2: floors plus one drawn seat
    assert [np.bincount(labels[strata == c]).tolist() for c in range(3)] == [
        [333, 200, 134],
        [333, 200, 134],
        [333, 200, 133],
    ]


@pytest.mark.parametrize(
    ("n", "ratios", "want"),
    [
        # ratios 5e-7 under 1: 5 items over for 3 splits (used to lose 2 rows)
        (10**7, [0.7, 0.15, 0.1499995], [7000002, 1500002, 1499996]),
        # 9e-7 under 1 with a zero-ratio split: the zero split gets nothing (used to get one)
        (10**7, [0.5, 0.4999991, 0.0], [5000005, 4999995, 0]),
        # 9e-7 over 1: the excess is taken back (used to add to all but one split)
        (10**7, [0.5, 0.5000009], [4999996, 5000004]),
    ],
)
def test_allocate_sums_to_n_within_the_ratio_tolerance(n, ratios, want):
    sizes = allocate(n, np.array(ratios))
    assert sizes.tolist() == want and int(sizes.sum()) == n
