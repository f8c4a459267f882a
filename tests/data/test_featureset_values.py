"""FeatureSet schema, layouts, splits and messages pinned value by value (issue 17).

Expected arrays are built with numpy directly (``np.column_stack``, ``np.concatenate``,
fancy indexing), not with mml.
"""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pytest

import mml
from mml.data import FeatureSet
from mml.errors import DataError, SchemaError, SplitError

V = np.arange(12.0).reshape(3, 2, 2)
A = np.array([1, 2, 3])
Y = np.array([0.5, 1.5, 2.5])


def _fs() -> FeatureSet:
    return FeatureSet.from_dict(
        {"v": V, "a": A, "y": Y, "c": ["p", "q", "r"]}, features=["v", "a"], targets="y", tags="c", label="L"
    )


def _raises(exc: type[Exception], fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(exc) as err:
        fn(*args, **kwargs)
    return str(err.value)


def test_labels() -> None:
    t = _fs().table
    for bad in ["a.b", "a/b", "a\\b", "a:b", "", " a", "a ", 3]:
        assert _raises(SchemaError, FeatureSet, label=bad, table=t) == (
            f"FeatureSet label {bad!r} is not allowed: use a non-empty name without '.', '/', '\\\\' or ':'"
        )
    assert FeatureSet(label="a-b_c d", table=t).label == "a-b_c d"


def test_table_checks_in_full() -> None:
    t = _fs().table
    assert (
        _raises(DataError, FeatureSet, label="a", table=5)
        == "FeatureSet.table must be a pyarrow.Table, got int"
    )
    assert _raises(SchemaError, FeatureSet, label="a", table=t.drop(["sample_uuids"])) == (
        "the table has no 'sample_uuids' column; build FeatureSets with FeatureSet.from_*"
    )
    assert _raises(
        SchemaError, FeatureSet, label="a", table=t.append_column("targets.a.raw", pa.array([1, 2, 3]))
    ) == ("key 'a' appears in both features and targets")
    two = t.append_column("targets.z.raw", pa.array(["a", "b", "c"])).append_column(
        "features.w.raw", pa.array(["a", "b", "c"])
    )
    assert _raises(SchemaError, FeatureSet, label="a", table=two) == (
        "column 'targets.z.raw' holds string; targets hold numbers or booleans; "
        "column 'features.w.raw' holds string; features hold numbers or booleans"
    )
    bad_ids = t.set_column(
        t.column_names.index("sample_uuids"), "sample_uuids", pa.array([b"x"] * 3, pa.binary(1))
    )
    assert _raises(SchemaError, FeatureSet, label="a", table=bad_ids) == (
        "column 'sample_uuids' must hold 16-byte UUIDs (fixed_size_binary[16]), got fixed_size_binary[1]"
    )
    # the transformed rep of a key is the same key, not a clash
    ok = t.append_column("features.a.transformed", pa.array([0.0, 0.5, 1.0]))
    assert FeatureSet(label="a", table=ok).reps("features", "a") == ("raw", "transformed")


def test_split_index_checks() -> None:
    t = _fs().table
    for rows in ([3], [-1], [[0]], [0, 1, 2, 5]):
        assert _raises(SplitError, FeatureSet, label="a", table=t, split_indices={"s": rows}) == (
            "split 's' has row indices outside [0, 3) or is not 1-D"
        )
    fs = FeatureSet(label="a", table=t, split_indices={"s": [0, 2], "e": []})
    assert fs["s"].indices.tolist() == [0, 2]
    assert len(fs["e"]) == 0


def test_keys_domains_reps_shapes_dtypes() -> None:
    fs = _fs()
    assert len(fs) == fs.n_samples == 3
    assert fs.keys() == ("v", "a")
    assert fs.keys("targets") == ("y",)
    assert fs.keys("tags") == ("c",)
    assert _raises(SchemaError, fs.keys, "x") == "unknown domain 'x'; use one of features, targets, tags"
    assert [fs.domain_of(k) for k in ("v", "a", "y", "c")] == ["features", "features", "targets", "tags"]
    assert _raises(SchemaError, fs.domain_of, "zz") == (
        "FeatureSet 'L' has no key 'zz'; keys: features: v, a; targets: y; tags: c"
    )
    only = FeatureSet.from_dict({"x": [1.0]}, features="x", label="o")
    assert (
        _raises(SchemaError, only.domain_of, "zz")
        == "FeatureSet 'o' has no key 'zz'; keys: features: x; targets: -; tags: -"
    )
    assert fs.reps("features", "a") == ("raw",)
    assert fs.resolve_rep("features", "a") == "raw"
    assert fs.resolve_rep("features", "a", "raw") == "raw"
    assert (
        _raises(SchemaError, fs.resolve_rep, "features", "zz")
        == "FeatureSet 'L' has no features key 'zz'; features keys: v, a"
    )
    assert (
        _raises(SchemaError, only.resolve_rep, "targets", "zz")
        == "FeatureSet 'o' has no targets key 'zz'; targets keys: (none)"
    )
    assert _raises(SchemaError, fs.resolve_rep, "features", "a", "transformed") == (
        "features key 'a' of FeatureSet 'L' has no 'transformed' representation (present: raw); "
        "fit a scaler first or ask for rep='raw'"
    )
    assert fs.key_shape("features", "v") == (2, 2)
    assert fs.key_shape("features", "a") == ()
    assert fs.key_dtype("features", "v") == np.float64
    assert fs.key_dtype("features", "a") == np.int64
    assert fs.key_dtype("tags", "c") == np.dtype(object)
    b = FeatureSet.from_dict({"b": np.zeros((2, 3), bool)}, features="b", label="b")
    assert b.key_dtype("features", "b") == np.bool_


def test_transformed_rep_is_preferred() -> None:
    fs = _fs()
    t = fs.table.append_column("features.a.transformed", pa.array([10.0, 20.0, 30.0]))
    fs = fs.replace_table(t)
    assert fs.resolve_rep("features", "a") == "transformed"
    assert fs.column_array("features", "a").tolist() == [10.0, 20.0, 30.0]
    assert fs.column_array("features", "a", "raw").tolist() == [1, 2, 3]
    assert fs.key_dtype("features", "a") == np.float64
    assert fs.key_dtype("features", "a", "raw") == np.int64
    assert fs.resolve_column_array("a").tolist() == [1, 2, 3]  # bare names read raw
    assert fs.resolve_column_array("features.a").tolist() == [1, 2, 3]
    assert fs.resolve_column_array("features.a.transformed").tolist() == [10.0, 20.0, 30.0]


def test_domain_shape_layout_rule() -> None:
    fs = FeatureSet.from_dict(
        {
            "m": np.zeros((2, 3, 4)),
            "n": np.zeros((2, 3, 1)),
            "s": [1.0, 2.0],
            "u": [1.0, 2.0],
            "w": np.zeros((2, 5)),
        },
        features=["m", "n", "s", "u", "w"],
        label="d",
    )
    assert fs.domain_shape("features", ["m"]) == (3, 4)
    assert fs.domain_shape("features", ["s"]) == (1,)
    assert fs.domain_shape("features", "s") == (1,)
    assert fs.domain_shape("features", ["m", "n"]) == (3, 5)
    assert fs.domain_shape("features", ["s", "u", "w"]) == (7,)
    assert fs.domain_shape("features", ["s", "u"]) == (2,)
    assert _raises(SchemaError, fs.domain_shape, "features", ["m", "w"]) == (
        "features keys ['m', 'w'] have shapes [(3, 4), (5,)] that cannot be concatenated along the last axis; "
        "select keys with matching leading dimensions"
    )
    assert _raises(SchemaError, fs.domain_shape, "targets") == "FeatureSet 'd' has no targets keys"


def test_to_numpy_layouts_against_numpy() -> None:
    rng = np.random.default_rng(0)
    m, n = rng.random((4, 3, 2)), rng.random((4, 3, 1)).astype(np.float32)
    s, i, w = rng.random(4), np.arange(4, dtype=np.int32), rng.random((4, 5))
    fs = FeatureSet.from_dict(
        {"m": m, "n": n, "s": s, "i": i, "w": w}, features=["m", "n", "s", "i", "w"], label="t"
    )
    np.testing.assert_array_equal(fs.to_numpy("features", ["m", "n"]), np.concatenate([m, n], axis=-1))
    assert fs.to_numpy("features", ["m", "n"]).dtype == np.float64
    np.testing.assert_array_equal(fs.to_numpy("features", ["s", "i", "w"]), np.column_stack([s, i, w]))
    np.testing.assert_array_equal(fs.to_numpy("features", ["i", "s"]), np.column_stack([i, s]))
    got = fs.to_numpy("features", "i")
    assert got.shape == (4, 1) and got.dtype == np.int32
    rows = np.array([3, 0, 2])
    np.testing.assert_array_equal(
        fs.to_numpy("features", ["m", "n"], indices=rows), np.concatenate([m, n], axis=-1)[rows]
    )
    np.testing.assert_array_equal(
        fs.to_numpy("features", ["s", "i", "w"], indices=rows), np.column_stack([s, i, w])[rows]
    )
    np.testing.assert_array_equal(
        fs.to_numpy("features", ["i", "s"], indices=rows), np.column_stack([i, s])[rows]
    )
    np.testing.assert_array_equal(fs.to_numpy("features", "w", indices=rows), w[rows])
    np.testing.assert_array_equal(fs.to_numpy("features", "s", indices=rows), s[rows].reshape(-1, 1))
    for out in (fs.to_numpy("features", ["i", "s"]), fs.to_numpy("features", "w", indices=rows)):
        assert out.flags.c_contiguous and not out.flags.writeable
    assert fs.to_numpy("features", ["i", "s"], indices=np.array([], dtype=np.int64)).shape == (0, 2)
    assert _raises(SchemaError, fs.to_numpy, "targets") == "FeatureSet 't' has no targets keys to read"


@pytest.mark.parametrize("rows", [None, "perm", "short"])
def test_to_numpy_of_scalar_keys_past_one_gather_block(rows: str | None) -> None:
    n = 8192 * 2 + 17
    rng = np.random.default_rng(1)
    a, b, c = rng.random(n), rng.integers(0, 1000, n).astype(np.int16), rng.random(n).astype(np.float32)
    fs = FeatureSet.from_dict({"a": a, "b": b, "c": c}, features=["a", "b", "c"], label="big")
    idx = {None: None, "perm": rng.permutation(n), "short": np.array([n - 1, 0, 8192, 8191])}[rows]
    expected = np.column_stack([a, b, c]) if idx is None else np.column_stack([a, b, c])[idx]
    got = fs.to_numpy("features", indices=idx)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)
    same = fs.to_numpy("features", ["a", "c"], indices=idx)  # float64 and float32
    np.testing.assert_array_equal(same, expected[:, [0, 2]])


