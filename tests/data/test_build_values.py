"""Arrow columns from user arrays and back (``mml.data._build``), pinned against numpy/pyarrow."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import mml
from mml.data._build import (
    _is_missing,
    _numpy_of,
    _primitive_to_arrow,
    _primitive_to_numpy,
    as_key_list,
    build_table,
    column_to_numpy,
    is_list_type,
    lists_to_numpy,
    make_uuids,
    normalize_table,
    to_arrow_column,
)
from mml.errors import DataError, SchemaError
from mml.random import fold_in, key, numpy_rng

_RAGGED = "every sample of a key must have the same shape — pad or resample to a common length"


def _msg(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    return str(excinfo.value)


def test_as_key_list() -> None:
    assert as_key_list(None, "features") == ()
    assert as_key_list("a", "features") == ("a",)
    assert as_key_list(["a", "b"], "features") == ("a", "b")
    assert as_key_list(iter(["b"]), "features") == ("b",)  # type: ignore[arg-type]
    with pytest.raises(SchemaError) as err:
        as_key_list(3, "features")  # type: ignore[arg-type]
    assert _msg(err) == "features= takes a key name or a list of key names, got 3"
    with pytest.raises(SchemaError) as err:
        as_key_list(["a", 3], "tags")  # type: ignore[list-item]
    assert _msg(err) == "tags= takes key names (str), got 3"


def test_is_list_type() -> None:
    assert is_list_type(pa.list_(pa.int8())) is True
    assert is_list_type(pa.large_list(pa.int8())) is True
    assert is_list_type(pa.list_(pa.int8(), 2)) is True
    assert is_list_type(pa.int8()) is False
    assert is_list_type(pa.string()) is False


def test_lists_to_numpy_values_and_shapes() -> None:
    out = lists_to_numpy("v", pa.array([[[1.0, 2.0]], [[3.0, 4.0]], [[5.0, 6.0]]]))
    np.testing.assert_array_equal(out, np.arange(1.0, 7.0).reshape(3, 1, 2))
    chunked = pa.chunked_array([pa.array([[1, 2]]), pa.array([[3, 4]])])
    np.testing.assert_array_equal(lists_to_numpy("v", chunked), [[1, 2], [3, 4]])
    empty = lists_to_numpy("v", pa.array([[], []], pa.list_(pa.float64())))
    assert empty.shape == (2, 0)
    assert lists_to_numpy("v", pa.array([], pa.list_(pa.float64()))).shape == (0, 0)


def test_lists_to_numpy_errors_in_full() -> None:
    with pytest.raises(DataError) as err:
        lists_to_numpy("v", pa.array([[1.0, 2.0], [3.0, 4.0], [5.0]]))
    assert _msg(err) == f"key 'v' has ragged list data: per-sample lengths [1, 2] (row 2 has 1); {_RAGGED}"
    with pytest.raises(DataError) as err:  # ragged at the second level: no row named
        lists_to_numpy("v", pa.array([[[1.0], [2.0]], [[1.0, 2.0], [3.0]]]))
    assert _msg(err) == f"key 'v' has ragged list data: per-sample lengths [1, 2]; {_RAGGED}"
    with pytest.raises(DataError) as err:
        lists_to_numpy("v", pa.array([[1.0], None, None]))
    assert _msg(err) == "key 'v' has 2 missing list cell(s); fill or drop those rows first"
    with pytest.raises(DataError) as err:
        lists_to_numpy("v", pa.array([[1.0], [None]]))
    assert _msg(err) == "key 'v' has 1 missing value(s) inside its lists; fill them first"
    lengths = pa.array([[0.0] * i for i in range(1, 8)])
    with pytest.raises(DataError) as err:  # at most five lengths listed
        lists_to_numpy("w", lengths)
    assert (
        _msg(err)
        == f"key 'w' has ragged list data: per-sample lengths [1, 2, 3, 4, 5] (row 1 has 2); {_RAGGED}"
    )


def test_numpy_of() -> None:
    np.testing.assert_array_equal(_numpy_of("v", pa.array([1.5, 2.5])), [1.5, 2.5])
    np.testing.assert_array_equal(_numpy_of("v", pa.array([[1, 2], [3, 4]])), [[1, 2], [3, 4]])
    cells = np.empty(2, dtype=object)
    cells[0], cells[1] = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    stacked = _numpy_of("v", cells)
    assert stacked.dtype == np.float64
    np.testing.assert_array_equal(stacked, [[1.0, 2.0], [3.0, 4.0]])
    assert _numpy_of("v", np.array([], dtype=object)).shape == (0,)
    strings = _numpy_of("v", np.array(["a", "b"], dtype=object))
    assert strings.dtype == object
    with pytest.raises(DataError) as err:
        _numpy_of("v", [[1, 2], [3]])
    assert _msg(err).startswith("key 'v' has ragged data (")
    assert _msg(err).endswith(f"); {_RAGGED}")
    cells[1] = np.zeros(3)
    with pytest.raises(DataError) as err:
        _numpy_of("v", cells)
    assert _msg(err) == f"key 'v' has ragged data: per-sample lengths [2, 3]; {_RAGGED}"


def test_is_missing() -> None:
    assert _is_missing(None) is True
    assert _is_missing(float("nan")) is True
    assert _is_missing(pd.NA) is True
    assert _is_missing("a") is False
    assert _is_missing(0) is False
    assert _is_missing(np.array([1, 2])) is True  # ambiguous truth value: not a scalar tag


def test_primitive_round_trips() -> None:
    bools = np.array([True, False, True, True, False, False, False, True, True, False])
    col = _primitive_to_arrow(bools)
    assert col.type == pa.bool_()
    assert col.to_pylist() == bools.tolist()
    np.testing.assert_array_equal(_primitive_to_numpy(col, False), bools)
    np.testing.assert_array_equal(_primitive_to_numpy(col.slice(3, 5), False), bools[3:8])
    big = np.array([1.5, -2.0, 3.25], dtype=">f8")
    col = _primitive_to_arrow(big)
    assert col.type == pa.float64()
    assert col.to_pylist() == [1.5, -2.0, 3.25]
    ints = pa.array([1, 2, 3, 4, 5], pa.int32()).slice(2, 2)
    out = _primitive_to_numpy(ints, True)
    assert out.dtype == np.int32
    assert out.tolist() == [3, 4]
    with_nulls = pa.array([1.0, None, 3.0])
    np.testing.assert_array_equal(_primitive_to_numpy(with_nulls, False), [1.0, np.nan, 3.0])


def test_to_arrow_column_types_and_metadata() -> None:
    col, field = to_arrow_column("features", "v", np.arange(12, dtype=np.int16).reshape(3, 2, 2))
    assert field.name == "features.v.raw"
    assert field.type == pa.list_(pa.int16(), 4)
    assert field.metadata == {b"mml.shape": b"[2, 2]"}
    assert col.to_pylist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    col, field = to_arrow_column("targets", "y", np.array([1.0, 2.0], dtype=np.float16))
    assert field.type == pa.float32()
    assert field.metadata is None
    col, field = to_arrow_column("features", "b", [True, False])
    assert field.type == pa.bool_()
    assert col.to_pylist() == [True, False]
    col, field = to_arrow_column("tags", "c", pa.chunked_array([pa.array(["a"]), pa.array(["b"])]))
    assert (field.name, field.type, col.to_pylist()) == ("tags.c.raw", pa.string(), ["a", "b"])
    col, field = to_arrow_column("tags", "c", pa.array(["x"], pa.large_string()))
    assert field.type == pa.large_string()
    col, field = to_arrow_column("tags", "c", np.array([1, "a"], dtype=object))
    assert (field.type, col.to_pylist()) == (pa.string(), ["1", "a"])
    col, field = to_arrow_column("tags", "c", np.array(["p", "q"]))
    assert (field.type, col.to_pylist()) == (pa.string(), ["p", "q"])
    col, field = to_arrow_column("features", "f", np.asfortranarray(np.arange(6.0).reshape(3, 2)))
    assert col.to_pylist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]


def test_to_arrow_column_errors_in_full() -> None:
    cases = [
        (
            ("features", "s", pa.array(["a"])),
            "features key 's' holds strings; features and targets must be numeric",
        ),
        (
            ("targets", "s", pa.array(["a"], pa.large_string())),
            "targets key 's' holds strings; features and targets must be numeric",
        ),
        (("tags", "s", pa.array(["a", None, None])), "tag 's' has 2 missing values; fill them first"),
        (("tags", "s", 5), "key 's' is a single value; give one value per sample"),
        (
            ("features", "s", np.array(["a"])),
            "features key 's' holds <U1 values; features and targets must be numeric (encode it, or pass it as a tag)",
        ),
        (
            ("targets", "s", np.array([b"a"])),
            "targets key 's' holds |S1 values; features and targets must be numeric (encode it, or pass it as a tag)",
        ),
        (
            ("tags", "s", np.array([["a"]])),
            "tag 's' holds strings of shape (1,); string tags are scalar per sample",
        ),
        (
            ("tags", "s", np.array(["a", None, float("nan")], dtype=object)),
            "tag 's' has 2 missing values; fill them first",
        ),
        (
            ("features", "s", np.array([1j])),
            "features key 's' has dtype complex128; only numbers and booleans can be stored (strings are allowed for tags)",
        ),
        (
            ("features", "s", np.array([1, None], dtype=object)),
            "features key 's' has dtype object; only numbers and booleans can be stored (strings are allowed for tags)",
        ),
        (("features", "s", np.zeros((2, 0))), "key 's' has per-sample shape (0,) with no elements"),
    ]
    for args, message in cases:
        with pytest.raises(DataError) as err:
            to_arrow_column(*args)
        assert _msg(err) == message


def test_column_to_numpy() -> None:
    chunked = pa.chunked_array([pa.array([1.0, 2.0]), pa.array([3.0])])
    out = column_to_numpy(chunked, ())
    assert out.tolist() == [1.0, 2.0, 3.0]
    assert not out.flags.writeable
    tensor = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(12.0)), 6)
    np.testing.assert_array_equal(column_to_numpy(tensor, (2, 3)), np.arange(12.0).reshape(2, 2, 3))
    np.testing.assert_array_equal(column_to_numpy(tensor, ()), np.arange(12.0).reshape(2, 6))
    ids = pa.array([b"a" * 16, b"b" * 16, b"c" * 16], pa.binary(16))
    assert column_to_numpy(ids.slice(1), ()).tolist() == [b"b" * 16, b"c" * 16]
    strings = column_to_numpy(pa.chunked_array([pa.array(["x", "y"])]), ())
    assert strings.dtype == object and strings.tolist() == ["x", "y"]
    bools = column_to_numpy(pa.array([True, None, False]), ())
    assert bools.tolist() == [True, None, False]


def test_make_uuids_against_numpy_and_rfc4122() -> None:
    k = key(7)
    ids = make_uuids(3, k).to_pylist()
    words = numpy_rng(k).bit_generator.random_raw(6).astype("<u8")
    raw = bytearray(words.tobytes())
    for i in range(3):
        raw[16 * i + 6] = (raw[16 * i + 6] & 0x0F) | 0x40
        raw[16 * i + 8] = (raw[16 * i + 8] & 0x3F) | 0x80
    assert ids == [bytes(raw[16 * i : 16 * i + 16]) for i in range(3)]
    for b in ids:
        u = uuid.UUID(bytes=b)
        assert u.version == 4
        assert u.variant == uuid.RFC_4122
    assert make_uuids(3, key(8)).to_pylist() != ids
    assert make_uuids(0, k).to_pylist() == []


def test_build_table_uuids_follow_the_label_or_the_key() -> None:
    t = build_table({"x": [1.0, 2.0]}, features=["x"], targets=[], tags=[], label="L", uuid_key=None)
    expected = make_uuids(2, fold_in(key(0), "uuids/L")).to_pylist()
    assert t.column("sample_uuids").to_pylist() == expected
    assert t.schema.field("sample_uuids").type == pa.binary(16)
    assert t.column_names == ["features.x.raw", "sample_uuids"]
    t2 = build_table({"x": [1.0, 2.0]}, features=["x"], targets=[], tags=[], label="L", uuid_key=key(3))
    assert t2.column("sample_uuids").to_pylist() == make_uuids(2, key(3)).to_pylist()
    fs = mml.FeatureSet.from_dict({"x": [1.0, 2.0]}, features="x", label="L")
    assert fs.sample_uuids.tolist() == expected


def test_build_table_column_order_follows_domains() -> None:
    data = {"t": ["a"], "y": [1.0], "b": [2.0], "a": [3.0]}
    t = build_table(data, features=["b", "a"], targets=["y"], tags=["t"], label="L", uuid_key=None)
    assert t.column_names == [
        "features.b.raw",
        "features.a.raw",
        "targets.y.raw",
        "tags.t.raw",
        "sample_uuids",
    ]


def test_build_table_problems_in_full() -> None:
    with pytest.raises(SchemaError) as err:
        build_table(
            {"a": [1], "c": [2]}, features=["a", "b"], targets=["a"], tags=[], label="L", uuid_key=None
        )
    assert _msg(err) == (
        "features= names key 'b', which is not in the data (available: a, c); "
        "key 'a' is listed in both features= and targets=; a key belongs to one domain"
    )
    with pytest.raises(SchemaError) as err:
        build_table({}, features=[], targets=["y"], tags=[], label="L", uuid_key=None)
    assert _msg(err) == (
        "targets= names key 'y', which is not in the data (available: (none)); "
        "no features= given; name at least one feature key"
    )
    with pytest.raises(DataError) as data_err:
        build_table({"a": [1], "b": [1, 2]}, features=["a"], targets=["b"], tags=[], label="L", uuid_key=None)
    assert (
        _msg(data_err)
        == "keys have different numbers of samples: a=1, b=2; every key needs one entry per sample"
    )
    with pytest.raises(DataError) as data_err:
        build_table({"a": []}, features=["a"], targets=[], tags=[], label="L", uuid_key=None)
    assert _msg(data_err) == "FeatureSet 'L' would be empty; give at least one sample"
    with pytest.raises(SchemaError):
        build_table({"a b": [1]}, features=["a b"], targets=[], tags=[], label="L", uuid_key=None)


def test_normalize_table() -> None:
    t = pa.table({"features.v.raw": [[[1, 2, 3]], [[4, 5, 6]]], "tags.c.raw": [["a"], ["b"]], "x": [1, 2]})
    t = t.replace_schema_metadata({b"k": b"v"})
    out = normalize_table(t)
    assert out.schema.field("features.v.raw").type == pa.list_(pa.int64(), 3)
    assert out.schema.field("features.v.raw").metadata == {b"mml.shape": b"[1, 3]"}
    assert out.column("features.v.raw").to_pylist() == [[1, 2, 3], [4, 5, 6]]
    assert out.schema.field("tags.c.raw").type == pa.list_(pa.string())  # left for the schema check
    assert out.schema.metadata == {b"k": b"v"}
    plain = pa.table({"x": [1.0]})
    assert normalize_table(plain) is plain
    fixed = pa.table({"v": pa.FixedSizeListArray.from_arrays(pa.array([1.0, 2.0]), 2)})
    assert normalize_table(fixed) is fixed


def test_normalize_table_goes_on_past_a_column_it_leaves_alone() -> None:
    t = pa.table(
        {
            "tags.c.raw": [["a"], ["b"]],
            "features.v.raw": [[1.0, 2.0], [3.0, 4.0]],
            "features.w.raw": [[1], [2]],
        }
    )
    out = normalize_table(t)
    assert out.schema.field("tags.c.raw").type == pa.list_(pa.string())
    assert out.schema.field("features.v.raw").type == pa.list_(pa.float64(), 2)
    assert out.schema.field("features.w.raw").type == pa.list_(pa.int64(), 1)
    assert out.column("features.v.raw").to_pylist() == [[1.0, 2.0], [3.0, 4.0]]


def test_column_to_numpy_of_nulls_and_slices() -> None:
    ints = column_to_numpy(pa.array([1, None, 3]), ())
    np.testing.assert_array_equal(ints, [1.0, np.nan, 3.0])
    two = column_to_numpy(pa.array([1, None, None, 4]), ())
    np.testing.assert_array_equal(two, [1.0, np.nan, np.nan, 4.0])
    tensor = pa.FixedSizeListArray.from_arrays(pa.array([1.0, None, 3.0, 4.0]), 2)
    np.testing.assert_array_equal(column_to_numpy(tensor, ()), [[1.0, np.nan], [3.0, 4.0]])
    ids = pa.array([b"a" * 16, b"b" * 16, b"c" * 16], pa.binary(16))
    assert column_to_numpy(ids.slice(0, 2), ()).tolist() == [b"a" * 16, b"b" * 16]
    assert column_to_numpy(ids.slice(1, 1), ()).tolist() == [b"b" * 16]


class _Unprintable:
    def __str__(self) -> str:
        raise TypeError("no text")


def test_more_conversions_pinned() -> None:
    # an Arrow number column with nulls becomes NaN (it is not a list)
    col, field = to_arrow_column("features", "x", pa.array([1.0, None]))
    assert field.type == pa.float64()
    np.testing.assert_array_equal(col.to_numpy(zero_copy_only=False), [1.0, np.nan])
    # one sample whose cell is an array
    one = np.empty(1, dtype=object)
    one[0] = np.array([1.0, 2.0])
    assert _numpy_of("v", one).tolist() == [[1.0, 2.0]]
    cells = np.empty(7, dtype=object)
    for i in range(7):
        cells[i] = np.zeros(i + 1)
    with pytest.raises(DataError) as err:
        _numpy_of("v", cells)
    assert _msg(err) == f"key 'v' has ragged data: per-sample lengths [1, 2, 3, 4, 5]; {_RAGGED}"
    # big-endian integers keep their type
    col = _primitive_to_arrow(np.array([1, -2, 300], dtype=">i4"))
    assert col.type == pa.int32() and col.to_pylist() == [1, -2, 300]
    with pytest.raises(DataError) as err:
        to_arrow_column("tags", "t", np.array([_Unprintable(), "a"], dtype=object))
    assert _msg(err) == "tag 't' cannot be stored as strings: no text"


def test_arrow_columns_of_unsupported_types_are_data_errors() -> None:
    # (these raised pyarrow's ArrowInvalid "zero_copy_only was True" before, found by a mutant)
    import datetime
    import decimal

    cases = [
        (
            pa.array([decimal.Decimal("1.5")]),
            "features key 'x' has dtype object; only numbers and booleans can be stored (strings are allowed for tags)",
        ),
        (
            pa.array([b"ab"]),
            "features key 'x' has dtype object; only numbers and booleans can be stored (strings are allowed for tags)",
        ),
        (
            pa.array([datetime.date(2020, 1, 2)], pa.date32()),
            "features key 'x' has dtype datetime64[D]; only numbers and booleans can be stored (strings are allowed for tags)",
        ),
    ]
    for arr, message in cases:
        with pytest.raises(DataError) as err:
            mml.FeatureSet.from_dict({"x": arr}, features="x", label="d")
        assert _msg(err) == message
    col = column_to_numpy(pa.array([1.0, 2.0]), ())
    assert col.tolist() == [1.0, 2.0]
