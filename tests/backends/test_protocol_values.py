"""The backend protocol pinned: every backend's methods have the abstract signature, the
dispatchers pass what they are given, and the install messages read as documented.

The install messages depend on the environment (a backend that is not installed); they are
reached here by hiding the module in ``sys.modules`` (``None`` there makes ``import`` raise
``ImportError``), which restores itself after the test.
"""

from __future__ import annotations

import inspect
import sys

import numpy as np
import pytest

from fresh_memos import _fresh_memos  # noqa: F401  (autouse: each test builds with the code under test)

from mml import backends as B
from mml.backends import AbstractBackend, get_backend
from mml.backends import _protocol as P
from mml.errors import BackendError

NAMES = ("torch", "tensorflow", "sklearn")
METHODS = ("output_shape", "init", "apply", "value_and_grad", "fit", "partial_fit")


def _params(f, drop_self: bool = False) -> list[tuple[str, object, object]]:
    ps = list(inspect.signature(f).parameters.values())
    return [(p.name, p.kind, p.default) for p in ps[1 if drop_self else 0 :]]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("method", METHODS)
def test_every_backend_method_has_the_abstract_signature(name: str, method: str) -> None:
    if name != "sklearn":
        pytest.importorskip(name)
    backend = type(get_backend(name))
    # names, kinds and defaults (a default changed in one backend is a different protocol)
    assert _params(getattr(backend, method)) == _params(getattr(AbstractBackend, method), drop_self=True)


def test_the_defaults_the_protocol_promises() -> None:
    sig = {m: inspect.signature(getattr(AbstractBackend, m)).parameters for m in METHODS}
    assert sig["init"]["device"].default == "cpu"
    assert sig["apply"]["training"].default is False
    assert sig["apply"]["key"].default is None and sig["apply"]["device"].default is None
    assert sig["value_and_grad"]["training"].default is True and sig["value_and_grad"]["key"].default is None
    assert sig["fit"]["y"].default is None and sig["partial_fit"]["classes"].default is None
    # the module-level dispatchers take the same arguments (init and output_shape add optional ones)
    for m in ("apply", "value_and_grad", "fit", "partial_fit"):
        assert _params(getattr(P, m)) == _params(getattr(AbstractBackend, m), drop_self=True), m
    assert _params(P.output_shape)[2] == ("target_shape", inspect.Parameter.POSITIONAL_OR_KEYWORD, None)
    init = dict((n, (k, d)) for n, k, d in _params(P.init_params))
    assert init["output_shape"] == (inspect.Parameter.POSITIONAL_OR_KEYWORD, None)
    assert init["device"] == (inspect.Parameter.KEYWORD_ONLY, "cpu")
    assert init["target_shape"] == (inspect.Parameter.KEYWORD_ONLY, None)


def test_a_backend_that_cannot_be_imported_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    for name, module, extra in (
        ("tensorflow", "mml.backends._keras", "tensorflow"),
        ("torch", "mml.backends._torch", "torch"),
        ("sklearn", "mml.backends._sklearn", "all"),
    ):
        P._BACKENDS.clear()
        with monkeypatch.context() as m:  # the module object itself comes back afterwards
            m.setitem(sys.modules, module, None)
            with pytest.raises(BackendError) as e:
                get_backend(name)
        assert str(e.value) == (
            f"the {name} backend cannot be imported (import of {module} halted; None in sys.modules): "
            f"pip install 'mml[{extra}]'"
        )
        assert isinstance(e.value.__cause__, ImportError)
        assert name not in P._BACKENDS  # nothing memoised on failure
        assert get_backend(name).name == name and type(get_backend(name)).__module__ == module


def test_to_backend_without_the_framework_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(BackendError) as e:
        B.to_backend(np.ones(2), "tensorflow")
    assert str(e.value) == "to_backend(..., 'tensorflow') needs TensorFlow: pip install 'mml[tensorflow]'"
    assert isinstance(e.value.__cause__, ImportError)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(BackendError) as e:
        B.to_backend(np.ones(2), "torch")
    assert str(e.value) == "to_backend(..., 'torch') needs PyTorch: pip install 'mml[torch]'"
    # numpy needs neither
    assert B.to_backend([1.0, 2.0], "numpy").tolist() == [1.0, 2.0]
