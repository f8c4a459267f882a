"""SimpleSampler: every sample once per epoch, in batches, optionally grouped or stratified.

>>> import mml, numpy as np
>>> fs = mml.FeatureSet.from_dict({"x": np.arange(6.0), "cell": [0, 0, 1, 1, 2, 2]},
...                               features="x", tags="cell", label="s")
>>> s = mml.SimpleSampler(batch_size=2, group_by="cell", shuffle=False)
>>> [sorted(b.tags["cell"].tolist()) for b in s.iter(fs.view(), key=mml.random.key(0))]
[[0, 0, 1, 1], [2, 2]]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, final

import attrs
import numpy as np

from mml.data import DEFAULT_ROLE, Batch, FeatureSetView
from mml.errors import SamplerError
from mml.random import Key, fold_in, numpy_rng
from mml.samplers._base import DEFAULT_STREAM, AbstractSampler, RoleRows, check_batch_size, emit_batches
from mml.samplers._prepared import PreparedData, check_columns

__all__ = ["SimpleSampler", "stratified_order"]


def _optional_column(instance: Any, attribute: Any, value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise SamplerError(f"SimpleSampler.{attribute.name} takes a column name (str) or None, got {value!r}")


def stratified_order(labels: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """An order of ``labels``' positions in which every window has about the global proportions.

    Within each class the units are shuffled (kept in order when ``rng`` is None); unit ``i``
    of class ``c`` (of ``n_c``) is placed at fractional rank ``(i + u_c) / n_c`` with one random
    offset ``u_c`` in ``[0, 1)`` per class (``0.5`` without ``rng``), and the ranks are merged.
    Any ``k`` consecutive units then hold ``k * n_c / n`` units of class ``c``, give or take
    ``2 + 2 * C * n_c / n`` (``C`` classes).

    >>> stratified_order(np.array([0, 0, 0, 0, 1, 1]), None).tolist()
    [0, 4, 1, 2, 5, 3]
    """
    n = labels.shape[0]
    if n == 0:
        return np.zeros(0, np.int64)
    classes, lab = np.unique(labels, return_inverse=True)
    counts = np.bincount(lab, minlength=len(classes))
    p = rng.permutation(n) if rng is not None else np.arange(n)
    grouped = p[np.argsort(lab[p], kind="stable")]
    glab = lab[grouped]
    class_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    within = np.arange(n) - class_start[glab]
    offset = rng.random(len(classes)) if rng is not None else np.full(len(classes), 0.5)
    rank = (within + offset[glab]) / counts[glab]
    return grouped[np.argsort(rank, kind="stable")]


def _bounds(sizes: np.ndarray | None, n_units: int, batch_size: int, drop_last: bool) -> np.ndarray:
    nb = n_units // batch_size if drop_last else -(-n_units // batch_size)
    unit_bounds = np.minimum(np.arange(nb + 1, dtype=np.int64) * batch_size, n_units)
    if sizes is None:
        return unit_bounds
    row_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return row_offsets[unit_bounds]


@final
@attrs.frozen
class SimpleSampler(AbstractSampler):
    """Each sample of the view once per epoch, in batches of ``batch_size``.

    * ``shuffle``: a new random order every epoch (from ``fold_in(key, epoch)``); ``False``
      keeps the view's order.
    * ``drop_last``: leave out the last, smaller batch.
    * ``group_by`` (a scalar column): batches are made of whole groups — **``batch_size``
      then counts groups**, so a batch holds every sample of ``batch_size`` groups (the last
      batch fewer groups). With ``shuffle`` the group order and the order inside each group
      are random; without, groups come in order of first appearance in the view.
    * ``stratify_by`` (a scalar column): the epoch order is stratified so that every batch
      holds about the label proportions of the whole view: a class with share ``p`` has
      ``batch_size * p`` samples in each batch, give or take ``2 + 2 * C * p`` (``C``
      classes; see :func:`stratified_order`). With ``group_by`` as well, whole groups are
      stratified by the label of each group's first sample.

    Batches have the single role ``"default"`` (``batch.features``, ``batch.targets``);
    weights and mask are ``None`` (all 1, all valid).

    >>> import mml, numpy as np
    >>> fs = mml.FeatureSet.from_dict({"x": np.arange(10.0)}, features="x", label="s")
    >>> s = SimpleSampler(batch_size=4)
    >>> [len(b) for b in s.iter(fs.view(), key=mml.random.key(0), epoch=3)]
    [4, 4, 2]
    >>> mml.io.roundtrip(s) == s
    True
    """

    kind: ClassVar[str] = "sampler.simple"

    batch_size: int = attrs.field(validator=check_batch_size)
    shuffle: bool = True
    drop_last: bool = False
    group_by: str | None = attrs.field(default=None, validator=_optional_column)
    stratify_by: str | None = attrs.field(default=None, validator=_optional_column)

    def required_columns(self) -> tuple[str, ...]:
        """The group and stratum columns (when set).

        >>> SimpleSampler(8, group_by="cell").required_columns()
        ('cell',)
        """
        return tuple(c for c in (self.group_by, self.stratify_by) if c is not None)

    def check_view(self, view: FeatureSetView) -> None:
        """Check that ``group_by`` / ``stratify_by`` name scalar columns of the view."""
        named = [("group_by", self.group_by), ("stratify_by", self.stratify_by)]
        check_columns(view, [(w, c) for w, c in named if c is not None])

    def precompute(self, data: PreparedData) -> Mapping[str, Any]:
        """Group ids (in order of first appearance) and per-unit stratum labels."""
        aux: dict[str, Any] = {}
        if self.group_by is not None:
            _, first, inv = np.unique(data.columns[self.group_by], return_index=True, return_inverse=True)
            rename = np.empty(len(first), np.int64)
            rename[np.argsort(first, kind="stable")] = np.arange(len(first))
            gid = rename[inv.ravel()]
            aux["group_id"] = gid
            aux["group_sizes"] = np.bincount(gid, minlength=len(first))
            if self.stratify_by is not None:
                first_rows = np.sort(first)
                aux["strata"] = data.columns[self.stratify_by][first_rows]
        elif self.stratify_by is not None:
            aux["strata"] = data.columns[self.stratify_by]
        return aux

    def _units(self, data: PreparedData) -> int:
        if self.group_by is not None:
            return len(data.aux["group_sizes"])
        return len(data)

    def count_batches(self, data: PreparedData, stream: str = DEFAULT_STREAM) -> int:
        """``ceil(units / batch_size)`` (``floor`` with ``drop_last``); units are samples or groups."""
        units = self._units(data)
        return units // self.batch_size if self.drop_last else -(-units // self.batch_size)

    def epoch_order(self, data: PreparedData, key: Key) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, bounds)``: row positions in epoch order and the batch boundaries in it."""
        rng = numpy_rng(fold_in(key, "simple.order")) if self.shuffle else None
        n = len(data)
        if self.group_by is None:
            if self.stratify_by is not None:
                rows = stratified_order(data.aux["strata"], rng)
            else:
                rows = rng.permutation(n) if rng is not None else np.arange(n, dtype=np.int64)
            return rows, _bounds(None, n, self.batch_size, self.drop_last)
        gid = data.aux["group_id"]
        sizes_all = data.aux["group_sizes"]
        n_groups = len(sizes_all)
        if self.stratify_by is not None:
            group_order = stratified_order(data.aux["strata"], rng)
        else:
            group_order = rng.permutation(n_groups) if rng is not None else np.arange(n_groups)
        # Rows sorted by group (random order inside a group when shuffling).
        by_group = np.lexsort((rng.random(n), gid)) if rng is not None else np.argsort(gid, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes_all)[:-1]])
        sizes = sizes_all[group_order]
        out_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        src = np.repeat(starts[group_order] - out_starts, sizes) + np.arange(int(sizes.sum()))
        rows = by_group[src]
        return rows, _bounds(sizes, n_groups, self.batch_size, self.drop_last)

    def epoch_batches(self, data: PreparedData, key: Key, stream: str) -> Iterator[Batch]:
        """One epoch of batches (``key`` already folded with the epoch)."""
        rows, bounds = self.epoch_order(data, key)
        return emit_batches(data, (RoleRows(DEFAULT_ROLE, rows),), bounds, stream)
