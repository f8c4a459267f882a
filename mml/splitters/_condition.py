"""ConditionSplitter: named splits defined by serializable predicates on columns."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import numpy as np

from mml._fields import FrozenDict
from mml.data import OVERLAP_MODES, AbstractPredicate, FeatureSetView
from mml.errors import SchemaError, SplitError
from mml.random import Key
from mml.splitters._base import AbstractSplitter, OverlappingSplitsWarning, check_split_name, view_rows

__all__ = ["ConditionSplitter"]


def _freeze_conditions(value: Mapping[str, Any] | None) -> FrozenDict[str, AbstractPredicate]:
    if not isinstance(value, Mapping) or not value:
        raise SplitError(
            "ConditionSplitter takes a non-empty mapping of split name to predicate, e.g. "
            '{"cold": mml.col("temp") < 10, "hot": mml.col("temp") >= 30}; '
            f"got {value!r:.100}"
        )
    for name, pred in value.items():
        check_split_name(name, "ConditionSplitter")
        if not isinstance(pred, AbstractPredicate):
            raise SplitError(
                f"ConditionSplitter: the condition of split {name!r} must be a predicate built with "
                f"mml.col(...) (e.g. mml.col('temp') < 10), got {type(pred).__name__} {pred!r:.60}"
            )
    return FrozenDict(value)


def _check_overlap(instance: Any, attribute: Any, value: str) -> None:
    if value not in OVERLAP_MODES:
        raise SplitError(f"ConditionSplitter: overlap must be one of {OVERLAP_MODES}, got {value!r}")


@attrs.frozen
class ConditionSplitter(AbstractSplitter):
    """Splits defined by predicates: a row goes to every split whose condition it meets.

    Rows that meet no condition go to no split. Rows that meet several are reported:
    ``overlap="warn"`` (default) warns with :class:`OverlappingSplitsWarning`,
    ``overlap="error"`` raises :class:`~mml.errors.SplitError`, ``overlap="allow"`` is silent.
    No randomness is involved (the key is ignored).

    >>> import mml
    >>> fs = mml.FeatureSet.from_dict({"temp": [0.0, 12.0, 35.0, 5.0]}, features="temp", label="t")
    >>> s = ConditionSplitter({"cold": mml.col("temp") < 10, "hot": mml.col("temp") >= 30})
    >>> out = fs.split(s)
    >>> out["cold"].indices.tolist(), out["hot"].indices.tolist()
    ([0, 3], [2])
    >>> mml.io.roundtrip(s) == s
    True
    """

    kind: ClassVar[str] = "splitter.condition"
    conditions: Mapping[str, AbstractPredicate] = attrs.field(converter=_freeze_conditions)
    overlap: str = attrs.field(default="warn", kw_only=True, validator=_check_overlap)

    def split_names(self) -> tuple[str, ...]:
        """The condition names, in order.

        >>> import mml
        >>> ConditionSplitter({"a": mml.col("x") > 0}).split_names()
        ('a',)
        """
        return tuple(self.conditions)

    def split_indices(self, view: FeatureSetView, *, key: Key | None = None) -> dict[str, np.ndarray]:
        """Split name → ascending absolute row indices of the rows meeting its condition.

        >>> import mml
        >>> fs = mml.FeatureSet.from_dict({"x": [1.0, -1.0]}, features="x", label="t")
        >>> ConditionSplitter({"pos": mml.col("x") > 0}).split_indices(fs.view())["pos"].tolist()
        [0]
        """
        fs = view.parent
        masks = {}
        for name, pred in self.conditions.items():
            try:
                mask = np.asarray(pred.evaluate(view), dtype=bool)
            except SchemaError as exc:
                available = "; ".join(
                    f"{d}: {', '.join(fs.keys(d)) or '-'}" for d in ("features", "targets", "tags")
                )
                raise SchemaError(
                    f"ConditionSplitter: the condition of split {name!r} reads column(s) "
                    f"{sorted(pred.columns())} of which some are not in FeatureSet {fs.label!r} ({exc}); "
                    f"available keys: {available}"
                ) from exc
            masks[name] = mask
        if self.overlap != "allow" and len(masks) > 1:
            self._report_overlap(masks, fs.label)
        rows = view_rows(view)
        out = {}
        for name, mask in masks.items():
            pos = np.flatnonzero(mask)
            out[name] = pos if rows is None else rows[pos]
        return out

    def _report_overlap(self, masks: Mapping[str, np.ndarray], label: str) -> None:
        count = np.zeros(next(iter(masks.values())).shape[0], dtype=np.int32)
        for m in masks.values():
            count += m
        if not (count > 1).any():
            return
        names = list(masks)
        pairs = []
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                shared = int(np.count_nonzero(masks[a] & masks[b]))
                if shared:
                    pairs.append(f"{a!r} & {b!r}: {shared} rows")
        msg = (
            f"ConditionSplitter on FeatureSet {label!r}: splits overlap ({'; '.join(pairs)}); "
            "make the conditions exclusive (e.g. combine with ~cond), or pass overlap='allow'"
        )
        if self.overlap == "error":
            raise SplitError(msg)
        warnings.warn(msg, OverlappingSplitsWarning, stacklevel=4)
