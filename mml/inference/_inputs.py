"""Reading new raw data for a fitted pipeline: any source, checked against a schema, in chunks.

A *schema* is a FeatureSet whose table describes the columns a pipeline reads (keys, per-sample
shapes, dtypes); it may have no rows. :func:`read_chunks` turns a source — a pandas DataFrame
(one row per sample, or the long ``group_by``/``sort_by`` form), a mapping of arrays, an Arrow
table, a Parquet path or a FeatureSet — into a stream of :class:`Chunk` values of at most
``batch_size`` samples, each key checked against the schema: present, numeric, the right
per-sample shape, castable to the training dtype, and free of NaN where the training data had
none. Parquet files are streamed by row group, so memory stays bounded by the batch size.

>>> import mml, numpy as np
>>> schema = mml.FeatureSet.from_dict({"x": np.zeros((2, 3), np.float32)}, features="x", label="s")
>>> [c.arrays["x"].shape for c in read_chunks({"x": np.ones((5, 3))}, schema, ("x",), batch_size=2)]
[(2, 3), (2, 3), (1, 3)]
>>> next(read_chunks({"x": np.ones((5, 2))}, schema, ("x",)))
Traceback (most recent call last):
...
mml.errors.SchemaError: features key 'x' must hold samples of shape (3,) (dtype float32), got samples of shape (2,); give data shaped like the data the pipeline was fitted on
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow as pa

from mml.data import UUID_COLUMN, FeatureSet, column_name, column_to_numpy
from mml.errors import DataError, SchemaError

__all__ = ["Chunk", "read_chunks", "check_array", "DEFAULT_BATCH_SIZE"]

DEFAULT_BATCH_SIZE = 65536


@attrs.frozen
class Chunk:
    """Up to ``batch_size`` samples of a source: checked raw arrays per key, and pass-through ids.

    ``ids`` holds the columns that identify samples (the ``group_by`` values, the sample UUIDs,
    or columns asked for with ``keep=``), for writing beside the predictions.
    """

    arrays: Mapping[str, np.ndarray]
    ids: Mapping[str, np.ndarray]
    n: int


def _expected(schema: FeatureSet, domain: str, key: str) -> str:
    shape = schema.key_shape(domain, key)
    return f"{'scalars' if not shape else f'samples of shape {shape}'} (dtype {schema.key_dtype(domain, key, 'raw')})"


def check_array(schema: FeatureSet, domain: str, key: str, value: Any) -> np.ndarray:
    """``value`` as the raw array of ``key`` in ``schema``'s dtype, or an error naming the key.

    Numbers cast to the training dtype when no information is lost in kind (integers and
    booleans into floats, booleans into integers); other dtypes, other per-sample shapes and NaN
    in a column whose training data had none are :class:`~mml.DataError` / :class:`~mml.SchemaError`.

    >>> import mml, numpy as np
    >>> s = mml.FeatureSet.from_dict({"x": np.zeros(2, np.float32)}, features="x", label="s")
    >>> check_array(s, "features", "x", [1, 2]).dtype
    dtype('float32')
    >>> check_array(s, "features", "x", ["a", "b"])
    Traceback (most recent call last):
    ...
    mml.errors.DataError: features key 'x' must be numeric: expected scalars (dtype float32), got dtype <U1
    """
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        value = _arrow_to_numpy(value, key)
    arr = np.asarray(value)
    if arr.dtype == object and arr.size and isinstance(arr.flat[0], (list, tuple, np.ndarray)):
        try:
            arr = np.stack([np.asarray(v) for v in arr])
        except ValueError:
            raise DataError(
                f"{domain} key {key!r} has ragged samples; expected {_expected(schema, domain, key)}"
            ) from None
    want = schema.key_dtype(domain, key, "raw")
    shape = schema.key_shape(domain, key)
    if arr.ndim == 0:
        raise DataError(f"{domain} key {key!r} is a single value; give one entry per sample")
    if arr.shape[1:] != shape:
        got = "scalars" if arr.ndim == 1 else f"samples of shape {arr.shape[1:]}"
        raise SchemaError(
            f"{domain} key {key!r} must hold {_expected(schema, domain, key)}, got {got}; "
            "give data shaped like the data the pipeline was fitted on"
        )
    if want.kind == "O":  # string tags: any per-sample value, written as given
        return arr
    allowed = {"f": "biuf", "i": "biu", "u": "bu", "b": "b"}.get(want.kind, want.kind)
    if arr.dtype.kind not in allowed:
        what = "numeric" if want.kind in "fiu" else f"of kind {want}"
        raise DataError(
            f"{domain} key {key!r} must be {what}: expected {_expected(schema, domain, key)}, got dtype {arr.dtype}"
        )
    if arr.dtype != want:
        arr = arr.astype(want)
    # a sum is NaN whenever an element is (one cheap pass); only then find the rows
    if want.kind == "f" and np.isnan(np.add.reduce(arr.reshape(-1))) and not _allows_nan(schema, domain, key):
        bad = np.isnan(arr.reshape(len(arr), -1)).any(axis=1) if arr.ndim > 1 else np.isnan(arr)
        if bad.any():  # else the NaN sum came from inf - inf
            rows = np.flatnonzero(bad)[:5].tolist()
            raise DataError(
                f"{domain} key {key!r} has NaN in {int(bad.sum())} sample(s) (first rows {rows}); the data "
                "the pipeline was fitted on had none and its scalers and model cannot handle them — "
                "clean or impute them before predicting"
            )
    return arr


def _allows_nan(schema: FeatureSet, domain: str, key: str) -> bool:
    meta = schema.table.schema.metadata or {}
    return meta.get(f"mml.nan.{domain}.{key}".encode()) == b"1"


def _arrow_to_numpy(col: pa.Array | pa.ChunkedArray, key: str) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        lengths = np.unique(col.value_lengths().to_numpy(zero_copy_only=False))
        if len(lengths) > 1:
            raise DataError(f"key {key!r} has ragged samples (lengths {lengths[:5].tolist()})")
        width = int(lengths[0]) if len(lengths) else 0
        return col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), width)
    if pa.types.is_fixed_size_list(col.type):
        width = col.type.list_size
        return col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), width)
    if col.null_count and (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
        return col.cast(pa.float64()).fill_null(np.nan).to_numpy()
    return col.to_numpy(zero_copy_only=False)


def _column_for(names: Sequence[str], domain: str, key: str) -> str | None:
    for name in (key, column_name(domain, key, "raw")):
        if name in names:
            return name
    return None


def _missing_error(schema: FeatureSet, missing: list[tuple[str, str]], names: Sequence[str]) -> SchemaError:
    wanted = "; ".join(f"{d} key {k!r} ({_expected(schema, d, k)})" for d, k in missing)
    shown = ", ".join(map(str, list(names)[:20])) or "(none)"
    return SchemaError(
        f"the input has no column for {wanted}; name the column by its key (or 'domain.key.raw'). "
        f"Input columns: {shown}"
    )


def _reshape(schema: FeatureSet, domain: str, key: str, arr: np.ndarray) -> np.ndarray:
    """Flat list columns (Parquet, Arrow) take the schema's per-sample shape."""
    shape = schema.key_shape(domain, key)
    if len(shape) > 1 and arr.ndim == 2 and arr.shape[1] == int(np.prod(shape)):
        return arr.reshape(len(arr), *shape)
    return arr


