"""Laws of the pure scalers: no mutation, inverse∘apply≈id, serialization round-trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import mml
from mml.errors import NotInvertibleError, ScalerError
from mml.scalers import (
    Absolute,
    AbstractScaler,
    Log1p,
    MaxAbs,
    MinMax,
    Negate,
    PerSampleMinMax,
    PerSampleZeroStart,
    Robust,
    Segmented,
    SklearnScaler,
    Standard,
    get_scaler,
    scaler_names,
)

sk = pytest.importorskip("sklearn.preprocessing")

INVERTIBLE: list[AbstractScaler] = [
    MinMax(),
    MinMax(feature_range=(-2, 3)),
    Standard(),
    Standard(with_mean=False),
    MaxAbs(),
    Robust(),
    Robust(unit_variance=True, quantile_range=(10, 90)),
    Negate(),
    Segmented(boundaries=(1,), scalers=(MinMax(),)),
    Segmented(boundaries=(1, 2), scalers=(Standard(), MinMax(), Negate())),
    SklearnScaler.from_estimator(sk.StandardScaler()),
    SklearnScaler.from_estimator(sk.QuantileTransformer(n_quantiles=5)),
    SklearnScaler.from_estimator(sk.PowerTransformer()),
    SklearnScaler.from_estimator(sk.MinMaxScaler),
]
NOT_INVERTIBLE: list[AbstractScaler] = [
    PerSampleMinMax(),
    PerSampleZeroStart(),
    SklearnScaler.from_estimator(sk.Normalizer()),
]
ALL = [*INVERTIBLE, *NOT_INVERTIBLE, Absolute(), Log1p()]


@st.composite
def samples(draw: st.DrawFn, min_rows: int = 6, tensor: bool = True) -> np.ndarray:
    n = draw(st.integers(min_rows, 15))
    shape = draw(st.sampled_from([(3,), (2, 3), (4,)] if tensor else [(), (3,), (2, 3)]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return draw(
        hnp.arrays(
            dtype,
            (n, *shape),
            elements=st.floats(-100, 100, allow_nan=False, width=np.dtype(dtype).itemsize * 8).map(
                lambda v: round(v, 2)
            ),
        )
    )


def _tol(x: np.ndarray) -> dict[str, float]:
    return {"rtol": 1e-3, "atol": 1e-3} if x.dtype == np.float32 else {"rtol": 1e-7, "atol": 1e-7}


@pytest.mark.parametrize("scaler", ALL, ids=lambda s: repr(s)[:60])
@settings(max_examples=15, deadline=None)
@given(x=samples())
def test_pure_same_shape_dtype_and_roundtrip(scaler: AbstractScaler, x: np.ndarray) -> None:
    if isinstance(scaler, Log1p):
        x = np.abs(x)
    before = x.copy()
    params = scaler.fit(x)
    y = scaler.apply(params, x)
    np.testing.assert_array_equal(x, before)  # never mutated
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not np.shares_memory(x, y)
    # params and spec serialize without pickle and re-apply to identical values
    assert mml.io.roundtrip(params) == params
    assert mml.io.roundtrip(scaler) == scaler
    np.testing.assert_array_equal(scaler.apply(mml.io.roundtrip(params), x), y)
    # same input, same params (fit is a pure function)
    assert scaler.fit(x) == params


@pytest.mark.parametrize("scaler", INVERTIBLE, ids=lambda s: repr(s)[:60])
@settings(max_examples=15, deadline=None)
@given(x=samples())
def test_inverse_of_apply_is_identity(scaler: AbstractScaler, x: np.ndarray) -> None:
    params = scaler.fit(x)
    y = scaler.apply(params, x)
    y_before = y.copy()
    np.testing.assert_allclose(scaler.inverse(params, y), x, **_tol(x))
    np.testing.assert_array_equal(y, y_before)


@pytest.mark.parametrize("scaler", NOT_INVERTIBLE, ids=lambda s: repr(s)[:60])
def test_not_invertible(scaler: AbstractScaler) -> None:
    x = np.arange(12.0).reshape(4, 3)
    params = scaler.fit(x)
    with pytest.raises(NotInvertibleError):
        scaler.inverse(params, scaler.apply(params, x))


@settings(max_examples=20, deadline=None)
@given(x=samples())
def test_log1p_inverse(x: np.ndarray) -> None:
    x = np.abs(x)
    s = Log1p()
    p = s.fit(x)
    np.testing.assert_allclose(s.inverse(p, s.apply(p, x)), x, **_tol(x))


@settings(max_examples=20, deadline=None)
@given(x=samples(), flip=st.lists(st.booleans(), min_size=4, max_size=4))
def test_absolute_sign_memory(x: np.ndarray, flip: list[bool]) -> None:
    # one sign per feature: the inverse restores it, also for new data of that sign
    x2 = np.abs(x.reshape(len(x), -1))
    signs = np.where(np.resize(flip, x2.shape[1]), -1.0, 1.0).astype(x.dtype)
    signed = (x2 * signs).reshape(x.shape)
    s = Absolute()
    p = s.fit(signed)
    np.testing.assert_array_equal(s.inverse(p, s.apply(p, signed)), signed)
    new = np.full((2, *x.shape[1:]), 7.0, dtype=x.dtype)
    np.testing.assert_array_equal(
        s.inverse(p, new).reshape(2, -1), np.broadcast_to(7.0 * signs, (2, x2.shape[1]))
    )


def test_absolute_mixed_signs_not_invertible() -> None:
    x = np.array([[-1.0, 1.0], [1.0, 2.0]])
    p = Absolute().fit(x)
    assert p.sign_.tolist() == [0, 1]
    with pytest.raises(NotInvertibleError, match=r"feature position\(s\) \[0\]"):
        Absolute().inverse(p, np.abs(x))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (MinMax(), sk.MinMaxScaler()),
        (MinMax(feature_range=(-1, 1)), sk.MinMaxScaler(feature_range=(-1, 1))),
        (Standard(), sk.StandardScaler()),
        (Standard(with_mean=False), sk.StandardScaler(with_mean=False)),
        (MaxAbs(), sk.MaxAbsScaler()),
        (Robust(), sk.RobustScaler()),
        (Robust(unit_variance=True), sk.RobustScaler(unit_variance=True)),
    ],
    ids=lambda s: type(s).__name__,
)
@settings(max_examples=10, deadline=None)
@given(x=samples(tensor=False))
def test_builtins_match_sklearn(ours: AbstractScaler, theirs: object, x: np.ndarray) -> None:
    x = x.astype(np.float64)
    x2 = x.reshape(len(x), -1)
    expected = theirs.fit(x2).transform(x2)  # type: ignore[attr-defined]
    np.testing.assert_allclose(ours.apply(ours.fit(x), x).reshape(len(x), -1), expected, rtol=1e-9, atol=1e-9)


def test_feature_wise_means_each_element_position() -> None:
    x = np.stack([np.arange(6.0).reshape(2, 3) * (i + 1) for i in range(3)])
    p = MinMax().fit(x)
    assert p.min_.shape == (6,)
    y = MinMax().apply(p, x)
    assert y.shape == (3, 2, 3)
    np.testing.assert_array_equal(y[:, 0, 0], [0.0, 0.0, 0.0])  # constant feature → low end
    np.testing.assert_array_equal(y[:, 1, 2], [0.0, 0.5, 1.0])


def test_float32_stays_float32_and_int_becomes_float64() -> None:
    x32 = np.arange(12, dtype=np.float32).reshape(4, 3)
    for s in (MinMax(), Standard(), MaxAbs(), Robust(), Negate(), Absolute(), Log1p(), PerSampleMinMax()):
        assert s.apply(s.fit(x32), x32).dtype == np.float32, s
    xi = np.arange(12).reshape(4, 3)
    assert MinMax().apply(MinMax().fit(xi), xi).dtype == np.float64


def test_segmented_pools_each_segment() -> None:
    x = np.array([[0.0, 10.0, 100.0, 300.0], [5.0, 0.0, 200.0, 100.0]])
    s = Segmented(boundaries=(2,), scalers=(MinMax(),))
    p = s.fit(x)
    assert [q.min_.shape for q in p.params] == [(1,), (1,)]
    np.testing.assert_allclose(s.apply(p, x), [[0.0, 1.0, 0.0, 1.0], [0.5, 0.0, 0.5, 0.0]])
    # along the last axis of a (T, C) key, per-sample scalers see their segment
    x3 = np.arange(24.0).reshape(2, 4, 3)
    s3 = Segmented(boundaries=(1,), scalers=(PerSampleZeroStart(), MinMax()))
    y3 = s3.apply(s3.fit(x3), x3)
    np.testing.assert_array_equal(y3[..., 0], x3[..., 0] - x3[:, :1, 0])
    assert y3[..., 1:].min() == 0.0 and y3[..., 1:].max() == 1.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: Segmented(boundaries=(2, 2), scalers=(MinMax(),)),
        lambda: Segmented(boundaries=(0,), scalers=(MinMax(),)),
        lambda: Segmented(boundaries=(1,), scalers=(MinMax(), MinMax(), MinMax())),
        lambda: Segmented(boundaries=(1,), scalers=("minmax",)),
        lambda: MinMax(feature_range=(1, 0)),
        lambda: Robust(quantile_range=(80, 20)),
    ],
)
def test_bad_specs(make: object) -> None:
    with pytest.raises(ScalerError):
        make()  # type: ignore[operator]


def test_segmented_boundary_outside_key() -> None:
    with pytest.raises(ScalerError, match=r"inside \(0, 3\)"):
        Segmented(boundaries=(4,), scalers=(MinMax(),)).fit(np.zeros((2, 3)))
    with pytest.raises(ScalerError, match=r"end at the axis length 3.*boundaries=\(\)"):
        Segmented(boundaries=(3,), scalers=(MinMax(),)).fit(np.zeros((2, 3)))


def test_bad_data() -> None:
    with pytest.raises(ScalerError, match="NaN"):
        MinMax().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(ScalerError, match="0 samples"):
        Standard().fit(np.zeros((0, 3)))
    with pytest.raises(ScalerError, match="3 feature"):
        MinMax().apply(MinMax().fit(np.zeros((2, 3))), np.zeros((2, 4)))
    with pytest.raises(ScalerError, match="> -1"):
        Log1p().apply(Log1p().fit(np.zeros((1, 1))), np.array([[-2.0]]))
    with pytest.raises(ScalerError, match="dtype"):
        MinMax().fit(np.array([["a"], ["b"]]))
    with pytest.raises(ScalerError, match="StandardParams"):
        Standard().apply(MinMax().fit(np.zeros((2, 1))), np.zeros((2, 1)))


def test_lookup_by_name() -> None:
    assert get_scaler("minmax") == get_scaler("MinMaxScaler") == get_scaler("minmaxscaler") == MinMax()
    assert get_scaler("StandardScaler") == Standard()
    assert get_scaler("per_sample_zero_start") == PerSampleZeroStart()
    q = get_scaler("quantiletransformer")
    assert isinstance(q, SklearnScaler) and q.estimator == "sklearn.preprocessing:QuantileTransformer"
    for name in scaler_names():
        assert isinstance(get_scaler(name), AbstractScaler)
    with pytest.raises(ScalerError, match="valid names: minmax, standard"):
        get_scaler("minmux")
    with pytest.raises(ScalerError, match="boundaries"):
        get_scaler("segmented")
    with pytest.raises(ScalerError):
        get_scaler(3.0)


def test_sklearn_instance_is_never_touched() -> None:
    est = sk.StandardScaler(with_mean=False)
    before = dict(vars(est))
    s = get_scaler(est)
    x = np.arange(10.0).reshape(5, 2)
    p = s.fit(x)
    assert vars(est) == before and not hasattr(est, "scale_")
    np.testing.assert_allclose(s.apply(p, x), sk.StandardScaler(with_mean=False).fit_transform(x))
    assert get_scaler(sk.StandardScaler) == SklearnScaler.from_estimator(sk.StandardScaler())


def test_sklearn_nested_estimator_and_random_state() -> None:
    x = np.random.default_rng(0).lognormal(size=(40, 3))
    pt = get_scaler(sk.PowerTransformer())
    p = pt.fit(x)
    assert "$estimator" in p.attributes["_scaler"]
    back = mml.io.roundtrip(p)
    assert back == p
    np.testing.assert_array_equal(pt.apply(back, x), sk.PowerTransformer().fit(x).transform(x))
    qt = get_scaler(sk.QuantileTransformer(n_quantiles=10, subsample=20))
    k = mml.random.key(1)
    assert qt.fit(x, key=k) == qt.fit(x, key=k)  # a None random_state is fixed from the key


def test_sklearn_unstorable_objects_fail_clearly() -> None:
    ft = sk.FunctionTransformer(func=np.log1p)
    with pytest.raises(ScalerError, match="'func'"):
        get_scaler(ft)
    with pytest.raises(ScalerError, match="not a scikit-learn transformer"):
        SklearnScaler(estimator="os:system").fit(np.zeros((2, 1)))


def test_sklearn_width_mismatch_is_a_scaler_error() -> None:
    s = get_scaler(sk.StandardScaler)
    p = s.fit(np.zeros((3, 2)))
    with pytest.raises(ScalerError):
        s.apply(p, np.zeros((3, 3)))
