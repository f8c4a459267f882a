"""The scikit-learn backend, the protocol's dispatch, conversions and parameter records pinned to
values: against scikit-learn fitted directly, numpy, torch and TensorFlow; every message in full.
"""

from __future__ import annotations

import numpy as np
import pytest
from fresh_memos import _fresh_memos  # noqa: F401  (autouse: each test builds with the code under test)
from sklearn.linear_model import LinearRegression, SGDClassifier
from sklearn.preprocessing import StandardScaler

import mml
from mml import backends as B
from mml.models import SequentialMLP, SklearnModel

K0 = mml.random.key(0)
RNG = np.random.default_rng(7)
X = RNG.normal(size=(40, 3))
Y = X @ np.array([1.0, -2.0, 0.5]) + 0.25


# -- fit / apply -------------------------------------------------------------------------------


def test_fit_and_apply_equal_sklearn_with_targets_of_every_layout() -> None:
    spec = SklearnModel(estimator="sklearn.linear_model:LinearRegression")
    ref = LinearRegression().fit(X, Y)
    for y in (Y, Y.reshape(-1, 1), Y.tolist()):
        p = B.fit(spec, B.init_params(spec, (3,), (1,), key=K0), X, y, key=K0)
        out, same = B.apply(spec, p, X[:5])
        assert same is p and out.shape == (5, 1)
        np.testing.assert_allclose(out.ravel(), ref.predict(X[:5]), rtol=1e-12)
        assert p.fitted.attributes["coef_"].shape == (3,)  # a (n, 1) target is one target
    # (n, 2, 2) targets are flattened to (n, 4)
    y4 = np.stack([Y, 2 * Y, -Y, Y + 1], axis=1).reshape(-1, 2, 2)
    p4 = B.fit(spec, B.init_params(spec, (3,), (2, 2), key=K0), X, y4, key=K0)
    out4, _ = B.apply(spec, p4, X[:2])
    assert out4.shape == (2, 2, 2)
    np.testing.assert_allclose(
        out4.reshape(2, 4), LinearRegression().fit(X, y4.reshape(40, 4)).predict(X[:2])
    )
    # inputs (n, 3, 1) are flattened per sample; torch and TensorFlow batches are read as numpy
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(
        B.apply(spec, p, torch.as_tensor(X[:5]).reshape(5, 3, 1))[0].ravel(), ref.predict(X[:5])
    )


def test_output_shape_none_keeps_the_per_sample_width_and_a_wrong_one_says_so() -> None:
    pca = SklearnModel(estimator="sklearn.decomposition:PCA", params={"n_components": 2})
    p = B.fit(pca, B.SklearnParams(fitted=None), X, key=K0)  # a record without shapes
    out, _ = B.apply(pca, p, X[:4])
    assert out.shape == (4, 2)
    bad = B.fit(pca, B.init_params(pca, (3,), (3,), key=K0), X, key=K0)
    with pytest.raises(mml.ShapeError) as err:
        B.apply(pca, bad, X)
    assert str(err.value) == (
        "SklearnModel(sklearn.decomposition:PCA).transform gave 2 values per sample but the node was built "
        "for output shape (3,); set output_shape on the spec"
    )
    with pytest.raises(mml.ShapeError) as err:
        B.apply(pca, p, np.float64(1.0))
    assert str(err.value) == "a scikit-learn node needs a batch (n, ...) of samples, got a scalar array(1.)"


def test_random_state_comes_from_the_key_unless_set() -> None:
    spec = SklearnModel(estimator="sklearn.linear_model:SGDRegressor", params={"max_iter": 5, "tol": None})
    p = B.fit(spec, B.init_params(spec, (3,), (1,), key=K0), X, Y, key=mml.random.key(3))
    assert p.fitted.params["random_state"] == mml.random.seed_int(mml.random.key(3))
    fixed = SklearnModel(
        estimator="sklearn.linear_model:SGDRegressor", params={"random_state": 4, "max_iter": 5, "tol": None}
    )
    q = B.fit(fixed, B.init_params(fixed, (3,), (1,), key=K0), X, Y, key=mml.random.key(3))
    assert q.fitted.params["random_state"] == 4
    # no random_state parameter: none added
    lin = SklearnModel(estimator="sklearn.linear_model:LinearRegression")
    assert (
        "random_state" not in B.fit(lin, B.init_params(lin, (3,), (1,), key=K0), X, Y, key=K0).fitted.params
    )


