"""Stored scikit-learn scalers keep lists apart from tuples, and records with NaN or tuples of arrays compare by value."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml._fields import FrozenDict
from mml.errors import ScalerError
from mml.scalers import SklearnScaler
from mml.scalers._sklearn import _freeze, _thaw


def _fs() -> mml.FeatureSet:
    fs = mml.FeatureSet.from_dict(
        {"c": np.array([0.0, 1.0, 2.0, 1.0]), "y": np.array([1.0, 2.0, 3.0, 4.0])},
        features="c",
        targets="y",
        label="t",
    )
    return fs.split(mml.RandomSplitter({"train": 1.0}, seed=0))


def test_lists_and_tuples_survive_freezing_and_a_save():
    value = [1, (2.0, "a"), [np.arange(3.0)], ()]
    thawed = _thaw(_freeze(value, "v"))
    assert type(thawed) is list and type(thawed[1]) is tuple and type(thawed[2]) is list
    assert thawed[0] == 1 and thawed[1] == (2.0, "a") and np.array_equal(thawed[2][0], np.arange(3.0))
    # freezing what was stored (a $list marker read back from a document) does not wrap it again
    frozen = _freeze(value, "v")
    assert _freeze(dict(frozen), "v") == frozen


def test_ordinal_encoder_round_trips_and_transforms_the_same():
    out = mml.scalers.fit_transform(
        _fs(), SklearnScaler("sklearn.preprocessing:OrdinalEncoder"), domain="features"
    )
    back = mml.io.roundtrip(out)
    assert back == out  # NaN (encoded_missing_value) and a list of category arrays compare by value
    assert back.to_numpy("features").ravel().tolist() == [0.0, 1.0, 2.0, 1.0]
    new = mml.transform_like(back, {"c": np.array([2.0, 0.0]), "y": np.array([0.0, 0.0])})
    assert new.to_numpy("features").ravel().tolist() == [2.0, 0.0]


def test_one_hot_encoder_is_refused_with_the_shape_it_would_make():
    scaler = SklearnScaler("sklearn.preprocessing:OneHotEncoder", init_params={"sparse_output": False})
    with pytest.raises(ScalerError, match=r"from \(\) to \(3,\)"):
        mml.scalers.fit_transform(_fs(), scaler, domain="features")


def test_record_values_compare_nan_equal_and_tuples_of_arrays_elementwise():
    a = FrozenDict({"x": float("nan"), "t": (np.arange(3.0), np.ones(2))})
    b = FrozenDict({"x": float("nan"), "t": (np.arange(3.0), np.ones(2))})
    assert a == b
    assert a != FrozenDict({"x": float("nan"), "t": (np.arange(3.0), np.zeros(2))})
    assert a != FrozenDict({"x": 0.0, "t": (np.arange(3.0), np.ones(2))})
    assert FrozenDict({"l": [1, 2]}) != FrozenDict({"l": (1, 2)})  # a list is not a tuple
    assert FrozenDict({"l": (1, 2)}) != FrozenDict({"l": (1, 2, 3)})
