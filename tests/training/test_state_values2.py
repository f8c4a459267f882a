"""TrainState's mapping fields are boxed read-only maps whatever they are given (issue 17)."""

from __future__ import annotations

import mml
from mml._fields import FrozenDict
from mml.training._state import Boxed, TrainState, box


def test_mapping_fields_box_every_value_and_freeze_the_map():
    key = mml.random.key(0)
    s = TrainState(graph=None, key=key, opt_states=FrozenDict({"m": 1.5}), callback_states={"c": box(2)})
    assert s.opt_states["m"] == Boxed("", 1.5) and s.opt_state("m") == 1.5
    assert isinstance(s.callback_states, FrozenDict) and s.callback_state("c") == 2
    boxed = FrozenDict({"m": box(1.5)})
    assert TrainState(graph=None, key=key, opt_states=boxed).opt_states is boxed