def test_partial_fit_passes_classes_on_the_first_call_only() -> None:
    spec = SklearnModel(estimator="sklearn.linear_model:SGDClassifier", params={"random_state": 0})
    assert B.is_classifier(spec) is True
    assert B.is_classifier(SklearnModel(estimator="sklearn.linear_model:SGDRegressor")) is False
    y = (X[:, 0] > 0).astype(np.int64)
    p = B.init_params(spec, (3,), (1,), key=K0)
    p1 = B.partial_fit(spec, p, X[:20], y[:20].reshape(-1, 1), key=K0, classes=np.array([0, 1, 2]))
    p2 = B.partial_fit(spec, p1, X[20:], y[20:], key=K0, classes=np.array([0, 1, 2]))
    ref = SGDClassifier(random_state=0)
    ref.partial_fit(X[:20], y[:20], classes=np.array([0, 1, 2]))
    ref.partial_fit(X[20:], y[20:])
    from mml.backends._sklearn import estimator_from_fitted

    assert estimator_from_fitted(p1.fitted).classes_.tolist() == [0, 1, 2]  # (kept as skops bytes)
    np.testing.assert_array_equal(estimator_from_fitted(p2.fitted).coef_, ref.coef_)
    np.testing.assert_array_equal(B.apply(spec, p2, X)[0].ravel(), ref.predict(X))
    assert p1.fitted.params["random_state"] == 0 and p2.fitted.params == p1.fitted.params
    # through the backend value too
    back = B.get_backend("sklearn")
    q1 = back.partial_fit(spec, p, X[:20], y[:20], key=K0, classes=np.array([0, 1, 2]))
    assert q1 == p1
    # a classifier's first call without classes is sklearn's own error
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        B.partial_fit(spec, p, X[:20], y[:20], key=K0)
    # unsupervised partial_fit (no y), random_state from the key on the first call
    km = SklearnModel(estimator="sklearn.cluster:MiniBatchKMeans", params={"n_clusters": 2, "n_init": 1})
    k1 = B.partial_fit(km, B.init_params(km, (3,), (1,), key=K0), X, key=mml.random.key(8))
    assert k1.fitted.params["random_state"] == mml.random.seed_int(mml.random.key(8))
    sc = SklearnModel(estimator="sklearn.preprocessing:StandardScaler")
    s1 = B.partial_fit(sc, B.init_params(sc, (3,), (3,), key=K0), X[:10], key=K0)
    s2 = B.partial_fit(sc, s1, X[10:], key=K0)
    np.testing.assert_allclose(s2.fitted.attributes["mean_"], StandardScaler().fit(X).mean_, rtol=1e-12)
    assert s2.fitted.attributes["n_samples_seen_"] == 40
    assert s1.fitted.attributes["n_samples_seen_"] == 10  # the earlier record untouched


