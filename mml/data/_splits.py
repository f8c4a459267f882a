"""Named splits of a FeatureSet: freezing their index arrays and reporting overlaps.

A split is a read-only ``int64`` array of row indices. Splits made one at a time with
:meth:`~mml.data.FeatureSet.with_split` are checked against the splits already there, like a
:class:`~mml.splitters.ConditionSplitter` checks its own: sharing rows warns by default.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from mml._fields import FrozenDict, readonly_array
from mml.errors import SplitError

__all__ = ["OVERLAP_MODES", "OverlappingSplitsWarning", "freeze_splits", "report_overlap"]

#: what to do when splits share rows: warn (the default), raise, or say nothing
OVERLAP_MODES = ("warn", "error", "allow")


class OverlappingSplitsWarning(UserWarning):
    """Splits share rows (a :class:`~mml.splitters.ConditionSplitter`, or ``with_split``).

    >>> issubclass(OverlappingSplitsWarning, UserWarning)
    True
    """

    __module__ = "mml.splitters"  # its public home (also re-exported by mml.data)


def freeze_splits(value: Mapping[str, Any] | None) -> FrozenDict[str, np.ndarray]:
    """attrs converter: split name → owned, read-only ``int64`` row indices.

    >>> freeze_splits({"train": [2, 0]})["train"].tolist()
    [2, 0]
    """
    out = {}
    for name, idx in (value or {}).items():
        arr = np.asarray(idx)
        if arr.size == 0:
            arr = arr.astype(np.int64)
        if arr.dtype.kind not in "iu":
            raise SplitError(f"split {name!r} must hold integer row indices, got dtype {arr.dtype}")
        out[name] = readonly_array(arr.astype(np.int64, copy=False))
    return FrozenDict(out)


def _nested(a: str, b: str) -> bool:
    # "train/fold_0" is a part of "train": sharing rows is what it is for
    return a.startswith(b + "/") or b.startswith(a + "/")


def report_overlap(
    label: str, name: str, rows: np.ndarray, existing: Mapping[str, np.ndarray], overlap: str
) -> None:
    """Warn (or raise) when the new split ``name`` shares rows with another split.

    The split it replaces (same name) and its own parts or parent (``name/…``, ``…/name``)
    do not count.

    >>> import numpy as np
    >>> report_overlap("fs", "test", np.array([3, 4]), {"train": np.arange(3)}, "error")
    >>> report_overlap("fs", "test", np.array([2, 3]), {"train": np.arange(3)}, "error")
    Traceback (most recent call last):
    ...
    mml.errors.SplitError: with_split('test') on FeatureSet 'fs': the new split shares rows with 'train' (1 rows, e.g. row 2); pass rows disjoint from the other splits, or with_split(..., overlap='allow') if the overlap is intended
    """
    if overlap not in OVERLAP_MODES:
        raise SplitError(f"overlap= is one of {', '.join(map(repr, OVERLAP_MODES))}, got {overlap!r}")
    if overlap == "allow" or rows.size == 0:
        return
    shared = []
    for other, idx in existing.items():
        if other == name or _nested(name, other):
            continue
        common = np.intersect1d(rows, idx)
        if common.size:
            shared.append(f"{other!r} ({common.size} rows, e.g. row {int(common[0])})")
    if not shared:
        return
    msg = (
        f"with_split({name!r}) on FeatureSet {label!r}: the new split shares rows with "
        f"{', '.join(shared)}; pass rows disjoint from the other splits, or "
        "with_split(..., overlap='allow') if the overlap is intended"
    )
    if overlap == "error":
        raise SplitError(msg)
    warnings.warn(msg, OverlappingSplitsWarning, stacklevel=3)
