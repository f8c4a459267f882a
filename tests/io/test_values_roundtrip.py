"""Serialization does not change values: tuples stay tuples, also inside untyped fields."""

from hypothesis import given, strategies as st

import mml
from mml.training._state import box

_leaf = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=5)
_data = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text("abc", min_size=1, max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


def test_a_tuple_callback_state_comes_back_as_a_tuple():
    from tests.io.test_trust import _experiment

    s = mml.init(_experiment(), 0).with_callback_state("fit/0", (1, (2.5, "a"), [3]))
    back = mml.io.roundtrip(s)
    assert back == s
    assert back.callback_state("fit/0") == (1, (2.5, "a"), [3])
    assert type(back.callback_state("fit/0")[1]) is tuple and type(back.callback_state("fit/0")[2]) is list


@given(_data)
def test_plain_data_in_a_box_roundtrips_exactly(value):
    back = mml.io.roundtrip(box(value)).value
    assert back == value
    assert _shape(back) == _shape(value)


def _shape(v):
    """The container types all the way down (``==`` alone says (1,) == [1] is False, but not why)."""
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, [_shape(x) for x in v])
    if isinstance(v, dict):
        return ("dict", {k: _shape(x) for k, x in v.items()})
    return type(v).__name__
