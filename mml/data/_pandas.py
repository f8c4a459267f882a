"""FeatureSets to and from pandas: key-named frames in, mml-named frames out and back.

:meth:`FeatureSet.to_pandas` writes one column per Arrow column, named ``domain.key.rep``
(tensor keys as cells holding arrays of the key's per-sample shape) and ``sample_uuids`` as
canonical UUID strings. :meth:`FeatureSet.from_pandas` without ``features=`` reads such a
frame back into the same table (splits and records are not part of a frame: use
:func:`mml.save` for those).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mml.data._build import to_arrow_column
from mml.data._schema import UUID_COLUMN, field_shape, parse_column, shape_metadata
from mml.errors import DataError, SchemaError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["table_to_pandas", "table_from_mml_frame", "is_mml_frame"]


def table_to_pandas(table: pa.Table, uuid_strings: list[str]) -> pd.DataFrame:
    """The frame of an mml table: tensor cells keep their per-sample shape, UUIDs as strings."""
    df = table.to_pandas()
    for field in table.schema:
        shape = field_shape(field)
        if len(shape) > 1:
            flat = np.stack(df[field.name].to_numpy()) if len(df) else np.zeros((0, *shape))
            df[field.name] = list(flat.reshape(len(df), *shape))
    df[UUID_COLUMN] = uuid_strings
    return df


def is_mml_frame(df: pd.DataFrame) -> bool:
    """Whether every column of ``df`` is an mml column name and ``sample_uuids`` is one of them."""
    if UUID_COLUMN not in df.columns:
        return False
    for c in df.columns:
        if c == UUID_COLUMN:
            continue
        try:
            parse_column(str(c))
        except SchemaError:
            return False
    return True


def _uuid_column(values: Any) -> pa.Array:
    out = []
    for row, v in enumerate(values):
        try:
            out.append(v if isinstance(v, bytes) and len(v) == 16 else uuid.UUID(str(v)).bytes)
        except ValueError:
            raise DataError(
                f"column {UUID_COLUMN!r} row {row} holds {v!r}, not a UUID; a frame from "
                "FeatureSet.to_pandas holds canonical UUID strings there"
            ) from None
    return pa.array(out, type=pa.binary(16))


def table_from_mml_frame(df: pd.DataFrame) -> pa.Table:
    """The mml table of a frame written by :meth:`FeatureSet.to_pandas` (columns ``domain.key.rep``)."""
    if not is_mml_frame(df):
        bad = [str(c) for c in df.columns if c != UUID_COLUMN][:5]
        raise SchemaError(
            "features= is required unless the DataFrame came from FeatureSet.to_pandas (every column "
            f"named 'domain.key.rep', plus {UUID_COLUMN!r}); got columns {bad}"
            + ("" if UUID_COLUMN in df.columns else f" and no {UUID_COLUMN!r} column")
        )
    arrays: list[pa.Array] = []
    fields: list[pa.Field] = []
    for c in df.columns:
        if c == UUID_COLUMN:
            arrays.append(_uuid_column(df[c].to_numpy()))
            fields.append(pa.field(UUID_COLUMN, pa.binary(16)))
            continue
        domain, _key, _rep = parse_column(str(c))
        col, field = to_arrow_column(domain, str(c), df[c].to_numpy())
        shape = field_shape(field)
        meta = shape_metadata(shape) if shape else None
        arrays.append(col)
        fields.append(pa.field(str(c), col.type, metadata=meta))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
