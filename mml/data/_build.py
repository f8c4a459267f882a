"""Turning user arrays into Arrow columns (and back) with the mml schema.

Scalar keys become primitive columns, tensor keys one fixed-size-list column whose field
metadata records the per-sample shape. Numeric data is converted without copying where
Arrow allows (C-contiguous numpy arrays).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from mml._fields import freeze_new
from mml.data._schema import UUID_COLUMN, column_name, shape_metadata, validate_key
from mml.errors import DataError, SchemaError
from mml.random import Key, fold_in, key, numpy_rng

__all__ = [
    "to_arrow_column",
    "column_to_numpy",
    "make_uuids",
    "build_table",
    "as_key_list",
    "is_list_type",
    "lists_to_numpy",
    "normalize_table",
]


def as_key_list(keys: str | Sequence[str] | None, what: str) -> tuple[str, ...]:
    if keys is None:
        return ()
    if isinstance(keys, str):
        return (keys,)
    try:
        out = tuple(keys)
    except TypeError:
        raise SchemaError(f"{what}= takes a key name or a list of key names, got {keys!r}") from None
    for k in out:
        if not isinstance(k, str):
            raise SchemaError(f"{what}= takes key names (str), got {k!r}")
    return out


def is_list_type(t: pa.DataType) -> bool:
    """Whether an Arrow type is a (variable-length, large or fixed-size) list."""
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))


def lists_to_numpy(name: str, col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow list column (``list<double>``, nested lists, ...) as ``(n, *shape)`` numpy.

    Ordinary Arrow lists (what ``pa.table({"v": [[1.0, 2.0], ...]})`` and
    ``pa.Table.from_pandas`` of array cells make) may have a different length per row; an mml
    key has one shape per sample, so the lengths must agree at every nesting level.

    >>> lists_to_numpy("v", pa.array([[1.0, 2.0], [3.0, 4.0]])).tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    >>> lists_to_numpy("v", pa.array([[1.0, 2.0], [3.0]]))
    Traceback (most recent call last):
    ...
    mml.errors.DataError: key 'v' has ragged list data: per-sample lengths [1, 2] (row 1 has 1); every sample of a key must have the same shape — pad or resample to a common length
    """
    import pyarrow.compute as pc

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n = len(arr)
    shape: list[int] = []
    while is_list_type(arr.type):
        if arr.null_count:
            raise DataError(
                f"key {name!r} has {arr.null_count} missing list cell(s); fill or drop those rows first"
            )
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        uniq = np.unique(lengths)
        if uniq.size > 1:
            row = int(np.flatnonzero(lengths != lengths[0])[0]) if shape == [] else None
            where = f" (row {row} has {int(lengths[row])})" if row is not None else ""
            raise DataError(
                f"key {name!r} has ragged list data: per-sample lengths {uniq[:5].tolist()}{where}; every "
                "sample of a key must have the same shape — pad or resample to a common length"
            )
        shape.append(int(uniq[0]) if uniq.size else 0)
        arr = arr.flatten()
    if arr.null_count:
        raise DataError(
            f"key {name!r} has {arr.null_count} missing value(s) inside its lists; fill them first"
        )
    values = arr.to_numpy(zero_copy_only=False)
    return values.reshape((n, *shape))


def _numpy_of(name: str, value: Any) -> np.ndarray:
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        value = lists_to_numpy(name, value) if is_list_type(value.type) else column_to_numpy(value, ())
    try:
        arr = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise DataError(
            f"key {name!r} has ragged data ({exc}); every sample of a key must have the same shape — "
            "pad or resample to a common length"
        ) from None
    if arr.dtype == object:
        first = arr.flat[0] if arr.size else None
        if isinstance(first, (list, tuple, np.ndarray)):
            try:
                arr = np.stack([np.asarray(v) for v in arr])
            except ValueError:
                lengths = sorted({len(v) for v in arr})
                raise DataError(
                    f"key {name!r} has ragged data: per-sample lengths {lengths[:5]}; every sample of a key "
                    "must have the same shape — pad or resample to a common length"
                ) from None
    return arr


