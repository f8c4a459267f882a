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
from mml.random import Key, fold_in, numpy_rng
from mml.samplers._base import (
    DEFAULT_STREAM,
    AbstractSampler,
    RoleRows,
    check_batch_size,
    check_strict_stratification,
    emit_batches,
    optional_column,
)
from mml.samplers._batching import batch_order, batching_aux, count_units
from mml.samplers._prepared import PreparedData, check_columns

__all__ = ["SimpleSampler"]


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
    * ``stratify_by`` (a scalar column): every batch holds the label proportions of the whole
      view: a class with share ``p`` has ``batch_size * p`` samples in each batch, within
      one (see :func:`~mml.samplers.stratified_batches`), and every sample still comes once
      per epoch. With ``group_by`` as well, whole groups are stratified by the label of each
      group's first sample (the shares are then of groups).
    * ``strict_stratification`` (with ``stratify_by``): every class is trimmed, each epoch, to
      the size of the smallest class (a random subset when shuffling), so that every class
      has the same share — exactly ``batch_size / C`` per batch when ``batch_size`` is a
      multiple of the number of classes ``C``. The left-out samples do not appear that epoch.

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
    group_by: str | None = attrs.field(default=None, validator=optional_column)
    stratify_by: str | None = attrs.field(default=None, validator=optional_column)
    strict_stratification: bool = False

    def __attrs_post_init__(self) -> None:
        check_strict_stratification(self, "the classes")

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
        """Group ids (in order of first appearance), per-unit stratum codes and the unit count."""
        cols = data.columns
        return batching_aux(
            None if self.group_by is None else cols[self.group_by],
            None if self.stratify_by is None else cols[self.stratify_by],
            self.strict_stratification,
        )

    def count_batches(self, data: PreparedData, stream: str = DEFAULT_STREAM) -> int:
        """``ceil(units / batch_size)`` (``floor`` with ``drop_last``); units are samples or groups."""
        units = count_units(data.aux, len(data))
        return units // self.batch_size if self.drop_last else -(-units // self.batch_size)

    def epoch_order(self, data: PreparedData, key: Key) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, bounds)``: row positions in epoch order and the batch boundaries in it."""
        rng = numpy_rng(fold_in(key, "simple.order")) if self.shuffle else None
        return batch_order(data.aux, len(data), self.batch_size, self.drop_last, rng)

    def epoch_batches(self, data: PreparedData, key: Key, stream: str) -> Iterator[Batch]:
        """One epoch of batches (``key`` already folded with the epoch)."""
        rows, bounds = self.epoch_order(data, key)
        return emit_batches(data, (RoleRows(DEFAULT_ROLE, rows),), bounds, stream)