def test_strings_are_read_one_key_at_a_time() -> None:
    fs = FeatureSet.from_dict(
        {"c": ["p", "r"], "d": ["q", "s"], "x": [1.0, 2.0]}, features="x", tags=["c", "d"], label="L"
    )
    assert fs.to_numpy("tags", "c").tolist() == [["p"], ["r"]]
    assert (
        _raises(SchemaError, fs.to_numpy, "tags")
        == "tags keys ['c', 'd'] include strings; read them one at a time"
    )


def test_column_array_and_resolve() -> None:
    fs = _fs()
    np.testing.assert_array_equal(fs.column_array("features", "v"), V)
    np.testing.assert_array_equal(fs.column_array("features", "v", indices=np.array([2, 0])), V[[2, 0]])
    assert fs.column_array("targets", "y", "raw", np.array([1])).tolist() == [1.5]
    assert fs.resolve_column_array("y").tolist() == [0.5, 1.5, 2.5]
    assert fs.resolve_column_array("targets.y", np.array([2])).tolist() == [2.5]
    assert fs.resolve_column_array("tags.c.raw").tolist() == ["p", "q", "r"]
    for bad in ["a.b.c.d", "zz.a"]:
        assert _raises(SchemaError, fs.resolve_column_array, bad) == (
            f"cannot resolve column {bad!r}; use 'key', 'domain.key' or 'domain.key.rep'"
        )
    with pytest.raises(SchemaError):
        fs.resolve_column_array("features.zz.raw2")


