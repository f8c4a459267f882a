"""SklearnScaler by value: what is stored for each kind of parameter and attribute, what comes back,
and every message in full (issue 17: mutation testing of ``mml/scalers/_sklearn.py``)."""

from __future__ import annotations

import types

import numpy as np
import pytest

import mml
from mml._fields import FrozenDict
from mml.errors import NotInvertibleError, ScalerError
from mml.scalers import SklearnScaler
from mml.scalers._base import NoParams
from mml.scalers._sklearn import SklearnScalerParams, _freeze, _frozen_data, _thaw, is_sklearn_transformer

sk = pytest.importorskip("sklearn.preprocessing")

NOT_DATA = (
    "as data; mml saves scalers without pickle, so parameters and fitted attributes must be numbers, "
    "strings, arrays or nested estimators — use a built-in scaler or a transformer without such a value"
)
X = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 20.0]])


def err(fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ScalerError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_is_sklearn_transformer() -> None:
    from sklearn.base import BaseEstimator
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline

    assert is_sklearn_transformer(sk.StandardScaler) and is_sklearn_transformer(sk.StandardScaler())
    assert is_sklearn_transformer(Pipeline([("s", sk.StandardScaler())]))
    assert not is_sklearn_transformer(LinearRegression)  # no transform
    assert not is_sklearn_transformer(BaseEstimator)  # no fit
    assert not is_sklearn_transformer(3) and not is_sklearn_transformer(int)

    # fit/transform/get_params and a class named BaseEstimator, but not from sklearn
    base = type("BaseEstimator", (), {"__module__": "sklearnish.base"})
    lookalike = type(
        "T",
        (base,),
        {
            "__module__": "sklearnish",
            "fit": lambda s: s,
            "transform": lambda s: s,
            "get_params": lambda s: {},
        },
    )
    assert not is_sklearn_transformer(lookalike) and not is_sklearn_transformer(lookalike())
    # a class named BaseEstimator in an sklearn module, but no transform
    half = type(
        "H", (type("BaseEstimator", (), {"__module__": "sklearn.base"}),), {"fit": 1, "get_params": 1}
    )
    assert not is_sklearn_transformer(half)
    full = type("F", (half,), {"transform": 1})
    assert is_sklearn_transformer(full)
    # a sklearn BaseEstimator subclass with all three methods, defined outside sklearn
    ok = type(
        "Mine", (BaseEstimator,), {"fit": lambda s, x: s, "transform": lambda s, x: x, "__module__": "mine"}
    )
    assert is_sklearn_transformer(ok) and is_sklearn_transformer(ok())
    no_get = type("G", (BaseEstimator,), {"fit": lambda s, x: s, "transform": lambda s, x: x})
    assert is_sklearn_transformer(no_get)  # get_params comes from BaseEstimator


def test_freeze_plain_values() -> None:
    for v in (None, True, 3, 2.5, "s"):
        assert _freeze(v, "v") is v
    i = _freeze(np.int64(3), "v")
    assert i == 3 and type(i) is int
    b = _freeze(np.bool_(True), "v")
    assert b is True
    for dt in (np.float32, np.int64):
        assert _freeze(dt, "v") == FrozenDict({"$dtype": np.dtype(dt).name})
    assert _freeze(np.dtype("int16"), "v") == FrozenDict({"$dtype": "int16"})
    for arr in (
        np.array([1, 2]),
        np.array([True]),
        np.array(["a"]),
        np.array([b"a"]),
        np.array([1.5]),
        np.array([1], np.uint8),
    ):
        out = _freeze(arr, "v")
        assert isinstance(out, np.ndarray) and not out.flags.writeable and np.array_equal(out, arr)
    assert _freeze((1, (2, "a")), "v") == (1, (2, "a"))
    assert _freeze([1, 2], "v") == FrozenDict({"$list": (1, 2)})
    assert _freeze({"a": [1], "b": (2,)}, "v") == FrozenDict({"a": FrozenDict({"$list": (1,)}), "b": (2,)})
    # a stored list read back (a $list mapping holding a list or a tuple) is not wrapped again
    assert _freeze({"$list": [1, 2]}, "v") == FrozenDict({"$list": (1, 2)})
    assert _freeze({"$list": (1, [2])}, "v") == FrozenDict({"$list": (1, FrozenDict({"$list": (2,)}))})
    assert _freeze({"$list": 3}, "v") == FrozenDict({"$list": 3})
    assert _freeze({"$list": [1], "x": 2}, "v") == FrozenDict({"$list": FrozenDict({"$list": (1,)}), "x": 2})


def test_freeze_estimators() -> None:
    fitted = sk.StandardScaler().fit(np.arange(4.0).reshape(2, 2))
    out = _freeze(fitted, "v")
    assert set(out) == {"$estimator", "init_params", "attributes"}
    assert out["$estimator"] == "sklearn.preprocessing:StandardScaler"
    assert dict(out["init_params"]) == {"copy": True, "with_mean": True, "with_std": True}
    attrs_ = out["attributes"]
    assert sorted(attrs_) == ["mean_", "n_features_in_", "n_samples_seen_", "scale_", "var_"]
    assert attrs_["mean_"].tolist() == [1.0, 2.0] and attrs_["n_features_in_"] == 2
    back = _thaw(out)
    assert type(back) is sk.StandardScaler and back.mean_.tolist() == [1.0, 2.0] and back.with_std is True
    np.testing.assert_array_equal(back.transform(np.array([[1.0, 2.0]])), [[0.0, 0.0]])


@pytest.mark.parametrize(
    "value, message",
    [
        (
            np.array([object()]),
            "cannot store v (an array of dtype object) without pickle; only numeric and string arrays can be saved",
        ),
        (
            np.array([1 + 2j]),
            "cannot store v (an array of dtype complex128) without pickle; only numeric and string arrays can be saved",
        ),
        ({1: 2}, "cannot store v: a mapping with non-string keys"),
        ({"a": 1, 2: 3}, "cannot store v: a mapping with non-string keys"),
        ({"a": {"b": object()}}, "cannot store v['a']['b'] (a builtins.object) " + NOT_DATA),
        ((1, object()), "cannot store v[1] (a builtins.object) " + NOT_DATA),
        ([1, {2}], "cannot store v[1] (a builtins.set) " + NOT_DATA),
        ({"$list": [0, 1, {3}]}, "cannot store v[2] (a builtins.set) " + NOT_DATA),
        (
            {"a": [np.array([None])]},
            "cannot store v['a'][0] (an array of dtype object) without pickle; only numeric and string arrays can be saved",
        ),
        (types.SimpleNamespace(), "cannot store v (a types.SimpleNamespace) " + NOT_DATA),
    ],
)
def test_freeze_messages(value: object, message: str) -> None:
    assert err(_freeze, value, "v") == message


def test_thaw() -> None:
    assert _thaw(FrozenDict({"$dtype": "float32"})) is np.float32
    assert _thaw(FrozenDict({"$list": (1, (2, 3))})) == [1, (2, 3)]
    assert type(_thaw(FrozenDict({"$list": (1,)}))) is list
    d = _thaw(FrozenDict({"a": (1, FrozenDict({"$list": (2,)})), "b": "x"}))
    assert d == {"a": (1, [2]), "b": "x"} and type(d) is dict and type(d["a"]) is tuple
    assert _thaw([1, [2]]) == (1, (2,))
    assert _thaw(None) is None and _thaw("s") == "s"
    arr = np.array([1.0])
    assert _thaw(arr) is arr
    # a $list key beside others is an ordinary mapping
    assert _thaw(FrozenDict({"$list": (1,), "x": 2})) == {"$list": (1,), "x": 2}


def test_frozen_data() -> None:
    assert _frozen_data(None) == FrozenDict() and _frozen_data({}) == FrozenDict()
    assert _frozen_data({"a": [1]}) == FrozenDict({"a": FrozenDict({"$list": (1,)})})
    assert SklearnScalerParams().attributes == FrozenDict()
    with pytest.raises(ScalerError) as info:
        SklearnScalerParams(attributes={"f": object()})
    assert str(info.value) == "cannot store the stored values['f'] (a builtins.object) " + NOT_DATA


def test_from_estimator() -> None:
    s = SklearnScaler.from_estimator(sk.MinMaxScaler)
    assert s.estimator == "sklearn.preprocessing:MinMaxScaler" and s.name == "MinMaxScaler"
    assert dict(s.init_params) == {"clip": False, "copy": True, "feature_range": (0, 1)}
    i = SklearnScaler.from_estimator(sk.MinMaxScaler(feature_range=(-1, 1), copy=False))
    assert dict(i.init_params) == {"clip": False, "copy": True, "feature_range": (-1, 1)}
    n = SklearnScaler.from_estimator(sk.Normalizer(norm="l1"))
    assert dict(n.init_params) == {"copy": True, "norm": "l1"}
    nocopy = SklearnScaler.from_estimator(sk.KBinsDiscretizer(n_bins=2, encode="ordinal", strategy="uniform"))
    assert "copy" not in nocopy.init_params and nocopy.init_params["n_bins"] == 2
    assert err(SklearnScaler.from_estimator, 3) == (
        "3 is not a scikit-learn transformer (a BaseEstimator with fit and transform)"
    )
    assert err(SklearnScaler.from_estimator, "sklearn.preprocessing:MinMaxScaler") == (
        "'sklearn.preprocessing:MinMaxScaler' is not a scikit-learn transformer (a BaseEstimator with fit and transform)"
    )
    with pytest.raises(ScalerError) as info:
        SklearnScaler.from_estimator(sk.FunctionTransformer(func=np.log1p))
    assert str(info.value) == "cannot store FunctionTransformer parameter 'func' (a numpy.ufunc) " + NOT_DATA


def test_new_estimators_copy_and_fix_the_random_state() -> None:
    s = SklearnScaler(
        estimator="sklearn.preprocessing:StandardScaler", init_params={"copy": False, "with_mean": False}
    )
    est = s._new(None)
    assert type(est) is sk.StandardScaler and est.copy is True and est.with_mean is False
    q = SklearnScaler.from_estimator(sk.QuantileTransformer(n_quantiles=3))
    assert q._new(None).random_state == 0 and q._new(None).n_quantiles == 3
    k = mml.random.key(4)
    assert q._new(k).random_state == mml.random.seed_int(k)
    fixed = SklearnScaler.from_estimator(sk.QuantileTransformer(n_quantiles=3, random_state=11))
    assert fixed._new(k).random_state == 11
    nor = SklearnScaler.from_estimator(sk.Normalizer)
    assert not hasattr(nor._new(None), "random_state")


def test_fit_stores_what_fit_added_and_apply_rebuilds_it() -> None:
    s = SklearnScaler.from_estimator(sk.MinMaxScaler(feature_range=(0, 2)))
    p = s.fit(X)
    ref = sk.MinMaxScaler(feature_range=(0, 2)).fit(X)
    assert sorted(p.attributes) == sorted(k for k in vars(ref) if k not in ref.get_params())
    np.testing.assert_array_equal(p.attributes["data_min_"], [1.0, 10.0])
    np.testing.assert_array_equal(p.attributes["scale_"], ref.scale_)
    y = s.apply(p, X)
    np.testing.assert_array_equal(y, ref.transform(X))
    assert y.tolist() == [[0.0, 0.0], [1.0, 2.0], [2.0, 1.0]]
    np.testing.assert_allclose(s.inverse(p, y), X)
    est = s._fitted(p, "MinMaxScaler.apply")
    assert est.data_max_.tolist() == [5.0, 30.0] and est.feature_range == (0, 2)
    q = SklearnScaler.from_estimator(sk.QuantileTransformer(n_quantiles=3))
    qp = q.fit(X, key=mml.random.key(2))
    assert qp.attributes["random_state"] == mml.random.seed_int(mml.random.key(2))
    assert "n_quantiles" not in qp.attributes
    # apply uses the stored random_state (not the spec's None)
    assert q._fitted(qp, "w").random_state == qp.attributes["random_state"]


def test_apply_keeps_the_input_shape_or_gives_its_own() -> None:
    s = SklearnScaler.from_estimator(sk.MaxAbsScaler)
    x1 = np.array([1.0, -2.0, 4.0])
    p = s.fit(x1)
    out = s.apply(p, x1)
    assert out.shape == (3,) and out.tolist() == [0.25, -0.5, 1.0]
    assert s.inverse(p, out).tolist() == [1.0, -2.0, 4.0] and s.inverse(p, out).shape == (3,)
    poly = SklearnScaler.from_estimator(sk.PolynomialFeatures(degree=2, include_bias=False))
    pp = poly.fit(X[:, :1])
    assert poly.apply(pp, X[:, :1]).tolist() == [[1.0, 1.0], [3.0, 9.0], [5.0, 25.0]]


def test_sklearn_messages_in_full() -> None:
    s = SklearnScaler.from_estimator(sk.StandardScaler)
    p = s.fit(X)
    assert (
        err(s.apply, NoParams(), X)
        == "StandardScaler.apply needs SklearnScalerParams, got NoParams; pass what its fit returned"
    )
    assert (
        err(s.inverse, NoParams(), X)
        == "StandardScaler.inverse needs SklearnScalerParams, got NoParams; pass what its fit returned"
    )
    assert err(s.apply, p, np.array([[np.nan, 1.0]])).startswith(
        "StandardScaler.apply: the data hold NaN or infinite values at (sample, element) position(s) (0, 0); "
    )
    assert err(s.fit, np.array([[np.inf]])).startswith(
        "StandardScaler.fit: the data hold NaN or infinite values"
    )
    assert err(s.fit, np.zeros((0, 2))).startswith("StandardScaler.fit: cannot fit on 0 samples")
    assert err(s.inverse, p, np.array([["a", "b"]])).startswith(
        "StandardScaler.inverse: cannot scale values of dtype <U1"
    )
    assert err(s.apply, p, np.zeros((3, 3))).startswith(
        "StandardScaler.apply failed on data of shape (3, 3): "
    )
    assert err(s.inverse, p, np.zeros((3, 3))).startswith(
        "StandardScaler.inverse failed on data of shape (3, 3): "
    )
    q = SklearnScaler.from_estimator(sk.QuantileTransformer(n_quantiles=0))
    assert err(q.fit, np.zeros((2, 1))).startswith("QuantileTransformer.fit failed on data of shape (2, 1): ")
    with pytest.raises(ScalerError) as info:
        q.fit(np.zeros((2, 1)))
    assert isinstance(info.value.__cause__, ValueError)
    oh = SklearnScaler.from_estimator(sk.OneHotEncoder(sparse_output=True))
    x = np.array([[0.0], [1.0]])
    assert (
        err(oh.apply, oh.fit(x), x)
        == "OneHotEncoder.apply returned a csr_matrix; only dense numpy output is supported"
    )
    nor = SklearnScaler.from_estimator(sk.Normalizer)
    with pytest.raises(NotInvertibleError) as ni:
        nor.inverse(nor.fit(X), X)
    assert str(ni.value) == (
        "Normalizer has no inverse_transform, so its outputs cannot be mapped back; use an invertible scaler "
        "where you need the inverse"
    )
    bad = SklearnScaler(estimator="nope.nothing:Thing")
    m = err(bad.fit, X)
    assert m.startswith("cannot import the estimator class 'nope.nothing:Thing': ")
    assert err(SklearnScaler(estimator="os:system").fit, X) == (
        "'os:system' is not a scikit-learn transformer class (a BaseEstimator with fit/transform)"
    )
    assert err(SklearnScaler(estimator="sklearn.linear_model:LinearRegression").fit, X) == (
        "'sklearn.linear_model:LinearRegression' is not a scikit-learn transformer class (a BaseEstimator with "
        "fit/transform)"
    )


def test_inverse_maps_model_outputs_as_they_are() -> None:
    s = SklearnScaler.from_estimator(sk.StandardScaler)
    p = s.fit(X)
    out = s.inverse(p, np.array([[np.nan, 0.0]]))
    assert np.isnan(out[0, 0]) and out[0, 1] == 20.0


def test_nested_estimators_store_their_own_parameters_only() -> None:
    from sklearn.pipeline import Pipeline

    inner = Pipeline([("s", sk.StandardScaler(with_mean=False))])
    s = SklearnScaler.from_estimator(Pipeline([("inner", inner)]))
    top = Pipeline([("inner", inner)]).get_params(deep=False)
    assert sorted(s.init_params) == sorted(top)  # no "inner__s__copy"-style keys
    (step,) = s.init_params["steps"]["$list"]
    name, stored = step
    assert name == "inner" and stored["$estimator"] == "sklearn.pipeline:Pipeline"
    assert sorted(stored["init_params"]) == sorted(inner.get_params(deep=False))
    (leaf,) = stored["init_params"]["steps"]["$list"]
    assert leaf[1]["init_params"] == FrozenDict({"copy": True, "with_mean": False, "with_std": True})
    assert leaf[1]["attributes"] == FrozenDict()
    with pytest.raises(ScalerError) as info:
        SklearnScaler.from_estimator(Pipeline([("f", sk.FunctionTransformer(func=np.log1p))]))
    assert (
        str(info.value)
        == "cannot store Pipeline parameter 'steps'[0][1] parameter 'func' (a numpy.ufunc) " + NOT_DATA
    )


class _Holder:
    """Builds a transformer class whose fitted attribute is not data."""

    @staticmethod
    def make() -> object:
        from sklearn.base import BaseEstimator

        cls = type("Mine", (BaseEstimator,), {"fit": lambda s, x: s, "transform": lambda s, x: x})
        est = cls()
        est.thing_ = object()
        return est


def test_a_nested_attribute_that_is_not_data_is_named() -> None:
    assert (
        err(_freeze, _Holder.make(), "v")
        == "cannot store v attribute 'thing_' (a builtins.object) " + NOT_DATA
    )


from sklearn.base import BaseEstimator  # noqa: E402 - after the importorskip above


class Wrapped(BaseEstimator):
    """A transformer whose default parameter is an estimator (get_params(deep=True) would add
    ``inner__copy``-style keys)."""

    def __init__(self, inner: object = sk.StandardScaler(with_mean=False)) -> None:
        self.inner = inner

    def fit(self, x: np.ndarray) -> Wrapped:
        self.width_ = x.shape[1]
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return x * 2.0


class Unstorable(BaseEstimator):
    """A transformer whose fitted attribute is not data."""

    def fit(self, x: np.ndarray) -> Unstorable:
        self.thing_ = object()
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return x


HERE = "tests.scalers.test_sklearn_values"


def test_a_class_default_estimator_parameter_is_stored_shallow() -> None:
    s = SklearnScaler.from_estimator(Wrapped)
    assert s.estimator == f"{HERE}:Wrapped" and sorted(s.init_params) == ["inner"]
    inner = s.init_params["inner"]
    assert inner["$estimator"] == "sklearn.preprocessing:StandardScaler"
    assert inner["init_params"] == FrozenDict({"copy": True, "with_mean": False, "with_std": True})
    p = s.fit(X)
    assert dict(p.attributes) == {"width_": 2}
    np.testing.assert_array_equal(s.apply(p, X), X * 2.0)


def test_a_fitted_attribute_that_is_not_data_is_named() -> None:
    with pytest.raises(ScalerError) as info:
        SklearnScaler(estimator=f"{HERE}:Unstorable").fit(X)
    assert str(info.value) == "cannot store Unstorable attribute 'thing_' (a builtins.object) " + NOT_DATA


def test_estimators_that_are_not_transformers_are_stored_if_sklearn() -> None:
    from sklearn.linear_model import LinearRegression

    out = _freeze(LinearRegression(fit_intercept=False), "v")
    assert out["$estimator"] == "sklearn.linear_model:LinearRegression"
    assert sorted(out["init_params"]) == sorted(LinearRegression().get_params(deep=False))
    assert out["init_params"]["fit_intercept"] is False and out["attributes"] == FrozenDict()

    class Lookalike:
        def get_params(self, deep: bool = False) -> dict:
            return {}

    assert err(_freeze, Lookalike(), "v") == (
        f"cannot store v (a {HERE}.test_estimators_that_are_not_transformers_are_stored_if_sklearn.<locals>."
        "Lookalike) " + NOT_DATA
    )


def test_import_messages_in_full() -> None:
    assert err(SklearnScaler(estimator="nope.nothing:Thing").fit, X) == (
        "cannot import the estimator class 'nope.nothing:Thing': cannot import module 'nope.nothing' of the "
        "estimator class 'nope.nothing:Thing' (ModuleNotFoundError: No module named 'nope'); check the "
        "spelling, that the package is installed and on sys.path, and that it is importable by this name in a "
        "new process (a class or function defined in __main__ or a notebook is not)"
    )
    assert err(SklearnScaler(estimator="sklearn.preprocessing:Nope").fit, X) == (
        "cannot import the estimator class 'sklearn.preprocessing:Nope': module 'sklearn.preprocessing' has no "
        "attribute 'Nope' (the estimator class 'sklearn.preprocessing:Nope'); check the name"
    )


def test_a_record_written_before_the_rename_to_sklearn_scaler_params_loads_by_its_kind():
    """0.2 renamed the scaler's ``SklearnParams`` to ``SklearnScalerParams`` (the node's keeps the
    name). Documents carry the stable kind ``scaler_params.sklearn`` beside the import path, and a
    typed field is read by kind, so a record that names the old path loads to the same value."""
    from sklearn.preprocessing import StandardScaler

    fs = mml.FeatureSet.from_dict({"x": np.arange(6.0)}, features="x", label="f")
    rec = mml.scalers.fit_transform(fs, StandardScaler(), fit_on=None).records[0]
    doc, arrays, tables = mml.io.to_document(rec)
    (params,) = doc["params"]
    assert params["kind"] == "scaler_params.sklearn"
    assert params["type"] == "mml.scalers._sklearn:SklearnScalerParams"
    params["type"] = "mml.scalers._sklearn:SklearnParams"  # what 0.1 wrote; no such name now
    back = mml.io.from_document(doc, arrays, tables, mml.scalers.ScalerRecord)
    assert back == rec and type(back.params[0]) is mml.scalers.SklearnScalerParams