def _from_columns(
    get: Any,
    names: Sequence[str],
    n: int,
    schema: FeatureSet,
    keys: Sequence[tuple[str, str]],
    keep: Sequence[str],
    batch_size: int,
) -> Iterator[Chunk]:
    cols = {}
    missing = []
    for domain, key in keys:
        name = _column_for(names, domain, key)
        if name is None:
            missing.append((domain, key))
        else:
            cols[(domain, key)] = name
    if missing:
        raise _missing_error(schema, missing, names)
    absent = [c for c in keep if c not in names]
    if absent:
        raise SchemaError(f"keep= names column(s) {absent} that the input does not have")
    whole = {k: _reshape(schema, *k, _as_numpy(get(name), k[1])) for k, name in cols.items()}
    ids = {c: _as_numpy(get(c), c) for c in keep}
    if UUID_COLUMN in names and UUID_COLUMN not in ids:
        ids[UUID_COLUMN] = _as_numpy(get(UUID_COLUMN), UUID_COLUMN)
    for start in range(0, max(n, 1), batch_size):
        stop = min(start + batch_size, n)
        arrays = {k: check_array(schema, k[0], k[1], v[start:stop]) for k, v in whole.items()}
        yield Chunk(
            {k[1]: v for k, v in arrays.items()}, {c: v[start:stop] for c, v in ids.items()}, stop - start
        )


def _as_numpy(value: Any, key: str) -> np.ndarray:
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        if pa.types.is_fixed_size_binary(value.type):
            return column_to_numpy(value, ())
        return _arrow_to_numpy(value, key)
    if hasattr(value, "to_numpy"):  # a pandas Series
        value = value.to_numpy()
    return np.asarray(value)


def _parquet_chunks(
    path: Path, schema: FeatureSet, keys: Sequence[tuple[str, str]], keep: Sequence[str], batch_size: int
) -> Iterator[Chunk]:
    import pyarrow.parquet as pq

    try:
        # pre_buffer (pyarrow's default) would read every row group of the file into memory first
        pf = pq.ParquetFile(str(path), pre_buffer=False)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read Parquet data at {path}: {exc}") from exc
    names = pf.schema_arrow.names
    wanted = [c for d, k in keys if (c := _column_for(names, d, k)) is not None]
    extra = [c for c in (*keep, UUID_COLUMN) if c in names and c not in wanted]
    if len(wanted) < len(keys):
        missing = [(d, k) for d, k in keys if _column_for(names, d, k) is None]
        raise _missing_error(schema, missing, names)
    for batch in pf.iter_batches(batch_size=batch_size, columns=[*wanted, *extra]):
        table = pa.Table.from_batches([batch])
        yield from _from_columns(
            table.column, table.column_names, table.num_rows, schema, keys, keep, batch_size
        )