def test_uuids() -> None:
    fs = _fs()
    import uuid

    ids = fs.sample_uuids
    assert ids.dtype == np.dtype("S16") and ids.shape == (3,)
    assert fs.uuid_strings() == [str(uuid.UUID(bytes=b)) for b in ids.tolist()]
    assert fs.uuid_strings(np.array([2, 0])) == [str(uuid.UUID(bytes=ids[i])) for i in (2, 0)]


def test_splits_and_views() -> None:
    fs = _fs().with_split("train", [2, 0]).with_split("test", [1])
    assert list(fs.splits) == ["train", "test"]
    assert fs.splits["train"].indices.tolist() == [2, 0]
    assert fs["test"].indices.tolist() == [1]
    assert fs.rows(None).tolist() == [0, 1, 2]
    assert fs.rows("train").tolist() == [2, 0]
    assert fs.view().indices.tolist() == [0, 1, 2]
    assert (
        _raises(SplitError, _fs().__getitem__, "x")
        == "FeatureSet 'L' has no split 'x'; splits: (none yet: use fs.split(...))"
    )
    assert _raises(SplitError, fs.__getitem__, "x") == "FeatureSet 'L' has no split 'x'; splits: train, test"
    assert list(fs.without_splits("train").split_indices) == ["test"]
    assert fs.without_splits().split_indices == {}
    with pytest.raises(SplitError):
        fs.without_splits("nope")