def _is_missing(value: Any) -> bool:
    """None, NaN or pandas.NA (whose comparisons are neither true nor false)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return True


def _primitive_to_arrow(arr: np.ndarray) -> pa.Array:
    """A 1-D numeric or boolean array as Arrow, zero-copy for numbers.

    Built from buffers because ``pa.array(ndarray)`` imports pandas (a quarter second, once per
    process) to check whether ``arr`` is a pandas object.
    """
    if arr.dtype == np.bool_:
        bits = np.packbits(arr, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(arr), [None, pa.py_buffer(bits)])
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return pa.Array.from_buffers(pa.from_numpy_dtype(arr.dtype), len(arr), [None, pa.py_buffer(arr)])


def _primitive_to_numpy(col: pa.Array, zero_copy_only: bool) -> np.ndarray:
    """``col.to_numpy`` without pyarrow's pandas import, for null-free numbers (zero-copy) and booleans."""
    if col.null_count == 0 and (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        dtype = np.dtype(col.type.to_pandas_dtype())
        return np.frombuffer(col.buffers()[1], dtype=dtype, count=len(col) + col.offset)[col.offset :]
    if col.null_count == 0 and pa.types.is_boolean(col.type):
        bits = np.frombuffer(col.buffers()[1], dtype=np.uint8)
        return np.unpackbits(bits, count=len(col) + col.offset, bitorder="little")[col.offset :].view(
            np.bool_
        )
    return col.to_numpy(zero_copy_only=zero_copy_only)


def to_arrow_column(domain: str, name: str, value: Any) -> tuple[pa.Array, pa.Field]:
    """One user key as an Arrow array and field (``(n, *shape)`` → fixed-size list when shape ≠ ())."""
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if isinstance(value, pa.Array) and (
        pa.types.is_string(value.type) or pa.types.is_large_string(value.type)
    ):
        if domain != "tags":
            raise DataError(f"{domain} key {name!r} holds strings; features and targets must be numeric")
        if value.null_count:
            raise DataError(f"tag {name!r} has {value.null_count} missing values; fill them first")
        return value, pa.field(column_name(domain, name), value.type)
    arr = _numpy_of(name, value)
    if arr.ndim == 0:
        raise DataError(f"key {name!r} is a single value; give one value per sample")
    kind = arr.dtype.kind
    if kind in "US" or (kind == "O" and domain == "tags"):
        if domain != "tags":
            raise DataError(
                f"{domain} key {name!r} holds {arr.dtype} values; features and targets must be numeric "
                f"(encode it, or pass it as a tag)"
            )
        if arr.ndim != 1:
            raise DataError(
                f"tag {name!r} holds strings of shape {arr.shape[1:]}; string tags are scalar per sample"
            )
        missing = sum(_is_missing(v) for v in arr) if kind == "O" else 0
        if missing:
            raise DataError(f"tag {name!r} has {missing} missing values; fill them first")
        try:
            col = pa.array(arr.astype(str), type=pa.string())
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise DataError(f"tag {name!r} cannot be stored as strings: {exc}") from None
        return col, pa.field(column_name(domain, name), pa.string())
    if kind not in "biuf":
        raise DataError(
            f"{domain} key {name!r} has dtype {arr.dtype}; only numbers and booleans can be stored "
            "(strings are allowed for tags)"
        )
    if kind == "f" and arr.dtype.itemsize < 4:
        arr = arr.astype(np.float32)
    arr = np.ascontiguousarray(arr)
    shape = arr.shape[1:]
    if not shape:
        col = _primitive_to_arrow(arr)
        return col, pa.field(column_name(domain, name), col.type)
    width = int(np.prod(shape))
    if width == 0:
        raise DataError(f"key {name!r} has per-sample shape {shape} with no elements")
    flat = _primitive_to_arrow(arr.reshape(-1))
    col = pa.FixedSizeListArray.from_arrays(flat, width)
    return col, pa.field(column_name(domain, name), col.type, metadata=shape_metadata(shape))


def column_to_numpy(col: pa.Array | pa.ChunkedArray, shape: tuple[int, ...]) -> np.ndarray:
    """A column as a numpy array of shape ``(n, *shape)``; zero-copy when Arrow allows.

    The result is read-only.
    """
    if isinstance(col, pa.ChunkedArray):
        col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    if pa.types.is_fixed_size_list(col.type):
        values = col.flatten()
        out = _primitive_to_numpy(values, zero_copy_only=False)
        width = col.type.list_size
        shape = shape or (width,)
        out = out.reshape((len(col), *shape))
    elif pa.types.is_fixed_size_binary(col.type):
        buf = col.buffers()[1]
        width = col.type.byte_width
        out = np.frombuffer(buf, dtype=f"S{width}", count=len(col) + col.offset)[col.offset :]
    elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        out = np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
    else:
        # null-free numbers and booleans are read zero-copy; anything else (nulls, or an Arrow type
        # a FeatureSet does not store, such as decimals or dates) is converted, for the caller to check
        out = _primitive_to_numpy(col, zero_copy_only=False)
    # a fresh array (a conversion) or a view of immutable Arrow memory: freeze it in place
    return freeze_new(out)


def make_uuids(n: int, k: Key) -> pa.FixedSizeBinaryArray:
    """``n`` random version-4 UUIDs (16 bytes each) derived from the key.

    The bytes are ``numpy_rng(k).bytes(16 * n)``, drawn as 64-bit words in one call and
    stamped in place (no copies: about 10 ms per million).

    >>> u = make_uuids(3, key(0))
    >>> len(u), len(set(u.to_pylist())), u[0].as_py() == make_uuids(1, key(0))[0].as_py()
    (3, 3, True)
    """
    words = numpy_rng(k).bit_generator.random_raw(2 * n).astype("<u8", copy=False).reshape(n, 2)
    # Little-endian words: byte 6 gets version 4, byte 8 the RFC 4122 variant.
    words &= np.array([0xFF0FFFFFFFFFFFFF, 0xFFFFFFFFFFFFFF3F], dtype="<u8")
    words |= np.array([0x0040000000000000, 0x0000000000000080], dtype="<u8")
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(words)])


