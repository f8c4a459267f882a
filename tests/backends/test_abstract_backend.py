"""The backend protocol is one abstract class; each backend one final, stateless value."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.backends import AbstractBackend, get_backend
from mml.errors import BackendError
from mml.models import SequentialMLP, SklearnModel

NAMES = {"torch": "TorchBackend", "tensorflow": "KerasBackend", "sklearn": "SklearnBackend"}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_each_backend_is_a_final_value_of_the_abstract_backend(name):
    if name == "tensorflow":
        pytest.importorskip("tensorflow")
    b = get_backend(name)
    assert isinstance(b, AbstractBackend)
    assert type(b).__name__ == NAMES[name] and b.name == name
    assert repr(b) == f"{NAMES[name]}()"
    assert b == type(b)() and hash(b) == hash(type(b)()) and b is get_backend(name)
    assert all(b != get_backend(other) for other in NAMES if other != name and other != "tensorflow")


def test_the_abstract_backend_is_the_whole_protocol():
    with pytest.raises(TypeError, match="abstract"):
        AbstractBackend()  # type: ignore[abstract]

    class Half(AbstractBackend):  # a backend that forgot partial_fit
        name = "half"

        def output_shape(self, *a, **k): ...
        def init(self, *a, **k): ...
        def apply(self, *a, **k): ...
        def value_and_grad(self, *a, **k): ...
        def fit(self, *a, **k): ...

    with pytest.raises(TypeError, match="partial_fit"):
        Half()  # type: ignore[abstract]
    methods = {"output_shape", "init", "apply", "value_and_grad", "fit", "partial_fit"}
    assert AbstractBackend.__abstractmethods__ == frozenset(methods)


def test_a_spec_picks_its_backend_and_an_unknown_name_says_the_choices():
    assert get_backend(SequentialMLP(hidden=(2,))) is get_backend("torch")
    assert get_backend(SklearnModel(estimator="sklearn.linear_model:Ridge")) is get_backend("sklearn")
    with pytest.raises(BackendError, match=r"unknown backend 'jax'; use 'torch', 'tensorflow' or 'sklearn'"):
        get_backend("jax")


def test_gradient_backends_refuse_fit_and_partial_fit_with_a_backend_error():
    spec = SequentialMLP(hidden=(2,), output_shape=(1,))
    p = mml.backends.init_params(spec, (3,), key=mml.random.key(0))
    x, y = np.zeros((2, 3), np.float32), np.zeros((2, 1), np.float32)
    msg = r"SequentialMLP is a torch model: train it with a TrainPhase, not fit\(\)"
    with pytest.raises(BackendError, match=msg):
        mml.backends.fit(spec, p, x, y, key=mml.random.key(0))
    # classes= (what a classifier's first partial_fit passes) is a BackendError too, not a TypeError
    with pytest.raises(BackendError, match=msg):
        mml.backends.partial_fit(spec, p, x, y, key=mml.random.key(0), classes=[0, 1])


def test_a_sklearn_model_refuses_gradients_with_a_backend_error():
    spec = SklearnModel(estimator="sklearn.linear_model:Ridge")
    p = mml.backends.init_params(spec, (1,), key=mml.random.key(0))
    with pytest.raises(
        BackendError, match=r"SklearnModel is a scikit-learn model: it is fitted in closed form"
    ):
        mml.backends.value_and_grad(spec, p, np.zeros((2, 1)), lambda y: (y, None))
