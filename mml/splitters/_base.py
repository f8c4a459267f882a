"""The splitter interface and the record a split leaves (``fs.split(splitter)``).

A splitter is a value (its hyperparameters: ratios, seed, conditions); applying it to a
FeatureSet is a pure function that returns a new FeatureSet with more named splits (index
arrays into the same, shared Arrow table) and a :class:`SplitterRecord` appended to its records.

Naming rule: splitting the whole FeatureSet adds the splitter's names as they are
(``train``, ``val``, ``test``); splitting an existing split with ``on="train"`` adds
``train/<name>`` for each name (``train/fit``, ``train/val``). Names never collide with
existing splits (a :class:`~mml.errors.SplitError` says so and how to drop the old ones).

>>> import mml
>>> fs = mml.FeatureSet.from_dict({"x": list(range(10))}, features="x", label="ten")
>>> fs2 = fs.split(mml.RandomSplitter({"train": 0.8, "test": 0.2}, seed=0))
>>> sorted(fs2.split_indices), len(fs2["train"]), len(fs2["test"])
(['test', 'train'], 8, 2)
>>> fs3 = fs2.split(mml.RandomSplitter({"fit": 0.75, "val": 0.25}, seed=1), on="train")
>>> sorted(fs3.split_indices)
['test', 'train', 'train/fit', 'train/val']
>>> fs3.records[-1].splits
('train/fit', 'train/val')
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import numpy as np

import mml.random
from mml._fields import freeze_new, frozen_tuple
from mml.data import (
    AbstractRecord,
    FeatureSet,
    FeatureSetView,
    OverlappingSplitsWarning as OverlappingSplitsWarning,
)
from mml.errors import SchemaError, SplitError
from mml.random import Key

__all__ = [
    "AbstractSplitter",
    "OverlappingSplitsWarning",
    "SplitterRecord",
    "check_split_name",
    "check_column_name",
    "check_group_or_stratify",
    "check_seed",
    "read_column",
    "splitter_rng",
    "view_rows",
]


class AbstractSplitter(abc.ABC):
    """Base of all splitters: a value that assigns the rows of a view to named splits.

    Concrete splitters implement :meth:`split_names` and :meth:`split_indices`; apply them
    with ``fs.split(splitter)``, which calls :meth:`split_featureset` (the :class:`mml.data.Splitter`
    protocol).

    >>> import mml
    >>> isinstance(mml.RandomSplitter(), AbstractSplitter)
    True
    """

    _mml_union: ClassVar[bool] = True

    @abc.abstractmethod
    def split_names(self) -> tuple[str, ...]:
        """The names of the splits this splitter produces, in order (before any ``on/`` prefix)."""

    @abc.abstractmethod
    def split_indices(self, view: FeatureSetView, *, key: Key | None = None) -> dict[str, np.ndarray]:
        """Split name → ascending int64 **absolute row indices of the parent** for ``view``'s rows.

        ``key`` overrides the splitter's own ``seed`` (``mml.random.key(seed)``) when given.
        Only index arrays are allocated; no column data is copied.
        """

    def split_featureset(
        self, fs: FeatureSet, *, on: str | None = None, key: Key | None = None
    ) -> FeatureSet:
        """A new FeatureSet with this splitter's splits added (and a :class:`SplitterRecord`).

        ``fs.split(splitter)`` calls this. ``on=None`` splits all rows; ``on="train"`` splits
        the rows of split ``train`` and names the results ``train/<name>``. ``key`` overrides
        the splitter's seed. Only index arrays are made; the Arrow table is shared with ``fs``,
        which is left unchanged.

        >>> import mml
        >>> fs = mml.FeatureSet.from_dict({"x": [0.0, 1.0, 2.0, 3.0]}, features="x", label="four")
        >>> out = fs.split(mml.RandomSplitter({"a": 0.5, "b": 0.5}, seed=0))
        >>> out.table is fs.table, fs.split_indices == {}
        (True, True)
        """
        if not isinstance(fs, FeatureSet):
            raise SplitError(
                f"{type(self).__name__}.split_featureset takes a FeatureSet, got {type(fs).__name__}"
            )
        if key is not None and not isinstance(key, Key):
            raise SplitError(
                f"key must be an mml.random.Key (make one with mml.random.key(seed)), got {key!r}"
            )
        if on is None:
            view = fs.view()
            prefix = ""
        else:
            if not isinstance(on, str):
                raise SplitError(f"on= names an existing split (a str), got {on!r}")
            view = fs[on]
            prefix = f"{on}/"
        parts = self.split_indices(view, key=key)
        # the splitter's index arrays are handed over (fresh results of a pure function): freeze
        # them in place rather than copy them
        new = {prefix + name: freeze_new(np.asarray(idx)) for name, idx in parts.items()}
        clash = [name for name in new if name in fs.split_indices]
        if clash:
            raise SplitError(
                f"FeatureSet {fs.label!r} already has split(s) {clash}; split another split with on=..., "
                f"or drop them first with fs.without_splits({', '.join(map(repr, clash))})"
            )
        out = attrs.evolve(fs, split_indices={**fs.split_indices, **new})
        return out.with_record(SplitterRecord(splitter=self, on=on, splits=tuple(new), key=key))


@attrs.frozen
class SplitterRecord(AbstractRecord):
    """What a split did: the splitter (a value), the split it was applied ``on``, the names made.

    ``key`` is the key passed to ``fs.split`` (``None``: the splitter's seed was used),
    so replaying the record reproduces the same indices.

    >>> import mml
    >>> r = SplitterRecord(mml.RandomSplitter(seed=3), None, ("train", "val", "test"))
    >>> mml.io.roundtrip(r) == r
    True
    """

    kind: ClassVar[str] = "record.splitter"
    splitter: AbstractSplitter
    on: str | None = None
    splits: tuple[str, ...] = attrs.field(default=(), converter=frozen_tuple)
    key: Key | None = None

    def describe(self) -> str:
        """One line for ``repr(FeatureSet)``.

        >>> import mml
        >>> SplitterRecord(mml.RandomSplitter(seed=3), None, ("train", "test")).describe()
        'split RandomSplitter -> train, test (all rows)'
        """
        where = f"split {self.on!r}" if self.on else "all rows"
        return f"split {type(self.splitter).__name__} -> {', '.join(self.splits)} ({where})"


# -- helpers shared by the concrete splitters ------------------------------------------------


def check_split_name(name: object, owner: str) -> str:
    """Validate one split name given to a splitter (non-empty, no ``/``, no outer spaces)."""
    if not isinstance(name, str) or not name or name != name.strip() or "/" in name:
        raise SplitError(
            f"{owner}: split name {name!r} is not allowed; use a non-empty name without '/' "
            "('/' is reserved for nested splits made with on=...)"
        )
    return name


def check_column_name(instance: Any, attribute: Any, value: str | None) -> None:
    """attrs validator: ``None`` or a column name (a non-empty str)."""
    if value is not None and (not isinstance(value, str) or not value):
        raise SplitError(
            f"{type(instance).__name__}: {attribute.name} names a column (a non-empty str), got {value!r}"
        )


def check_group_or_stratify(splitter: Any) -> None:
    """A splitter groups (``group_by``) or stratifies (``stratify_by``), not both."""
    if splitter.group_by is not None and splitter.stratify_by is not None:
        raise SplitError(
            f"{type(splitter).__name__}: group_by={splitter.group_by!r} and "
            f"stratify_by={splitter.stratify_by!r} cannot be combined; choose one"
        )


def check_seed(instance: Any, attribute: Any, value: object) -> None:
    """attrs validator: a seed is an int in ``[0, 2**32)`` (see :func:`mml.random.key`)."""
    mml.random.key(value)  # type: ignore[arg-type]


def splitter_rng(splitter: AbstractSplitter, seed: int, key: Key | None) -> np.random.Generator:
    """The numpy generator for one application: ``key`` (or ``key(seed)``) folded with the kind."""
    base = mml.random.key(seed) if key is None else key
    return mml.random.numpy_rng(mml.random.fold_in(base, type(splitter).__dict__["kind"]))


def view_rows(view: FeatureSetView) -> np.ndarray | None:
    """The view's row indices, or ``None`` when it is all rows in order (positions = rows)."""
    idx = view.indices
    n = len(view.parent)
    # n indices in [0, n) that strictly increase are exactly arange(n).
    if idx.shape[0] == n and (n < 2 or bool((idx[1:] > idx[:-1]).all())):
        return None
    return idx


def read_column(view: FeatureSetView, name: str, owner: str, role: str) -> np.ndarray:
    """A scalar column of the view's rows, with errors that name the splitter and the column."""
    if not isinstance(name, str):
        raise SplitError(f"{owner}: {role} names a column (a str), got {name!r}")
    fs = view.parent
    try:
        values = view.resolve_column_array(name)
    except SchemaError as exc:
        available = "; ".join(f"{d}: {', '.join(fs.keys(d)) or '-'}" for d in ("features", "targets", "tags"))
        raise SchemaError(
            f"{owner}: {role} column {name!r} is not in FeatureSet {fs.label!r}; available keys: {available}"
        ) from exc
    if values.ndim != 1:
        raise SplitError(
            f"{owner}: {role} column {name!r} holds arrays of shape {values.shape[1:]} per sample; "
            "use a scalar column (a tag such as a group id or a class)"
        )
    return values


def codes_of(values: np.ndarray, owner: str, role: str, name: str) -> tuple[np.ndarray, int]:
    """Integer codes ``0..m-1`` of a column's distinct values (sorted), and ``m``."""
    if values.dtype.kind in "iub" and values.size:
        # Small-range integers (ids, classes): a lookup table instead of a sort.
        lo, hi = int(values.min()), int(values.max())
        if hi - lo <= 4 * values.size + 1024:
            shifted = values.astype(np.int64) - lo
            present = np.zeros(hi - lo + 1, dtype=bool)
            present[shifted] = True
            table = np.cumsum(present) - 1
            return table[shifted], int(present.sum())
    try:
        uniq, inverse = np.unique(values, return_inverse=True)
    except TypeError as exc:
        raise SplitError(f"{owner}: the values of {role} column {name!r} cannot be compared ({exc})") from exc
    return inverse.reshape(-1), int(uniq.shape[0])


def freeze_ratio_map(value: Mapping[str, Any] | None) -> Any:
    """attrs converter for ratio mappings: str → float, frozen (bad values raise SplitError)."""
    from mml._fields import FrozenDict

    if not isinstance(value, Mapping) or not value:
        raise SplitError(
            f"ratios is a non-empty mapping of split name to fraction, e.g. "
            f"{{'train': 0.8, 'test': 0.2}}; got {value!r}"
        )
    out = {}
    for name, r in value.items():
        if isinstance(r, bool) or not isinstance(r, (int, float, np.integer, np.floating)):
            raise SplitError(f"ratio of split {name!r} must be a number in [0, 1], got {r!r}")
        out[name] = float(r)
    return FrozenDict(out)
