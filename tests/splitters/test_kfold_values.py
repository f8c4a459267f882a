"""KFoldSplitter values pinned: bounds, messages, absolute rows of a split view, and the key.

Written against mutation testing (benchmarks/MUTATION.md): every check compares a value, not
only that something runs.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import mml
from mml.data import FeatureSet
from mml.splitters import KFoldSplitter, kfold_indices


def _fs(n: int, groups: list[int] | None = None) -> FeatureSet:
    g = np.arange(n) if groups is None else np.asarray(groups)
    return FeatureSet.from_dict(
        {"x": np.arange(n, dtype=np.float64), "g": g}, features="x", tags="g", label="kf"
    )


@pytest.mark.parametrize("bad", [1, 0, -3, True, 2.0, "3", None])
def test_n_folds_below_two_or_not_an_int_is_refused_with_the_value(bad) -> None:
    with pytest.raises(
        mml.SplitError, match=re.escape(f"KFoldSplitter: n_folds must be an int >= 2, got {bad!r}")
    ):
        KFoldSplitter(bad)


def test_n_folds_bounds_are_inclusive() -> None:
    assert KFoldSplitter(2).n_folds == 2
    assert KFoldSplitter(np.int64(3)).split_names() == (
        "fold_0/train",
        "fold_0/val",
        "fold_1/train",
        "fold_1/val",
        "fold_2/train",
        "fold_2/val",
    )
    # exactly as many rows (or groups) as folds is enough: one per validation fold
    pairs = kfold_indices(KFoldSplitter(3, seed=1), _fs(3))
    assert sorted(v.tolist() for _, v in pairs) == [[0], [1], [2]]
    pairs = kfold_indices(KFoldSplitter(2, group_by="g"), _fs(4, [7, 7, 9, 9]))
    assert sorted(v.tolist() for _, v in pairs) == [[0, 1], [2, 3]]


def test_too_few_rows_or_groups_names_all_counts() -> None:
    with pytest.raises(
        mml.SplitError,
        match=re.escape(
            "KFoldSplitter: 3 folds need at least 3 rows, FeatureSet 'kf' gives 2; use fewer folds"
        ),
    ):
        kfold_indices(KFoldSplitter(3), _fs(2))
    with pytest.raises(
        mml.SplitError,
        match=re.escape(
            "KFoldSplitter: 3 folds need at least 3 groups in column 'g', FeatureSet 'kf' gives 2; use fewer folds"
        ),
    ):
        kfold_indices(KFoldSplitter(3, group_by="g"), _fs(6, [0, 0, 0, 1, 1, 1]))


@pytest.mark.parametrize("field", ["group_by", "stratify_by"])
def test_column_names_must_be_non_empty_strings(field: str) -> None:
    for bad in ("", 3):
        with pytest.raises(
            mml.SplitError,
            match=re.escape(f"KFoldSplitter: {field} names a column (a non-empty str), got {bad!r}"),
        ):
            KFoldSplitter(2, **{field: bad})
    assert getattr(KFoldSplitter(2, **{field: "g"}), field) == "g"


def test_group_by_and_stratify_by_together_name_both() -> None:
    with pytest.raises(
        mml.SplitError,
        match=re.escape("KFoldSplitter: group_by='a' and stratify_by='b' cannot be combined; choose one"),
    ):
        KFoldSplitter(2, group_by="a", stratify_by="b")


def test_folds_of_a_split_view_are_absolute_rows_in_view_order() -> None:
    fs = _fs(10).with_split("pool", [9, 2, 4, 6, 8, 0])
    pairs = kfold_indices(KFoldSplitter(3, seed=0), fs, on="pool")
    vals = sorted(np.concatenate([v for _, v in pairs]).tolist())
    assert vals == [0, 2, 4, 6, 8, 9]
    for train, val in pairs:
        # in the view's order (9 comes first: the view lists it first), as documented
        order = [9, 2, 4, 6, 8, 0]
        assert train.tolist() == [r for r in order if r in train] and val.tolist() == [
            r for r in order if r in val
        ]
        assert sorted([*train.tolist(), *val.tolist()]) == vals and len(val) == 2
    out = fs.split(KFoldSplitter(3, seed=0), on="pool")
    assert [out.split_indices[f"pool/fold_{i}/val"].tolist() for i in range(3)] == [
        v.tolist() for _, v in pairs
    ]
    from_view = kfold_indices(KFoldSplitter(3, seed=0), fs["pool"])
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(from_view, pairs))


def test_fold_labels_are_a_pure_function_of_seed_or_key() -> None:
    view = _fs(12).view()
    a = KFoldSplitter(4, seed=3).fold_labels(view)
    assert np.array_equal(a, KFoldSplitter(4, seed=3).fold_labels(view))
    assert sorted(a.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert not np.array_equal(a, KFoldSplitter(4, seed=4).fold_labels(view))
    k = mml.random.key(11)
    assert np.array_equal(
        KFoldSplitter(4, seed=0).fold_labels(view, key=k), KFoldSplitter(4, seed=9).fold_labels(view, key=k)
    )


def test_kfold_indices_refuses_other_inputs_by_name() -> None:
    fs = _fs(4)
    with pytest.raises(mml.SplitError, match="kfold_indices takes a KFoldSplitter, got RandomSplitter"):
        kfold_indices(mml.RandomSplitter(), fs)  # type: ignore[arg-type]
    with pytest.raises(mml.SplitError, match="on= applies to a FeatureSet, not to a view"):
        kfold_indices(KFoldSplitter(2), fs.view(), on="train")
    with pytest.raises(
        mml.SplitError, match="kfold_indices takes a FeatureSet or a FeatureSetView, got list"
    ):
        kfold_indices(KFoldSplitter(2), [1, 2])  # type: ignore[arg-type]


def test_missing_group_column_message_is_pinned() -> None:
    with pytest.raises(mml.SchemaError) as err:
        kfold_indices(KFoldSplitter(2, group_by="nope"), _fs(4))
    assert str(err.value) == (
        "KFoldSplitter: group_by column 'nope' is not in FeatureSet 'kf'; available keys: "
        "features: x; targets: -; tags: g"
    )


def test_on_with_a_view_message_is_pinned() -> None:
    with pytest.raises(mml.SplitError) as err:
        kfold_indices(KFoldSplitter(2), _fs(4).view(), on="train")
    assert str(err.value) == "kfold_indices: on= applies to a FeatureSet, not to a view; pass fs and on=..."


def test_the_key_reaches_every_entry_point() -> None:
    fs = _fs(12)
    k = mml.random.key(11)
    want = KFoldSplitter(4, seed=0).fold_labels(fs.view(), key=k)
    assert not np.array_equal(want, KFoldSplitter(4, seed=0).fold_labels(fs.view()))  # the key matters
    expected = [np.flatnonzero(want == i).tolist() for i in range(4)]
    assert [v.tolist() for _, v in KFoldSplitter(4, seed=0).folds(fs.view(), key=k)] == expected
    assert [v.tolist() for _, v in kfold_indices(KFoldSplitter(4, seed=0), fs, key=k)] == expected
    named = KFoldSplitter(4, seed=0).split_indices(fs.view(), key=k)
    assert [named[f"fold_{i}/val"].tolist() for i in range(4)] == expected
