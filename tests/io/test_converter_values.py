"""Strict structuring, pinned value by value (mutation testing of ``mml/io/_converter.py``).

Small attrs classes defined here (a tagged union with two kinds, a plain record, collections,
scalar unions, arrays, tables, ``Any`` fields) and the exact documents and messages.
"""

from collections import namedtuple
from typing import Any, ClassVar

import attrs
import numpy as np
import pyarrow as pa
import pytest

from mml._fields import FrozenDict
from mml.errors import ConfigError, UntrustedTypeError
from mml.io._converter import (
    _all_subclasses,
    _closest,
    _has_kind,
    _is_union_base,
    find_kind,
    get_converter,
    import_type,
    make_converter,
    structure,
    structure_checked,
    type_path,
    unstructure,
    validation_messages,
)
from mml.io._trust import TRUST_ALL, Trust

HERE = __name__


@attrs.frozen
class Shape:
    _mml_union: ClassVar[bool] = True


@attrs.frozen
class Square(Shape):
    kind: ClassVar[str] = "test.square"
    side: int = 1


@attrs.frozen
class Circle(Shape):
    kind: ClassVar[str] = "test.circle"
    radius: float = 1.0


@attrs.frozen
class BigCircle(Circle):
    kind: ClassVar[str] = "test.big_circle"


@attrs.frozen
class Unregistered:  # not a Shape, but has a kind
    kind: ClassVar[str] = "test.unregistered"
    x: int = 0


@attrs.frozen
class Record:
    n: int
    name: str = "r"


@attrs.frozen
class Holder:
    shape: Shape
    record: Record = Record(0)
    anything: Any = None


@attrs.frozen
class Cols:
    xs: list[int] = attrs.field(factory=list)
    pair: tuple[int, str] = (0, "")
    many: tuple[int, ...] = ()
    empty: tuple[()] = ()
    tags: frozenset[str] = frozenset()
    mset: set[int] = attrs.field(factory=set)
    bare: tuple = ()
    scalar: bool | int | str = 0


@attrs.frozen
class Arrays:
    a: np.ndarray = attrs.field(factory=lambda: np.zeros(1))
    table: pa.Table = attrs.field(factory=lambda: pa.table({"x": [1]}))
    fd: FrozenDict[str, int] = attrs.field(factory=FrozenDict)
    anyfd: FrozenDict = attrs.field(factory=FrozenDict)


class _Conv:
    """A converter built in each test (not at import: a value built once would hide a changed ``make_converter``)."""

    def __getattr__(self, name):
        return getattr(make_converter(TRUST_ALL), name)


CONV = _Conv()


@pytest.fixture(autouse=True)
def _fresh_converters():
    get_converter.cache_clear()
    yield
    get_converter.cache_clear()


def _err(doc, cls, conv=None):
    with pytest.raises(Exception) as info:
        (conv or make_converter(TRUST_ALL)).structure(doc, cls)
    return info.value


# --- names ---------------------------------------------------------------------------------


def test_type_path():
    assert type_path(Square) == f"{HERE}:Square"
    assert type_path(np.ndarray) == "numpy:ndarray"


def test_import_type_accepts_attrs_classes_only():
    assert import_type(f"{HERE}:Square") is Square
    assert import_type(f"{HERE}:Square", TRUST_ALL) is Square
    with pytest.raises(ConfigError) as info:
        import_type("collections:OrderedDict")
    assert (
        str(info.value)
        == "'collections:OrderedDict' is not an attrs class; only mml component classes can be loaded"
    )
    with pytest.raises(ConfigError) as info:
        import_type(f"{HERE}:type_path")
    assert "is not an attrs class" in str(info.value)
    with pytest.raises(ConfigError) as info:
        import_type("nopath")
    assert str(info.value) == "a type path looks like 'package.module:Name', got 'nopath'"
    with pytest.raises(UntrustedTypeError):
        import_type(f"{HERE}:Square", Trust())


