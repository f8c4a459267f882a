"""A sweep value that a component's validator refuses is named with its path and value."""

from __future__ import annotations

import attrs
import pytest

import mml
from mml.errors import ConfigError
from mml.strategies import set_path


@attrs.frozen
class _Box:
    opt: object


def test_a_refused_value_names_the_path_and_the_value():
    box = _Box(mml.optim.adam(1e-3))
    with pytest.raises(ConfigError) as info:
        set_path(box, "opt.lr", "fast")
    assert str(info.value) == "path 'opt.lr' = 'fast': expected a number, got 'fast'"
    assert isinstance(info.value.__cause__, ConfigError)


def test_the_walks_own_errors_are_not_named_twice():
    box = _Box(mml.optim.adam(1e-3))
    with pytest.raises(ConfigError) as info:
        set_path(box, "opt.lrr", 0.1)
    assert str(info.value).startswith("path 'opt.lrr': Adam at 'opt' has no field 'lrr'")
    assert str(info.value).count("path 'opt.lrr'") == 1


def test_a_good_value_is_set_and_the_original_is_unchanged():
    box = _Box(mml.optim.adam(1e-3))
    assert set_path(box, "opt.lr", 0.5).opt.lr == 0.5 and box.opt.lr == 1e-3
