"""Repository-wide pytest configuration: the doctests of ``mml/`` without the optional backends.

mml imports torch, TensorFlow and Keras lazily, so every module imports (and its doctests are
collected) without them. Some doctest examples do run a backend, though, and in an environment
without it (``tox -e core``) such a doctest skips instead of failing: a doctest whose first
failing example raised an error caused by importing a missing optional backend is reported as
skipped, naming the module. Where the backends are installed nothing is ever skipped here, and
tests under ``tests/`` are not affected: they skip with ``pytest.importorskip``.
"""

from __future__ import annotations

import doctest
import importlib.util
from collections.abc import Generator
from typing import Any

import pytest

_OPTIONAL_BACKENDS = ("torch", "tensorflow", "keras")


def _is_missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


MISSING_BACKENDS = frozenset(m for m in _OPTIONAL_BACKENDS if _is_missing(m))


def _missing_backend(exc: BaseException | None) -> str | None:
    """The missing optional backend that ``exc`` (or an exception it was raised from) failed to import."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            root = exc.name.partition(".")[0]
            if root in MISSING_BACKENDS:
                return root
        exc = exc.__cause__ or exc.__context__
    return None


def _first_failure(exc: BaseException) -> Any:
    failures = getattr(
        exc, "failures", None
    )  # pytest's MultipleDoctestFailures (--doctest-continue-on-failure)
    return failures[0] if failures else exc


if MISSING_BACKENDS:

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
        try:
            return (yield)
        except Exception as exc:
            first = _first_failure(exc)
            is_doctest = getattr(item, "dtest", None) is not None  # pytest's DoctestItem
            if not is_doctest or not isinstance(first, doctest.UnexpectedException):
                raise
            missing = _missing_backend(first.exc_info[1])
            if missing is None:
                raise
            pytest.skip(f"doctest {item.name} needs {missing}, which is not installed")