def build_table(
    data: Mapping[str, Any],
    *,
    features: Sequence[str],
    targets: Sequence[str],
    tags: Sequence[str],
    label: str,
    uuid_key: Key | None,
) -> pa.Table:
    """Assemble the Arrow table of a new FeatureSet, validating keys and lengths."""
    domains = {"features": features, "targets": targets, "tags": tags}
    seen: dict[str, str] = {}
    problems: list[str] = []
    for domain, keys in domains.items():
        for k in keys:
            validate_key(k)
            if k in seen:
                problems.append(
                    f"key {k!r} is listed in both {seen[k]}= and {domain}=; a key belongs to one domain"
                )
            seen[k] = domain
            if k not in data:
                available = ", ".join(sorted(map(str, data))) or "(none)"
                problems.append(
                    f"{domain}= names key {k!r}, which is not in the data (available: {available})"
                )
    if not features:
        problems.append("no features= given; name at least one feature key")
    if problems:
        raise SchemaError("; ".join(problems))
    arrays: list[pa.Array] = []
    fields: list[pa.Field] = []
    lengths: dict[str, int] = {}
    for domain, keys in domains.items():
        for k in keys:
            col, field = to_arrow_column(domain, k, data[k])
            arrays.append(col)
            fields.append(field)
            lengths[k] = len(col)
    if len(set(lengths.values())) > 1:
        raise DataError(
            "keys have different numbers of samples: "
            + ", ".join(f"{k}={n}" for k, n in lengths.items())
            + "; every key needs one entry per sample"
        )
    n = next(iter(lengths.values()))
    if n == 0:
        raise DataError(f"FeatureSet {label!r} would be empty; give at least one sample")
    ukey = uuid_key if uuid_key is not None else fold_in(key(0), f"uuids/{label}")
    arrays.append(make_uuids(n, ukey))
    fields.append(pa.field(UUID_COLUMN, pa.binary(16)))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def normalize_table(table: pa.Table) -> pa.Table:
    """A table in the mml schema with ordinary list columns made fixed-size (shape metadata set).

    Parquet and pandas round trips can turn fixed-size lists into ordinary ones; a tensor key
    has one shape per sample, so uniform lists convert back (ragged ones raise
    :class:`~mml.errors.DataError` naming the column). Other columns are kept as they are.

    >>> t = pa.table({"features.v.raw": [[1.0, 2.0], [3.0, 4.0]]})
    >>> normalize_table(t).schema.field("features.v.raw").type
    FixedSizeListType(fixed_size_list<item: double>[2])
    """
    columns = list(table.columns)
    fields = list(table.schema)
    changed = False
    for i, f in enumerate(fields):
        if is_list_type(f.type) and not pa.types.is_fixed_size_list(f.type):
            arr = lists_to_numpy(f.name, table.column(i))
            if arr.ndim < 2 or arr.dtype.kind not in "biuf":
                continue  # left for the schema check to report with the column's name
            shape = arr.shape[1:]
            flat = pa.array(np.ascontiguousarray(arr).reshape(-1))
            columns[i] = pa.FixedSizeListArray.from_arrays(flat, int(np.prod(shape)))
            fields[i] = pa.field(f.name, columns[i].type, metadata=shape_metadata(shape))
            changed = True
    if not changed:
        return table
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=table.schema.metadata))
