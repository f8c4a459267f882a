"""The converter, second round (issue 17): parametrized ``FrozenDict`` fields walk their values
both ways, and the notes an element's own error carries survive the collection's index note."""

from __future__ import annotations

from typing import ClassVar

import attrs
import pytest
from cattrs.errors import IterableValidationError, IterableValidationNote

from mml._fields import FrozenDict
from mml.errors import ConfigError, UntrustedTypeError
from mml.io._converter import make_converter, structure
from mml.io._trust import TRUST_ALL

from .test_converter_values import HERE, Holder, Shape, Square


@attrs.frozen
class Shapes:
    by_name: FrozenDict[str, Shape] = attrs.field(factory=FrozenDict)


@attrs.frozen
class Noted:
    n: int = 0

    def __attrs_post_init__(self) -> None:
        if self.n < 0:
            err = ValueError(f"n must be >= 0, got {self.n}")
            err.add_note("hint: counts are never negative")
            raise err


@attrs.frozen
class Many:
    items: list[Noted] = attrs.field(factory=list)


def test_a_parametrized_frozendict_unstructures_its_values() -> None:
    conv = make_converter(TRUST_ALL)
    doc = conv.unstructure(Shapes(FrozenDict({"s": Square(2)})))
    assert doc == {"by_name": {"s": {"side": 2, "kind": "test.square", "type": f"{HERE}:Square"}}}
    assert type(doc["by_name"]) is dict and type(doc["by_name"]["s"]) is dict
    back = conv.structure(doc, Shapes)
    assert type(back.by_name) is FrozenDict and back.by_name["s"] == Square(2)
    assert back == Shapes(FrozenDict({"s": Square(2)}))


class Celsius(float):
    """A type with its own hook (registered on a converter), whose errors carry a note."""


def _celsius(v: object, _: object) -> Celsius:
    if not isinstance(v, (int, float)) or v < -273.15:
        err = ValueError(f"{v!r} is below absolute zero")
        err.add_note("hint: temperatures are in degrees Celsius")
        raise err
    return Celsius(v)


def test_an_element_error_keeps_its_own_notes_before_the_index() -> None:
    conv = make_converter(TRUST_ALL)
    conv.register_structure_hook(Celsius, _celsius)
    assert conv.structure([1, 2.5], list[Celsius]) == [1.0, 2.5]
    with pytest.raises(IterableValidationError) as info:
        conv.structure([1, -300], list[Celsius])
    (inner,) = info.value.exceptions
    assert isinstance(inner, ValueError) and str(inner) == "-300 is below absolute zero"
    notes = inner.__notes__
    assert notes[0] == "hint: temperatures are in degrees Celsius"
    assert isinstance(notes[1], IterableValidationNote) and notes[1] == "@ index 1" and notes[1].index == 1
    assert notes[1].type is Celsius and len(notes) == 2
    # an element error without notes of its own gets only the index note
    with pytest.raises(IterableValidationError) as info2:
        conv.structure([{"n": 1}, {"n": -2}], list[Noted])
    (inner2,) = info2.value.exceptions
    assert [str(n) for n in inner2.__notes__] == ["@ index 1"]


def test_the_structure_message_names_the_index_of_a_noted_error() -> None:
    with pytest.raises(ConfigError) as info:
        structure({"items": [{"n": 0}, {"n": -1}]}, Many, trusted=TRUST_ALL)
    assert str(info.value) == "cannot build a Many from the document: $.items[1]: n must be >= 0, got -1"


@attrs.frozen
class Renamed:
    _removed_keys: ClassVar[dict[str, str]] = {"lr_decay": "use 'schedule'"}
    schedule: str = "const"


def test_a_removed_key_says_its_new_spelling() -> None:
    with pytest.raises(ConfigError) as info:
        structure({"lr_decay": 0.5}, Renamed, trusted=TRUST_ALL)
    assert str(info.value) == (
        "cannot build a Renamed from the document: $.lr_decay: unknown key (lr_decay was removed: use 'schedule')"
    )
    with pytest.raises(ConfigError) as info2:
        structure({"schedul": "x"}, Renamed, trusted=TRUST_ALL)
    assert str(info2.value).endswith("$.schedul: unknown key; did you mean 'schedule'?")


def test_an_untrusted_name_without_a_source_is_in_the_document() -> None:
    with pytest.raises(UntrustedTypeError) as info:
        structure({"shape": {"kind": "x.unknown", "type": "os:system"}}, Holder)
    assert str(info.value).startswith("the document names 1 untrusted type or callable")
