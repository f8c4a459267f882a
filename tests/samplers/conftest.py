from __future__ import annotations

import pytest

import mml

from .helpers import make_fs


@pytest.fixture
def fs() -> mml.FeatureSet:
    return make_fs(50)
