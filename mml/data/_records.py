"""The base of the records a FeatureSet keeps of what was done to it.

Concrete records (``SplitterRecord`` in :mod:`mml.splitters`, ``ScalerRecord`` in
:mod:`mml.scalers`) subclass :class:`AbstractRecord`; a FeatureSet holds them in order.
"""

from __future__ import annotations

import abc
from typing import ClassVar

__all__ = ["AbstractRecord"]


class AbstractRecord(abc.ABC):  # noqa: B024 - a tagged-union base with no abstract methods
    """Base of records of applied splitters and scalers (a tagged union when serialized)."""

    _mml_union: ClassVar[bool] = True