def test_union_bases_and_kinds():
    assert _is_union_base(Shape) is True
    assert _is_union_base(Square) is False  # inherited, not set in its own body
    assert _is_union_base(Shape()) is False
    assert _is_union_base(Record) is False
    assert _has_kind(Square) is True
    assert _has_kind(Shape) is False
    assert _has_kind(type("Plain", (), {"kind": "x"})) is False  # not attrs
    assert _has_kind(type("Plain", (), {})) is False
    assert _has_kind(Square()) is False
    assert _has_kind(Record) is False


def test_subclasses_at_every_depth():
    assert set(_all_subclasses(Shape)) == {Square, Circle, BigCircle}
    assert _all_subclasses(BigCircle) == []
    assert find_kind(Shape, "test.square") is Square
    assert find_kind(Shape, "test.big_circle") is BigCircle
    assert find_kind(Shape, "test.circle") is Circle
    assert find_kind(Shape, "test.unregistered") is None
    assert find_kind(Shape, "nope") is None


# --- tagged unions -------------------------------------------------------------------------


def test_components_are_written_with_kind_and_type():
    assert CONV.unstructure(Square(3)) == {"side": 3, "kind": "test.square", "type": f"{HERE}:Square"}
    assert CONV.unstructure(BigCircle(2.0)) == {
        "radius": 2.0,
        "kind": "test.big_circle",
        "type": f"{HERE}:BigCircle",
    }
    assert CONV.unstructure(Holder(Circle(0.5))) == {
        "shape": {"radius": 0.5, "kind": "test.circle", "type": f"{HERE}:Circle"},
        "record": {"n": 0, "name": "r"},
        "anything": None,
    }


def test_a_union_field_is_read_by_kind():
    doc = {"shape": {"kind": "test.square", "side": 2}, "record": {"n": 1}}
    assert CONV.structure(doc, Holder) == Holder(Square(2), Record(1))
    assert CONV.structure({"kind": "test.big_circle"}, Shape) == BigCircle()
    assert CONV.structure(Square(4), Shape) == Square(4)  # already a value
    assert CONV.structure(
        {"kind": "test.circle", "type": "ignored.when:Known", "radius": 2}, Shape
    ) == Circle(2)


def test_a_concrete_class_checks_the_kind_and_drops_kind_and_type():
    assert CONV.structure({"side": 5, "kind": "test.square", "type": "x:Y"}, Square) == Square(5)
    assert CONV.structure({"side": 5}, Square) == Square(5)
    e = _err({"kind": "test.circle", "side": 5}, Square)
    assert str(e) == "kind 'test.circle' does not match Square (kind 'test.square')"
    e = _err([1], Square)
    assert str(e) == "expected a document (a mapping) for a Square, got [1]"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"side": 2}, "expected a document for a Shape with a 'kind' tag, got {'side': 2}"),
        ("test.square", "expected a document for a Shape with a 'kind' tag, got 'test.square'"),
        ({"kind": 3}, "a Shape 'kind' is a string, got 3"),
        (
            {"kind": "test.hexagon"},
            "unknown Shape kind 'test.hexagon'; known kinds: test.big_circle, test.circle, test.square",
        ),
        (
            {"kind": "test.unregistered", "type": f"{HERE}:Unregistered"},
            f"'{HERE}:Unregistered' is not a Shape",
        ),
    ],
)
def test_union_errors(doc, message):
    assert str(_err(doc, Shape)) == message


def test_an_unknown_kind_is_imported_by_type_only_when_trusted():
    sub = type("Late", (Square,), {"kind": "test.late", "__module__": HERE})
    late = attrs.frozen(sub)
    globals()["Late"] = late
    try:
        # found among the subclasses that exist now
        assert type(CONV.structure({"kind": "test.late", "side": 1}, Shape)) is late
    finally:
        del globals()["Late"]
    # unknown kind, trusted type: imported and checked
    conv = make_converter(Trust((f"{HERE}:*",)))
    doc = {"kind": "test.unregistered", "type": f"{HERE}:Unregistered"}
    with pytest.raises(ConfigError, match="is not a Shape"):
        conv.structure(doc, Shape)
    with pytest.raises(UntrustedTypeError):
        make_converter().structure(doc, Shape)
    with pytest.raises(UntrustedTypeError):
        make_converter(None).structure(doc, Shape)


