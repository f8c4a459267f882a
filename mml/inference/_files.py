"""Predicting file to file (``mml predict``): Parquet or CSV in, Parquet or CSV out, in batches.

Output columns: the id columns first (``keep``; by default every input column the predictor does
not read as a feature, or the ``group_by`` column for long-form input; sample UUIDs as strings),
then per output node ``<node>`` when it predicts one value per sample, ``<node>_<j>`` for each
value of a wider output, and ``<node>_p<class>`` with ``proba=True``. Both files are streamed —
Parquet by row group, CSV by block — and the output appears atomically when complete.

>>> # see docs/inference.md for a trained example; tests/test_cli.py runs it end to end
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mml.data import UUID_COLUMN, column_name
from mml.errors import DataError
from mml.inference._predictor import PredictionBatch, Predictor

__all__ = ["predict_file"]

_FORMATS = (".parquet", ".pq", ".csv")


def _format(path: Path, what: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in _FORMATS and not (what == "input" and path.is_dir()):
        raise DataError(f"{what} {path} must be a .parquet or .csv file (got {suffix or 'no suffix'})")
    return "csv" if suffix == ".csv" else "parquet"


def _input_names(path: Path, fmt: str) -> list[str]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(str(path)).names)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"cannot read Parquet data at {path}: {exc}") from exc
    import pyarrow.csv as pcsv

    try:
        with pcsv.open_csv(str(path)) as reader:
            return list(reader.schema.names)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read CSV data at {path}: {exc}") from exc


def _default_keep(predictor: Predictor, names: Sequence[str], group_by: str | None) -> tuple[str, ...]:
    if group_by is not None:
        return (group_by,)
    read = set()
    for label in predictor.schemas:
        for k in predictor.input_keys(label):
            read |= {k, column_name("features", k, "raw")}
    return tuple(n for n in names if n not in read and n != UUID_COLUMN and not n.startswith("features."))


def _batches(predictor: Predictor, path: Path, fmt: str, **kw: Any) -> Iterator[PredictionBatch]:
    if fmt == "parquet" or kw.get("group_by") is not None:
        data: Any = path
        if fmt == "csv":
            import pyarrow.csv as pcsv

            data = pcsv.read_csv(str(path)).to_pandas()
        yield from predictor.predict_batches(data, **kw)
        return
    import pyarrow.csv as pcsv

    with pcsv.open_csv(str(path)) as reader:
        for block in reader:
            yield from predictor.predict_batches(pa.Table.from_batches([block]), **kw)


def _id_column(name: str, values: np.ndarray) -> pa.Array:
    if name == UUID_COLUMN:
        return pa.array([str(uuid.UUID(bytes=bytes(b))) for b in values], type=pa.string())
    return pa.array(values)


def _table(batch: PredictionBatch, proba: bool) -> pa.Table:
    cols: dict[str, pa.Array] = {name: _id_column(name, np.asarray(v)) for name, v in batch.ids.items()}
    for node, y in batch.outputs.items():
        y2 = y.reshape(len(y), -1)
        if y2.shape[1] == 1 and not proba:
            cols[node] = pa.array(y2[:, 0])
        else:
            for j in range(y2.shape[1]):
                cols[f"{node}_p{j}" if proba else f"{node}_{j}"] = pa.array(y2[:, j])
    return pa.table(cols)


def predict_file(
    predictor: Predictor,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    batch_size: int | None = None,
    group_by: str | None = None,
    sort_by: str | None = None,
    keep: Sequence[str] | None = None,
    proba: bool = False,
) -> int:
    """Write the predictions for the rows of ``input_path`` to ``output_path``; returns the row count."""
    src, dst = Path(input_path), Path(output_path)
    if not src.exists():
        raise DataError(f"input {src} does not exist")
    in_fmt, out_fmt = _format(src, "input"), _format(dst, "output")
    gb = predictor.group_by if group_by is None else group_by
    ids = tuple(keep) if keep is not None else _default_keep(predictor, _input_names(src, in_fmt), gb)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    writer: Any = None
    rows = 0
    try:
        for batch in _batches(
            predictor,
            src,
            in_fmt,
            batch_size=batch_size,
            group_by=group_by,
            sort_by=sort_by,
            keep=ids,
            proba=proba,
        ):
            table = _table(batch, proba)
            if writer is None:
                if out_fmt == "parquet":
                    import pyarrow.parquet as pq

                    writer = pq.ParquetWriter(str(tmp), table.schema)
                else:
                    import pyarrow.csv as pcsv

                    writer = pcsv.CSVWriter(str(tmp), table.schema)
            writer.write_table(table.cast(writer.schema) if out_fmt == "parquet" else table)
            rows += batch.n
        if writer is None:
            raise DataError(f"input {src} has no rows to predict")
        writer.close()
        writer = None
        os.replace(tmp, dst)
    finally:
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
    return rows
