"""Scaler values pinned by hand and against scikit-learn / numpy, with every message in full.

Fast, example-based tests (no hypothesis) for the mutation run of ``mml/scalers``
(see ``benchmarks/MUTATION.md``).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import mml
from mml.errors import NotInvertibleError, ScalerError, SchemaError, SplitError
from mml.scalers import (
    Absolute,
    AbsoluteParams,
    Log1p,
    MaxAbs,
    MaxAbsParams,
    MinMax,
    Negate,
    NoParams,
    PerSampleMinMax,
    PerSampleZeroStart,
    Robust,
    ScalerRecord,
    Segmented,
    SegmentedParams,
    SklearnScaler,
    SklearnScalerParams,
    Standard,
    fit_transform,
    get_scaler,
    inverse_transform,
    scaler_names,
    undo_all_transforms,
    undo_last_transform,
)
from mml.scalers._base import finite_samples, need_finite, nonzero_scale
from mml.scalers._featurewise import _variance

sk = pytest.importorskip("sklearn.preprocessing")

EPS = np.finfo(np.float64).eps


def full(message: str) -> str:
    return "^" + re.escape(message) + "$"


X = np.array([[1.0, 10.0, 5.0], [3.0, 30.0, 5.0], [2.0, 20.0, 5.0], [6.0, -10.0, 5.0]])


# -- feature-wise scalers: params and values ---------------------------------------------


def test_minmax_params_and_values_by_hand() -> None:
    s = MinMax(feature_range=(-1, 3))
    p = s.fit(X)
    # col 0: range 5 → scale 4/5, col 1: range 40 → 0.1, col 2 constant → range 1 → scale 4
    np.testing.assert_allclose(p.scale_, [0.8, 0.1, 4.0], rtol=1e-15)
    np.testing.assert_allclose(p.min_, [-1 - 0.8, -1 + 1.0, -1 - 20.0], rtol=1e-15)
    y = s.apply(p, X)
    np.testing.assert_allclose(y[:, 0], [-1.0, 0.6, -0.2, 3.0], rtol=1e-14)
    np.testing.assert_allclose(y[:, 1], [1.0, 3.0, 2.0, -1.0], rtol=1e-14)
    np.testing.assert_allclose(y[:, 2], [-1.0] * 4, rtol=1e-14)  # a constant feature maps to low
    np.testing.assert_allclose(s.inverse(p, y), X, rtol=1e-14)
    np.testing.assert_allclose(s.inverse(p, np.array([[3.0, -1.0, 0.0]])), [[6.0, -10.0, 5.25]], rtol=1e-14)
    np.testing.assert_allclose(y, sk.MinMaxScaler(feature_range=(-1, 3)).fit_transform(X), rtol=1e-14)
    assert MinMax().feature_range == (0.0, 1.0)


def test_standard_params_and_values_against_numpy_and_sklearn() -> None:
    p = Standard().fit(X)
    np.testing.assert_allclose(p.mean_, X.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(p.scale_, [X[:, 0].std(), X[:, 1].std(), 1.0], rtol=1e-14)
    y = Standard().apply(p, X)
    np.testing.assert_allclose(y, sk.StandardScaler().fit_transform(X), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(Standard().inverse(p, y), X, rtol=1e-14)
    # without the mean: the std is still around the mean, the data are only divided
    q = Standard(with_mean=False).fit(X)
    np.testing.assert_array_equal(q.mean_, [0.0, 0.0, 0.0])
    np.testing.assert_allclose(q.scale_, p.scale_, rtol=1e-15)
    np.testing.assert_allclose(Standard(with_mean=False).apply(q, X), X / p.scale_, rtol=1e-15)
    np.testing.assert_allclose(Standard(with_mean=False).inverse(q, X / p.scale_), X, rtol=1e-15)
    # without the std: only centred
    r = Standard(with_std=False).fit(X)
    np.testing.assert_array_equal(r.scale_, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(Standard(with_std=False).apply(r, X), X - p.mean_, rtol=1e-15)
    np.testing.assert_allclose(Standard(with_std=False).inverse(r, X - p.mean_), X, rtol=1e-15)
    # both off: the identity, in a new array
    n = Standard(with_mean=False, with_std=False)
    out = n.apply(n.fit(X), X)
    np.testing.assert_array_equal(out, X)
    assert not np.shares_memory(out, X)
    np.testing.assert_array_equal(n.inverse(n.fit(X), X), X)
    # a params record applied by a spec that ignores a field ignores it
    np.testing.assert_allclose(Standard(with_mean=False).apply(p, X), X / p.scale_, rtol=1e-15)
    np.testing.assert_allclose(Standard(with_std=False).inverse(p, X), X + p.mean_, rtol=1e-15)


def test_variance_over_several_blocks() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(2 * 65536 + 7, 2))
    mean = x.mean(axis=0)
    np.testing.assert_allclose(_variance(x, mean), x.var(axis=0), rtol=1e-12)
    small = np.array([[1.0], [3.0]])
    np.testing.assert_array_equal(_variance(small, np.array([2.0])), [1.0])


def test_maxabs_values() -> None:
    x = np.array([[-4.0, 1.0, 0.0], [2.0, -0.5, 0.0], [1.0, 0.25, 0.0]])
    p = MaxAbs().fit(x)
    np.testing.assert_array_equal(p.scale_, [4.0, 1.0, 1.0])  # an all-zero feature keeps scale 1
    y = MaxAbs().apply(p, x)
    np.testing.assert_array_equal(y, [[-1.0, 1.0, 0.0], [0.5, -0.5, 0.0], [0.25, 0.25, 0.0]])
    np.testing.assert_array_equal(MaxAbs().inverse(p, y), x)
    np.testing.assert_array_equal(y, sk.MaxAbsScaler().fit_transform(x))
    # the largest magnitude may be the max or the min
    np.testing.assert_array_equal(MaxAbs().fit(np.array([[3.0], [-1.0]])).scale_, [3.0])
    np.testing.assert_array_equal(MaxAbs().fit(np.array([[-3.0], [1.0]])).scale_, [3.0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"quantile_range": (10.0, 90.0)},
        {"quantile_range": (0.0, 100.0)},
        {"with_centering": False},
        {"with_scaling": False},
        {"unit_variance": True, "quantile_range": (20.0, 70.0)},
    ],
    ids=repr,
)
def test_robust_matches_sklearn(kwargs: dict) -> None:
    x = np.array([[1.0, 7.0], [2.0, -3.0], [3.0, 0.5], [100.0, 2.0], [4.0, 11.0], [-2.0, 4.0]])
    ours = Robust(**kwargs)
    theirs = sk.RobustScaler(**kwargs).fit(x)
    p = ours.fit(x)
    want_center = theirs.center_ if kwargs.get("with_centering", True) else np.zeros(2)
    want_scale = theirs.scale_ if kwargs.get("with_scaling", True) else np.ones(2)
    np.testing.assert_allclose(p.center_, want_center, rtol=1e-14)
    np.testing.assert_allclose(p.scale_, want_scale, rtol=1e-14)
    y = ours.apply(p, x)
    np.testing.assert_allclose(y, theirs.transform(x), rtol=1e-13)
    np.testing.assert_allclose(ours.inverse(p, y), x, rtol=1e-13)


def test_robust_by_hand_and_constant_feature() -> None:
    x = np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 2.0], [4.0, 2.0], [5.0, 2.0]])
    p = Robust().fit(x)
    np.testing.assert_array_equal(p.center_, [3.0, 2.0])
    np.testing.assert_array_equal(p.scale_, [2.0, 1.0])  # IQR 4-2; a constant feature gets 1
    np.testing.assert_array_equal(Robust().apply(p, x)[:, 0], [-1.0, -0.5, 0.0, 0.5, 1.0])
    assert Robust().quantile_range == (25.0, 75.0)


@pytest.mark.parametrize("qr", [(0.0, 100.0), (0.0, 0.5), (99.5, 100.0)])
def test_robust_quantile_range_bounds_are_inclusive(qr: tuple) -> None:
    assert Robust(quantile_range=qr).quantile_range == qr


@pytest.mark.parametrize("qr", [(-1.0, 50.0), (50.0, 100.5), (50.0, 50.0), (60.0, 40.0), (10.0, 20.0, 30.0)])
def test_robust_bad_quantile_range(qr: tuple) -> None:
    with pytest.raises(
        ScalerError,
        match=full(
            f"Robust.quantile_range must be (q_low, q_high) with 0 <= q_low < q_high <= 100, got {qr!r}"
        ),
    ):
        Robust(quantile_range=qr)


@pytest.mark.parametrize("cls", [MinMax, PerSampleMinMax])
def test_feature_range_messages(cls: type) -> None:
    for bad in [(1.0, 1.0), (2.0, 1.0), (0.0, 1.0, 2.0)]:
        with pytest.raises(
            ScalerError,
            match=full(f"{cls.__name__}.feature_range must be (low, high) with low < high, got {bad!r}"),
        ):
            cls(feature_range=bad)
    assert cls(feature_range=[0, 2]).feature_range == (0.0, 2.0)


def test_nonzero_scale_threshold() -> None:
    out = nonzero_scale(np.array([10 * EPS, 9 * EPS, -9 * EPS, 0.0, -1.0, 2.5]))
    np.testing.assert_array_equal(out, [10 * EPS, 1.0, 1.0, 1.0, -1.0, 2.5])
    assert out.dtype == np.float64


# -- element-wise and per-sample scalers ---------------------------------------------------


def test_absolute_sign_memory_by_hand() -> None:
    x = np.array([[-1.0, 2.0, 0.0, -3.0, 0.0], [-3.0, 0.0, 0.0, 4.0, -1.0]])
    p = Absolute().fit(x)
    assert p.sign_.dtype == np.int8
    # all >= 0 → +1 (zeros included), all <= 0 → -1, both signs → 0
    assert p.sign_.tolist() == [-1, 1, 1, 0, -1]
    np.testing.assert_array_equal(Absolute().apply(p, x), np.abs(x))
    good = AbsoluteParams(sign_=np.array([-1, 1, 1, -1, -1], dtype=np.int8))
    np.testing.assert_array_equal(
        Absolute().inverse(good, np.full((1, 5), 2.0)), [[-2.0, 2.0, 2.0, -2.0, -2.0]]
    )
    with pytest.raises(
        NotInvertibleError,
        match=full(
            "Absolute: feature position(s) [3] had both signs in the fitted data, so the sign of new "
            "values is unknown; scale a signed quantity with another scaler (e.g. 'standard') if you "
            "need the inverse"
        ),
    ):
        Absolute().inverse(p, np.abs(x))
    with pytest.raises(
        ScalerError,
        match=full("Absolute.inverse needs AbsoluteParams, got NoParams; pass what its fit returned"),
    ):
        Absolute().inverse(NoParams(), x)
    with pytest.raises(ScalerError, match=r"^Absolute was fitted on 5 feature\(s\) per sample but got 2 "):
        Absolute().inverse(good, np.zeros((1, 2)))
    with pytest.raises(
        ScalerError, match=r"^Absolute\.fit: cannot fit on 0 samples; check that the fit split is not empty$"
    ):
        Absolute().fit(np.zeros((0, 2)))
    # a tensor key: the sign memory is per element position, the shape comes back
    t = -np.ones((2, 2, 3))
    pt = Absolute().fit(t)
    assert pt.sign_.tolist() == [-1] * 6
    np.testing.assert_array_equal(Absolute().inverse(pt, np.ones((1, 2, 3))), -np.ones((1, 2, 3)))
    assert Absolute().inverse(pt, np.ones((1, 2, 3), dtype=np.float32)).dtype == np.float32


def test_negate_and_log1p_values() -> None:
    xi = np.array([[1, -2]])
    y = Negate().apply(Negate().fit(xi), xi)
    assert y.dtype == np.float64 and y.tolist() == [[-1.0, 2.0]]
    assert Negate().inverse(NoParams(), y).tolist() == [[1.0, -2.0]]
    assert Negate().fit(xi) == NoParams()
    x = np.array([[0.0, np.e - 1, -0.5]])
    assert Log1p().fit(x) == NoParams()
    np.testing.assert_allclose(Log1p().apply(NoParams(), x), [[0.0, 1.0, np.log(0.5)]], rtol=1e-15)
    np.testing.assert_allclose(Log1p().inverse(NoParams(), [[0.0, 1.0]]), [[0.0, np.e - 1]], rtol=1e-15)
    assert Log1p().apply(NoParams(), np.zeros((0, 2))).shape == (0, 2)
    Log1p().apply(NoParams(), np.array([[-0.999]]))  # just inside the domain
    for who, call in [
        ("Log1p.apply", lambda v: Log1p().apply(NoParams(), v)),
        ("Log1p.fit", lambda v: Log1p().fit(v)),
    ]:
        with pytest.raises(
            ScalerError,
            match=full(
                f"{who}: log1p needs values > -1 but the data hold values <= -1 (or NaN); shift the data "
                "first or use another scaler"
            ),
        ):
            call(np.array([[0.5], [-1.0]]))


def test_per_sample_minmax_values() -> None:
    x = np.array([[1.0, 3.0, 2.0], [4.0, 4.0, 4.0], [-2.0, 0.0, 2.0]])
    np.testing.assert_array_equal(
        PerSampleMinMax().apply(NoParams(), x), [[0.0, 1.0, 0.5], [0.0, 0.0, 0.0], [0.0, 0.5, 1.0]]
    )
    y = PerSampleMinMax(feature_range=(2, 5)).apply(PerSampleMinMax().fit(x), x)
    np.testing.assert_array_equal(y, [[2.0, 5.0, 3.5], [2.0, 2.0, 2.0], [2.0, 3.5, 5.0]])
    neg = PerSampleMinMax(feature_range=(-1, 0)).apply(NoParams(), x)
    np.testing.assert_array_equal(neg, [[-1.0, 0.0, -0.5], [-1.0, -1.0, -1.0], [-1.0, -0.5, 0.0]])
    y32 = PerSampleMinMax(feature_range=(2, 5)).apply(NoParams(), x.astype(np.float32))
    assert y32.dtype == np.float32 and y32.tolist() == y.tolist()
    # a tensor sample is scaled as a whole
    t = np.arange(12.0).reshape(2, 2, 3)
    np.testing.assert_allclose(PerSampleMinMax().apply(NoParams(), t)[1], np.arange(6.0).reshape(2, 3) / 5)
    assert PerSampleMinMax().apply(NoParams(), np.zeros((2, 0))).shape == (2, 0)
    assert PerSampleMinMax().apply(NoParams(), np.zeros((0, 3))).shape == (0, 3)
    with pytest.raises(
        NotInvertibleError,
        match=full(
            "PerSampleMinMax has no inverse: the min/max of each new sample are unknown; scale targets "
            "with a fitted scaler such as 'minmax' if you need to map outputs back"
        ),
    ):
        PerSampleMinMax().inverse(NoParams(), x)


def test_per_sample_zero_start_values() -> None:
    x = np.array([[[1, 10], [3, 5], [4, 20]]])
    y = PerSampleZeroStart().apply(PerSampleZeroStart().fit(x), x)
    assert y.dtype == np.float64 and y.tolist() == [[[0.0, 0.0], [2.0, -5.0], [3.0, 10.0]]]
    assert PerSampleZeroStart().apply(NoParams(), np.array([[2.0, 3.0, 5.0]])).tolist() == [[0.0, 1.0, 3.0]]
    with pytest.raises(
        ScalerError,
        match=full("PerSampleZeroStart needs a tensor key (shape (n, T, ...)), got an array of shape (3,)"),
    ):
        PerSampleZeroStart().apply(NoParams(), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(
        NotInvertibleError,
        match=full(
            "PerSampleZeroStart has no inverse: the start value of each new sample is unknown; scale "
            "targets with a fitted scaler if you need to map outputs back"
        ),
    ):
        PerSampleZeroStart().inverse(NoParams(), x)


def test_names_fit_apply_and_kinds() -> None:
    assert [s.name for s in (MinMax(), Standard(), MaxAbs(), Robust(), Log1p())] == [
        "minmax",
        "standard",
        "maxabs",
        "robust",
        "log1p",
    ]
    assert PerSampleMinMax().name == "per_sample_minmax"
    p, y = MaxAbs().fit_apply(np.array([[-2.0], [1.0]]))
    assert p == MaxAbsParams(scale_=[2.0]) and y.ravel().tolist() == [-1.0, 0.5]
    assert MinMax.feature_wise and not PerSampleMinMax.feature_wise and not Segmented.feature_wise
    assert SklearnScaler.from_estimator(sk.Normalizer).name == "Normalizer"


# -- errors of the shared checks, in full ---------------------------------------------------


def test_input_errors_in_full() -> None:
    with pytest.raises(
        ScalerError, match=full("MinMax.fit: expected an array of shape (n, *key_shape), got a scalar")
    ):
        MinMax().fit(np.float64(1.0))
    with pytest.raises(
        ScalerError,
        match=full(
            "Standard.fit: cannot scale values of dtype <U1; scalers take numeric arrays (leave "
            "non-numeric keys out with keys=[...])"
        ),
    ):
        Standard().fit(np.array([["a"], ["b"]]))
    for kind, arr in [
        ("b", np.array([[True], [False]])),
        ("i", np.array([[1], [2]])),
        ("u", np.array([[1], [2]], np.uint8)),
    ]:
        assert MaxAbs().fit(arr).scale_.tolist() == [1.0 if kind == "b" else 2.0]
    with pytest.raises(
        ScalerError,
        match=full("Standard.apply needs StandardParams, got MinMaxParams; pass what its fit returned"),
    ):
        Standard().apply(MinMax().fit(X), X)
    with pytest.raises(
        ScalerError,
        match=full(
            "MinMax was fitted on 3 feature(s) per sample but got 2 (array of shape (4, 2)); apply it "
            "to data shaped like the data it was fitted on"
        ),
    ):
        MinMax().apply(MinMax().fit(X), X[:, :2])
    for cls in (MinMax, Standard, MaxAbs, Robust):
        with pytest.raises(
            ScalerError,
            match=full(f"{cls.__name__}.fit: cannot fit on 0 samples; check that the fit split is not empty"),
        ):
            cls().fit(np.zeros((0, 3)))
        with pytest.raises(ScalerError, match=f"^{cls.__name__}.inverse needs {cls.__name__}Params"):
            cls().inverse(NoParams(), X)


def test_non_finite_messages_in_full() -> None:
    x = np.zeros((3, 4))
    x[0, 1] = np.nan
    x[2, 0] = np.inf
    with pytest.raises(
        ScalerError,
        match=full(
            "MinMax.fit: the data hold NaN or infinite values at (sample, element) position(s) (0, 1), "
            "(2, 0); scalers refuse non-finite input however they are named: drop those samples "
            "(view.filter(...)) or impute the values before building the FeatureSet"
        ),
    ):
        MinMax().fit(x)
    with pytest.raises(ScalerError, match=re.escape("at sample position(s) 1, 3; ")):
        finite_samples(np.array([0.0, np.nan, 1.0, -np.inf]), "f")
    with pytest.raises(ScalerError, match=re.escape("at row position(s) 1; ")):
        finite_samples(np.array([0.0, np.nan]), "f", rows="row")
    with pytest.raises(ScalerError, match=re.escape("at (sample, *element index) position(s) (1, 0, 1); ")):
        finite_samples(np.array([[[0.0, 0.0]], [[0.0, np.nan]]]), "f")
    many = np.full((7, 1), np.nan)
    with pytest.raises(
        ScalerError, match=re.escape("position(s) (0, 0), (1, 0), (2, 0), (3, 0), (4, 0) and 2 more; ")
    ):
        finite_samples(many, "f")
    with pytest.raises(ScalerError, match=re.escape("position(s) (0, 0), (1, 0), (2, 0), (3, 0), (4, 0); ")):
        finite_samples(many[:5], "f")
    ints = np.array([[1], [2]])
    assert finite_samples(ints, "f") is ints
    # inverse maps non-finite values as they are
    p = MinMax().fit(X)
    assert np.isnan(MinMax().inverse(p, np.full((1, 3), np.nan))).all()


def test_need_finite_names_features() -> None:
    with pytest.raises(
        ScalerError,
        match=full(
            "Robust.fit: the data hold NaN or infinite values at feature position(s) [1, 3]; clean or "
            "impute them before scaling"
        ),
    ):
        need_finite(np.array([0.0, np.nan, 1.0, np.inf]), "Robust.fit")
    with pytest.raises(ScalerError, match=re.escape("feature position(s) [2]")):
        need_finite(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, np.nan]]), "Robust.fit")
    with pytest.raises(ScalerError, match=re.escape("feature position(s) [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];")):
        need_finite(np.full(12, np.nan), "x")
    need_finite(np.zeros((2, 3)), "x")


# -- Segmented -----------------------------------------------------------------------------


def test_segmented_values_axis_and_keys() -> None:
    x = np.array([[[0.0, 1.0], [2.0, 3.0], [10.0, 20.0]], [[4.0, 5.0], [6.0, 7.0], [30.0, 40.0]]])
    # cut along axis 0 of the (3, 2) sample: rows [0, 2) and [2, 3)
    s = Segmented(boundaries=(2,), scalers=(MinMax(),), axis=0)
    p = s.fit(x)
    assert isinstance(p, SegmentedParams) and len(p.params) == 2
    np.testing.assert_allclose(p.params[0].scale_, [1 / 7])
    np.testing.assert_allclose(p.params[1].scale_, [1 / 30])
    y = s.apply(p, x)
    np.testing.assert_allclose(y[0, :2], [[0.0, 1 / 7], [2 / 7, 3 / 7]])
    np.testing.assert_allclose(y[1, 2], [2 / 3, 1.0])
    np.testing.assert_allclose(s.inverse(p, y), x)
    # axis=-2 is the same axis
    np.testing.assert_array_equal(Segmented(boundaries=(2,), scalers=(MinMax(),), axis=-2).apply(p, x), y)
    # one spec per segment
    two = Segmented(boundaries=(1,), scalers=(Negate(), MaxAbs()))
    v = np.array([[1.0, -4.0, 2.0], [2.0, 1.0, 0.0]])
    np.testing.assert_allclose(two.apply(two.fit(v), v), [[-1.0, -1.0, 0.5], [-2.0, 0.25, 0.0]])
    assert Segmented(boundaries=(), scalers=MinMax()).scalers == (MinMax(),)
    assert Segmented(boundaries=[1, 2], scalers=[MinMax()]).n_segments == 3
    # a key gives each segment its own derived key
    qt = SklearnScaler.from_estimator(sk.QuantileTransformer(n_quantiles=4, subsample=5))
    seg = Segmented(boundaries=(1,), scalers=(qt,))
    z = np.random.default_rng(0).normal(size=(12, 2))
    k = mml.random.key(3)
    fitted = seg.fit(z, key=k)
    want = [qt.fit(z[:, i : i + 1].reshape(-1, 1), key=mml.random.fold_in(k, i)) for i in range(2)]
    assert fitted.params == tuple(want)
    assert seg.fit(z).params[0] == qt.fit(z[:, :1])


def test_segmented_messages_in_full() -> None:
    with pytest.raises(
        ScalerError, match=full("Segmented.boundaries must be strictly increasing positive ints, got (2, 2)")
    ):
        Segmented(boundaries=(2, 2), scalers=(MinMax(),))
    for bad in [(3, 1), (1.5,), (True,), (-1, 2)]:
        with pytest.raises(ScalerError, match="strictly increasing positive ints"):
            Segmented(boundaries=bad, scalers=(MinMax(),))
    with pytest.raises(
        ScalerError,
        match=full(
            "Segmented.boundaries are the interior cut points, without 0 and without the axis length; "
            "got (0, 3, 6): drop 0 and the length — boundaries=(3,) if 6 is the axis length, else "
            "boundaries=(3, 6)"
        ),
    ):
        Segmented(boundaries=(0, 3, 6), scalers=(MinMax(),))
    with pytest.raises(
        ScalerError,
        match=re.escape("got (0,): drop 0 and the length — leave boundaries out (()) for one segment"),
    ):
        Segmented(boundaries=(0,), scalers=(MinMax(),))
    with pytest.raises(
        ScalerError,
        match=full(
            "Segmented.scalers holds scaler specs (e.g. (mml.scalers.MinMax(),)); turn names into specs "
            "with mml.scalers.get_scaler(name)"
        ),
    ):
        Segmented(boundaries=(1,), scalers=(MinMax(), "minmax"))
    with pytest.raises(
        ScalerError,
        match=full(
            "Segmented has 2 segment(s) (boundaries (1,)) but 3 scalers; give one scaler for all "
            "segments or one per segment"
        ),
    ):
        Segmented(boundaries=(1,), scalers=(MinMax(),) * 3)
    s = Segmented(boundaries=(2,), scalers=(MinMax(),))
    with pytest.raises(
        ScalerError, match=full("Segmented.fit: Segmented needs a tensor key, got an array of shape (3,)")
    ):
        s.fit(np.zeros(3))
    with pytest.raises(
        ScalerError, match=full("Segmented.fit: axis 1 is out of range for per-sample shape (4,)")
    ):
        Segmented(boundaries=(2,), scalers=(MinMax(),), axis=1).fit(np.zeros((2, 4)))
    with pytest.raises(
        ScalerError, match=full("Segmented.fit: axis -2 is out of range for per-sample shape (4,)")
    ):
        Segmented(boundaries=(2,), scalers=(MinMax(),), axis=-2).fit(np.zeros((2, 4)))
    with pytest.raises(
        ScalerError,
        match=full(
            "Segmented.apply: boundaries (2, 4) end at the axis length 4; boundaries are the interior cut "
            "points: drop the length — boundaries=(2,)"
        ),
    ):
        Segmented(boundaries=(2, 4), scalers=(MinMax(),)).apply(SegmentedParams(params=()), np.zeros((1, 4)))
    with pytest.raises(
        ScalerError,
        match=full(
            "Segmented.fit: boundaries (5,) must lie inside (0, 4) for axis -1 of per-sample shape (4,)"
        ),
    ):
        Segmented(boundaries=(5,), scalers=(MinMax(),)).fit(np.zeros((2, 4)))
    p = s.fit(np.arange(8.0).reshape(2, 4))
    with pytest.raises(ScalerError, match=full("Segmented.inverse: params hold 2 segments, the spec has 3")):
        Segmented(boundaries=(1, 2), scalers=(MinMax(),)).inverse(p, np.zeros((2, 4)))
    with pytest.raises(
        ScalerError,
        match=full("Segmented.apply needs SegmentedParams, got NoParams; pass what its fit returned"),
    ):
        s.apply(NoParams(), np.zeros((2, 4)))
    # inverse takes non-finite model outputs, apply refuses them
    assert np.isnan(s.inverse(p, np.full((1, 4), np.nan))).all()
    with pytest.raises(ScalerError, match=r"^Segmented\.apply: the data hold NaN"):
        s.apply(p, np.full((1, 4), np.nan))


# -- get_scaler ------------------------------------------------------------------------------


def test_get_scaler_names_and_errors() -> None:
    assert scaler_names() == (
        "minmax",
        "standard",
        "maxabs",
        "robust",
        "per_sample_minmax",
        "per_sample_zero_start",
        "negate",
        "absolute",
        "log1p",
        "MinMaxScaler",
        "StandardScaler",
        "MaxAbsScaler",
        "RobustScaler",
    )
    assert get_scaler("  MaxAbsScaler ") == MaxAbs() and get_scaler("RobustScaler") == Robust()
    assert (
        get_scaler("Log1p") == Log1p()
        and get_scaler("absolute") == Absolute()
        and get_scaler("negate") == Negate()
    )
    assert get_scaler("per_sample_minmax") == PerSampleMinMax()
    s = MinMax(feature_range=(0, 2))
    assert get_scaler(s) is s
    assert get_scaler(Robust) == Robust()
    assert get_scaler("normalizer") == SklearnScaler.from_estimator(sk.Normalizer)
    assert get_scaler("PolynomialFeatures").name == "PolynomialFeatures"
    with pytest.raises(ScalerError) as info:
        get_scaler("minmux")
    msg = str(info.value)
    assert msg.startswith(
        "unknown scaler 'minmux'; valid names: minmax, standard, maxabs, robust, per_sample_minmax, "
        "per_sample_zero_start, negate, absolute, log1p, MinMaxScaler, StandardScaler, MaxAbsScaler, "
        "RobustScaler, or any transformer class name of sklearn.preprocessing (Binarizer, "
    )
    assert ", QuantileTransformer, " in msg and "OneHotEncoder" in msg
    assert msg.endswith("); you can also pass a scaler spec or a scikit-learn transformer class or instance")
    with pytest.raises(
        ScalerError,
        match=full(
            "'segmented' needs boundaries: use mml.scalers.Segmented(boundaries=(...), scalers=(...))"
        ),
    ):
        get_scaler(" Segmented")
    with pytest.raises(
        ScalerError,
        match=full(
            "cannot use 3.0 as a scaler: pass a name like 'minmax', a spec like mml.scalers.MinMax(), "
            "or a scikit-learn transformer class or instance"
        ),
    ):
        get_scaler(3.0)
    with pytest.raises(
        ScalerError,
        match=r"^scaler class Segmented has required fields \(.*\); pass an instance, e\.g\. Segmented\(\.\.\.\)$",
    ):
        get_scaler(Segmented)


# -- SklearnScaler --------------------------------------------------------------------------


def test_sklearn_scaler_values_and_stored_attributes() -> None:
    s = SklearnScaler.from_estimator(sk.StandardScaler(with_std=False, copy=False))
    assert s.estimator == "sklearn.preprocessing:StandardScaler"
    assert dict(s.init_params) == {"copy": True, "with_mean": True, "with_std": False}
    p = s.fit(X)
    assert isinstance(p, SklearnScalerParams)
    np.testing.assert_allclose(p.attributes["mean_"], X.mean(axis=0))
    assert p.attributes["n_samples_seen_"] == 4 and "with_std" not in p.attributes
    y = s.apply(p, X)
    np.testing.assert_allclose(y, X - X.mean(axis=0))
    np.testing.assert_allclose(s.inverse(p, y), X)
    # tensor keys come back in their shape
    t = np.arange(12.0).reshape(2, 2, 3)
    mm = SklearnScaler.from_estimator(sk.MinMaxScaler)
    assert mm.apply(mm.fit(t), t).shape == (2, 2, 3)
    # a transformer that changes the width returns its own shape
    poly = get_scaler(sk.PolynomialFeatures(degree=2))
    assert poly.apply(poly.fit(X[:, :2]), X[:, :2]).shape == (4, 6)
    # a fixed random_state is kept, a None one is fixed from the key (else 0)
    qt = SklearnScaler.from_estimator(sk.QuantileTransformer(n_quantiles=3, random_state=None))
    z = np.arange(10.0).reshape(5, 2)
    assert qt.fit(z).attributes["random_state"] == 0
    k = mml.random.key(5)
    assert qt.fit(z, key=k).attributes["random_state"] == mml.random.seed_int(k)
    fixed = SklearnScaler.from_estimator(sk.QuantileTransformer(n_quantiles=3, random_state=7))
    assert "random_state" not in fixed.fit(z).attributes


def test_sklearn_scaler_messages() -> None:
    with pytest.raises(
        ScalerError,
        match=full("3 is not a scikit-learn transformer (a BaseEstimator with fit and transform)"),
    ):
        SklearnScaler.from_estimator(3)
    with pytest.raises(
        ScalerError,
        match=full(
            "'os:system' is not a scikit-learn transformer class (a BaseEstimator with fit/transform)"
        ),
    ):
        SklearnScaler(estimator="os:system").fit(np.zeros((2, 1)))
    with pytest.raises(ScalerError, match=r"^cannot import the estimator class 'nope\.nothing:Thing': "):
        SklearnScaler(estimator="nope.nothing:Thing").fit(np.zeros((2, 1)))
    s = get_scaler(sk.StandardScaler)
    p = s.fit(np.zeros((3, 2)))
    with pytest.raises(ScalerError, match=r"^StandardScaler\.apply failed on data of shape \(3, 3\): "):
        s.apply(p, np.zeros((3, 3)))
    with pytest.raises(ScalerError, match=r"^QuantileTransformer\.fit failed on data of shape \(2, 1\): "):
        get_scaler(sk.QuantileTransformer(n_quantiles=0)).fit(np.zeros((2, 1)))
    with pytest.raises(
        ScalerError,
        match=full("StandardScaler.apply needs SklearnScalerParams, got NoParams; pass what its fit returned"),
    ):
        s.apply(NoParams(), np.zeros((3, 2)))
    with pytest.raises(ScalerError, match=r"^StandardScaler\.fit: cannot fit on 0 samples"):
        s.fit(np.zeros((0, 2)))
    with pytest.raises(ScalerError, match=r"^StandardScaler\.fit: the data hold NaN"):
        s.fit(np.array([[np.nan]]))
    n = get_scaler(sk.Normalizer())
    with pytest.raises(
        NotInvertibleError,
        match=full(
            "Normalizer has no inverse_transform, so its outputs cannot be mapped back; use an invertible "
            "scaler where you need the inverse"
        ),
    ):
        n.inverse(n.fit(X), X)
    with pytest.raises(
        ScalerError,
        match=r"^cannot store FunctionTransformer parameter 'func' \(a numpy\.ufunc\) as data; mml saves",
    ):
        get_scaler(sk.FunctionTransformer(func=np.log1p))


# -- FeatureSet functions ---------------------------------------------------------------------


def small_fs() -> mml.FeatureSet:
    return mml.FeatureSet.from_dict(
        {
            "x": np.arange(6.0),
            "v": np.arange(12.0).reshape(6, 2),
            "y": np.arange(6.0) * 2,
            "t": np.arange(6.0) + 1,
        },
        features=["x", "v"],
        targets=["y", "t"],
        label="toy",
    ).with_split("train", range(4))


def test_fit_transform_values_and_record() -> None:
    fs = small_fs()
    out = fit_transform(fs, "minmax", keys="x")
    np.testing.assert_allclose(out.column_array("features", "x"), np.arange(6.0) / 3)  # fitted on 0..3
    np.testing.assert_array_equal(out.column_array("features", "x", "raw"), np.arange(6.0))
    (rec,) = out.records
    assert isinstance(rec, ScalerRecord)
    assert (rec.domain, rec.keys, rec.fit_on, rec.input_reps, rec.n_fit) == (
        "features",
        ("x",),
        "train",
        ("raw",),
        4,
    )
    assert rec.describe() == "scaler minmax on features x (fit on split 'train')"
    assert rec.params_of("x") == MinMax().fit(np.arange(4.0))
    with pytest.raises(SchemaError, match=full("this scaler record covers keys ['x'], not 'v'")):
        rec.params_of("v")
    all_rows = fit_transform(fs, "maxabs", fit_on=None)
    (rec2,) = all_rows.records
    assert rec2.keys == ("x", "v") and rec2.n_fit == 6 and rec2.fit_on is None
    assert rec2.describe() == "scaler maxabs on features x, v (fit on all rows)"
    np.testing.assert_allclose(
        all_rows.column_array("features", "v"), np.arange(12.0).reshape(6, 2) / [10.0, 11.0]
    )
    # the column order: transformed right after its raw column
    names = all_rows.table.column_names
    assert names.index("features.x.transformed") == names.index("features.x.raw") + 1
    # chaining reads the transformed column
    chained = fit_transform(out, "negate", keys="x", fit_on=None)
    assert chained.records[-1].input_reps == ("transformed",)
    np.testing.assert_allclose(chained.column_array("features", "x"), -np.arange(6.0) / 3)
    assert chained.column_array("features", "x").dtype == np.float64
    # the key seeds the scaler per domain.key
    qt = sk.QuantileTransformer(n_quantiles=3, subsample=4)
    k = mml.random.key(2)
    seeded = fit_transform(fs, qt, keys="x", key=k)
    sub = mml.random.fold_in(k, "features.x")
    assert seeded.records[0].params[0] == get_scaler(qt).fit(np.arange(4.0), key=sub)


def test_fit_transform_errors_in_full() -> None:
    fs = small_fs()
    with pytest.raises(
        SchemaError, match=full("FeatureSet 'toy' has no features key 'z'; features keys: x, v")
    ):
        fit_transform(fs, "minmax", keys="z")
    with pytest.raises(
        SchemaError, match=full("FeatureSet 'toy' has no features key 3; features keys: x, v")
    ):
        fit_transform(fs, "minmax", keys=[3])
    with pytest.raises(SchemaError, match=full("keys= lists a key twice: ['x', 'x']")):
        fit_transform(fs, "minmax", keys=["x", "x"])
    with pytest.raises(SchemaError, match=full("FeatureSet 'toy' has no features keys to scale")):
        fit_transform(fs, "minmax", keys=[])
    with pytest.raises(
        SplitError, match=full("fit_on='test' names no split of FeatureSet 'toy'; splits: train")
    ):
        fit_transform(fs, "minmax", fit_on="test")
    bare = mml.FeatureSet.from_dict({"x": [1.0, 2.0]}, features="x", label="bare")
    with pytest.raises(
        SplitError,
        match=full(
            "fit_on='train' names no split of FeatureSet 'bare'; splits: (none: split the FeatureSet first, or pass fit_on=None)"
        ),
    ):
        fit_transform(bare, "minmax")
    with pytest.raises(SplitError, match=r"^fit_on=3 names no split"):
        fit_transform(fs, "minmax", fit_on=3)
    with pytest.raises(ScalerError, match=r"^scaling features key 'x': MinMax\.fit: cannot fit on 0 samples"):
        fit_transform(fs.with_split("none", []), "minmax", keys="x", fit_on="none")
    with pytest.raises(
        ScalerError,
        match=full(
            "scaler PolynomialFeatures changes the per-sample shape of features key 'v' from (2,) to (6,); "
            "transformed columns keep the shape of the raw ones"
        ),
    ):
        fit_transform(fs, sk.PolynomialFeatures(degree=2), keys="v")
    with pytest.raises(
        ScalerError, match=full("FeatureSet 'toy' has no scaler records; there is no transform to undo")
    ):
        undo_last_transform(fs)
    assert undo_all_transforms(fs) is fs


def test_undo_recomputes_and_drops() -> None:
    fs = small_fs()
    a = fit_transform(fs, "minmax", keys="x")
    b = fit_transform(a, "negate", keys=["x", "v"], fit_on=None)
    back = undo_last_transform(b)
    assert back == a
    np.testing.assert_allclose(back.column_array("features", "x"), np.arange(6.0) / 3)
    assert "features.v.transformed" not in back.table.column_names
    assert undo_all_transforms(b) == fs
    assert undo_last_transform(undo_last_transform(b)) == fs


def test_inverse_transform_values() -> None:
    fs = fit_transform(small_fs(), "minmax", domain="targets")  # y: 0..6 → /6, t: 1..4 → (t-1)/3
    out = inverse_transform(fs, np.array([[0.0, 0.0], [1.0, 1.0]]))
    np.testing.assert_allclose(out, [[0.0, 1.0], [6.0, 4.0]])
    one = inverse_transform(fs, np.array([0.5, 1.0]), keys="y")
    assert one.shape == (2,)
    np.testing.assert_allclose(one, [3.0, 6.0])
    np.testing.assert_allclose(inverse_transform(fs, np.array([[1.0]]), keys=["t"]), [[4.0]])
    # a key without records passes through, as a copy
    plain = small_fs()
    arr = np.array([[1.0, 2.0]])
    res = inverse_transform(plain, arr)
    np.testing.assert_array_equal(res, arr)
    assert not np.shares_memory(res, arr)
    # a tensor key
    tv = fit_transform(small_fs(), "maxabs", keys="v", fit_on=None)
    np.testing.assert_allclose(
        inverse_transform(tv, np.array([[1.0, 1.0, 0.5]]), domain="features"), [[1.0, 10.0, 5.5]]
    )
    with pytest.raises(
        ScalerError,
        match=full(
            "inverse_transform expected an array of shape (n, 2) for targets keys ['y', 't'] (the layout "
            "of fs.to_numpy), got (2, 3)"
        ),
    ):
        inverse_transform(fs, np.zeros((2, 3)))
    with pytest.raises(ScalerError, match=re.escape("got ()")):
        inverse_transform(fs, np.float64(1.0))
    with pytest.raises(ScalerError, match=full("inverse_transform takes a numeric array, got dtype <U1")):
        inverse_transform(fs, np.array([["a", "b"]]))
    ps = fit_transform(small_fs(), "per_sample_minmax", domain="targets", keys="y", fit_on=None)
    with pytest.raises(
        NotInvertibleError,
        match=r"^cannot map targets key 'y' back to raw units: PerSampleMinMax has no inverse",
    ):
        inverse_transform(ps, np.array([[0.0, 0.0]]))


# -- every method names itself in its errors; inverse passes non-finite outputs through -----

FITTED = [
    MinMax(),
    Standard(),
    MaxAbs(),
    Robust(),
    Negate(),
    Log1p(),
    Absolute(),
    PerSampleMinMax(),
    PerSampleZeroStart(),
    Segmented(boundaries=(1,), scalers=(MinMax(),)),
]


@pytest.mark.parametrize("scaler", FITTED, ids=lambda s: type(s).__name__)
def test_every_method_names_itself(scaler) -> None:
    x = np.array([[1.0, 2.0], [3.0, 5.0]])
    p = scaler.fit(x)
    who = type(scaler).__name__
    text = np.array([["a", "b"], ["c", "d"]])
    for method, call in [("fit", lambda: scaler.fit(text)), ("apply", lambda: scaler.apply(p, text))]:
        with pytest.raises(
            ScalerError, match="^" + re.escape(f"{who}.{method}: cannot scale values of dtype <U1")
        ):
            call()
        nan = x.copy()
        nan[1, 1] = np.nan
        fn = scaler.fit if method == "fit" else (lambda v: scaler.apply(p, v))
        with pytest.raises(
            ScalerError, match="^" + re.escape(f"{who}.{method}: the data hold NaN or infinite values at")
        ):
            fn(nan)
    if isinstance(scaler, (PerSampleMinMax, PerSampleZeroStart)):
        with pytest.raises(NotInvertibleError):
            scaler.inverse(p, x)
        return
    with pytest.raises(
        ScalerError, match="^" + re.escape(f"{who}.inverse: cannot scale values of dtype <U1")
    ):
        scaler.inverse(p, text)
    # model outputs go back as they are, NaN included
    out = scaler.inverse(p, np.array([[np.nan, 1.0]]))
    assert np.isnan(out[0, 0]) and np.isfinite(out[0, 1])


def test_sklearn_methods_name_themselves() -> None:
    s = get_scaler(sk.StandardScaler)
    p = s.fit(X)
    text = np.array([["a"], ["b"]])
    with pytest.raises(ScalerError, match=r"^StandardScaler\.apply: cannot scale values"):
        s.apply(p, text)
    with pytest.raises(ScalerError, match=r"^StandardScaler\.inverse: cannot scale values"):
        s.inverse(p, text)
    out = s.inverse(p, np.array([[np.nan, 0.0, 0.0]]))
    assert np.isnan(out[0, 0]) and out[0, 1] == pytest.approx(X[:, 1].mean())


def test_per_sample_minmax_with_a_low_end_of_one() -> None:
    x = np.array([[1.0, 3.0, 2.0]])
    np.testing.assert_array_equal(
        PerSampleMinMax(feature_range=(1, 2)).apply(NoParams(), x), [[1.0, 2.0, 1.5]]
    )


def test_absolute_names_at_most_ten_mixed_features() -> None:
    x = np.array([[-1.0] * 12, [1.0] * 12])
    with pytest.raises(
        NotInvertibleError, match=re.escape("feature position(s) [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] had")
    ):
        Absolute().inverse(Absolute().fit(x), x)


def test_fit_apply_passes_the_key() -> None:
    qt = SklearnScaler.from_estimator(sk.QuantileTransformer(n_quantiles=4, subsample=5))
    z = np.random.default_rng(1).normal(size=(12, 1))
    k = mml.random.key(9)
    p, y = qt.fit_apply(z, key=k)
    assert p == qt.fit(z, key=k) and p != qt.fit(z)
    np.testing.assert_array_equal(y, qt.apply(p, z))


def test_segmented_edge_list_of_two() -> None:
    with pytest.raises(
        ScalerError,
        match=re.escape(
            "got (0, 3): drop 0 and the length — boundaries=() if 3 is the axis length, else boundaries=(3,)"
        ),
    ):
        Segmented(boundaries=(0, 3), scalers=(MinMax(),))


def test_inverse_transform_of_three_keys_and_tensor_keys() -> None:
    fs = mml.FeatureSet.from_dict(
        {"x": np.zeros(3), "a": [0.0, 1.0, 2.0], "b": [0.0, 10.0, 20.0], "c": [5.0, 6.0, 9.0]},
        features="x",
        targets=["a", "b", "c"],
        label="abc",
    )
    fs = fit_transform(fs, "maxabs", domain="targets", fit_on=None)  # a/2, b/20, c/9
    np.testing.assert_allclose(inverse_transform(fs, np.array([[1.0, 0.5, 1.0]])), [[2.0, 10.0, 9.0]])
    np.testing.assert_allclose(inverse_transform(fs, np.array([[1.0, 0.5]]), keys=["c", "a"]), [[9.0, 1.0]])
    # two (2, 3) keys: concatenated along the last axis
    rng = np.random.default_rng(0)
    ts = mml.FeatureSet.from_dict(
        {"u": rng.uniform(1, 2, (4, 2, 3)), "w": rng.uniform(1, 2, (4, 2, 3)), "y": np.zeros(4)},
        features=["u", "w"],
        targets="y",
        label="t",
    )
    ts = fit_transform(ts, "negate", keys="w", fit_on=None)
    arr = np.arange(12.0).reshape(1, 2, 6)
    want = arr.copy()
    want[..., 3:] *= -1
    np.testing.assert_array_equal(inverse_transform(ts, arr, domain="features"), want)
    # one key without records: the output is a copy, never the caller's array
    plain = small_fs()
    a = np.array([[1.0], [2.0]])
    res = inverse_transform(plain, a, keys="y")
    np.testing.assert_array_equal(res, a)
    assert not np.shares_memory(res, a)


def test_undo_recomputes_a_tensor_key_through_the_chain() -> None:
    fs = small_fs()
    a = fit_transform(fs, "minmax", keys="v")
    b = fit_transform(a, "negate", keys="v", fit_on=None)
    back = undo_last_transform(b)
    assert back == a
    np.testing.assert_array_equal(back.column_array("features", "v"), a.column_array("features", "v"))
    assert back.column_array("features", "v").shape == (6, 2)


def test_transformed_tensor_column_keeps_the_shape_metadata_and_specs_ignore_unused_params() -> None:
    out = fit_transform(small_fs(), "minmax", keys="v")
    schema = out.table.schema
    assert schema.field("features.v.transformed").metadata == schema.field("features.v.raw").metadata
    assert schema.field("features.v.raw").metadata is not None
    p = Standard().fit(X)
    np.testing.assert_allclose(Standard(with_mean=False).inverse(p, X), X * p.scale_, rtol=1e-15)


def test_a_domain_without_keys_is_named() -> None:
    fs = mml.FeatureSet.from_dict({"x": [1.0, 2.0]}, features="x", label="nokeys")
    with pytest.raises(
        SchemaError, match=full("FeatureSet 'nokeys' has no targets key 'y'; targets keys: (none)")
    ):
        fit_transform(fs, "minmax", domain="targets", keys="y", fit_on=None)
