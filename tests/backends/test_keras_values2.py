"""The Keras backend's environment messages in full: Keras missing, or Keras on another backend.

Both depend on the environment; they are reached by hiding ``keras`` in ``sys.modules`` and by
making ``keras.backend.backend()`` answer another name (restored after each test).
"""

from __future__ import annotations

import sys

import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from fresh_memos import _fresh_memos  # noqa: F401, E402  (autouse: each test builds with the code under test)

import mml  # noqa: E402
from mml.backends import init_params  # noqa: E402
from mml.models import SequentialMLP  # noqa: E402

SPEC = SequentialMLP(hidden=(2,), output_shape=(1,), backend="tensorflow")


def test_without_keras_the_tensorflow_backend_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(mml.BackendError) as e:
        init_params(SPEC, (3,), (1,), key=mml.random.key(0))
    assert (
        str(e.value) == "the tensorflow backend needs Keras 3 and TensorFlow: pip install 'mml[tensorflow]'"
    )
    assert isinstance(e.value.__cause__, ImportError)


@pytest.mark.parametrize("other", ["jax", "torch"])
def test_keras_on_another_backend_is_refused(monkeypatch: pytest.MonkeyPatch, other: str) -> None:
    monkeypatch.setattr(keras.backend, "backend", lambda: other)
    with pytest.raises(mml.BackendError) as e:
        init_params(SPEC, (3,), (1,), key=mml.random.key(0))
    assert str(e.value) == (
        f"Keras runs on the {other!r} backend; mml's Keras models need TensorFlow: "
        "set KERAS_BACKEND=tensorflow before importing keras"
    )


def test_keras_on_tensorflow_builds() -> None:
    p = init_params(SPEC, (3,), (1,), key=mml.random.key(0))
    assert [tuple(v.shape) for v in p.trainable] == [(3, 2), (2,), (2, 1), (1,)]