def test_a_plain_record_needs_a_mapping_and_known_keys():
    assert CONV.structure({"n": 2, "name": "x"}, Record) == Record(2, "x")
    assert str(_err("n", Record)) == "expected a document (a mapping) for a Record, got 'n'"
    long = "x" * 500
    assert str(_err(long, Record)) == f"expected a document (a mapping) for a Record, got {repr(long)[:200]}"
    e = _err({"n": 1, "nam": "x"}, Record)
    assert validation_messages(e) == ["$.nam: unknown key; did you mean 'name'?"]


def test_unknown_keys_at_every_depth():
    e = _err({"shape": {"kind": "test.square", "sid": 1}, "record": {"n": 1, "zzz": 2}}, Holder)
    assert validation_messages(e) == [
        "$.shape.sid: unknown key; did you mean 'side'?",
        "$.record.zzz: unknown key; valid keys: n, name",
    ]


# --- collections and scalars ---------------------------------------------------------------


def test_collections_from_lists():
    doc = {
        "xs": [1, 2],
        "pair": [3, "a"],
        "many": [1, 2, 3],
        "empty": [],
        "tags": ["b", "a"],
        "mset": [1, 1],
        "bare": [1, "x"],
        "scalar": "s",
    }
    c = CONV.structure(doc, Cols)
    assert c == Cols([1, 2], (3, "a"), (1, 2, 3), (), frozenset({"a", "b"}), {1}, (1, "x"), "s")
    assert type(c.xs) is list and type(c.pair) is tuple and type(c.many) is tuple and type(c.empty) is tuple
    assert type(c.tags) is frozenset and type(c.mset) is set and type(c.bare) is tuple
    assert CONV.structure([1, 2], tuple[int, ...]) == (1, 2)
    assert CONV.structure((1, 2), list[int]) == [1, 2]
    assert CONV.structure({1}, frozenset[int]) == frozenset({1})


@pytest.mark.parametrize(
    ("doc", "messages"),
    [
        ({"xs": "12"}, ["$.xs: expected a list, got str '12'"]),
        ({"xs": {"a": 1}}, ["$.xs: expected a list, got dict {'a': 1}"]),
        ({"xs": 3}, ["$.xs: expected a list, got int 3"]),
        ({"xs": b"ab"}, ["$.xs: expected a list, got bytes b'ab'"]),
        ({"tags": "ab"}, ["$.tags: expected a list, got str 'ab'"]),
        ({"pair": [1]}, ["$.pair: expected a list of 2 items, got 1"]),
        ({"pair": [1, "a", 2]}, ["$.pair: expected a list of 2 items, got 3"]),
        ({"pair": ["a", "b"]}, ["$.pair[0]: invalid literal for int() with base 10: 'a'"]),
        (
            {"xs": [1, "x", 2, "y"]},
            [
                "$.xs[1]: invalid literal for int() with base 10: 'x'",
                "$.xs[3]: invalid literal for int() with base 10: 'y'",
            ],
        ),
        (
            {"scalar": 1.5},
            ["$.scalar: expected one of (<class 'bool'>, <class 'int'>, <class 'str'>), got float 1.5"],
        ),
        (
            {"scalar": None},
            ["$.scalar: expected one of (<class 'bool'>, <class 'int'>, <class 'str'>), got NoneType None"],
        ),
    ],
)
def test_collection_and_scalar_errors_name_the_path(doc, messages):
    assert validation_messages(_err(doc, Cols)) == messages


def test_a_long_non_list_is_cut_to_80_characters():
    s = "y" * 300
    assert validation_messages(_err({"xs": s}, Cols)) == [f"$.xs: expected a list, got str {repr(s)[:80]}"]


def test_scalar_unions_keep_the_value():
    for v in (True, 3, "s"):
        got = CONV.structure({"scalar": v}, Cols).scalar
        assert got == v and type(got) is type(v)


# --- arrays, tables, mappings --------------------------------------------------------------


