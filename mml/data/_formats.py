"""A FeatureSet from other formats and back: dicts of arrays, Arrow, Parquet and pandas.

:class:`~mml.data.FeatureSet` inherits these constructors and exporters from
:class:`FeatureSetFormats`; they hold no state of their own. The value itself — its schema,
reading, splits and equality — lives in :mod:`mml.data._featureset`.

>>> import pyarrow as pa
>>> from mml.data import FeatureSet
>>> fs = FeatureSet.from_arrow(pa.table({"x": [1.0, 2.0]}), features="x", label="t")
>>> FeatureSet.from_arrow(fs.to_arrow(), label="t") == fs
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pyarrow as pa

from mml.data._build import as_key_list, build_table, normalize_table
from mml.data._schema import UUID_COLUMN
from mml.errors import DataError, SchemaError
from mml.random import Key

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["FeatureSetFormats"]


class FeatureSetFormats:
    """The constructors (``from_*``) and exporters (``to_*``) of :class:`~mml.data.FeatureSet`."""

    __slots__ = ()

    label: str
    table: pa.Table

    if TYPE_CHECKING:  # what FeatureSet provides

        def __init__(self, *, label: str, table: pa.Table) -> None: ...

        def uuid_strings(self, indices: np.ndarray | None = None) -> list[str]: ...

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        features: str | Sequence[str],
        targets: str | Sequence[str] = (),
        tags: str | Sequence[str] = (),
        label: str,
        key: Key | None = None,
    ) -> Self:
        """Build from a mapping of key → array-like with one entry per sample.

        An entry may be a scalar per sample (shape ``(n,)``) or a tensor per sample
        (``(n, *shape)``, stored as one fixed-shape column). ``key`` seeds the sample UUIDs
        (default: derived from the label, so the same data and label give the same UUIDs).

        >>> from mml.data import FeatureSet
        >>> FeatureSet.from_dict({"x": [1.0, 2.0]}, features="x", label="a").keys("features")
        ('x',)
        """
        table = build_table(
            data,
            features=as_key_list(features, "features"),
            targets=as_key_list(targets, "targets"),
            tags=as_key_list(tags, "tags"),
            label=label,
            uuid_key=key,
        )
        return cls(label=label, table=table)

    @classmethod
    def from_arrow(
        cls,
        table: pa.Table,
        *,
        features: str | Sequence[str] | None = None,
        targets: str | Sequence[str] = (),
        tags: str | Sequence[str] = (),
        label: str,
        key: Key | None = None,
    ) -> Self:
        """Build from an Arrow table whose columns are named by key.

        A table that already follows the mml schema (e.g. written by :meth:`to_parquet`) is
        taken as it is when ``features`` is not given; its column types are checked (a
        :class:`~mml.errors.SchemaError` names each bad column) and ordinary list columns of
        uniform length become fixed-size ones. Ordinary Arrow list columns (what
        ``pa.table({"v": [[1.0, 2.0], ...]})`` or ``pa.Table.from_pandas`` of array cells
        make) become tensor keys when every row has the same length, else a
        :class:`~mml.errors.DataError` names the key and the lengths.

        >>> from mml.data import FeatureSet
        >>> import pyarrow as pa
        >>> FeatureSet.from_arrow(pa.table({"x": [1.0, 2.0], "y": [3.0, 4.0]}), features=["x"],
        ...                       targets=["y"], label="t").keys("targets")
        ('y',)
        >>> FeatureSet.from_arrow(pa.table({"v": [[1.0, 2.0], [3.0, 4.0]]}), features="v", label="l").key_shape("features", "v")
        (2,)
        """
        if features is None:
            if UUID_COLUMN not in table.column_names:
                raise SchemaError(
                    "features= is required unless the table already follows the mml schema "
                    f"(columns like 'features.x.raw' and {UUID_COLUMN!r})"
                )
            return cls(label=label, table=normalize_table(table))
        data = {name: table.column(name) for name in table.column_names}
        return cls.from_dict(data, features=features, targets=targets, tags=tags, label=label, key=key)

    @classmethod
    def from_parquet(
        cls,
        path: str | os.PathLike[str],
        *,
        features: str | Sequence[str] | None = None,
        targets: str | Sequence[str] = (),
        tags: str | Sequence[str] = (),
        label: str | None = None,
        key: Key | None = None,
    ) -> Self:
        """Build from a Parquet file or dataset directory (see :meth:`from_arrow`)."""
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"cannot read Parquet data at {path}: {exc}") from exc
        meta = dict(table.schema.metadata or {})
        stored_label = meta.pop(b"mml.label", b"").decode()
        if label is None:
            label = stored_label or os.path.splitext(os.path.basename(str(path)))[0]
        # The label lives in the FeatureSet, not the table: drop it so that a round trip is equal.
        table = table.replace_schema_metadata(meta or None)
        # Parquet names list items 'element'; Arrow (and from_dict) names them 'item'.
        fields = [
            f.with_type(pa.list_(f.type.value_type, f.type.list_size))
            if pa.types.is_fixed_size_list(f.type) and f.type.value_field.name != "item"
            else f
            for f in table.schema
        ]
        if any(not f.equals(g, check_metadata=True) for f, g in zip(fields, table.schema)):
            table = table.cast(pa.schema(fields, metadata=table.schema.metadata))
        return cls.from_arrow(table, features=features, targets=targets, tags=tags, label=label, key=key)

    @classmethod
    def from_pandas(
        cls,
        df: pd.DataFrame,
        *,
        features: str | Sequence[str] | None = None,
        targets: str | Sequence[str] = (),
        tags: str | Sequence[str] = (),
        label: str,
        group_by: str | None = None,
        sort_by: str | None = None,
        key: Key | None = None,
    ) -> Self:
        """Build from a DataFrame: one row per sample, or one *group of rows* per sample.

        With ``group_by``, rows sharing a value of that column form one sample (groups in
        sorted order of the group value), ordered within the group by ``sort_by``. A column
        that varies within any group becomes a per-sample array (groups must then have equal
        sizes); a column constant within every group becomes one scalar per sample. The
        group column becomes a tag unless it is listed elsewhere.

        >>> from mml.data import FeatureSet
        >>> import pandas as pd
        >>> df = pd.DataFrame({"cell": [1, 1, 2, 2], "t": [1, 0, 0, 1], "v": [3.0, 2.0, 5.0, 6.0],
        ...                    "soh": [0.9, 0.9, 0.8, 0.8]})
        >>> fs = FeatureSet.from_pandas(df, features=["v"], targets=["soh"], label="c",
        ...                             group_by="cell", sort_by="t")
        >>> fs.to_numpy("features").tolist(), fs.to_numpy("targets").ravel().tolist()
        ([[2.0, 3.0], [5.0, 6.0]], [0.9, 0.8])

        Without ``features=`` the frame must be one :meth:`to_pandas` wrote (columns named
        ``domain.key.rep`` and ``sample_uuids``): the FeatureSet comes back with the same
        table and UUIDs (splits and records are not part of a frame).

        >>> FeatureSet.from_pandas(fs.to_pandas(), label="c").table.equals(fs.table)
        True
        """
        if features is None:
            from mml.data._pandas import table_from_mml_frame

            extra = [
                n
                for n, v in (
                    ("targets", targets),
                    ("tags", tags),
                    ("group_by", group_by),
                    ("sort_by", sort_by),
                    ("key", key),
                )
                if v not in ((), None)
            ]
            if extra:
                raise SchemaError(
                    f"from_pandas without features= reads a frame from to_pandas as it is; "
                    f"{', '.join(extra)}= cannot be combined with it (give features= to pick keys)"
                )
            return cls(label=label, table=table_from_mml_frame(df))
        feats = as_key_list(features, "features")
        targs = as_key_list(targets, "targets")
        tag_keys = as_key_list(tags, "tags")
        wanted = [*feats, *targs, *tag_keys]
        missing = [c for c in [*wanted, *(c for c in (group_by, sort_by) if c)] if c not in df.columns]
        if missing:
            raise SchemaError(
                f"column(s) {missing} are not in the DataFrame (columns: {', '.join(map(str, df.columns))})"
            )
        if group_by is None:
            if sort_by is not None:
                df = df.sort_values(sort_by, kind="stable")
            data: dict[str, Any] = {c: df[c].to_numpy() for c in wanted}
            return cls.from_dict(data, features=feats, targets=targs, tags=tag_keys, label=label, key=key)
        import pandas as pd

        codes, uniques = pd.factorize(df[group_by], sort=True)
        if (codes < 0).any():
            raise DataError(f"group_by column {group_by!r} has missing values; fill or drop them first")
        if sort_by is not None:
            order = np.lexsort((df[sort_by].to_numpy(), codes))
        else:
            order = np.argsort(codes, kind="stable")
        n_groups = len(uniques)
        counts = np.bincount(codes, minlength=n_groups)
        sorted_codes = codes[order]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        data = {}
        equal = bool((counts == counts[0]).all())
        for c in wanted:
            values = df[c].to_numpy()[order]
            first = values[starts]
            constant = (
                bool((values == first[sorted_codes]).all())
                if values.dtype.kind != "f"
                else bool(np.array_equal(values, first[sorted_codes], equal_nan=True))
            )
            if constant:
                data[c] = first
            elif not equal:
                raise DataError(
                    f"column {c!r} varies within groups of {group_by!r}, but groups have different sizes "
                    f"({int(counts.min())}..{int(counts.max())} rows); resample to a common length first"
                )
            elif c in tag_keys:
                raise DataError(
                    f"tag {c!r} varies within groups of {group_by!r}; a tag is one value per sample"
                )
            else:
                data[c] = values.reshape(n_groups, int(counts[0]))
        if group_by not in wanted:
            data[group_by] = np.asarray(uniques)
            tag_keys = (*tag_keys, group_by)
        return cls.from_dict(data, features=feats, targets=targs, tags=tag_keys, label=label, key=key)

    # -- export -----------------------------------------------------------------------------

    def to_arrow(self) -> pa.Table:
        """The underlying (immutable) Arrow table."""
        return self.table

    def to_pandas(self) -> pd.DataFrame:
        """A DataFrame with one row per sample, columns named ``domain.key.rep``.

        Tensor keys become columns of arrays (each of the key's per-sample shape); sample UUIDs
        become canonical strings. :meth:`from_pandas` without ``features=`` reads it back:

        >>> from mml.data import FeatureSet
        >>> fs = FeatureSet.from_dict({"x": [1.0, 2.0]}, features="x", label="p")
        >>> list(fs.to_pandas().columns)
        ['features.x.raw', 'sample_uuids']
        >>> FeatureSet.from_pandas(fs.to_pandas(), label="p") == fs
        True
        """
        from mml.data._pandas import table_to_pandas

        return table_to_pandas(self.table, self.uuid_strings())

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the table (not splits or records — use ``mml.save`` for those) atomically."""
        import pyarrow.parquet as pq

        meta = dict(self.table.schema.metadata or {})
        meta[b"mml.label"] = self.label.encode()
        tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
        try:
            pq.write_table(self.table.replace_schema_metadata(meta), tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
