"""A fixture that empties the backends' memos before a test (used by the ``*_values`` tests).

The backends memoise pure builds: the torch plan of a (spec, shapes), the Keras model skeleton
and its compiled call, the activation table, the user-module skeleton and the backend values.
Under ``mutmut`` every mutant runs in a fork of a process whose memos were filled by the
original code while it collected coverage, so a mutant in a builder would never run. Emptying
them first makes each test build what it uses with the code under test (and costs little).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


def clear_memos() -> None:
    """Empty every memo of ``mml.backends`` whose module is loaded."""
    torch_mod = sys.modules.get("mml.backends._torch")
    if torch_mod is not None:
        for name in ("_activation", "_plan", "_skeleton"):
            getattr(torch_mod, name).cache_clear()
    keras_mod = sys.modules.get("mml.backends._keras")
    if keras_mod is not None:
        for name in ("keras_model", "_compiled_call"):
            getattr(keras_mod, name).cache_clear()
    protocol = sys.modules.get("mml.backends._protocol")
    if protocol is not None:
        protocol._BACKENDS.clear()


@pytest.fixture(autouse=True)
def _fresh_memos() -> Iterator[None]:
    clear_memos()
    yield