def test_with_split_checks_in_full() -> None:
    fs = _fs()
    for bad in ["", " a", "a ", 3]:
        assert (
            _raises(SplitError, fs.with_split, bad, [0]) == f"split names are non-empty strings, got {bad!r}"
        )
    assert _raises(SplitError, fs.with_split, "a", [0], overlap="x") == (
        "overlap= is one of 'warn', 'error', 'allow', got 'x'"
    )
    other = FeatureSet.from_dict({"x": [1.0, 2.0, 3.0]}, features="x", label="o")
    assert (
        _raises(SplitError, fs.with_split, "a", other.view())
        == "the view for split 'a' belongs to another FeatureSet"
    )
    twin = FeatureSet(label="twin", table=pa.Table.from_batches(fs.table.to_batches()))
    assert fs.with_split("a", twin.view().take([2, 1]))["a"].indices.tolist() == [2, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fs.with_split("a", [0]).with_split("a", [0, 1])["a"].indices.tolist() == [0, 1]


def test_replace_table_and_records() -> None:
    fs = _fs()
    assert (
        _raises(DataError, fs.replace_table, fs.table.slice(1))
        == "the new table has 2 rows, FeatureSet 'L' has 3"
    )
    assert fs.replace_table(fs.table) == fs


def test_equality_and_hash() -> None:
    fs = _fs()
    assert fs == _fs() and hash(fs) == hash(_fs())
    assert fs != fs.with_split("a", [0])
    assert fs.with_split("a", [0]) != fs.with_split("a", [1])
    assert fs.with_split("a", [0]) != fs.with_split("b", [0])
    assert fs != FeatureSet(label="M", table=fs.table)
    t = fs.table.replace_schema_metadata({b"k": b"v"})
    assert fs != FeatureSet(label="L", table=t)  # metadata counts
    assert (fs == 3) is False
    assert fs.__eq__(3) is NotImplemented


def test_repr_in_full() -> None:
    fs = _fs().with_split("train", [0, 1]).with_split("test", [2])
    assert repr(fs) == (
        "FeatureSet('L', 3 samples)\n"
        "  features: v[2, 2]:float64[raw], a:int64[raw]\n"
        "  targets: y:float64[raw]\n"
        "  tags: c:object[raw]\n"
        "  splits: train=2, test=1"
    )
    assert repr(FeatureSet.from_dict({"x": [1.0]}, features="x", label="o")) == (
        "FeatureSet('o', 1 samples)\n  features: x:float64[raw]"
    )


def test_repr_of_records() -> None:
    fs = mml.FeatureSet.from_dict({"x": np.arange(10.0)}, features="x", label="r")
    split = fs.split(mml.splitters.RandomSplitter({"train": 0.5, "test": 0.5}, seed=0))
    last = repr(split).splitlines()[-1]
    assert last.startswith("  record: ")
    assert last == f"  record: {split.records[-1].describe()}"  # type: ignore[attr-defined]


def test_split_delegates_to_the_splitter_protocol() -> None:
    # issue 12: fs.split(s) is s.split_featureset(fs, on=..., key=...); the data layer imports no splitter
    calls: list[tuple[object, dict]] = []  # type: ignore[type-arg]

    class Recorder:
        def split_featureset(
            self, fs: FeatureSet, *, on: str | None = None, key: object = None
        ) -> FeatureSet:
            calls.append((fs, {"on": on, "key": key}))
            return fs.with_split("all", [0, 1, 2])

    fs = _fs()
    k = mml.random.key(5)
    assert isinstance(Recorder(), mml.data.Splitter)
    assert list(fs.split(Recorder(), on="train", key=k).split_indices) == ["all"]
    fs.split(Recorder())
    assert calls == [(fs, {"on": "train", "key": k}), (fs, {"on": None, "key": None})]
    real = mml.splitters.RandomSplitter({"a": 0.5, "b": 0.5}, seed=0)
    assert fs.split(real) == real.split_featureset(fs)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ({"train": 0.5}, "dict {'train': 0.5}"),
        ("random", "str 'random'"),
        (mml.RandomSplitter, "ABCMeta <class"),
    ],
)
def test_split_refuses_what_is_not_a_splitter(value: object, shown: str) -> None:
    msg = _raises(SplitError, _fs().split, value)
    assert msg.startswith(
        "FeatureSet.split takes a splitter (RandomSplitter, ConditionSplitter, KFoldSplitter, "
        f"or a value with a split_featureset(fs, *, on, key) method), got {shown}"
    )


