"""The FeatureSet: an immutable Arrow table of samples, its named splits and its history.

>>> import mml, numpy as np
>>> fs = mml.FeatureSet.from_dict(
...     {"voltage": np.ones((4, 3), np.float32), "soh": [0.9, 0.8, 0.95, 0.7], "cell": ["a", "a", "b", "b"]},
...     features=["voltage"], targets=["soh"], tags=["cell"], label="cells")
>>> fs.to_numpy("features").shape
(4, 3)
>>> fs2 = fs.with_split("train", [0, 1, 2])
>>> len(fs2["train"]), len(fs)
(3, 4)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import pyarrow as pa

from mml._fields import FrozenDict, arrays_equal, freeze_new, frozen_tuple
from mml.data._build import as_key_list, build_table, column_to_numpy, normalize_table
from mml.data._records import AbstractRecord
from mml.data._schema import (
    DATA_DOMAINS,
    REPS,
    UUID_COLUMN,
    column_name,
    column_type_problem,
    field_shape,
    is_numeric_type,
    parse_column,
)
from mml.data._splits import freeze_splits, report_overlap
from mml.errors import DataError, SchemaError, SplitError
from mml.random import Key

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from mml.data._view import FeatureSetView

__all__ = ["FeatureSet"]

_GATHER_BLOCK = 8192


def _check_label(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not value or any(c in value for c in "./\\:") or value != value.strip():
        raise SchemaError(
            f"FeatureSet label {value!r} is not allowed: use a non-empty name without '.', '/', '\\\\' or ':'"
        )


def _check_table(instance: FeatureSet, attribute: Any, table: pa.Table) -> None:
    if not isinstance(table, pa.Table):
        raise DataError(f"FeatureSet.table must be a pyarrow.Table, got {type(table).__name__}")
    if UUID_COLUMN not in table.column_names:
        raise SchemaError(
            f"the table has no {UUID_COLUMN!r} column; build FeatureSets with FeatureSet.from_*"
        )
    keys: dict[str, str] = {}
    problems = []
    for field in table.schema:
        if field.name == UUID_COLUMN:
            problems.append(column_type_problem(field, UUID_COLUMN))
            continue
        domain, key, _rep = parse_column(field.name)
        if keys.setdefault(key, domain) != domain:
            raise SchemaError(f"key {key!r} appears in both {keys[key]} and {domain}")
        problems.append(column_type_problem(field, domain))
    found = [p for p in problems if p]
    if found:
        raise SchemaError("; ".join(found))


@attrs.frozen(eq=False)
class FeatureSet:
    """An immutable collection of samples (an Arrow table), its named splits and records.

    Build one with :meth:`from_dict`, :meth:`from_pandas`, :meth:`from_arrow` or
    :meth:`from_parquet`. Every operation returns a new FeatureSet; splits are
    :class:`~mml.data.FeatureSetView` objects (row indices, no copied data).
    """

    label: str = attrs.field(validator=_check_label)
    table: pa.Table = attrs.field(validator=_check_table)
    split_indices: Mapping[str, np.ndarray] = attrs.field(factory=FrozenDict, converter=freeze_splits)
    records: tuple[AbstractRecord, ...] = attrs.field(default=(), converter=frozen_tuple)
    _keys: Mapping[str, tuple[str, ...]] = attrs.field(init=False, repr=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        # The schema is fixed with the table: index the keys of each domain once.
        keys: dict[str, list[str]] = {d: [] for d in DATA_DOMAINS}
        for name in self.table.column_names:
            domain, _, rest = name.partition(".")
            if domain in keys:
                k = rest.split(".")[0]
                if k not in keys[domain]:
                    keys[domain].append(k)
        object.__setattr__(self, "_keys", {d: tuple(v) for d, v in keys.items()})
        n = self.table.num_rows
        for name, idx in self.split_indices.items():
            if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
                raise SplitError(f"split {name!r} has row indices outside [0, {n}) or is not 1-D")

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
    ) -> FeatureSet:
        """Build from a mapping of key → array-like with one entry per sample.

        An entry may be a scalar per sample (shape ``(n,)``) or a tensor per sample
        (``(n, *shape)``, stored as one fixed-shape column). ``key`` seeds the sample UUIDs
        (default: derived from the label, so the same data and label give the same UUIDs).

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
    ) -> FeatureSet:
        """Build from an Arrow table whose columns are named by key.

        A table that already follows the mml schema (e.g. written by :meth:`to_parquet`) is
        taken as it is when ``features`` is not given; its column types are checked (a
        :class:`~mml.errors.SchemaError` names each bad column) and ordinary list columns of
        uniform length become fixed-size ones. Ordinary Arrow list columns (what
        ``pa.table({"v": [[1.0, 2.0], ...]})`` or ``pa.Table.from_pandas`` of array cells
        make) become tensor keys when every row has the same length, else a
        :class:`~mml.errors.DataError` names the key and the lengths.

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
    ) -> FeatureSet:
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
    ) -> FeatureSet:
        """Build from a DataFrame: one row per sample, or one *group of rows* per sample.

        With ``group_by``, rows sharing a value of that column form one sample (groups in
        sorted order of the group value), ordered within the group by ``sort_by``. A column
        that varies within any group becomes a per-sample array (groups must then have equal
        sizes); a column constant within every group becomes one scalar per sample. The
        group column becomes a tag unless it is listed elsewhere.

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

    # -- schema -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def n_samples(self) -> int:
        """Number of samples (rows)."""
        return self.table.num_rows

    def keys(self, domain: str = "features") -> tuple[str, ...]:
        """Keys of a domain, in column order.

        >>> FeatureSet.from_dict({"a": [1], "b": [2]}, features=["b", "a"], label="k").keys()
        ('b', 'a')
        """
        try:
            return self._keys[domain]
        except KeyError:
            raise SchemaError(f"unknown domain {domain!r}; use one of {', '.join(DATA_DOMAINS)}") from None

    def domain_of(self, key: str) -> str:
        """The domain a key belongs to."""
        for domain in DATA_DOMAINS:
            if key in self.keys(domain):
                return domain
        raise SchemaError(f"FeatureSet {self.label!r} has no key {key!r}; keys: {self._all_keys_text()}")

    def _all_keys_text(self) -> str:
        return "; ".join(f"{d}: {', '.join(self.keys(d)) or '-'}" for d in DATA_DOMAINS)

    def reps(self, domain: str, key: str) -> tuple[str, ...]:
        """Representations present for a key (``('raw',)`` or ``('raw', 'transformed')``)."""
        return tuple(r for r in REPS if column_name(domain, key, r) in self.table.column_names)

    def _check_key(self, domain: str, key: str) -> None:
        if key not in self.keys(domain):
            raise SchemaError(
                f"FeatureSet {self.label!r} has no {domain} key {key!r}; "
                f"{domain} keys: {', '.join(self.keys(domain)) or '(none)'}"
            )

    def resolve_rep(self, domain: str, key: str, rep: str | None = None) -> str:
        """``rep`` if given (checked), else ``transformed`` when present, else ``raw``."""
        self._check_key(domain, key)
        present = self.reps(domain, key)
        if rep is None:
            return present[-1]
        if rep not in present:
            raise SchemaError(
                f"{domain} key {key!r} of FeatureSet {self.label!r} has no {rep!r} representation "
                f"(present: {', '.join(present)}); fit a scaler first or ask for rep='raw'"
            )
        return rep

    def key_shape(self, domain: str, key: str) -> tuple[int, ...]:
        """Per-sample shape of a key: ``()`` for scalars."""
        self._check_key(domain, key)
        return field_shape(self.table.schema.field(column_name(domain, key, "raw")))

    def key_dtype(self, domain: str, key: str, rep: str | None = None) -> np.dtype:
        """numpy dtype of a key (object for string tags)."""
        rep = self.resolve_rep(domain, key, rep)
        t = self.table.schema.field(column_name(domain, key, rep)).type
        if not is_numeric_type(t):
            return np.dtype(object)
        if pa.types.is_fixed_size_list(t):
            t = t.value_type
        return np.dtype(t.to_pandas_dtype())

    def domain_shape(self, domain: str, keys: Sequence[str] | None = None) -> tuple[int, ...]:
        """Per-sample shape of :meth:`to_numpy` for these keys (the layout rule, without the data)."""
        keys = self.keys(domain) if keys is None else as_key_list(keys, domain)
        shapes = [self.key_shape(domain, k) or (1,) for k in keys]
        if not shapes:
            raise SchemaError(f"FeatureSet {self.label!r} has no {domain} keys")
        if len(shapes) == 1:
            return self.key_shape(domain, keys[0]) or (1,)
        lead = {s[:-1] for s in shapes}
        if len(lead) > 1:
            raise SchemaError(
                f"{domain} keys {list(keys)} have shapes {shapes} that cannot be concatenated along the last "
                "axis; select keys with matching leading dimensions"
            )
        return (*shapes[0][:-1], sum(s[-1] for s in shapes))

    # -- reading ----------------------------------------------------------------------------

    def column_array(
        self, domain: str, key: str, rep: str | None = None, indices: np.ndarray | None = None
    ) -> np.ndarray:
        """One key as a read-only numpy array ``(n, *shape)``; zero-copy for all rows.

        >>> fs = FeatureSet.from_dict({"x": [1.0, 2.0]}, features="x", label="c")
        >>> fs.column_array("features", "x").tolist()
        [1.0, 2.0]
        """
        rep = self.resolve_rep(domain, key, rep)
        shape = self.key_shape(domain, key)
        arr = column_to_numpy(self.table.column(column_name(domain, key, rep)), shape)
        if indices is None:
            return arr
        return freeze_new(arr[indices])

    def resolve_column_array(self, name: str, indices: np.ndarray | None = None) -> np.ndarray:
        """A column by key (``"temp"``), ``"domain.key"`` or full name; bare names read ``raw``."""
        parts = name.split(".")
        if len(parts) == 3:
            domain, key, rep = parse_column(name)
        elif len(parts) == 2 and parts[0] in DATA_DOMAINS:
            (domain, key), rep = parts, "raw"
        elif len(parts) == 1:
            domain, key, rep = self.domain_of(name), name, "raw"
        else:
            raise SchemaError(f"cannot resolve column {name!r}; use 'key', 'domain.key' or 'domain.key.rep'")
        return self.column_array(domain, key, rep, indices)

    def to_numpy(
        self,
        domain: str = "features",
        keys: str | Sequence[str] | None = None,
        rep: str | None = None,
        indices: np.ndarray | None = None,
    ) -> np.ndarray:
        """Keys of a domain as one C-contiguous, read-only array ``(n, *domain_shape)``.

        Layout rule: each key is seen as ``(n, *shape)`` with scalar keys as ``(n, 1)``; the
        keys are concatenated along the last axis (leading per-sample dims must agree). A
        single key keeps its own shape (scalar → ``(n, 1)``); zero-copy when possible.

        >>> fs = FeatureSet.from_dict({"a": [1.0, 2.0], "b": [3.0, 4.0]}, features=["a", "b"], label="l")
        >>> fs.to_numpy().tolist()
        [[1.0, 3.0], [2.0, 4.0]]
        """
        key_list = self.keys(domain) if keys is None else as_key_list(keys, domain)
        if not key_list:
            raise SchemaError(f"FeatureSet {self.label!r} has no {domain} keys to read")
        out_shape = self.domain_shape(domain, key_list)
        if len(key_list) == 1:
            arr = self.column_array(domain, key_list[0], rep, indices)
            if arr.ndim == 1:
                arr = arr.reshape(-1, 1)
            return arr if arr.flags.c_contiguous else freeze_new(np.ascontiguousarray(arr))
        dtypes = [self.key_dtype(domain, k, rep) for k in key_list]
        if any(d.kind == "O" for d in dtypes):
            raise SchemaError(f"{domain} keys {list(key_list)} include strings; read them one at a time")
        dtype = np.result_type(*dtypes)
        n = len(self) if indices is None else len(indices)
        if all(self.key_shape(domain, k) == () for k in key_list):
            # Scalar columns: gather a block of rows of every column into a small (k, block)
            # buffer (contiguous writes), then transpose the block into place while it is in cache.
            cols = [self.column_array(domain, k, rep) for k in key_list]
            out2 = np.empty((n, len(cols)), dtype=dtype)
            block = _GATHER_BLOCK
            buf = np.empty((len(cols), min(block, max(n, 1))), dtype=dtype)
            for start in range(0, n, block):
                stop = min(start + block, n)
                rows = None if indices is None else indices[start:stop]
                m = stop - start
                for j, col in enumerate(cols):
                    if rows is None:
                        buf[j, :m] = col[start:stop]
                    elif col.dtype == dtype:
                        np.take(col, rows, out=buf[j, :m])
                    else:  # np.take(out=) only casts safely between equal dtypes
                        buf[j, :m] = col[rows]
                out2[start:stop] = buf[:, :m].T
            return freeze_new(out2)
        out = np.empty((n, *out_shape), dtype=dtype)
        off = 0
        for k in key_list:
            col = self.column_array(domain, k, rep, indices)
            width = col.shape[-1] if col.ndim > 1 else 1
            out[..., off : off + width] = col.reshape(n, *out_shape[:-1], width)
            off += width
        return freeze_new(out)

    @property
    def sample_uuids(self) -> np.ndarray:
        """The 16-byte sample UUIDs (numpy ``S16``, read-only, zero-copy)."""
        return column_to_numpy(self.table.column(UUID_COLUMN), ())

    def uuid_strings(self, indices: np.ndarray | None = None) -> list[str]:
        """Sample UUIDs as canonical strings."""
        import uuid

        col = self.table.column(UUID_COLUMN)
        if indices is not None:
            col = col.take(pa.array(np.asarray(indices)))
        return [str(uuid.UUID(bytes=b)) for b in col.to_pylist()]

    # -- splits and views -------------------------------------------------------------------

    @property
    def splits(self) -> FrozenDict[str, FeatureSetView]:
        """Named splits as views (name → :class:`~mml.data.FeatureSetView`)."""
        from mml.data._view import FeatureSetView

        return FrozenDict({name: FeatureSetView(self, idx) for name, idx in self.split_indices.items()})

    def __getitem__(self, split: str) -> FeatureSetView:
        if split not in self.split_indices:
            known = ", ".join(self.split_indices) or "(none yet: use fs.split(...))"
            raise SplitError(f"FeatureSet {self.label!r} has no split {split!r}; splits: {known}")
        from mml.data._view import FeatureSetView

        return FeatureSetView(self, self.split_indices[split])

    def ref(self, **selection: Any) -> Any:
        """A :class:`~mml.graph.FeatureSetRef` to this FeatureSet: ``FeatureSetRef.of(self, **selection)``.

        ``selection`` is ``features=``, ``targets=``, ``tags=`` and ``rep=``; named keys are checked.

        >>> fs = FeatureSet.from_dict({"x": [1.0, 2.0], "y": [0.0, 1.0]}, features="x", targets="y", label="toy")
        >>> fs.ref(features="x").featureset
        'toy'
        """
        from mml.graph import FeatureSetRef  # graph sits above data: imported only when asked

        return FeatureSetRef.of(self, **selection)

    def view(self) -> FeatureSetView:
        """A view of all rows."""
        from mml.data._view import FeatureSetView

        return FeatureSetView(self, freeze_new(np.arange(len(self), dtype=np.int64)))

    def rows(self, split: str | None) -> np.ndarray:
        """Row indices of a split (all rows for ``None``)."""
        if split is None:
            return freeze_new(np.arange(len(self), dtype=np.int64))
        return self[split].indices

    def with_split(self, name: str, rows: Any, *, overlap: str = "warn") -> FeatureSet:
        """A new FeatureSet with split ``name`` set to a view or row indices.

        A split that shares rows with another one (not the split it replaces, nor its own
        ``name/…`` parts or parent) is reported like a
        :class:`~mml.splitters.ConditionSplitter` does: ``overlap="warn"`` (default) warns
        with :class:`~mml.splitters.OverlappingSplitsWarning`, ``"error"`` raises
        :class:`~mml.errors.SplitError`, ``"allow"`` is silent.

        >>> fs = FeatureSet.from_dict({"x": [1.0, 2.0, 3.0]}, features="x", label="w")
        >>> list(fs.with_split("train", [0, 1]).with_split("test", [2]).split_indices)
        ['train', 'test']
        >>> fs.with_split("train", [0, 1]).with_split("test", [1, 2], overlap="allow")["test"].indices.tolist()
        [1, 2]
        """
        from mml.data._view import FeatureSetView

        if not isinstance(name, str) or not name or name != name.strip():
            raise SplitError(f"split names are non-empty strings, got {name!r}")
        if isinstance(rows, FeatureSetView):
            if rows.parent.table is not self.table and not rows.parent.table.equals(self.table):
                raise SplitError(f"the view for split {name!r} belongs to another FeatureSet")
            rows = rows.indices
        out = attrs.evolve(self, split_indices={**self.split_indices, name: np.asarray(rows)})
        report_overlap(self.label, name, out.split_indices[name], self.split_indices, overlap)
        return out

    def without_splits(self, *names: str) -> FeatureSet:
        """A new FeatureSet without the named splits (all splits when none are named)."""
        if not names:
            return attrs.evolve(self, split_indices={})
        for n in names:
            self[n]
        return attrs.evolve(
            self, split_indices={k: v for k, v in self.split_indices.items() if k not in names}
        )

    def with_record(self, record: AbstractRecord) -> FeatureSet:
        """A new FeatureSet with ``record`` appended to its records."""
        return attrs.evolve(self, records=(*self.records, record))

    def replace_table(self, table: pa.Table) -> FeatureSet:
        """A new FeatureSet with another table of the same rows (e.g. new transformed columns)."""
        if table.num_rows != self.table.num_rows:
            raise DataError(
                f"the new table has {table.num_rows} rows, FeatureSet {self.label!r} has {len(self)}"
            )
        return attrs.evolve(self, table=table)

    # -- processing (Layer 2 does the work) --------------------------------------------------

    def split(self, splitter: Any, *, on: str | None = None, key: Key | None = None) -> FeatureSet:
        """Apply a splitter; returns a new FeatureSet with the splits and a record.

        See :mod:`mml.splitters` (``on="train"`` splits an existing split, naming the
        results ``train/<name>``; ``key`` overrides the splitter's seed).
        """
        from mml.splitters import apply_split

        return apply_split(self, splitter, on=on, key=key)

    def fit_transform(
        self,
        scaler: Any,
        *,
        domain: str = "features",
        keys: str | Sequence[str] | None = None,
        fit_on: str | None = "train",
        key: Key | None = None,
    ) -> FeatureSet:
        """Fit a scaler on ``fit_on`` rows, apply it to all rows as ``transformed`` columns.

        See :mod:`mml.scalers` (``key`` seeds scikit-learn transformers that subsample).
        """
        from mml.scalers import fit_transform

        return fit_transform(self, scaler, domain=domain, keys=keys, fit_on=fit_on, key=key)

    def undo_last_transform(self) -> FeatureSet:
        """The FeatureSet as it was before the last :meth:`fit_transform`."""
        from mml.scalers import undo_last_transform

        return undo_last_transform(self)

    def undo_all_transforms(self) -> FeatureSet:
        """The FeatureSet as it was before any :meth:`fit_transform`."""
        from mml.scalers import undo_all_transforms

        return undo_all_transforms(self)

    def inverse_transform(
        self, array: Any, *, domain: str = "targets", keys: str | Sequence[str] | None = None
    ) -> np.ndarray:
        """Map values in the transformed space (e.g. predictions) back to raw units."""
        from mml.scalers import inverse_transform

        return inverse_transform(self, array, domain=domain, keys=keys)

    def transform_like(
        self, data: Any, *, group_by: str | None = None, sort_by: str | None = None
    ) -> FeatureSet:
        """New raw ``data`` as a FeatureSet transformed with this one's fitted scalers (pure).

        See :func:`mml.inference.transform_like`.
        """
        from mml.inference import transform_like

        return transform_like(self, data, group_by=group_by, sort_by=sort_by)

    # -- export -----------------------------------------------------------------------------

    def to_arrow(self) -> pa.Table:
        """The underlying (immutable) Arrow table."""
        return self.table

    def to_pandas(self) -> pd.DataFrame:
        """A DataFrame with one row per sample, columns named ``domain.key.rep``.

        Tensor keys become columns of arrays (each of the key's per-sample shape); sample UUIDs
        become canonical strings. :meth:`from_pandas` without ``features=`` reads it back:

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

    # -- value semantics --------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureSet):
            return NotImplemented
        return (
            self.label == other.label
            and self.records == other.records
            and set(self.split_indices) == set(other.split_indices)
            and all(arrays_equal(v, other.split_indices[k]) for k, v in self.split_indices.items())
            and self.table.equals(other.table, check_metadata=True)
        )

    def __hash__(self) -> int:
        return hash(
            (self.label, self.table.num_rows, tuple(self.table.column_names), tuple(self.split_indices))
        )

    def __repr__(self) -> str:
        lines = [f"FeatureSet({self.label!r}, {len(self)} samples)"]
        for domain in DATA_DOMAINS:
            keys = self.keys(domain)
            if keys:
                desc = []
                for k in keys:
                    shape = self.key_shape(domain, k)
                    reps = "+".join(self.reps(domain, k))
                    desc.append(
                        f"{k}{list(shape) if shape else ''}:{self.key_dtype(domain, k, 'raw')}[{reps}]"
                    )
                lines.append(f"  {domain}: {', '.join(desc)}")
        if self.split_indices:
            lines.append("  splits: " + ", ".join(f"{n}={len(i)}" for n, i in self.split_indices.items()))
        for r in self.records:
            describe = getattr(r, "describe", None)
            lines.append(f"  record: {describe() if callable(describe) else type(r).__name__}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from mml.data._html import featureset_html

        return featureset_html(self)
