"""Bad input fails clearly; splitting a big table is fast and allocates only index arrays."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import mml
from mml.data import FeatureSet
from mml.splitters import (
    ConditionSplitter,
    KFoldSplitter,
    OverlappingSplitsWarning,
    RandomSplitter,
)


@pytest.fixture
def fs() -> FeatureSet:
    n = 40
    return FeatureSet.from_dict(
        {
            "x": np.arange(n, dtype=np.float64),
            "curve": np.zeros((n, 3), np.float32),
            "temp": np.linspace(0, 40, n),
            "cell": np.arange(n) // 4,
        },
        features=["x", "curve"],
        tags=["temp", "cell"],
        label="errs",
    )


@pytest.mark.parametrize(
    ("ratios", "match"),
    [
        ({"train": 0.5, "test": 0.4}, "sum to 0.9"),
        ({"train": 1.2, "test": -0.2}, "must be in \\[0, 1\\]"),
        ({"train": float("nan"), "test": 1.0}, "must be in \\[0, 1\\]"),
        ({"train": "0.5", "test": 0.5}, "must be a number"),
        ({}, "non-empty mapping"),
        ({"a/b": 1.0}, "without '/'"),
        ({"": 1.0}, "split name"),
    ],
)
def test_bad_ratios_raise_split_error(ratios: dict[str, object], match: str) -> None:
    with pytest.raises(mml.SplitError, match=match):
        RandomSplitter(ratios)  # type: ignore[arg-type]


def test_group_and_stratify_are_exclusive() -> None:
    with pytest.raises(mml.SplitError, match="cannot be combined"):
        RandomSplitter(group_by="cell", stratify_by="temp")
    with pytest.raises(mml.SplitError, match="cannot be combined"):
        KFoldSplitter(3, group_by="cell", stratify_by="temp")


def test_bad_seed_and_folds() -> None:
    with pytest.raises(mml.ConfigError):
        RandomSplitter(seed=-1)
    with pytest.raises(mml.SplitError, match="n_folds"):
        KFoldSplitter(1)


def test_unknown_group_column_names_it_and_lists_keys(fs: FeatureSet) -> None:
    with pytest.raises(mml.SchemaError, match=r"group_by column 'cel'.*available keys: .*cell"):
        fs.split(RandomSplitter(group_by="cel"))
    with pytest.raises(mml.SchemaError, match=r"stratify_by column 'nope'.*temp"):
        fs.split(KFoldSplitter(2, stratify_by="nope"))


def test_tensor_column_cannot_group(fs: FeatureSet) -> None:
    with pytest.raises(mml.SplitError, match=r"'curve' holds arrays of shape \(3,\)"):
        fs.split(RandomSplitter(group_by="curve"))


def test_unknown_predicate_column_names_it(fs: FeatureSet) -> None:
    with pytest.raises(mml.SchemaError, match=r"split 'cold'.*\['tmp'\].*available keys"):
        fs.split(ConditionSplitter({"cold": mml.col("tmp") < 10}))


def test_condition_needs_predicates() -> None:
    with pytest.raises(mml.SplitError, match="must be a predicate"):
        ConditionSplitter({"cold": "temp < 10"})  # type: ignore[dict-item]
    with pytest.raises(mml.SplitError, match="overlap must be one of"):
        ConditionSplitter({"a": mml.col("x") > 0}, overlap="maybe")


def test_overlapping_conditions_warn_error_or_allow(fs: FeatureSet) -> None:
    conds = {"low": mml.col("temp") < 20, "mid": mml.col("temp").between(10, 30)}
    with pytest.warns(OverlappingSplitsWarning, match=r"'low' & 'mid': \d+ rows"):
        out = fs.split(ConditionSplitter(conds))
    assert np.intersect1d(out.split_indices["low"], out.split_indices["mid"]).size > 0
    with pytest.raises(mml.SplitError, match="overlap"):
        fs.split(ConditionSplitter(conds, overlap="error"))
    fs.split(ConditionSplitter(conds, overlap="allow"))  # silent: warnings are errors here


def test_split_name_clash_and_unknown_on(fs: FeatureSet) -> None:
    once = fs.split(RandomSplitter(seed=0))
    with pytest.raises(mml.SplitError, match=r"already has split.*without_splits"):
        once.split(RandomSplitter(seed=1))
    again = once.without_splits().split(RandomSplitter(seed=1))
    assert sorted(again.split_indices) == ["test", "train", "val"]
    with pytest.raises(mml.SplitError, match="no split 'nope'"):
        once.split(RandomSplitter(), on="nope")


def test_not_a_splitter(fs: FeatureSet) -> None:
    with pytest.raises(mml.SplitError, match="takes a splitter"):
        fs.split({"train": 0.5})  # type: ignore[arg-type]
    with pytest.raises(mml.SplitError, match=r"mml\.random\.Key"):
        fs.split(RandomSplitter(), key=3)  # type: ignore[arg-type]


def test_kfold_needs_enough_rows_or_groups(fs: FeatureSet) -> None:
    with pytest.raises(mml.SplitError, match=r"11 folds need at least 11 groups.*gives 10"):
        fs.split(KFoldSplitter(11, group_by="cell"))
    small = FeatureSet.from_dict({"x": [1.0, 2.0]}, features="x", label="two")
    with pytest.raises(mml.SplitError, match="at least 3 rows"):
        small.split(KFoldSplitter(3))


def test_key_overrides_seed(fs: FeatureSet) -> None:
    a = fs.split(RandomSplitter(seed=0), key=mml.random.key(5))
    b = fs.split(RandomSplitter(seed=5))
    assert all(np.array_equal(a.split_indices[s], b.split_indices[s]) for s in ("train", "val", "test"))
    assert a.records[-1].key == mml.random.key(5)


def test_split_of_million_rows_copies_no_column_data() -> None:
    # (its speed is measured in benchmarks/bench_featureset.py: a wall-time bound here failed on a
    # loaded machine, which says nothing about the code)
    n = 1_000_000
    # 64 float32 per row: a 256 MB feature column, 16 MB of UUIDs
    big = FeatureSet.from_dict(
        {"x": np.broadcast_to(np.float32(1.0), (n, 64))}, features="x", label="big", key=mml.random.key(0)
    )
    table_bytes = big.table.nbytes
    splitter = RandomSplitter({"train": 0.7, "val": 0.15, "test": 0.15}, seed=0)
    big.split(splitter)  # warm up

    tracemalloc.start()
    try:
        out = big.split(splitter)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    index_bytes = sum(v.nbytes for v in out.split_indices.values())
    assert index_bytes == 8 * n
    assert out.table is big.table
    # what stays allocated is the index arrays; transient work is a few index-sized arrays
    assert current - index_bytes < 0.01 * table_bytes
    assert peak < 0.1 * table_bytes