def test_sklearn_messages_in_full() -> None:
    mlp = SequentialMLP(hidden=(2,))
    sk = B.get_backend("sklearn")
    with pytest.raises(mml.BackendError) as err:
        sk.init(mlp, (3,), (1,), key=K0)
    assert str(err.value) == "the sklearn backend cannot run a SequentialMLP (backend 'torch')"
    spec = SklearnModel(estimator="sklearn.linear_model:Ridge")
    with pytest.raises(mml.DeviceError) as err:
        B.init_params(spec, (3,), (1,), key=K0, device="cuda")
    assert str(err.value) == "scikit-learn runs on the CPU only; got device='cuda', use 'cpu' or 'auto'"
    for ok in (None, "cpu", "auto"):
        assert B.init_params(spec, (3,), (1,), key=K0, device=ok) == B.SklearnParams(None, (3,), (1,))
    with pytest.raises(mml.BackendError) as err:
        B.apply(spec, B.init_params(spec, (3,), (1,), key=K0), X)
    assert str(err.value) == (
        "SklearnModel(sklearn.linear_model:Ridge) is not fitted yet: run a FitPhase (or backends.fit) before applying it"
    )
    with pytest.raises(mml.BackendError) as err:
        B.partial_fit(spec, B.init_params(spec, (3,), (1,), key=K0), X, Y, key=K0)
    assert str(err.value) == "sklearn.linear_model:Ridge has no partial_fit; fit it in one go with fit()"
    with pytest.raises(mml.BackendError) as err:
        B.value_and_grad(spec, B.init_params(spec, (3,), (1,), key=K0), X, lambda y: (y, None))
    assert str(err.value) == (
        "SklearnModel is a scikit-learn model: it is fitted in closed form (FitPhase / fit), not trained by gradients"
    )


def test_fitted_state_as_data() -> None:
    from mml.backends._sklearn import estimator_from_fitted, fitted_from_estimator

    est = StandardScaler().fit(X)
    f = fitted_from_estimator(est, "sklearn.preprocessing:StandardScaler", {})
    assert set(f.attributes) == set(vars(est)) - set(est.get_params())
    assert f.attributes["n_samples_seen_"] == 40 and isinstance(f.attributes["n_samples_seen_"], float)
    assert f.attributes["n_features_in_"] == 3
    mean = f.attributes["mean_"]
    assert not mean.flags.writeable and np.array_equal(mean, est.mean_) and mean is not est.mean_
    back = estimator_from_fitted(f)
    assert back.mean_.flags.writeable and back.mean_ is not mean
    np.testing.assert_array_equal(back.transform(X), est.transform(X))
    # numpy scalars become Python numbers; string object arrays become str arrays; lists stay lists
    est2 = StandardScaler()
    est2.extra_int_ = np.int64(3)
    est2.names_ = np.array(["a", "b"], dtype=object)
    est2.parts_ = [np.arange(2), 1.5, "s"]
    est2.flag_ = True
    est2.labels_ = np.array(["x", "yy"])  # a numpy str array (kind U) is kept as it is
    est2.codes_ = np.array([b"a"], dtype="S1")
    f2 = fitted_from_estimator(est2, "sklearn.preprocessing:StandardScaler", {"with_mean": False})
    assert f2.attributes["extra_int_"] == 3 and type(f2.attributes["extra_int_"]) is int
    assert f2.attributes["names_"].dtype.kind == "U" and f2.attributes["names_"].tolist() == ["a", "b"]
    parts = f2.attributes["parts_"]
    assert isinstance(parts, list) and parts[0].tolist() == [0, 1] and parts[1:] == [1.5, "s"]
    assert f2.attributes["flag_"] is True and dict(f2.params) == {"with_mean": False}
    assert f2.attributes["labels_"].tolist() == ["x", "yy"] and f2.attributes["codes_"].tolist() == [b"a"]
    rebuilt = estimator_from_fitted(f2)
    assert (
        rebuilt.with_mean is False and isinstance(rebuilt.parts_, list) and rebuilt.parts_[0].flags.writeable
    )
    # an object it cannot hold as data, and no way to keep it without pickle
    est3 = StandardScaler()
    est3.fn_ = np.array([object()], dtype=object)
    if not B._skops.available():  # pragma: no cover - skops is installed here
        pytest.skip("skops")
    with pytest.raises(mml.BackendError) as err:
        fitted_from_estimator(est3, "sklearn.preprocessing:StandardScaler", {})
    assert "outside scikit-learn and numpy" in str(err.value)


