"""Scalers: frozen specs with pure ``fit`` / ``apply`` / ``inverse``, and their FeatureSet use.

>>> import numpy as np, mml
>>> s = mml.scalers.get_scaler("minmax")
>>> x = np.array([[2.0], [4.0]])
>>> s.apply(s.fit(x), x).ravel().tolist()
[0.0, 1.0]
"""

from mml.scalers._base import AbstractScaler as AbstractScaler
from mml.scalers._base import AbstractScalerParams as AbstractScalerParams
from mml.scalers._base import NoParams as NoParams
from mml.scalers._elementwise import Absolute as Absolute
from mml.scalers._elementwise import AbsoluteParams as AbsoluteParams
from mml.scalers._elementwise import Log1p as Log1p
from mml.scalers._elementwise import Negate as Negate
from mml.scalers._elementwise import PerSampleMinMax as PerSampleMinMax
from mml.scalers._elementwise import PerSampleZeroStart as PerSampleZeroStart
from mml.scalers._featureset import ScalerRecord as ScalerRecord
from mml.scalers._featureset import fit_transform as fit_transform
from mml.scalers._featureset import inverse_transform as inverse_transform
from mml.scalers._featureset import undo_all_transforms as undo_all_transforms
from mml.scalers._featureset import undo_last_transform as undo_last_transform
from mml.scalers._featurewise import MaxAbs as MaxAbs
from mml.scalers._featurewise import MaxAbsParams as MaxAbsParams
from mml.scalers._featurewise import MinMax as MinMax
from mml.scalers._featurewise import MinMaxParams as MinMaxParams
from mml.scalers._featurewise import Robust as Robust
from mml.scalers._featurewise import RobustParams as RobustParams
from mml.scalers._featurewise import Standard as Standard
from mml.scalers._featurewise import StandardParams as StandardParams
from mml.scalers._lookup import get_scaler as get_scaler
from mml.scalers._lookup import scaler_names as scaler_names
from mml.scalers._segmented import Segmented as Segmented
from mml.scalers._segmented import SegmentedParams as SegmentedParams
from mml.scalers._sklearn import SklearnParams as SklearnParams
from mml.scalers._sklearn import SklearnScaler as SklearnScaler

__all__ = [
    "AbstractScaler",
    "AbstractScalerParams",
    "Absolute",
    "AbsoluteParams",
    "Log1p",
    "MaxAbs",
    "MaxAbsParams",
    "MinMax",
    "MinMaxParams",
    "Negate",
    "NoParams",
    "PerSampleMinMax",
    "PerSampleZeroStart",
    "Robust",
    "RobustParams",
    "Segmented",
    "SegmentedParams",
    "ScalerRecord",
    "SklearnParams",
    "SklearnScaler",
    "Standard",
    "StandardParams",
    "fit_transform",
    "get_scaler",
    "inverse_transform",
    "scaler_names",
    "undo_all_transforms",
    "undo_last_transform",
]
