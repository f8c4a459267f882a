"""Applying a FeatureSet's fitted transforms to new raw data, purely.

:func:`schema_of` keeps what a pipeline needs of a FeatureSet and nothing else: a table with
the chosen columns and **no rows** (keys, per-sample shapes, dtypes), and the scaler records of
those keys with their fitted params. :func:`transform_arrays` replays those records on new raw
arrays exactly as ``fit_transform`` computed the stored ``transformed`` columns (same functions,
same params, same dtype round trip), so a row gives the same bits whether it was in the
training FeatureSet or arrives later. :func:`transform_like` returns the result as a FeatureSet.

>>> import mml, numpy as np
>>> fs = mml.scalers.fit_transform(mml.FeatureSet.from_dict({"x": [0.0, 5.0, 10.0], "y": [1.0, 2.0, 3.0]}, features="x",
...                               targets="y", label="toy"), "minmax", fit_on=None)
>>> new = transform_like(fs, {"x": [2.5, 20.0]})
>>> new.column_array("features", "x").tolist()
[0.25, 2.0]
>>> new.records == fs.records
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import pyarrow as pa

from mml.data import UUID_COLUMN, FeatureSet, column_name
from mml.errors import SchemaError
from mml.inference._inputs import DEFAULT_BATCH_SIZE, read_chunks
from mml.scalers import ScalerRecord

__all__ = ["schema_of", "scaler_records", "scaler_chain", "transform_arrays", "transform_like"]

_DOMAINS = ("features", "targets", "tags")


def scaler_records(fs: FeatureSet) -> list[ScalerRecord]:
    """The scaler records of ``fs``, in the order applied."""
    return [r for r in fs.records if isinstance(r, ScalerRecord)]


def scaler_chain(fs: FeatureSet, domain: str, key: str) -> list[ScalerRecord]:
    """The scaler records of ``fs`` that touched ``domain`` key ``key``, in the order applied."""
    return [r for r in fs.records if isinstance(r, ScalerRecord) and r.domain == domain and key in r.keys]


def _restrict(record: ScalerRecord, keys: set[str]) -> ScalerRecord | None:
    idx = [i for i, k in enumerate(record.keys) if k in keys]
    if not idx:
        return None
    if len(idx) == len(record.keys):
        return record
    return attrs.evolve(
        record,
        keys=tuple(record.keys[i] for i in idx),
        params=tuple(record.params[i] for i in idx),
        input_reps=tuple(record.input_reps[i] for i in idx),
    )


def schema_of(fs: FeatureSet, pairs: Sequence[tuple[str, str]]) -> FeatureSet:
    """A row-less FeatureSet with the ``(domain, key)`` columns of ``fs`` and their scaler records.

    Every representation of each key is kept (so ``resolve_rep`` answers as on ``fs``), the
    records are cut down to these keys, and the table metadata notes which float columns held
    NaN in ``fs`` (those may hold NaN in new data too). Splits and splitter records are dropped.

    >>> import mml
    >>> fs = mml.FeatureSet.from_dict({"a": [1.0, 2.0], "b": [3.0, 4.0]}, features=["a", "b"], label="t")
    >>> s = schema_of(mml.scalers.fit_transform(fs, "standard", fit_on=None), [("features", "a")])
    >>> len(s), s.keys("features"), s.records[0].keys
    (0, ('a',), ('a',))
    """
    names: list[str] = []
    meta: dict[bytes, bytes] = {}
    for domain, key in pairs:
        if key not in fs.keys(domain):
            raise SchemaError(f"FeatureSet {fs.label!r} has no {domain} key {key!r}")
        for rep in fs.reps(domain, key):
            names.append(column_name(domain, key, rep))
        raw = fs.column_array(domain, key, "raw")
        if raw.dtype.kind == "f" and bool(np.isnan(raw).any()):
            meta[f"mml.nan.{domain}.{key}".encode()] = b"1"
    table = fs.table.select([*dict.fromkeys(names), UUID_COLUMN]).slice(0, 0)
    table = table.replace_schema_metadata(meta or None)
    wanted: dict[str, set[str]] = {}
    for domain, key in pairs:
        wanted.setdefault(domain, set()).add(key)
    records = []
    for r in fs.records:
        if isinstance(r, ScalerRecord) and r.domain in wanted:
            cut = _restrict(r, wanted[r.domain])
            if cut is not None:
                records.append(cut)
    return FeatureSet(label=fs.label, table=table, records=tuple(records))


def _stored(values: np.ndarray) -> np.ndarray:
    """``values`` as a FeatureSet column stores them (half floats widen to float32)."""
    if values.dtype.kind == "f" and values.dtype.itemsize < 4:
        return values.astype(np.float32)
    return values


def transform_arrays(
    schema: FeatureSet, domain: str, arrays: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The ``transformed`` values of raw ``arrays`` (key → ``(n, *shape)``) through ``schema``'s records.

    Keys without records come back unchanged (their ``raw`` values).

    >>> import mml, numpy as np
    >>> fs = mml.scalers.fit_transform(mml.FeatureSet.from_dict({"x": [1.0, 3.0]}, features="x", label="t"),
    ...     "standard", fit_on=None)
    >>> transform_arrays(fs, "features", {"x": np.array([2.0, 5.0])})["x"].tolist()
    [0.0, 3.0]
    """
    out = {}
    for key, x in arrays.items():
        for r in scaler_chain(schema, domain, key):
            x = _stored(r.scaler.apply(r.params_of(key), x))
        out[key] = x
    return out