def read_chunks(
    data: Any,
    schema: FeatureSet,
    keys: Sequence[str],
    *,
    domain: str = "features",
    batch_size: int = DEFAULT_BATCH_SIZE,
    group_by: str | None = None,
    sort_by: str | None = None,
    keep: Sequence[str] = (),
    optional: Sequence[tuple[str, str]] = (),
) -> Iterator[Chunk]:
    """Stream ``data`` in chunks of at most ``batch_size`` samples, ``keys`` checked against ``schema``.

    ``optional`` lists further ``(domain, key)`` pairs read when the source has them (e.g. targets).
    With ``group_by`` a DataFrame (or Parquet file) in long form is first grouped into samples as
    :meth:`mml.FeatureSet.from_pandas` does, and the group values become the ``group_by`` id.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise DataError(f"batch_size must be an int >= 1, got {batch_size!r}")
    pairs = [(domain, k) for k in keys]
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise DataError(f"input {path} does not exist")
        if group_by is None:
            pairs += [p for p in optional if _column_for(_parquet_names(path), *p) is not None]
            yield from _parquet_chunks(path, schema, pairs, keep, batch_size)
            return
        import pyarrow.parquet as pq

        data = pq.read_table(str(path)).to_pandas()
    if group_by is not None:
        data = _grouped(data, schema, pairs, optional, group_by, sort_by)
        keep = tuple(dict.fromkeys([*keep, group_by]))
    if isinstance(data, FeatureSet):
        present = [p for p in optional if p[1] in data.keys(p[0])]
        yield from _featureset_chunks(data, schema, [*pairs, *present], keep, batch_size)
        return
    if isinstance(data, pa.Table):
        names = data.column_names
        get: Any = data.column
        n = data.num_rows
    elif hasattr(data, "columns") and hasattr(data, "iloc"):  # a pandas DataFrame
        names = [str(c) for c in data.columns]
        get = data.__getitem__
        n = len(data)
    elif isinstance(data, Mapping):
        names = list(data)
        get = data.__getitem__
        lengths = {
            len(np.asarray(v)) if not isinstance(v, (pa.Array, pa.ChunkedArray)) else len(v)
            for v in data.values()
        }
        if len(lengths) > 1:
            raise DataError(
                f"the input's arrays have different lengths {sorted(lengths)}; give one entry per sample each"
            )
        n = lengths.pop() if lengths else 0
    else:
        raise DataError(
            f"cannot predict from a {type(data).__name__}; give a pandas DataFrame, a dict of arrays, "
            "a pyarrow Table, a Parquet path or a FeatureSet"
        )
    pairs += [p for p in optional if _column_for(names, *p) is not None]
    yield from _from_columns(get, names, n, schema, pairs, keep, batch_size)


def _parquet_names(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(str(path)).names)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read Parquet data at {path}: {exc}") from exc


def _grouped(
    df: Any,
    schema: FeatureSet,
    pairs: Sequence[tuple[str, str]],
    optional: Sequence[tuple[str, str]],
    group_by: str,
    sort_by: str | None,
) -> FeatureSet:
    if not (hasattr(df, "columns") and hasattr(df, "iloc")):
        raise DataError(f"group_by={group_by!r} needs a pandas DataFrame (or a Parquet path) in long form")
    names = [str(c) for c in df.columns]
    missing = [p for p in pairs if p[1] not in names]
    if missing:
        raise _missing_error(schema, missing, names)
    present = [p for p in optional if p[1] in names and p[1] != group_by]
    by_domain: dict[str, list[str]] = {"features": [], "targets": [], "tags": []}
    for d, k in [*pairs, *present]:
        by_domain[d].append(k)
    return FeatureSet.from_pandas(
        df,
        features=by_domain["features"],
        targets=by_domain["targets"],
        tags=[t for t in by_domain["tags"] if t != group_by],
        label=schema.label,
        group_by=group_by,
        sort_by=sort_by,
    )


def _featureset_chunks(
    fs: FeatureSet, schema: FeatureSet, pairs: Sequence[tuple[str, str]], keep: Sequence[str], batch_size: int
) -> Iterator[Chunk]:
    missing = [(d, k) for d, k in pairs if k not in fs.keys(d)]
    if missing:
        raise _missing_error(
            schema, missing, [f"{d}.{k}" for d in ("features", "targets", "tags") for k in fs.keys(d)]
        )
    whole = {(d, k): fs.column_array(d, k, "raw") for d, k in pairs}
    ids = {c: fs.resolve_column_array(c) for c in keep}
    ids[UUID_COLUMN] = fs.sample_uuids
    n = len(fs)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        arrays = {k: check_array(schema, k[0], k[1], v[start:stop]) for k, v in whole.items()}
        yield Chunk(
            {k[1]: v for k, v in arrays.items()}, {c: v[start:stop] for c, v in ids.items()}, stop - start
        )
