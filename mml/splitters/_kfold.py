"""KFoldSplitter: k train/validation fold pairs, optionally by group or per stratum."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from mml.data import FeatureSet, FeatureSetView
from mml.errors import SplitError
from mml.random import Key
from mml.splitters._base import (
    AbstractSplitter,
    check_column_name,
    check_group_or_stratify,
    check_seed,
    codes_of,
    read_column,
    view_rows,
)
from mml.splitters._random import random_labels

__all__ = ["KFoldSplitter", "kfold_indices"]


def _check_n_folds(instance: Any, attribute: Any, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
        raise SplitError(f"KFoldSplitter: n_folds must be an int >= 2, got {value!r}")


@attrs.frozen
class KFoldSplitter(AbstractSplitter):
    """k-fold cross-validation splits ``fold_<i>/train`` and ``fold_<i>/val`` for ``i < n_folds``.

    Every row is in exactly one ``val`` fold; ``fold_<i>/train`` is the rest. Fold sizes
    differ by at most one (by at most one group with ``group_by``; by at most one per stratum
    with ``stratify_by``). :func:`kfold_indices` gives the ``(train, val)`` pairs directly.

    >>> import mml
    >>> fs = mml.FeatureSet.from_dict({"x": list(range(10))}, features="x", label="l")
    >>> out = fs.split(KFoldSplitter(5, seed=0))
    >>> [len(out[f"fold_{i}/val"]) for i in range(5)], len(out["fold_0/train"])
    ([2, 2, 2, 2, 2], 8)
    >>> mml.io.roundtrip(KFoldSplitter(3)) == KFoldSplitter(3)
    True
    """

    kind: ClassVar[str] = "splitter.kfold"
    n_folds: int = attrs.field(default=5, validator=_check_n_folds)
    seed: int = attrs.field(default=0, validator=check_seed)
    group_by: str | None = attrs.field(default=None, kw_only=True, validator=check_column_name)
    stratify_by: str | None = attrs.field(default=None, kw_only=True, validator=check_column_name)

    def __attrs_post_init__(self) -> None:
        check_group_or_stratify(self)

    def split_names(self) -> tuple[str, ...]:
        """``fold_0/train, fold_0/val, fold_1/train, ...``.

        >>> KFoldSplitter(2).split_names()
        ('fold_0/train', 'fold_0/val', 'fold_1/train', 'fold_1/val')
        """
        return tuple(f"fold_{i}/{part}" for i in range(self.n_folds) for part in ("train", "val"))

    def fold_labels(self, view: FeatureSetView, *, key: Key | None = None) -> np.ndarray:
        """The validation fold (``0..n_folds-1``) of each row of ``view``, in view order.

        >>> import mml
        >>> fs = mml.FeatureSet.from_dict({"x": list(range(6))}, features="x", label="l")
        >>> sorted(KFoldSplitter(3).fold_labels(fs.view()).tolist())
        [0, 0, 1, 1, 2, 2]
        """
        k = int(self.n_folds)
        n = len(view)
        if self.group_by is not None:
            _, n_units = codes_of(
                read_column(view, self.group_by, "KFoldSplitter", "group_by"),
                "KFoldSplitter",
                "group_by",
                self.group_by,
            )
            what = f"groups in column {self.group_by!r}"
        else:
            n_units, what = n, "rows"
        if n_units < k:
            raise SplitError(
                f"KFoldSplitter: {k} folds need at least {k} {what}, FeatureSet {view.parent.label!r} "
                f"gives {n_units}; use fewer folds"
            )
        ratios = np.full(k, 1.0 / k)
        return random_labels(self, view, ratios, self.seed, key, self.group_by, self.stratify_by)

    def folds(
        self, view: FeatureSetView, *, key: Key | None = None
    ) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """``(train, val)`` absolute row indices for each fold, in the view's row order.

        (Ascending for all rows, or for a view whose indices ascend, as splits made by the
        splitters do.)

        >>> import mml
        >>> fs = mml.FeatureSet.from_dict({"x": list(range(4))}, features="x", label="l")
        >>> [(len(t), len(v)) for t, v in KFoldSplitter(2).folds(fs.view())]
        [(2, 2), (2, 2)]
        """
        labels = self.fold_labels(view, key=key)
        rows = view_rows(view)
        out = []
        for i in range(int(self.n_folds)):
            val_pos = np.flatnonzero(labels == i)
            train_pos = np.flatnonzero(labels != i)
            if rows is None:
                out.append((train_pos, val_pos))
            else:
                out.append((rows[train_pos], rows[val_pos]))
        return tuple(out)

    def split_indices(self, view: FeatureSetView, *, key: Key | None = None) -> dict[str, np.ndarray]:
        """Split name → absolute row indices in view order (``fold_<i>/train``, ``fold_<i>/val``).

        >>> import mml
        >>> fs = mml.FeatureSet.from_dict({"x": list(range(4))}, features="x", label="l")
        >>> list(KFoldSplitter(2).split_indices(fs.view()))
        ['fold_0/train', 'fold_0/val', 'fold_1/train', 'fold_1/val']
        """
        out = {}
        for i, (train, val) in enumerate(self.folds(view, key=key)):
            out[f"fold_{i}/train"] = train
            out[f"fold_{i}/val"] = val
        return out


def kfold_indices(
    splitter: KFoldSplitter,
    source: FeatureSet | FeatureSetView,
    *,
    on: str | None = None,
    key: Key | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The ``(train, val)`` absolute row-index pairs of each fold, without making named splits.

    ``source`` is a FeatureSet (all rows, or split ``on``) or a view.

    >>> import mml
    >>> fs = mml.FeatureSet.from_dict({"x": list(range(9))}, features="x", label="l")
    >>> pairs = kfold_indices(KFoldSplitter(3, seed=2), fs)
    >>> [len(v) for _, v in pairs], sorted(np.concatenate([v for _, v in pairs]).tolist()) == list(range(9))
    ([3, 3, 3], True)
    """
    if not isinstance(splitter, KFoldSplitter):
        raise SplitError(f"kfold_indices takes a KFoldSplitter, got {type(splitter).__name__}")
    if isinstance(source, FeatureSet):
        view = source.view() if on is None else source[on]
    elif isinstance(source, FeatureSetView):
        if on is not None:
            raise SplitError("kfold_indices: on= applies to a FeatureSet, not to a view; pass fs and on=...")
        view = source
    else:
        raise SplitError(f"kfold_indices takes a FeatureSet or a FeatureSetView, got {type(source).__name__}")
    return splitter.folds(view, key=key)
