"""Column naming and type rules of ``mml.data._schema``, pinned value by value (issue 17)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from mml.data._schema import (
    DATA_DOMAINS,
    DOMAINS,
    REPS,
    SHAPE_META,
    UUID_COLUMN,
    column_name,
    column_type_problem,
    field_shape,
    is_numeric_type,
    parse_column,
    shape_metadata,
    validate_key,
)
from mml.errors import SchemaError

_BAD_KEY = (
    "key {!r} is not allowed: use letters, digits, '_' or '-', starting with a letter or '_' "
    "(no '.', '/', spaces)"
)


def test_constants() -> None:
    assert DATA_DOMAINS == ("features", "targets", "tags")
    assert DOMAINS == ("features", "targets", "tags", "sample_uuids")
    assert REPS == ("raw", "transformed")
    assert UUID_COLUMN == "sample_uuids"
    assert SHAPE_META == b"mml.shape"


@pytest.mark.parametrize("key", ["v", "V", "_x", "a-b", "x1", "A_9-z", "_"])
def test_valid_keys_are_returned(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("key", ["1x", "-a", "a.b", "a/b", "a b", "", "é", "a+b"])
def test_invalid_keys_name_the_rule(key: str) -> None:
    with pytest.raises(SchemaError) as err:
        validate_key(key)
    assert str(err.value) == _BAD_KEY.format(key)


def test_non_string_key() -> None:
    with pytest.raises(SchemaError) as err:
        validate_key(3)  # type: ignore[arg-type]
    assert str(err.value) == "keys are strings, got int 3"


@pytest.mark.parametrize(
    "key",
    ["features", "targets", "tags", "sample_uuids", "raw", "transformed", "outputs", "inputs", "default"],
)
def test_reserved_words(key: str) -> None:
    with pytest.raises(SchemaError) as err:
        validate_key(key)
    assert str(err.value) == (
        f"key {key!r} is a reserved word (default, features, inputs, outputs, raw, sample_uuids, tags, "
        "targets, transformed); rename it"
    )


def test_column_name() -> None:
    assert column_name("features", "v") == "features.v.raw"
    assert column_name("targets", "soh", "transformed") == "targets.soh.transformed"
    assert column_name("tags", "cell", "raw") == "tags.cell.raw"
    with pytest.raises(SchemaError) as err:
        column_name("sample_uuids", "v")
    assert str(err.value) == "unknown domain 'sample_uuids'; use one of features, targets, tags"
    with pytest.raises(SchemaError) as err:
        column_name("features", "v", "scaled")
    assert str(err.value) == "unknown representation 'scaled'; use one of raw, transformed"


def test_parse_column() -> None:
    assert parse_column("features.v.raw") == ("features", "v", "raw")
    assert parse_column("tags.c.transformed") == ("tags", "c", "transformed")
    for bad in ["features.v", "features.v.raw.x", "inputs.v.raw", "features.v.scaled", "v"]:
        with pytest.raises(SchemaError) as err:
            parse_column(bad)
        assert str(err.value) == f"{bad!r} is not an mml column name (domain.key.rep)"


def test_field_shape() -> None:
    assert field_shape(pa.field("f", pa.float64())) == ()
    assert field_shape(pa.field("f", pa.list_(pa.float32(), 5))) == (5,)
    meta = shape_metadata((2, 3))
    assert meta == {b"mml.shape": b"[2, 3]"}
    assert field_shape(pa.field("f", pa.list_(pa.float32(), 6), metadata=meta)) == (2, 3)
    # other metadata does not count as a shape
    assert field_shape(pa.field("f", pa.list_(pa.float32(), 6), metadata={b"other": b"[9]"})) == (6,)
    assert field_shape(pa.field("f", pa.int8(), metadata={b"other": b"1"})) == ()


def test_numeric_types() -> None:
    for t in [pa.int8(), pa.uint64(), pa.float16(), pa.float64(), pa.bool_(), pa.list_(pa.int32(), 3)]:
        assert is_numeric_type(t) is True
    for t in [pa.string(), pa.binary(), pa.list_(pa.string(), 2), pa.list_(pa.float64()), pa.date32()]:
        assert is_numeric_type(t) is False


def _problem(name: str, t: pa.DataType, metadata: dict[bytes, bytes] | None = None) -> str | None:
    return column_type_problem(pa.field(name, t, metadata=metadata), name.split(".")[0])


def test_valid_column_types() -> None:
    assert _problem("sample_uuids", pa.binary(16)) is None
    assert _problem("features.v.raw", pa.float32()) is None
    assert _problem("targets.v.raw", pa.bool_()) is None
    assert _problem("features.v.raw", pa.list_(pa.float32(), 4)) is None
    assert _problem("features.v.raw", pa.list_(pa.float32(), 6), shape_metadata((2, 3))) is None
    assert _problem("tags.v.raw", pa.string()) is None
    assert _problem("tags.v.raw", pa.large_string()) is None
    assert _problem("tags.v.raw", pa.int64()) is None


def test_column_type_problems_in_full() -> None:
    assert _problem("sample_uuids", pa.binary(8)) == (
        "column 'sample_uuids' must hold 16-byte UUIDs (fixed_size_binary[16]), got fixed_size_binary[8]"
    )
    assert _problem("sample_uuids", pa.binary()) == (
        "column 'sample_uuids' must hold 16-byte UUIDs (fixed_size_binary[16]), got binary"
    )
    assert _problem("features.v.raw", pa.list_(pa.string(), 2)) == (
        "column 'features.v.raw' is a list of string; tensor keys hold numbers"
    )
    assert _problem("features.v.raw", pa.list_(pa.float32(), 6), shape_metadata((2, 2))) == (
        "column 'features.v.raw' has shape metadata [2, 2] (4 elements) but lists of 6; fix or drop the "
        "'mml.shape' field metadata"
    )
    assert _problem("features.v.raw", pa.list_(pa.float32(), 6), shape_metadata((3,))) == (
        "column 'features.v.raw' has shape metadata [3] (3 elements) but lists of 6; fix or drop the "
        "'mml.shape' field metadata"
    )
    for t in [pa.list_(pa.float32()), pa.large_list(pa.float32())]:
        assert _problem("features.v.raw", t) == (
            f"column 'features.v.raw' is a variable-length list ({t}); a tensor key needs a fixed-size list "
            "— build with FeatureSet.from_arrow(table), which converts uniform lists"
        )
    assert _problem("features.v.raw", pa.string()) == (
        "column 'features.v.raw' holds string; features hold numbers or booleans"
    )
    assert _problem("targets.v.raw", pa.large_string()) == (
        "column 'targets.v.raw' holds large_string; targets hold numbers or booleans"
    )
    assert _problem("tags.v.raw", pa.binary()) == (
        "column 'tags.v.raw' holds binary; tags hold numbers, booleans or strings"
    )