def test_arrays_are_leaves_and_come_back_read_only():
    a = np.arange(3.0)
    d = CONV.unstructure(Arrays(a=a))
    assert d["a"] is a
    assert isinstance(d["table"], pa.Table)
    got = CONV.structure({"a": [1, 2], "table": pa.table({"x": [2]})}, Arrays)
    np.testing.assert_array_equal(got.a, [1, 2])
    assert got.a.flags.writeable is False
    assert CONV.structure({"a": ["a", "b"]}, Arrays).a.dtype.kind == "U"
    assert CONV.unstructure(np.float32(1.5)) == 1.5 and type(CONV.unstructure(np.int64(2))) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"x": 1}, "$.a: expected an array, got dict {'x': 1}"),
        ("abc", "$.a: expected an array, got str 'abc'"),
        (b"ab", "$.a: expected an array, got bytes b'ab'"),
        (None, "$.a: expected an array, got NoneType None"),
        ([1, None], "$.a: expected a numeric or string array, got [1, None]"),
    ],
)
def test_array_errors(value, message):
    assert validation_messages(_err({"a": value}, Arrays)) == [message]


def test_table_errors():
    assert validation_messages(_err({"table": [1]}, Arrays)) == ["$.table: expected an Arrow table, got list"]


def test_frozen_dicts():
    got = CONV.structure({"fd": {"a": 1}, "anyfd": {"b": [1]}}, Arrays)
    assert type(got.fd) is FrozenDict and dict(got.fd) == {"a": 1}
    assert type(got.anyfd) is FrozenDict and dict(got.anyfd) == {"b": [1]}
    assert CONV.structure({"fd": {"a": "2"}}, Arrays).fd["a"] == 2  # values structured as int
    d = CONV.unstructure(Arrays(fd=FrozenDict({"a": 1}), anyfd=FrozenDict({"s": Square(2)})))
    assert d["fd"] == {"a": 1} and type(d["fd"]) is dict
    assert d["anyfd"] == {"s": {"side": 2, "kind": "test.square", "type": f"{HERE}:Square"}}


# --- Any fields ----------------------------------------------------------------------------

Point = namedtuple("Point", "x y")


def test_any_fields_keep_tuples_and_components():
    value = {"t": (1, (2, [3, (4,)])), "l": [Square(1)], "s": Circle(2.0)}
    doc = CONV.unstructure(Holder(Square(), anything=value))["anything"]
    assert doc == {
        "t": {"$tuple": [1, {"$tuple": [2, [3, {"$tuple": [4]}]]}]},
        "l": [{"side": 1, "kind": "test.square", "type": f"{HERE}:Square"}],
        "s": {"radius": 2.0, "kind": "test.circle", "type": f"{HERE}:Circle"},
    }
    back = CONV.structure({"shape": {"kind": "test.square"}, "anything": doc}, Holder).anything
    assert back == value
    assert type(back["t"]) is tuple and type(back["t"][1][1]) is list and type(back["t"][1][1][1]) is tuple
    assert CONV.unstructure(Point(1, 2), Any) == [1, 2] or CONV.unstructure(Point(1, 2), Any) == (1, 2)
    assert CONV.unstructure(Holder(Square(), anything=Point(1, 2)))["anything"] != {"$tuple": [1, 2]}


def test_any_fields_leave_other_mappings_alone():
    for doc in (
        {"$tuple": 3},
        {"$tuple": [1], "x": 2},
        {"kind": "k"},
        {"kind": 3, "type": "a:B"},
        {"type": "a:B"},
        {"a": [{"b": 1}]},
    ):
        assert CONV.structure({"shape": {"kind": "test.square"}, "anything": doc}, Holder).anything == doc


def test_any_fields_check_the_kind_of_a_named_type():
    doc = {"shape": {"kind": "test.square"}, "anything": {"kind": "test.circle", "type": f"{HERE}:Square"}}
    assert str(_err(doc, Holder).exceptions[0]) == (
        f"kind 'test.circle' does not match '{HERE}:Square' (whose kind is 'test.square')"
    )
    doc["anything"] = {"kind": "test.x", "type": f"{HERE}:Record"}
    assert str(_err(doc, Holder).exceptions[0]) == (
        f"kind 'test.x' does not match '{HERE}:Record' (whose kind is None)"
    )


