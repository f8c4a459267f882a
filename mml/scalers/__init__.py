"""Scalers: frozen specs with pure ``fit`` / ``apply`` / ``inverse``, and their FeatureSet use.

>>> import numpy as np, mml
>>> s = mml.scalers.get_scaler("minmax")
>>> x = np.array([[2.0], [4.0]])
>>> s.apply(s.fit(x), x).ravel().tolist()
[0.0, 1.0]
"""

from mml.scalers._base import (
    AbstractScaler as AbstractScaler,
    AbstractScalerParams as AbstractScalerParams,
    NoParams as NoParams,
)
from mml.scalers._elementwise import (
    Absolute as Absolute,
    AbsoluteParams as AbsoluteParams,
    Log1p as Log1p,
    Negate as Negate,
    PerSampleMinMax as PerSampleMinMax,
    PerSampleZeroStart as PerSampleZeroStart,
)
from mml.scalers._featureset import (
    ScalerRecord as ScalerRecord,
    fit_transform as fit_transform,
    inverse_transform as inverse_transform,
    undo_all_transforms as undo_all_transforms,
    undo_last_transform as undo_last_transform,
)
from mml.scalers._featurewise import (
    MaxAbs as MaxAbs,
    MaxAbsParams as MaxAbsParams,
    MinMax as MinMax,
    MinMaxParams as MinMaxParams,
    Robust as Robust,
    RobustParams as RobustParams,
    Standard as Standard,
    StandardParams as StandardParams,
)
from mml.scalers._lookup import get_scaler as get_scaler, scaler_names as scaler_names
from mml.scalers._segmented import Segmented as Segmented, SegmentedParams as SegmentedParams
from mml.scalers._sklearn import SklearnScaler as SklearnScaler, SklearnScalerParams as SklearnScalerParams

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
    "SklearnScaler",
    "SklearnScalerParams",
    "Standard",
    "StandardParams",
    "fit_transform",
    "get_scaler",
    "inverse_transform",
    "scaler_names",
    "undo_all_transforms",
    "undo_last_transform",
]
