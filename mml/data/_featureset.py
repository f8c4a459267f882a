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

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import pyarrow as pa

from mml._fields import FrozenDict, arrays_equal, freeze_new, frozen_tuple
from mml.data._build import as_key_list, column_to_numpy
from mml.data._formats import FeatureSetFormats
from mml.data._protocols import Splitter
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
from mml.errors import DataError, SchemaError, SplitError, check_removed
from mml.random import Key

if TYPE_CHECKING:  # pragma: no cover
    from mml.data._view import FeatureSetView

__all__ = ["FeatureSet"]

_GATHER_BLOCK = 8192

#: FeatureSet methods of 0.1 that 0.2 removed, and the call that does the same (CHANGELOG 0.2)
_REMOVED = {
    "fit_transform": "mml.scalers.fit_transform(fs, scaler, domain=..., keys=..., fit_on=...)",
    "undo_last_transform": "mml.scalers.undo_last_transform(fs)",
    "undo_all_transforms": "mml.scalers.undo_all_transforms(fs)",
    "inverse_transform": "mml.scalers.inverse_transform(fs, array, domain=..., keys=...)",
    "transform_like": "mml.transform_like(fs, data)",
    "ref": "mml.FeatureSetRef.of(fs, **selection)",
}


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
class FeatureSet(FeatureSetFormats):
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

    # -- processing (the splitter does the work) ---------------------------------------------

    def split(self, splitter: Splitter, *, on: str | None = None, key: Key | None = None) -> FeatureSet:
        """Apply a splitter; returns a new FeatureSet with the splits and a record.

        ``fs.split(s)`` is ``s.split_featureset(fs)`` for any :class:`~mml.data.Splitter` (every
        :class:`~mml.splitters.AbstractSplitter`). ``on="train"`` splits an existing split,
        naming the results ``train/<name>``; ``key`` overrides the splitter's seed.

        >>> fs = FeatureSet.from_dict({"x": [0.0, 1.0, 2.0, 3.0]}, features="x", label="four")
        >>> fs.split({"a": 0.5})
        Traceback (most recent call last):
        mml.errors.SplitError: FeatureSet.split takes a splitter (RandomSplitter, ConditionSplitter, KFoldSplitter, or a value with a split_featureset(fs, *, on, key) method), got dict {'a': 0.5}
        """
        if not isinstance(splitter, Splitter) or isinstance(splitter, type):
            raise SplitError(
                "FeatureSet.split takes a splitter (RandomSplitter, ConditionSplitter, KFoldSplitter, "
                f"or a value with a split_featureset(fs, *, on, key) method), got {type(splitter).__name__} "
                f"{splitter!r:.80}"
            )
        return splitter.split_featureset(self, on=on, key=key)

    # -- removed 0.1 spellings: one way to scale (the free functions); a clear error, not a bare
    # AttributeError, for code written against 0.1

    def __getattr__(self, name: str) -> Any:
        why = "scaling is one free function per operation, so the data layer imports nothing above it"
        check_removed("FeatureSet", name, _REMOVED, why)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}", name=name, obj=self)

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