def test_any_fields_import_only_trusted_types():
    doc = {"shape": {"kind": "test.square"}, "anything": {"kind": "test.square", "type": f"{HERE}:Square"}}
    e = _err(doc, Holder, make_converter())
    assert isinstance(e.exceptions[0], UntrustedTypeError)
    assert e.exceptions[0].untrusted == (f"{HERE}:Square",)
    assert make_converter(Trust((f"{HERE}:Square",))).structure(doc, Holder).anything == Square()


# --- the module functions ------------------------------------------------------------------


def test_get_converter_is_cached_per_trust():
    assert get_converter() is get_converter()
    assert get_converter(TRUST_ALL) is get_converter(Trust(("*",)))
    assert get_converter(TRUST_ALL) is not get_converter()


def test_unstructure_and_structure_round_trip():
    assert unstructure(Square(2)) == {"side": 2, "kind": "test.square", "type": f"{HERE}:Square"}
    assert unstructure(Square(2), unstructure_as=Shape) == unstructure(Square(2))
    assert structure({"kind": "test.square", "side": 2}, Shape) == Square(2)
    assert structure_checked({"kind": "test.square", "type": f"{HERE}:Square", "side": 2}, Shape) == Square(2)


def test_structure_messages_name_the_class_and_every_path():
    with pytest.raises(ConfigError) as info:
        structure({"n": "x", "nme": 1}, Record)
    assert str(info.value) == (
        "cannot build a Record from the document: $.n: invalid literal for int() with base 10: 'x'; "
        "$.nme: unknown key; did you mean 'name'?"
    )
    with pytest.raises(ConfigError) as info:
        structure({"xs": [1, "a"], "pair": "p"}, Cols, path="$.value")
    assert str(info.value) == (
        "cannot build a Cols from the document: $.value.xs[1]: invalid literal for int() with base 10: 'a'; "
        "$.value.pair: expected a list, got str 'p'"
    )
    with pytest.raises(ConfigError) as info:
        structure({}, Record)
    assert str(info.value) == "cannot build a Record from the document: $.n: required key 'n' is missing"
    with pytest.raises(ConfigError) as info:
        structure([1, "x"], list[int])
    assert (
        str(info.value)
        == "cannot build a list from the document: $[1]: invalid literal for int() with base 10: 'x'"
    )


def test_structure_checks_trust_first_with_the_source():
    doc = {"kind": "test.square", "type": f"{HERE}:Square", "side": 2}
    with pytest.raises(UntrustedTypeError) as info:
        structure(doc, Shape, source="the artifact /a")
    assert str(info.value).startswith("the artifact /a names 1 untrusted type or callable (at $.type)")
    assert structure(doc, Shape, trusted=[f"{HERE}:*"]) == Square(2)


def test_structure_reports_too_deep_documents():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ConfigError) as info:
        structure({"shape": {"kind": "test.square"}, "anything": deep}, Holder)
    assert str(info.value).startswith("cannot build a Holder from the document: ")
    assert str(info.value).endswith("the document is nested too deeply")


def test_closest():
    assert _closest("nam", Record) == "; did you mean 'name'?"
    assert _closest("zzz", Record) == "; valid keys: n, name"
    assert _closest("zzz", dict) == ""
    assert _closest("zzz", Shape) == ""


def test_validation_messages_of_plain_errors():
    assert validation_messages(KeyError("n"), "$.a") == ["$.a: required key 'n' is missing"]
    assert validation_messages(KeyError(), "$.a") == ["$.a: a required key is missing"]
    assert validation_messages(RecursionError(), "$.a") == ["$.a: the document is nested too deeply"]
    assert validation_messages(ValueError("bad"), "$.a") == ["$.a: bad"]
    assert validation_messages(ValueError("bad")) == ["$: bad"]


def test_validation_messages_of_mapping_keys():
    e = _err({"k1": 1, "bad key": "x", "ok": "y"}, dict[str, int])
    assert sorted(validation_messages(e)) == [
        "$.ok: invalid literal for int() with base 10: 'y'",
        "$['bad key']: invalid literal for int() with base 10: 'x'",
    ]