def test_without_splits_keeps_the_others_in_order() -> None:
    fs = _fs().with_split("a", [0]).with_split("b", [1]).with_split("c", [2])
    assert list(fs.without_splits("b").split_indices) == ["a", "c"]
    assert list(fs.without_splits("a", "c").split_indices) == ["b"]
    assert fs.without_splits("b")["c"].indices.tolist() == [2]
    assert (
        _raises(SplitError, fs.without_splits, "a", "x") == "FeatureSet 'L' has no split 'x'; splits: a, b, c"
    )
    assert fs.rows("b").tolist() == [1]
    assert fs.rows(None).dtype == np.int64 and not fs.rows(None).flags.writeable
    assert hash(fs) == hash(("L", 3, tuple(fs.table.column_names), ("a", "b", "c")))


def test_repr_of_a_transformed_key_shows_both_reps_and_the_raw_dtype() -> None:
    fs = _fs()
    fs = fs.replace_table(fs.table.append_column("features.a.transformed", pa.array([0.0, 0.5, 1.0])))
    assert repr(fs).splitlines()[1] == "  features: v[2, 2]:float64[raw], a:int64[raw+transformed]"


class _PlainRecord(mml.data.AbstractRecord):
    """A record without ``describe``: the repr shows its type name."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _PlainRecord)

    def __hash__(self) -> int:
        return 0


def test_repr_of_a_record_without_describe() -> None:
    fs = _fs().with_record(_PlainRecord())
    assert fs.records == (_PlainRecord(),)
    assert repr(fs).splitlines()[-1] == "  record: _PlainRecord"


def test_to_numpy_of_a_single_scalar_key_is_zero_copy() -> None:
    fs = _fs()
    out = fs.to_numpy("features", "a")
    assert out.shape == (3, 1)
    assert np.shares_memory(out, fs.column_array("features", "a"))


def test_to_numpy_of_int_keys_keeps_the_dtype_of_the_rep_read() -> None:
    fs = FeatureSet.from_dict(
        {"i": [1, 2, 3], "j": np.array([4, 5, 6], np.int32)}, features=["i", "j"], label="n"
    )
    out = fs.to_numpy()
    assert out.dtype == np.int64
    assert out.tolist() == [[1, 4], [2, 5], [3, 6]]
    rows = np.array([2, 0])
    assert fs.to_numpy(indices=rows).dtype == np.int64
    t = fs.table.append_column("features.i.transformed", pa.array([0.0, 0.5, 1.0]))
    t = t.append_column("features.j.transformed", pa.array([0.0, 0.25, 1.0]))
    fs = fs.replace_table(t)
    raw = fs.to_numpy(rep="raw")
    assert raw.dtype == np.int64 and raw.tolist() == [[1, 4], [2, 5], [3, 6]]
    assert fs.to_numpy().tolist() == [[0.0, 0.0], [0.5, 0.25], [1.0, 1.0]]


def test_key_arguments_name_the_domain_in_errors() -> None:
    fs = _fs()
    assert (
        _raises(SchemaError, fs.to_numpy, "targets", 3)
        == "targets= takes a key name or a list of key names, got 3"
    )
    assert (
        _raises(SchemaError, fs.view().to_numpy, "tags", 3)
        == "tags= takes a key name or a list of key names, got 3"
    )
    assert (
        _raises(SchemaError, fs.view().select, targets=3)
        == "targets= takes a key name or a list of key names, got 3"
    )
    assert (
        _raises(SchemaError, fs.domain_shape, "targets", 3)
        == "targets= takes a key name or a list of key names, got 3"
    )


def test_overlap_message_names_the_featureset() -> None:
    fs = _fs().with_split("train", [0, 1])
    assert _raises(SplitError, fs.with_split, "test", [1, 2], overlap="error") == (
        "with_split('test') on FeatureSet 'L': the new split shares rows with 'train' (1 rows, e.g. row 1); "
        "pass rows disjoint from the other splits, or with_split(..., overlap='allow') if the overlap is intended"
    )


def test_labels_may_hold_any_other_character() -> None:
    t = _fs().table
    for ok in ["aXb", "X", "a b", "ünï"]:
        assert FeatureSet(label=ok, table=t).label == ok


def test_missing_rep_lists_the_reps_present() -> None:
    fs = _fs()
    fs = fs.replace_table(fs.table.append_column("features.a.transformed", pa.array([0.0, 0.5, 1.0])))
    assert _raises(SchemaError, fs.resolve_rep, "features", "a", "scaled") == (
        "features key 'a' of FeatureSet 'L' has no 'scaled' representation (present: raw, transformed); "
        "fit a scaler first or ask for rep='raw'"
    )


def test_to_numpy_of_large_ints_is_exact() -> None:
    big = 2**53 + 1  # not representable in float64
    i = np.array([big, 3, -big], dtype=np.int64)
    j = np.array([1, 2, 3], dtype=np.int64)
    fs = FeatureSet.from_dict(
        {"i": i, "j": j, "t": np.stack([i, i], 1), "u": np.stack([j], 1)},
        features=["i", "j", "t", "u"],
        label="n",
    )
    for rows in (None, np.array([2, 0])):
        out = fs.to_numpy("features", ["i", "j"], indices=rows)
        want = np.column_stack([i, j]) if rows is None else np.column_stack([i, j])[rows]
        assert out.dtype == np.int64 and out.tolist() == want.tolist()
        out = fs.to_numpy("features", ["t", "u"], indices=rows)
        want = np.column_stack([i, i, j]) if rows is None else np.column_stack([i, i, j])[rows]
        assert out.dtype == np.int64 and out.tolist() == want.tolist()
