"""What an argument of a FeatureSet method must implement (the FeatureSet delegates to it).

``fs.split(splitter)`` is ``splitter.split_featureset(fs, on=..., key=...)``: the splitter does the work,
so the data layer imports no splitter (layers point only downward, docs/conventions.md).
Every :class:`~mml.splitters.AbstractSplitter` implements :class:`Splitter`; so may any value
of yours that returns a new FeatureSet.

>>> import mml
>>> isinstance(mml.RandomSplitter(seed=0), Splitter), isinstance({"train": 0.5}, Splitter)
(True, False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from mml.data._featureset import FeatureSet
    from mml.random import Key

__all__ = ["Splitter"]


@runtime_checkable
class Splitter(Protocol):
    """A value that splits a FeatureSet: ``split_featureset(fs, *, on, key) -> FeatureSet`` (pure).

    The method is not called ``split``: ``str.split`` and scikit-learn's ``KFold.split(X)`` would
    match a runtime protocol check and then fail obscurely inside ``fs.split``.
    """

    def split_featureset(
        self, fs: FeatureSet, *, on: str | None = None, key: Key | None = None
    ) -> FeatureSet:
        """A new FeatureSet with this splitter's splits (of split ``on``; ``key`` overrides the seed)."""
        ...  # pragma: no cover
