"""The scikit-learn backend's fitted state without skops: the message that names the attribute
that cannot be saved (nested positions included), in full.

With skops installed (as here) such an estimator is stored as skops bytes instead, so the
message is reached by making ``_skops.available`` answer ``False``, which is what an
environment without the ``mml[sklearn]`` extra answers.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from fresh_memos import _fresh_memos  # noqa: F401  (autouse: each test builds with the code under test)
from sklearn.preprocessing import StandardScaler

import mml
from mml.backends import _skops
from mml.backends._sklearn import fitted_from_estimator

X = np.random.default_rng(0).normal(size=(6, 2))
TAIL = (
    ": this estimator holds nested estimators or objects in its fitted state, which cannot be saved "
    "safely without pickle. Use an estimator whose fitted state is arrays and numbers (PCA, "
    "StandardScaler, LinearRegression, Ridge, LogisticRegression, KMeans, ...)"
)
INSTALL = ". Install skops (pip install 'mml[sklearn]') to store it safely without pickle"


@pytest.mark.parametrize(
    ("attr", "value", "where", "what"),
    [
        ("fn_", np.array([object()], dtype=object), "fn_", "numpy.ndarray"),
        ("parts_", [np.arange(2), (1, object())], "parts_[1][1]", "builtins.object"),
        ("model_", StandardScaler(), "model_", "sklearn.preprocessing._data.StandardScaler"),
    ],
)
def test_without_skops_an_object_in_the_fitted_state_is_named(
    monkeypatch: pytest.MonkeyPatch, attr: str, value: object, where: str, what: str
) -> None:
    monkeypatch.setattr(_skops, "available", lambda: False)
    est = StandardScaler().fit(X)
    setattr(est, attr, value)
    with pytest.raises(mml.BackendError) as err:
        fitted_from_estimator(est, "sklearn.preprocessing:StandardScaler", {})
    first = f"StandardScaler.{where} is a {what}{TAIL}"
    assert str(err.value) == first + INSTALL
    assert isinstance(err.value.__cause__, mml.BackendError) and str(err.value.__cause__) == first


def test_with_skops_the_same_estimator_is_kept_as_skops_bytes() -> None:
    if not _skops.available():  # pragma: no cover - skops is installed here
        pytest.skip("skops")
    est = StandardScaler().fit(X)
    est.parts_ = [np.arange(2), (1, StandardScaler())]
    f = fitted_from_estimator(est, "sklearn.preprocessing:StandardScaler", {"copy": True})
    assert list(f.attributes) == [_skops.SKOPS_KEY] and dict(f.params) == {"copy": True}
    assert f.estimator == "sklearn.preprocessing:StandardScaler"


def test_without_skops_encode_and_decode_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    if not _skops.available():  # pragma: no cover - skops is installed here
        pytest.skip("skops")
    est = StandardScaler().fit(X)
    data = _skops.encode(est)
    with monkeypatch.context() as m:  # the module itself comes back afterwards
        m.setitem(sys.modules, "skops.io", None)
        with pytest.raises(mml.BackendError) as e:
            _skops.encode(est)
        assert str(e.value) == (
            "the fitted StandardScaler needs skops to be stored without pickle: pip install 'mml[sklearn]' (or skops)"
        )
        assert isinstance(e.value.__cause__, ImportError)
        with pytest.raises(mml.BackendError) as e:
            _skops.decode(data, "the fitted sklearn.preprocessing:StandardScaler")
        assert str(e.value) == (
            "the fitted sklearn.preprocessing:StandardScaler needs skops to be stored without pickle: "
            "pip install 'mml[sklearn]' (or skops)"
        )
    np.testing.assert_array_equal(_skops.decode(data).mean_, est.mean_)
