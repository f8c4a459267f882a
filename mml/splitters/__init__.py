"""Layer 2, splitters: values that assign rows to named splits, applied with ``fs.split``.

>>> import mml
>>> fs = mml.datasets.load_battery(100, seed=0)
>>> fs = fs.split(mml.RandomSplitter(seed=0, group_by="cell_id"))
>>> sorted(fs.split_indices)
['test', 'train', 'val']
"""

from mml.splitters._base import (
    AbstractSplitter as AbstractSplitter,
    OverlappingSplitsWarning as OverlappingSplitsWarning,
    SplitterRecord as SplitterRecord,
)
from mml.splitters._condition import ConditionSplitter as ConditionSplitter
from mml.splitters._kfold import KFoldSplitter as KFoldSplitter, kfold_indices as kfold_indices
from mml.splitters._random import RandomSplitter as RandomSplitter

__all__ = [
    "AbstractSplitter",
    "ConditionSplitter",
    "KFoldSplitter",
    "OverlappingSplitsWarning",
    "RandomSplitter",
    "SplitterRecord",
    "kfold_indices",
]

from mml.errors import removed_names as _removed_names

#: names 0.2 removed (one way to split: the FeatureSet's method)
__getattr__ = _removed_names("mml.splitters", {"apply_split": "fs.split(splitter, on=..., key=...)"})