def test_a_skops_record_of_another_class_is_refused() -> None:
    pytest.importorskip("skops")
    from sklearn.ensemble import RandomForestRegressor

    from mml.backends._sklearn import estimator_from_fitted, fitted_from_estimator

    forest = RandomForestRegressor(n_estimators=2, random_state=0).fit(X, Y)
    f = fitted_from_estimator(forest, "sklearn.ensemble:RandomForestRegressor", {})
    assert list(f.attributes) == [B._skops.SKOPS_KEY]
    np.testing.assert_array_equal(estimator_from_fitted(f).predict(X), forest.predict(X))
    corrupt = B.SklearnFitted(
        "sklearn.ensemble:RandomForestRegressor", {}, {B._skops.SKOPS_KEY: np.frombuffer(b"junk", np.uint8)}
    )
    with pytest.raises(mml.ArtifactError) as err:
        estimator_from_fitted(corrupt)
    assert str(err.value) == (
        "the fitted sklearn.ensemble:RandomForestRegressor is not a readable skops document: File is not a zip file"
    )
    with pytest.raises(mml.ConfigError) as err:
        estimator_from_fitted(B.SklearnFitted("sklearn.nope:Thing", {}, {}))
    assert str(err.value).startswith(
        "cannot import module 'sklearn.nope' of the sklearn estimator 'sklearn.nope:Thing'"
    )
    edited = B.SklearnFitted("sklearn.ensemble:ExtraTreesRegressor", {}, dict(f.attributes))
    with pytest.raises(mml.ArtifactError) as err:
        estimator_from_fitted(edited)
    assert str(err.value) == (
        "the fitted state of sklearn.ensemble:ExtraTreesRegressor holds a "
        "sklearn.ensemble._forest.RandomForestRegressor; the record is inconsistent (was it edited?)"
    )


