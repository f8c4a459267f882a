"""The scikit-learn backend: same predictions as the estimator, fitted state as data, no pickle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mml
from mml.backends import SklearnParams, apply, fit, init_params, partial_fit, value_and_grad
from mml.errors import BackendError, DeviceError
from mml.models import SklearnModel

K0 = mml.random.key(0)
RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 4))
Y_REG = (X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * RNG.normal(size=60)).reshape(-1, 1)
Y_CLS = (X[:, 0] + X[:, 1] > 0).astype(np.int64).reshape(-1, 1)

CASES = [
    ("sklearn.decomposition:PCA", {"n_components": 2}, "auto", None, "transform"),
    ("sklearn.preprocessing:StandardScaler", {}, "auto", None, "transform"),
    ("sklearn.linear_model:LinearRegression", {}, "auto", Y_REG, "predict"),
    ("sklearn.linear_model:Ridge", {"alpha": 0.5}, "auto", Y_REG, "predict"),
    ("sklearn.linear_model:LogisticRegression", {"C": 0.7}, "auto", Y_CLS, "predict"),
    ("sklearn.linear_model:LogisticRegression", {}, "predict_proba", Y_CLS, "predict_proba"),
    ("sklearn.cluster:KMeans", {"n_clusters": 3, "n_init": 2}, "auto", None, "predict"),
    ("sklearn.cluster:KMeans", {"n_clusters": 3, "n_init": 2}, "transform", None, "transform"),
]
IDS = ["pca", "scaler", "linreg", "ridge", "logreg", "logreg-proba", "kmeans", "kmeans-transform"]


def _fit(
    estimator: str, params: dict, method: str, y: np.ndarray | None
) -> tuple[SklearnModel, SklearnParams]:
    spec = SklearnModel(
        estimator=estimator,
        params=params,
        method=method,
        output_shape=(2,) if method == "predict_proba" else None,
    )
    p = init_params(spec, (4,), key=K0, target_shape=None if y is None else (1,))
    return spec, fit(spec, p, X, y, key=K0)


@pytest.mark.parametrize(("estimator", "params", "method", "y", "called"), CASES, ids=IDS)
def test_predictions_equal_estimator_and_survive_roundtrip(
    estimator: str, params: dict, method: str, y: np.ndarray | None, called: str, tmp_path: object
) -> None:
    import sklearn.base

    spec, p = _fit(estimator, params, method, y)
    x_before, spec_before = X.copy(), mml.io.roundtrip(spec)
    out, same = apply(spec, p, X)
    assert same is p and spec == spec_before and np.array_equal(X, x_before)
    # the estimator's own result, fitted the same way (random_state from the key)
    from mml.models._wrappers import import_object

    cls = import_object(estimator)
    own_params = dict(params)
    if "random_state" in cls().get_params():
        own_params["random_state"] = mml.random.seed_int(K0)
    est = sklearn.base.clone(cls(**own_params))
    est.fit(X) if y is None else est.fit(X, y.ravel())
    expected = np.asarray(getattr(est, called)(X)).reshape(len(X), -1)
    # equal up to BLAS rounding (kernels may differ with the memory alignment of the arrays)
    np.testing.assert_allclose(out.reshape(len(X), -1), expected, rtol=1e-12, atol=1e-14)
    # fitted state round-trips as data and predicts identically (in memory and on disk)
    back = mml.io.roundtrip(p)
    assert back == p  # every fitted attribute bit-identical
    np.testing.assert_allclose(apply(spec, back, X)[0], out, rtol=1e-12, atol=1e-14)
    path = mml.save(p, f"{tmp_path}/node")
    loaded = mml.load(path)
    assert loaded == p
    np.testing.assert_allclose(apply(spec, loaded, X)[0], out, rtol=1e-12, atol=1e-14)
    assert not any(f.suffix == ".pkl" for f in path.iterdir())


def test_output_shapes() -> None:
    spec, p = _fit("sklearn.linear_model:Ridge", {}, "auto", Y_REG)
    assert apply(spec, p, X)[0].shape == (60, 1)
    spec, p = _fit("sklearn.decomposition:PCA", {"n_components": 2}, "auto", None)
    assert apply(spec, p, X)[0].shape == (60, 2) and p.output_shape == (2,)


def test_key_drives_random_state() -> None:
    spec = SklearnModel(
        estimator="sklearn.cluster:KMeans", params={"n_clusters": 4, "n_init": 1, "init": "random"}
    )
    p0 = init_params(spec, (4,), key=K0)
    a, b = fit(spec, p0, X, key=K0), fit(spec, p0, X, key=mml.random.key(0))
    assert a == b and p0.fitted is None
    others = [fit(spec, p0, X, key=mml.random.key(s)) for s in range(1, 4)]
    assert any(o != a for o in others)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3))
def test_standard_scaler_law_fit_then_apply_is_standardised(seed: int, cols: int) -> None:
    data = mml.random.numpy_rng(mml.random.key(seed)).normal(3.0, 2.0, size=(20, cols))
    spec = SklearnModel(estimator="sklearn.preprocessing:StandardScaler")
    p = fit(spec, init_params(spec, (cols,), key=K0), data, key=K0)
    out = apply(spec, mml.io.roundtrip(p), data)[0]
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-9)


def test_partial_fit_equals_fit_on_all() -> None:
    spec = SklearnModel(estimator="sklearn.preprocessing:StandardScaler")
    p = init_params(spec, (4,), key=K0)
    p1 = partial_fit(spec, p, X[:30], key=K0)
    p2 = partial_fit(spec, p1, X[30:], key=K0)
    full = fit(spec, p, X, key=K0)
    np.testing.assert_allclose(apply(spec, p2, X)[0], apply(spec, full, X)[0], rtol=1e-12)
    assert p1.fitted.attributes["n_samples_seen_"] == 30  # the earlier state is untouched
    with pytest.raises(BackendError, match="no partial_fit"):
        partial_fit(SklearnModel(estimator="sklearn.decomposition:PCA"), p, X, key=K0)


def test_errors() -> None:
    spec = SklearnModel(estimator="sklearn.ensemble:RandomForestRegressor", params={"n_estimators": 2})
    p = init_params(spec, (4,), key=K0)
    with pytest.raises(BackendError, match="not fitted yet"):
        apply(spec, p, X)
    with pytest.raises(BackendError, match="not trained by gradients"):
        value_and_grad(spec, p, X, lambda y: (y, None), key=K0)
    with pytest.raises(DeviceError, match="CPU only"):
        init_params(spec, (4,), key=K0, device="cuda")
    pca = SklearnModel(estimator="sklearn.decomposition:PCA")  # n_components=None: shape unknown upfront
    fitted = fit(pca, init_params(pca, (4,), (2,), key=K0), X, key=K0)
    with pytest.raises(mml.ShapeError, match="set output_shape"):
        apply(pca, fitted, X)


@pytest.mark.parametrize(
    "estimator",
    [
        "sklearn.ensemble:RandomForestRegressor",
        "sklearn.ensemble:GradientBoostingRegressor",
        "sklearn.ensemble:ExtraTreesRegressor",
        "sklearn.ensemble:HistGradientBoostingRegressor",
    ],
)
def test_tree_ensembles_save_without_pickle(estimator: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # issue 11.5: ensembles were refused ("cannot be saved safely without pickle")
    pytest.importorskip("skops")
    from sklearn.base import clone

    from mml.backends._skops import SKOPS_KEY

    size = "max_iter" if "Hist" in estimator else "n_estimators"
    spec = SklearnModel(estimator=estimator, params={size: 3})
    p = fit(spec, init_params(spec, (4,), key=K0), X, Y_REG, key=K0)
    assert set(p.fitted.attributes) == {SKOPS_KEY}
    assert p == fit(spec, init_params(spec, (4,), key=K0), X, Y_REG, key=K0)  # same fit, same bytes
    cls = mml.models._wrappers.import_object(estimator)
    ref = clone(cls(**{size: 3, "random_state": mml.random.seed_int(K0)})).fit(X, np.ravel(Y_REG))
    np.testing.assert_array_equal(apply(spec, p, X)[0].ravel(), ref.predict(X))
    mml.save(p, tmp_path / "forest")
    back = mml.load(tmp_path / "forest")
    assert back == p
    np.testing.assert_array_equal(apply(spec, back, X)[0], apply(spec, p, X)[0])


def test_skops_loading_builds_only_sklearn_and_numpy_types() -> None:
    sio = pytest.importorskip("skops.io")
    import operator

    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from mml.backends import SklearnFitted, _skops
    from mml.backends._sklearn import estimator_from_fitted

    pipe = make_pipeline(FunctionTransformer(operator.neg), Ridge()).fit(X, Y_REG)
    with pytest.raises(BackendError, match=r"outside scikit-learn and numpy \(_operator.neg\)"):
        _skops.encode(pipe)
    foreign = np.frombuffer(sio.dumps(pipe), np.uint8)  # as if an artifact had been edited
    record = SklearnFitted("sklearn.pipeline:Pipeline", {}, {_skops.SKOPS_KEY: foreign})
    with pytest.raises(mml.ArtifactError, match=r"_operator.neg.*refused"):
        estimator_from_fitted(record)
