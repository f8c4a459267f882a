"""FeatureSetView: absolute rows, column selections, reps and messages pinned (issue 17)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import mml
from mml.data import FeatureSet, FeatureSetView
from mml.errors import DataError, SchemaError

X = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
B = np.array([10, 20, 30, 40, 50])
W = np.arange(10.0).reshape(5, 2)


def _fs() -> FeatureSet:
    fs = FeatureSet.from_dict(
        {"x": X, "b": B, "w": W, "y": X * 2, "g": ["a", "b", "a", "b", "c"]},
        features=["x", "b", "w"],
        targets="y",
        tags="g",
        label="L",
    )
    t = fs.table.append_column("features.x.transformed", pa.array(X / 10))
    t = t.append_column("features.b.transformed", pa.array(B / 100))
    return fs.replace_table(t)


def _raises(exc: type[Exception], fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(exc) as err:
        fn(*args, **kwargs)
    return str(err.value)


def test_indices_are_checked_in_full() -> None:
    fs = _fs()
    assert _raises(DataError, FeatureSetView, fs, [[0]]) == (
        "view indices must be a 1-D integer array, got shape (1, 1) dtype int64"
    )
    assert _raises(DataError, FeatureSetView, fs, [0.5]) == (
        "view indices must be a 1-D integer array, got shape (1,) dtype float64"
    )
    for rows in ([5], [-1], [0, 7]):
        assert (
            _raises(DataError, FeatureSetView, fs, rows)
            == "view indices fall outside [0, 5) of FeatureSet 'L'"
        )
    assert _raises(SchemaError, FeatureSetView, fs, [0], columns=["zz", "features.x.raw", "yy"]) == (
        "view columns ['zz', 'yy'] are not in FeatureSet 'L'"
    )
    v = FeatureSetView(fs, [4, 0], columns=["features.x.raw"])
    assert v.indices.dtype == np.int64 and v.indices.tolist() == [4, 0]
    assert v.columns == ("features.x.raw",)
    assert FeatureSetView(fs, np.array([3], dtype=np.uint8)).indices.dtype == np.int64
    assert len(FeatureSetView(fs, [])) == 0
    assert FeatureSetView(fs, [4]).indices.tolist() == [4]


def test_absolute_rows_of_views_of_views() -> None:
    fs = _fs()
    v = fs.view().take([4, 1, 3, 0])
    assert v.indices.tolist() == [4, 1, 3, 0]
    w = v.take([-1, 2])
    assert w.indices.tolist() == [0, 3]
    np.testing.assert_array_equal(w.to_numpy("features", "x", rep="raw"), X[[0, 3]].reshape(-1, 1))
    np.testing.assert_array_equal(w.to_numpy("features", "x"), (X / 10)[[0, 3]].reshape(-1, 1))
    np.testing.assert_array_equal(w.column_array("features", "w"), W[[0, 3]])
    np.testing.assert_array_equal(w.resolve_column_array("features.b.raw"), B[[0, 3]])
    assert w.sample_uuids.tolist() == fs.sample_uuids[[0, 3]].tolist()
    assert v.take([-4]).indices.tolist() == [4]
    assert _raises(DataError, v.take, [4]) == "positions fall outside a view of 4 rows"
    assert _raises(DataError, v.take, [-5]) == "positions fall outside a view of 4 rows"
    assert len(v.take([])) == 0
    f = v.filter(mml.col("g") == "b")
    assert f.indices.tolist() == [1, 3]
    assert v.filter(mml.col("x") >= 4.0).indices.tolist() == [4, 3]
    assert _raises(DataError, v.filter, lambda r: r) == (
        "filter takes an mml predicate such as mml.col('x') > 0, got function; lambdas cannot be saved or inspected"
    )


def test_reads_of_all_rows_are_zero_copy_and_others_gather() -> None:
    fs = _fs()
    parent = fs.column_array("features", "w", "raw")
    full = FeatureSetView(fs, np.arange(5))
    assert np.shares_memory(full.column_array("features", "w"), parent)
    assert np.shares_memory(full.to_numpy("features", "w"), parent)
    # the same length, first and last row, but not every row in order
    for rows in ([0, 0, 2, 3, 4], [0, 2, 1, 3, 4], [0, 1, 2, 2, 4], [0, 1, 3, 3, 4]):
        v = FeatureSetView(fs, rows)
        got = v.column_array("features", "w")
        np.testing.assert_array_equal(got, W[rows])
        assert not np.shares_memory(got, parent)
    for rows in ([0, 1, 2, 3], [1, 2, 3, 4], [4, 3, 2, 1, 0]):
        np.testing.assert_array_equal(FeatureSetView(fs, rows).to_numpy("features", "w"), W[rows])
    one = FeatureSet.from_dict({"x": [7.0]}, features="x", label="one")
    assert np.shares_memory(one.view().column_array("features", "x"), one.column_array("features", "x"))


def test_keys_follow_the_selection_order() -> None:
    fs = _fs()
    v = fs.view()
    assert v.keys() == ("x", "b", "w")
    assert v.keys("tags") == ("g",)
    s = v.select(features=["w", "x"], tags="g")
    assert s.keys() == ("w", "x")
    assert s.keys("targets") == ()
    assert s.keys("tags") == ("g",)
    assert s.columns == ("features.w.raw", "features.x.raw", "features.x.transformed", "tags.g.raw")
    assert v.select() is v
    assert v.select(targets="y").keys("features") == ()
    assert v.select(targets="y").keys("targets") == ("y",)
    assert v.select(features="x", rep="raw").columns == ("features.x.raw",)
    assert v.select(features="x", rep="transformed").columns == ("features.x.transformed",)
    assert _raises(SchemaError, s.column_array, "features", "b") == (
        "features key 'b' is not selected in this view of 'L'; visible features keys: w, x"
    )
    assert _raises(SchemaError, s.to_numpy, "targets", "y") == (
        "targets key 'y' is not selected in this view of 'L'; visible targets keys: (none)"
    )
    assert _raises(SchemaError, s.select, features="b") == (
        "features key 'b' is not selected in this view of 'L'; visible features keys: w, x"
    )
    assert s.key_shape("features", "w") == (2,)
    assert s.domain_shape("features") == (3,)
    assert s.domain_shape("features", ["x"]) == (1,)
    assert s.label == "L"


def test_reps_through_a_selection() -> None:
    fs = _fs()
    v = fs.view().take([2, 0])
    # no selection: the parent's choice (transformed when present)
    np.testing.assert_array_equal(
        v.to_numpy("features", ["x", "b"]), np.column_stack([X / 10, B / 100])[[2, 0]]
    )
    np.testing.assert_array_equal(
        v.to_numpy("features", ["x", "b"], rep="raw"), np.column_stack([X, B])[[2, 0]]
    )
    raw = v.select(features=["x", "b"], rep="raw")
    np.testing.assert_array_equal(raw.to_numpy(), np.column_stack([X, B])[[2, 0]])
    np.testing.assert_array_equal(raw.column_array("features", "x"), X[[2, 0]])
    assert _raises(SchemaError, raw.to_numpy, "features", rep="transformed") == (
        "features key 'x' has no 'transformed' representation selected in this view of 'L' (selected: raw); "
        "select it or ask for another rep"
    )
    both = v.select(features=["x", "b"])
    np.testing.assert_array_equal(both.to_numpy(), np.column_stack([X / 10, B / 100])[[2, 0]])
    np.testing.assert_array_equal(both.to_numpy(rep="raw"), np.column_stack([X, B])[[2, 0]])
    # per key, the parent's choice when each is selected: x transformed, w raw
    mixed = FeatureSetView(fs, [1, 4], columns=("features.x.transformed", "features.w.raw"))
    np.testing.assert_array_equal(mixed.to_numpy(), np.column_stack([X / 10, W])[[1, 4]])
    # a raw-only selection of x next to w: raw everywhere
    plain = FeatureSetView(fs, [1, 4], columns=("features.x.raw", "features.w.raw"))
    np.testing.assert_array_equal(plain.to_numpy(), np.column_stack([X, W])[[1, 4]])
    np.testing.assert_array_equal(plain.to_numpy(keys="x"), X[[1, 4]].reshape(-1, 1))
    clash = FeatureSetView(fs, [1, 4], columns=("features.x.raw", "features.b.transformed"))
    assert _raises(SchemaError, clash.to_numpy) == (
        "features keys ['x', 'b'] have different representations selected in this view of 'L'; "
        "pass rep='raw' or rep='transformed'"
    )
    np.testing.assert_array_equal(clash.column_array("features", "b"), (B / 100)[[1, 4]])
    np.testing.assert_array_equal(clash.column_array("features", "x"), X[[1, 4]])


def test_uuid_set_operations() -> None:
    fs = _fs()
    a = fs.view().take([4, 0, 2])
    b = fs.view().take([2, 3, 4])
    assert a.intersection(b).indices.tolist() == [4, 2]
    assert a.difference(b).indices.tolist() == [0]
    assert b.difference(a).indices.tolist() == [3]
    assert a.is_disjoint_with(b) is False
    assert a.difference(b).is_disjoint_with(b) is True
    assert a.take_sample_uuids(fs.sample_uuids[[2, 1]]).indices.tolist() == [2]
    assert a.take_sample_uuids(fs.sample_uuids[4]).indices.tolist() == [4]
    for op in (a.intersection, a.difference, a.is_disjoint_with):
        assert _raises(DataError, op, 3) == "expected a FeatureSetView, got int"


def test_to_featureset_copies_the_selected_rows_and_columns() -> None:
    fs = _fs()
    v = fs.view().take([3, 1]).select(features="x", rep="raw", tags="g")
    out = v.to_featureset()
    assert out.label == "L"
    assert out.table.column_names == ["features.x.raw", "tags.g.raw", "sample_uuids"]
    assert out.column_array("features", "x").tolist() == [4.0, 2.0]
    assert out.sample_uuids.tolist() == fs.sample_uuids[[3, 1]].tolist()
    assert fs.view().take([0]).to_featureset("M").label == "M"
    assert fs.view().take([0]).to_featureset().table.num_columns == fs.table.num_columns


def test_equality_hash_repr() -> None:
    fs = _fs()
    v = fs.view().take([1, 2])
    assert v == FeatureSetView(fs, [1, 2])
    assert v == FeatureSetView(_fs(), [1, 2])  # equal parents by value
    assert v != FeatureSetView(fs, [2, 1])
    assert v != v.select(features="x")
    other = FeatureSet.from_dict({"x": X}, features="x", label="L")
    assert v != FeatureSetView(other, [1, 2])
    assert v.__eq__(3) is NotImplemented
    assert hash(v) == hash(FeatureSetView(_fs(), [1, 2]))
    assert hash(v) == hash(("L", 2, None))
    assert repr(v) == "FeatureSetView('L', 2 of 5 rows, all columns)"
    assert repr(v.select(features="x")) == "FeatureSetView('L', 2 of 5 rows, 2 columns)"


def test_a_rep_asked_for_through_a_selection_of_both_reps() -> None:
    fs = _fs()
    both = fs.view().take([3, 1]).select(features=["x", "b"])
    np.testing.assert_array_equal(both.column_array("features", "x", rep="raw"), X[[3, 1]])
    np.testing.assert_array_equal(both.column_array("features", "x"), (X / 10)[[3, 1]])
    assert _raises(SchemaError, both.to_numpy, "features", rep="scaled") == (
        "features key 'x' has no 'scaled' representation selected in this view of 'L' (selected: raw, transformed); "
        "select it or ask for another rep"
    )
    # no keys of a domain in a selection: the parent's own message, whatever the rep
    assert (
        _raises(SchemaError, both.to_numpy, "targets", rep="raw")
        == "FeatureSet 'L' has no targets keys to read"
    )
    assert _raises(SchemaError, both.to_numpy, "targets") == "FeatureSet 'L' has no targets keys to read"
