"""RandomSplitter: named splits of given ratios, optionally by group or per stratum."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import numpy as np

from mml._fields import FrozenDict
from mml.data import FeatureSetView
from mml.errors import SplitError
from mml.random import Key
from mml.splitters._allocate import assign_labels, labels_to_indices
from mml.splitters._base import (
    AbstractSplitter,
    check_column_name,
    check_group_or_stratify,
    check_seed,
    check_split_name,
    codes_of,
    freeze_ratio_map,
    read_column,
    splitter_rng,
    view_rows,
)

__all__ = ["RandomSplitter"]

_TOLERANCE = 1e-6


def _default_ratios() -> FrozenDict[str, float]:
    return FrozenDict({"train": 0.7, "val": 0.15, "test": 0.15})


def _check_ratios(instance: Any, attribute: Any, value: Mapping[str, float]) -> None:
    for name, r in value.items():
        check_split_name(name, "RandomSplitter")
        if not (math.isfinite(r) and 0.0 <= r <= 1.0):
            raise SplitError(f"RandomSplitter: ratio of split {name!r} must be in [0, 1], got {r!r}")
    total = math.fsum(value.values())
    if abs(total - 1.0) > _TOLERANCE:
        raise SplitError(
            f"RandomSplitter: ratios {dict(value)} sum to {total:.6g}, not 1; "
            "give fractions that add up to 1 (e.g. {'train': 0.7, 'val': 0.15, 'test': 0.15})"
        )


@attrs.frozen
class RandomSplitter(AbstractSplitter):
    """Random splits with the given ratios (default 70/15/15 train/val/test).

    Sizes come from largest-remainder rounding: they add up exactly, each is within one of
    ``ratio * n``, and every split with a positive ratio gets at least one sample when there
    are enough samples. ``group_by="cell_id"`` keeps whole groups together (the ratios then
    apply to the number of groups); ``stratify_by="label"`` splits each stratum by the
    ratios. The two are mutually exclusive. The assignment is a pure function of the rows
    and ``seed`` (or a key passed to ``fs.split``).

    >>> import mml
    >>> fs = mml.FeatureSet.from_dict({"x": list(range(20))}, features="x", label="l")
    >>> out = fs.split(RandomSplitter({"train": 0.5, "val": 0.25, "test": 0.25}, seed=1))
    >>> [len(out[s]) for s in ("train", "val", "test")]
    [10, 5, 5]
    >>> mml.io.roundtrip(RandomSplitter(seed=1)) == RandomSplitter(seed=1)
    True
    """

    kind: ClassVar[str] = "splitter.random"
    ratios: Mapping[str, float] = attrs.field(
        factory=_default_ratios, converter=freeze_ratio_map, validator=_check_ratios
    )
    seed: int = attrs.field(default=0, validator=check_seed)
    group_by: str | None = attrs.field(default=None, kw_only=True, validator=check_column_name)
    stratify_by: str | None = attrs.field(default=None, kw_only=True, validator=check_column_name)

    def __attrs_post_init__(self) -> None:
        check_group_or_stratify(self)

    def split_names(self) -> tuple[str, ...]:
        """The ratio names, in order.

        >>> RandomSplitter().split_names()
        ('train', 'val', 'test')
        """
        return tuple(self.ratios)

    def split_indices(self, view: FeatureSetView, *, key: Key | None = None) -> dict[str, np.ndarray]:
        """Split name → ascending absolute row indices (see :class:`AbstractSplitter`).

        >>> import mml
        >>> fs = mml.FeatureSet.from_dict({"x": [0.0, 1.0, 2.0]}, features="x", label="t")
        >>> parts = RandomSplitter({"a": 2 / 3, "b": 1 / 3}).split_indices(fs.view())
        >>> sorted(len(v) for v in parts.values())
        [1, 2]
        """
        names = self.split_names()
        ratios = np.array([self.ratios[n] for n in names], dtype=np.float64)
        labels = random_labels(self, view, ratios, self.seed, key, self.group_by, self.stratify_by)
        return dict(zip(names, labels_to_indices(labels, len(names), view_rows(view))))


def random_labels(
    splitter: AbstractSplitter,
    view: FeatureSetView,
    ratios: np.ndarray,
    seed: int,
    key: Key | None,
    group_by: str | None,
    stratify_by: str | None,
) -> np.ndarray:
    """A split label per row of ``view``: plain, by group, or per stratum (shared with k-fold)."""
    owner = type(splitter).__name__
    rng = splitter_rng(splitter, seed, key)
    n = len(view)
    if group_by is not None:
        codes, n_groups = codes_of(
            read_column(view, group_by, owner, "group_by"), owner, "group_by", group_by
        )
        return assign_labels(n_groups, ratios, rng)[codes] if n else np.zeros(0, dtype=np.uint8)
    if stratify_by is not None:
        codes, _ = codes_of(
            read_column(view, stratify_by, owner, "stratify_by"), owner, "stratify_by", stratify_by
        )
        return assign_labels(n, ratios, rng, strata=codes)
    return assign_labels(n, ratios, rng)
