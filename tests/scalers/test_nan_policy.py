"""One NaN policy for every scaler, however it is spelled: non-finite input to fit/apply raises.

Regression: ``fit_transform("StandardScaler")`` raised while ``fit_transform(StandardScaler())``
fitted and propagated NaN silently; ``Robust`` named feature positions [2, 7, 12] for a NaN at
position 2; ``PerSampleMinMax`` made one NaN an all-NaN sample.
"""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.errors import ScalerError
from mml.scalers import (
    Absolute,
    Log1p,
    MaxAbs,
    MinMax,
    Negate,
    NoParams,
    PerSampleMinMax,
    PerSampleZeroStart,
    Robust,
    Segmented,
    SklearnScaler,
    Standard,
)

sklearn_preprocessing = pytest.importorskip("sklearn.preprocessing")

BUILTINS = [
    MinMax(),
    Standard(),
    MaxAbs(),
    Robust(),
    Absolute(),
    Negate(),
    Log1p(),
    PerSampleMinMax(),
    PerSampleZeroStart(),
    Segmented(boundaries=(2,), scalers=(MinMax(),)),
]
SPELLINGS = [
    "standard",
    "StandardScaler",
    Standard,
    Standard(),
    sklearn_preprocessing.StandardScaler,
    sklearn_preprocessing.StandardScaler(),
    "robust",
    sklearn_preprocessing.RobustScaler(),
    "per_sample_minmax",
    "QuantileTransformer",
    sklearn_preprocessing.MinMaxScaler(),
]


def _fs_with_nan() -> mml.FeatureSet:
    v = np.arange(30, dtype=np.float64).reshape(6, 5) / 10 + 1
    v[3, 2] = np.nan
    return mml.FeatureSet.from_dict({"v": v}, features="v", label="nan").with_split("train", range(6))


@pytest.mark.parametrize("spelling", SPELLINGS, ids=repr)
def test_every_spelling_refuses_nan_naming_the_key_and_position(spelling) -> None:
    fs = _fs_with_nan()
    with pytest.raises(
        ScalerError, match=r"features key 'v' of FeatureSet 'nan'.*\(row, element\) position\(s\) \(3, 2\);"
    ):
        mml.scalers.fit_transform(fs, spelling)


def test_nan_outside_the_fit_rows_is_refused_too() -> None:
    fs = _fs_with_nan().with_split("train", [0, 1, 2])  # row 3 is only transformed, not fitted
    with pytest.raises(ScalerError, match=r"position\(s\) \(3, 2\)"):
        mml.scalers.fit_transform(fs, "minmax")


@pytest.mark.parametrize(
    "scaler",
    [*BUILTINS, SklearnScaler.from_estimator(sklearn_preprocessing.StandardScaler())],
    ids=lambda s: type(s).__name__,
)
def test_standalone_fit_and_apply_refuse_nan_at_the_exact_position(scaler) -> None:
    x = np.ones((4, 5))
    params = scaler.fit(x)
    x[1, 2] = np.nan
    with pytest.raises(ScalerError, match=r"\(sample, element\) position\(s\) \(1, 2\);"):
        scaler.fit(x)
    with pytest.raises(ScalerError, match=r"\(sample, element\) position\(s\) \(1, 2\);"):
        scaler.apply(params, x)


def test_tensor_keys_name_the_element_index_and_inf_counts_as_non_finite() -> None:
    x = np.ones((3, 2, 4))
    x[2, 1, 3] = np.inf
    x[0, 0, 0] = np.nan
    with pytest.raises(
        ScalerError, match=r"\(sample, \*element index\) position\(s\) \(0, 0, 0\), \(2, 1, 3\);"
    ):
        Robust().fit(x)


def test_per_sample_minmax_no_longer_turns_one_nan_into_a_nan_sample() -> None:
    x = np.array([[1.0, 2.0, np.nan, 4.0]])
    with pytest.raises(ScalerError, match=r"position\(s\) \(0, 2\)"):
        PerSampleMinMax().apply(NoParams(), x)


def test_inverse_maps_model_outputs_as_they_are() -> None:
    # outputs coming back (predictions) are not data going in: NaN stays NaN, no error
    p = Standard().fit(np.array([[0.0], [2.0]]))
    out = Standard().inverse(p, np.array([[np.nan], [1.0]]))
    assert np.isnan(out[0, 0]) and out[1, 0] == 2.0


def test_robust_statistic_check_names_the_feature_not_the_flat_index() -> None:
    from mml.scalers._base import need_finite

    q = np.zeros((3, 5))
    q[:, 2] = np.nan
    with pytest.raises(ScalerError, match=r"feature position\(s\) \[2\];"):
        need_finite(q, "Robust.fit")


def test_a_scaler_class_is_its_default_spec_and_one_needing_fields_says_so() -> None:
    from mml.scalers import get_scaler

    assert get_scaler(Robust) == Robust()
    with pytest.raises(ScalerError, match=r"Segmented has required fields.*pass an instance"):
        get_scaler(Segmented)
