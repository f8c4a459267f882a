"""A factory or estimator that is no longer importable when the backend builds, fits or runs
the model: the error names what it is (``the TorchModule factory``, ``the KerasModel
factory``, ``the sklearn estimator``) and the path.

A spec checks its import path when it is made; the backend imports it again when it builds,
fits or predicts (a spec is a value: it holds the path, never the object). Here the object is
removed from its module between the two, which is what a renamed or deleted factory does to a
spec saved earlier in the session.
"""

from __future__ import annotations

import numpy as np
import pytest

import backend_factories as bf
from fresh_memos import _fresh_memos  # noqa: F401  (autouse: each test builds with the code under test)

import mml
from mml import backends as B
from mml.errors import ConfigError
from mml.models import KerasModel, SklearnModel, TorchModule


def _gone(name: str, what: str) -> str:
    return (
        f"module 'backend_factories' has no attribute {name!r} "
        f"(the {what} 'backend_factories:{name}'); check the name"
    )


def test_a_torch_factory_gone_before_init(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    monkeypatch.setattr(bf, "gone_net", bf.bn_net, raising=False)
    spec = TorchModule(factory="backend_factories:gone_net", output_shape=(1,))
    monkeypatch.delattr(bf, "gone_net")
    with pytest.raises(ConfigError) as e:
        B.init_params(spec, (3,), key=mml.random.key(0))
    assert str(e.value) == _gone("gone_net", "TorchModule factory")


def test_a_keras_factory_gone_before_init(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tensorflow")
    monkeypatch.setattr(bf, "gone_keras", bf.keras_bn_net, raising=False)
    spec = KerasModel(factory="backend_factories:gone_keras")
    monkeypatch.delattr(bf, "gone_keras")
    with pytest.raises(ConfigError) as e:
        B.init_params(spec, (3,), (1,), key=mml.random.key(0))
    assert str(e.value) == _gone("gone_keras", "KerasModel factory")


def test_a_sklearn_estimator_gone_before_fit_partial_fit_and_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.linear_model import SGDClassifier

    from mml.backends._sklearn import is_classifier

    monkeypatch.setattr(bf, "GoneEst", SGDClassifier, raising=False)
    spec = SklearnModel(estimator="backend_factories:GoneEst")
    p = B.init_params(spec, (2,), key=mml.random.key(0))
    x, y = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0, 1])
    fitted = B.fit(spec, p, x, y, key=mml.random.key(0))
    assert is_classifier(spec)
    monkeypatch.delattr(bf, "GoneEst")
    msg = _gone("GoneEst", "sklearn estimator")
    calls = {
        "fit": lambda: B.fit(spec, p, x, y, key=mml.random.key(0)),
        "partial_fit": lambda: B.partial_fit(spec, p, x, y, key=mml.random.key(0), classes=[0, 1]),
        "apply": lambda: B.apply(spec, fitted, x),
        "is_classifier": lambda: is_classifier(spec),
    }
    for name, call in calls.items():
        with pytest.raises(ConfigError) as e:
            call()
        assert str(e.value) == msg, name