def transform_like(
    fs: FeatureSet,
    data: Any,
    *,
    group_by: str | None = None,
    sort_by: str | None = None,
    label: str | None = None,
) -> FeatureSet:
    """New raw ``data`` as a FeatureSet transformed the way ``fs`` was: same keys, same fitted params.

    ``data`` is what :meth:`mml.inference.Predictor.predict` takes (a DataFrame — in long form
    with ``group_by``/``sort_by`` —, a mapping of arrays, an Arrow table, a Parquet path or a
    FeatureSet). Every feature key of ``fs`` must be present and shaped as in ``fs``; targets and
    tags are taken when present. The result has fresh sample UUIDs, no splits, and ``fs``'s scaler
    records (cut to the keys present), so ``inverse_transform`` maps its outputs back to raw
    units. ``fs`` is not changed.

    >>> import mml
    >>> fs = mml.scalers.fit_transform(mml.FeatureSet.from_dict({"x": [0.0, 4.0]}, features="x", label="t"),
    ...     "minmax", fit_on=None)
    >>> transform_like(fs, {"x": [1.0]}).column_array("features", "x").tolist()
    [0.25]
    """
    features = fs.keys("features")
    optional = [(d, k) for d in ("targets", "tags") for k in fs.keys(d)]
    pairs = [("features", k) for k in features] + optional
    schema = schema_of(fs, pairs)
    parts: dict[tuple[str, str], list[np.ndarray]] = {}
    for chunk in read_chunks(
        data,
        schema,
        features,
        batch_size=DEFAULT_BATCH_SIZE,
        group_by=group_by,
        sort_by=sort_by,
        optional=optional,
    ):
        for d in _DOMAINS:
            for k in fs.keys(d):
                if k in chunk.arrays:
                    parts.setdefault((d, k), []).append(chunk.arrays[k])
    raw = {p: np.concatenate(v) for p, v in parts.items()}
    by_domain = {d: [k for (dd, k) in raw if dd == d] for d in _DOMAINS}
    out = FeatureSet.from_dict(
        {k: v for (_, k), v in raw.items()},
        features=by_domain["features"],
        targets=by_domain["targets"],
        tags=by_domain["tags"],
        label=label or fs.label,
    )
    present = schema_of(fs, list(raw))
    table = out.table
    for domain in ("features", "targets"):
        keys = [k for k in by_domain[domain] if scaler_chain(present, domain, k)]
        values = transform_arrays(present, domain, {k: raw[(domain, k)] for k in keys})
        for k, v in values.items():
            table = _with_transformed(table, domain, k, v)
    return FeatureSet(label=out.label, table=table, records=present.records)


def _with_transformed(table: pa.Table, domain: str, key: str, values: np.ndarray) -> pa.Table:
    from mml.data import shape_metadata, to_arrow_column

    col, _ = to_arrow_column(domain, key, values)
    meta = shape_metadata(values.shape[1:]) if values.ndim > 1 else None
    field = pa.field(column_name(domain, key, "transformed"), col.type, metadata=meta)
    at = table.column_names.index(column_name(domain, key, "raw")) + 1
    return table.add_column(at, field, col)
