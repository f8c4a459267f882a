"""FeatureSetView: rows and columns of a FeatureSet, without copying any column data.

>>> import mml
>>> fs = mml.FeatureSet.from_dict({"x": [1.0, 2.0, 3.0, 4.0], "g": [0, 0, 1, 1]},
...                               features=["x"], tags=["g"], label="v")
>>> v = fs.view().filter(mml.col("g") == 1)
>>> v.indices.tolist(), v.to_numpy("features").ravel().tolist()
([2, 3], [3.0, 4.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mml._fields import arrays_equal, freeze_new, readonly_array
from mml.data._build import as_key_list
from mml.data._predicates import AbstractPredicate
from mml.data._schema import DATA_DOMAINS, column_name
from mml.errors import DataError, SchemaError

if TYPE_CHECKING:  # pragma: no cover  (the FeatureSet module imports this one when it makes views)
    from mml.data._featureset import FeatureSet

__all__ = ["FeatureSetView"]


def _as_indices(value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise DataError(f"view indices must be a 1-D integer array, got shape {arr.shape} dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _normalize_columns(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


@attrs.frozen(eq=False)
class FeatureSetView:
    """Row indices (and optionally a column selection) into a parent :class:`FeatureSet`.

    Views are cheap: they hold the parent (shared, immutable) and an index array. Reading
    (``to_numpy``, ``column_array``) gathers only the selected rows, at the model boundary.
    """

    parent: FeatureSet
    indices: np.ndarray = attrs.field(
        converter=lambda v: readonly_array(_as_indices(v)), eq=attrs.cmp_using(eq=arrays_equal), hash=False
    )
    columns: tuple[str, ...] | None = attrs.field(default=None, converter=_normalize_columns)
    _all_rows: bool = attrs.field(init=False, default=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        n = len(self.parent)
        idx = self.indices
        full = idx.shape[0] == n and (n == 0 or (idx[0] == 0 and idx[-1] == n - 1)) and _is_arange(idx)
        object.__setattr__(self, "_all_rows", bool(full))
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise DataError(f"view indices fall outside [0, {n}) of FeatureSet {self.parent.label!r}")
        if self.columns is not None:
            names = set(self.parent.table.column_names)
            bad = [c for c in self.columns if c not in names]
            if bad:
                raise SchemaError(f"view columns {bad} are not in FeatureSet {self.parent.label!r}")

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @property
    def label(self) -> str:
        """The parent's label."""
        return self.parent.label

    # -- schema -----------------------------------------------------------------------------

    def keys(self, domain: str = "features") -> tuple[str, ...]:
        """Keys of a domain visible through this view."""
        keys = self.parent.keys(domain)
        if self.columns is None:
            return keys
        # In selection order: ``select(targets=["b", "a"])`` reads b before a.
        out: dict[str, None] = {}
        for c in self.columns:
            d, _, rest = c.partition(".")
            k = rest.split(".")[0]
            if d == domain and k in keys:
                out[k] = None
        return tuple(out)

    def _check_visible(self, domain: str, key: str) -> None:
        if key not in self.keys(domain):
            raise SchemaError(
                f"{domain} key {key!r} is not selected in this view of {self.parent.label!r}; "
                f"visible {domain} keys: {', '.join(self.keys(domain)) or '(none)'}"
            )

    def key_shape(self, domain: str, key: str) -> tuple[int, ...]:
        """Per-sample shape of a key."""
        return self.parent.key_shape(domain, key)

    def domain_shape(self, domain: str, keys: Sequence[str] | None = None) -> tuple[int, ...]:
        """Per-sample shape of :meth:`to_numpy` for these keys."""
        return self.parent.domain_shape(domain, self.keys(domain) if keys is None else keys)

    # -- reading ----------------------------------------------------------------------------

    def column_array(self, domain: str, key: str, rep: str | None = None) -> np.ndarray:
        """One key for the view's rows, ``(len(view), *shape)``."""
        self._check_visible(domain, key)
        return self.parent.column_array(domain, key, self._visible_rep(domain, (key,), rep), self._take())

    def resolve_column_array(self, name: str) -> np.ndarray:
        """A column by key, ``domain.key`` or full name, for the view's rows."""
        return self.parent.resolve_column_array(name, self._take())

    def to_numpy(
        self, domain: str = "features", keys: str | Sequence[str] | None = None, rep: str | None = None
    ) -> np.ndarray:
        """Keys of a domain for the view's rows, laid out as :meth:`FeatureSet.to_numpy`."""
        key_list = self.keys(domain) if keys is None else as_key_list(keys, domain)
        for k in key_list:
            self._check_visible(domain, k)
        return self.parent.to_numpy(domain, key_list, self._visible_rep(domain, key_list, rep), self._take())

    def _selected_reps(self, domain: str, key: str) -> list[str]:
        cols = self.columns
        return [
            r for r in self.parent.reps(domain, key) if cols is None or column_name(domain, key, r) in cols
        ]

    def _visible_rep(self, domain: str, keys: Sequence[str], rep: str | None) -> str | None:
        # With a column selection (``select(..., rep="raw")``), read only the selected reps.
        if self.columns is None:
            return rep
        chosen = set()
        for k in keys:
            visible = self._selected_reps(domain, k)
            if rep is not None and rep not in visible:
                raise SchemaError(
                    f"{domain} key {k!r} has no {rep!r} representation selected in this view of "
                    f"{self.parent.label!r} (selected: {', '.join(visible)}); select it or ask for another rep"
                )
            chosen.add(visible[-1] if rep is None else rep)
        if rep is None and all(
            self.parent.resolve_rep(domain, k) in self._selected_reps(domain, k) for k in keys
        ):
            return None  # the parent's own choice (per key) is selected everywhere
        if len(chosen) > 1:
            raise SchemaError(
                f"{domain} keys {list(keys)} have different representations selected in this view of "
                f"{self.parent.label!r}; pass rep='raw' or rep='transformed'"
            )
        return chosen.pop() if chosen else rep

    def _take(self) -> np.ndarray | None:
        # All rows in order: read without gathering (zero-copy).
        return None if self._all_rows else self.indices

    @property
    def sample_uuids(self) -> np.ndarray:
        """The UUIDs of the view's rows (numpy ``S16``)."""
        return freeze_new(self.parent.sample_uuids[self.indices])

    # -- derived views ----------------------------------------------------------------------

    def select(
        self,
        features: str | Sequence[str] | None = None,
        targets: str | Sequence[str] | None = None,
        tags: str | Sequence[str] | None = None,
        rep: str | None = None,
    ) -> FeatureSetView:
        """A view with only some keys visible (``None`` for a domain keeps none of it unless
        all three are ``None``, which keeps everything).

        >>> import mml
        >>> fs = mml.FeatureSet.from_dict({"a": [1], "b": [2]}, features=["a", "b"], label="s")
        >>> fs.view().select(features=["b"]).keys()
        ('b',)
        """
        if features is None and targets is None and tags is None:
            return self
        cols: list[str] = []
        for domain, keys in zip(DATA_DOMAINS, (features, targets, tags)):
            for k in as_key_list(keys, domain):
                self._check_visible(domain, k)
                reps = (
                    self.parent.reps(domain, k) if rep is None else (self.parent.resolve_rep(domain, k, rep),)
                )
                cols.extend(column_name(domain, k, r) for r in reps)
        return attrs.evolve(self, columns=tuple(cols))

    def take(self, positions: Any) -> FeatureSetView:
        """Rows at ``positions`` of this view (positions, not parent row numbers)."""
        pos = _as_indices(positions)
        if pos.size and (int(pos.min()) < -len(self) or int(pos.max()) >= len(self)):
            raise DataError(f"positions fall outside a view of {len(self)} rows")
        return attrs.evolve(self, indices=freeze_new(self.indices[pos]))

    def filter(self, predicate: AbstractPredicate) -> FeatureSetView:
        """Rows where the predicate holds (see :func:`mml.col`)."""
        if not isinstance(predicate, AbstractPredicate):
            raise DataError(
                f"filter takes an mml predicate such as mml.col('x') > 0, got {type(predicate).__name__}; "
                "lambdas cannot be saved or inspected"
            )
        mask = predicate.evaluate(self)
        return attrs.evolve(self, indices=freeze_new(self.indices[mask]))

    def take_sample_uuids(self, uuids: Any) -> FeatureSetView:
        """Rows whose UUID is in ``uuids`` (bytes or an ``S16`` array), in view order."""
        want = np.asarray(uuids, dtype="S16")
        return attrs.evolve(self, indices=freeze_new(self.indices[np.isin(self.sample_uuids, want)]))

    def _same_parent(self, other: FeatureSetView) -> None:
        if not isinstance(other, FeatureSetView):
            raise DataError(f"expected a FeatureSetView, got {type(other).__name__}")

    def intersection(self, other: FeatureSetView) -> FeatureSetView:
        """Rows of this view whose UUIDs are also in ``other``."""
        self._same_parent(other)
        return self.take_sample_uuids(other.sample_uuids)

    def difference(self, other: FeatureSetView) -> FeatureSetView:
        """Rows of this view whose UUIDs are not in ``other``."""
        self._same_parent(other)
        keep = ~np.isin(self.sample_uuids, other.sample_uuids)
        return attrs.evolve(self, indices=freeze_new(self.indices[keep]))

    def is_disjoint_with(self, other: FeatureSetView) -> bool:
        """True when no sample (by UUID) is in both views."""
        self._same_parent(other)
        return not bool(np.isin(self.sample_uuids, other.sample_uuids).any())

    def to_featureset(self, label: str | None = None) -> FeatureSet:
        """Materialize the view as a new FeatureSet (this copies the selected rows)."""
        import pyarrow as pa

        table = self.parent.table
        if self.columns is not None:
            table = table.select([*self.columns, "sample_uuids"])
        table = table.take(pa.array(self.indices))
        return type(self.parent)(label=label or self.parent.label, table=table)  # a FeatureSet

    # -- value semantics --------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureSetView):
            return NotImplemented
        return (
            self.columns == other.columns
            and np.array_equal(self.indices, other.indices)
            and (self.parent is other.parent or self.parent == other.parent)
        )

    def __hash__(self) -> int:
        return hash((self.parent.label, len(self), self.columns))

    def __repr__(self) -> str:
        cols = "all columns" if self.columns is None else f"{len(self.columns)} columns"
        return f"FeatureSetView({self.parent.label!r}, {len(self)} of {len(self.parent)} rows, {cols})"


def _is_arange(idx: np.ndarray) -> bool:
    return bool(idx.shape[0] < 2 or (np.diff(idx) == 1).all())