def test_skops_documents() -> None:
    pytest.importorskip("skops")
    from sklearn.ensemble import RandomForestRegressor

    sk = B._skops
    assert sk.SKOPS_KEY == "skops.io" and sk.TRUSTED_PREFIXES == ("sklearn.", "numpy.")
    assert sk.available() is True
    forest = RandomForestRegressor(n_estimators=2, random_state=0).fit(X, Y)
    data = sk.encode(forest)
    assert data.dtype == np.uint8 and not data.flags.writeable
    again = sk.encode(RandomForestRegressor(n_estimators=2, random_state=0).fit(X, Y))
    assert np.array_equal(data, again)  # canonical: same fit, same bytes
    import io
    import json
    import zipfile

    z = zipfile.ZipFile(io.BytesIO(data.tobytes()))
    names = [i.filename for i in z.infolist()]
    assert names[0] == "schema.json" and names[1:] == [f"{i}.npy" for i in range(len(names) - 1)]
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in z.infolist())
    assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
    ids = []

    def walk(node):  # type: ignore[no-untyped-def]
        if isinstance(node, dict):
            if isinstance(node.get("__id__"), int):
                ids.append(node["__id__"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    schema = json.loads(z.read("schema.json"))
    walk(schema)
    assert sorted(set(ids)) == list(range(len(set(ids))))  # ids numbered 0, 1, ... in order
    types = sk.trusted_types(data.tobytes())
    assert types and all(t.startswith(("sklearn.", "numpy.")) for t in types)
    np.testing.assert_array_equal(sk.decode(data).predict(X), forest.predict(X))
    with pytest.raises(mml.ArtifactError) as err:
        sk.trusted_types(b"not a zip", "the fitted thing")
    assert str(err.value).startswith("the fitted thing is not a readable skops document: ")
    with pytest.raises(mml.ArtifactError) as err:
        sk.decode(np.frombuffer(b"junk", np.uint8))
    assert str(err.value).startswith("a fitted estimator is not a readable skops document: ")


# -- the protocol --------------------------------------------------------------------------------


def test_get_backend_and_dispatch() -> None:
    for name in ("torch", "sklearn", "tensorflow"):
        be = B.get_backend(name)
        assert be.name == name and B.get_backend(name) is be
    assert B.get_backend(SklearnModel(estimator="sklearn.linear_model:Ridge")) is B.get_backend("sklearn")
    assert B.get_backend(SequentialMLP(backend="tensorflow")).name == "tensorflow"
    assert repr(B.get_backend("sklearn")) == "SklearnBackend()"
    with pytest.raises(mml.BackendError) as err:
        B.get_backend("jax")
    assert str(err.value) == "unknown backend 'jax'; use 'torch', 'tensorflow' or 'sklearn'"
    with pytest.raises(mml.BackendError) as err:
        B.get_backend(object())  # type: ignore[arg-type]
    assert str(err.value) == "unknown backend None; use 'torch', 'tensorflow' or 'sklearn'"
    # init: shapes as ints, the output shape from the spec when not given
    p = B.init_params(SequentialMLP(hidden=(2,)), [np.int64(3)], target_shape=(4,), key=K0)
    assert p.input_shape == (3,) and p.output_shape == (4,) and type(p.input_shape[0]) is int
    q = B.init_params(SequentialMLP(hidden=(2,), output_shape=(5,)), (3,), key=K0)
    assert q.output_shape == (5,)
    r = B.init_params(SequentialMLP(hidden=(2,)), (3,), [2], key=K0)
    assert r.output_shape == (2,)


# -- conversions ---------------------------------------------------------------------------------


def test_conversions_between_backends() -> None:
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")
    import keras

    assert B.backend_of(np.zeros(1)) == "numpy" and B.backend_of([1]) == "numpy"
    assert B.backend_of(torch.zeros(1)) == "torch"
    assert B.backend_of(tf.zeros(1)) == "tensorflow"
    assert B.backend_of(keras.Variable(np.zeros(1))) == "tensorflow"
    assert B.to_numpy(keras.Variable(np.arange(2.0))).tolist() == [0.0, 1.0]
    assert B.to_numpy(tf.constant([1, 2])).tolist() == [1, 2]
    leaf = torch.ones(2, requires_grad=True)
    assert B.to_numpy(leaf * 2).tolist() == [2.0, 2.0]
    assert B.to_backend(np.arange(3), "sklearn").tolist() == [0, 1, 2]
    t = B.to_backend(np.array([True, False]), "torch")
    assert t.dtype == torch.bool and t.tolist() == [True, False]
    s = B.to_backend(np.array(["1.5", "2"]), "torch")  # non-numeric kinds are read as float32
    assert s.dtype == torch.float32 and s.tolist() == [1.5, 2.0]
    assert B.to_backend(leaf, "torch") is leaf
    assert B.to_backend(leaf, "torch", device="cpu") is leaf
    on = B.to_backend(np.ones(2, np.float32), "torch", device="cpu")
    assert on.device.type == "cpu" and on.tolist() == [1.0, 1.0]
    c = tf.constant([1.0])
    assert B.to_backend(c, "tensorflow") is c
    tt = B.to_backend(leaf, "tensorflow")
    assert isinstance(tt, tf.Tensor) and tt.numpy().tolist() == [1.0, 1.0]
    with pytest.raises(mml.ConfigError) as err:
        B.to_backend(np.ones(1), "jax")
    assert str(err.value) == "to_backend: unknown backend 'jax'; use one of numpy, sklearn, torch, tensorflow"


def test_resolve_device() -> None:
    torch = pytest.importorskip("torch")
    assert B.resolve_device(None) == torch.device("cpu")
    assert B.resolve_device("cpu") == torch.device("cpu")
    dev = torch.device("cpu")
    assert B.resolve_device(dev) is dev
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert B.resolve_device("auto").type in (want, "mps")
    with pytest.raises(mml.DeviceError) as err:
        B.resolve_device("tpu9")
    assert str(err.value) == "unknown device 'tpu9'; use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'"
    if not torch.cuda.is_available():
        with pytest.raises(mml.DeviceError) as err:
            B.resolve_device("cuda:1")
        assert str(err.value) == (
            f"device 'cuda:1' was requested but CUDA is not available (torch {torch.__version__}); "
            "use device='cpu' or device='auto'"
        )
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        with pytest.raises(mml.DeviceError) as err:
            B.resolve_device("mps")
        assert str(err.value) == "device 'mps' was requested but MPS is not available; use 'cpu' or 'auto'"


# -- parameter records ---------------------------------------------------------------------------


def test_parameter_records_compare_by_value() -> None:
    from mml.backends._params import leaves_equal

    torch = pytest.importorskip("torch")
    a = np.array([1.0, np.nan])
    assert leaves_equal((a,), (a.copy(),))  # nan equals nan in float leaves
    assert not leaves_equal((a,), (a.astype(np.float32),))  # dtype matters
    assert not leaves_equal((np.zeros(2),), (np.zeros((1, 2)),))  # shape matters
    assert not leaves_equal((np.zeros(2),), (np.zeros(2), np.zeros(2)))
    assert leaves_equal([np.ones(1)], (np.ones(1),))
    assert leaves_equal({"a": np.ones(1), "b": np.zeros(1)}, {"a": np.ones(1), "b": np.zeros(1)})
    assert not leaves_equal({"a": np.ones(1), "b": np.zeros(1)}, {"b": np.zeros(1), "a": np.ones(1)})
    assert not leaves_equal({"a": np.ones(1)}, {"a": np.zeros(1)})
    assert not leaves_equal({"a": np.ones(1)}, (np.ones(1),)) and not leaves_equal(1, 1)
    # torch against numpy: the same values, shape and dtype
    assert leaves_equal((torch.ones(2),), (np.ones(2, np.float32),))
    assert leaves_equal((np.ones(2, np.float32),), (torch.ones(2),))
    assert not leaves_equal((torch.ones(2),), (np.ones(2),))  # float32 vs float64
    assert not leaves_equal((torch.ones(2),), (torch.ones(1, 2),))
    assert not leaves_equal((torch.ones(2),), (torch.zeros(2),))
    assert B.KerasParams((np.ones(2),)) == B.KerasParams([np.ones(2)])
    assert B.KerasParams((np.ones(2),)) != B.KerasParams((np.zeros(2),))
    assert B.KerasParams((np.ones(1),), (np.ones(1),)) != B.KerasParams((np.ones(1),), (np.zeros(1),))
    k = B.KerasParams((np.zeros(1),), input_shape=[np.int64(2)], output_shape=(1,))
    assert k.input_shape == (2,) and type(k.input_shape[0]) is int and k.non_trainable == ()
    assert k.replace_params([np.ones(1)]).trainable[0].tolist() == [1.0]
    assert type(k.replace_params([np.ones(1)]).trainable) is tuple
    t = B.TorchParams({"w": np.zeros(1)}, input_shape=[3], output_shape=[np.int32(1)])
    assert (t.input_shape, t.output_shape, dict(t.buffers)) == ((3,), (1,), {})
    assert B.SklearnParams(None).is_fitted is False
    assert (B.TorchParams.kind, B.KerasParams.kind, B.SklearnParams.kind, B.SklearnFitted.kind) == (
        "params.torch",
        "params.keras",
        "params.sklearn",
        "params.sklearn_fitted",
    )
    assert (B.TorchParams.backend, B.KerasParams.backend, B.SklearnParams.backend) == (
        "torch",
        "tensorflow",
        "sklearn",
    )


def test_fitted_records_compare_attributes_by_value() -> None:
    def f(**attributes):  # type: ignore[no-untyped-def]
        return B.SklearnFitted("sklearn.preprocessing:StandardScaler", {}, attributes)

    assert f(a=np.ones(2), n=1, x=float("nan")) == f(a=np.ones(2), n=1, x=float("nan"))
    assert f(a=np.ones(2)) != f(a=np.zeros(2))
    assert f(a=np.ones(2)) == f(a=[1.0, 1.0])  # an array against a list: as arrays
    assert f(a=np.ones(2)) != f(a=[1, 1])  # ...of another dtype
    assert f(n=1) != f(n=2)
    assert f(x=float("nan")) != f(x=1.0)
    assert f(a=1, b=2) != f(b=2, a=1)  # the order of the attributes is part of the value
    assert f(a=1) != f(a=1, b=2)
    assert f(s="x") == f(s="x") and f(s="x") != f(s="y")
