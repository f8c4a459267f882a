"""The one cattrs converter of mml.

Every mml value is a frozen attrs class, so cattrs derives its document from the fields. This
module adds, in one place and one order:

1. array hooks: numpy arrays (and ``NDArray[...]`` annotations) stay as leaves in the
   unstructured tree and come back read-only;
2. Arrow tables stay as leaves;
3. tensors (torch, tensorflow) held in ``Any`` fields stay as leaves;
4. tagged unions: a field annotated with an abstract base (a class that sets
   ``_mml_union = True`` in its own body) is written with the stable ``kind`` tag of the
   concrete class plus its import path; reading looks the kind up among the subclasses that
   exist *now* (so user classes defined after import work) and imports the named module of
   an unknown kind — only if the converter's :class:`~mml.io._trust.Trust` allows it;
5. strictness: unknown keys are errors at every depth, a string or a mapping never becomes
   a tuple, list or set, and tuples held in ``Any`` fields come back as tuples.

Leaves are moved out of the document into files by :mod:`mml.io._artifact`.

>>> import mml, numpy as np
>>> k = mml.random.key(3)
>>> mml.io.structure(mml.io.unstructure(k), mml.random.Key) == k
True
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import UnionType
from typing import Any, Union, get_args, get_origin

import attrs
import cattrs
import numpy as np
import pyarrow as pa
from cattrs.cols import is_any_set, is_mutable_sequence, is_sequence
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from mml._fields import FrozenDict, readonly_array
from mml.errors import ConfigError
from mml.io._trust import TRUST_ALL, Trust, as_trust, check_trusted, import_path

__all__ = [
    "make_converter",
    "get_converter",
    "unstructure",
    "structure",
    "type_path",
    "import_type",
    "find_kind",
    "as_trust",
    "structure_checked",
    "validation_messages",
]


def type_path(cls: type) -> str:
    """``"module:QualName"`` for a class."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_type(path: Any, trusted: Trust | None = None) -> type:
    """Import a class named ``"module:QualName"``. Only attrs classes are accepted.

    ``trusted`` (when a document is read): the name is checked before it is imported.
    """
    obj = import_path(path, what="type", trusted=trusted)
    if not (isinstance(obj, type) and attrs.has(obj)):
        raise ConfigError(f"{path!r} is not an attrs class; only mml component classes can be loaded")
    return obj


def _is_union_base(t: Any) -> bool:
    return isinstance(t, type) and t.__dict__.get("_mml_union", False) is True


def _all_subclasses(base: type) -> list[type]:
    out: list[type] = []
    stack: list[type] = list(base.__subclasses__())
    while stack:
        c = stack.pop()
        out.append(c)
        stack.extend(c.__subclasses__())
    return out


def find_kind(base: type, kind: str) -> type | None:
    """The concrete subclass of ``base`` whose ``kind`` tag is ``kind`` (``None`` if none is loaded)."""
    for c in _all_subclasses(base):
        if c.__dict__.get("kind") == kind and attrs.has(c):
            return c
    return None


def _has_kind(t: Any) -> bool:
    return isinstance(t, type) and attrs.has(t) and isinstance(t.__dict__.get("kind"), str)


def _is_ndarray_type(t: Any) -> bool:
    return t is np.ndarray or get_origin(t) is np.ndarray


def _is_frozendict_type(t: Any) -> bool:
    return t is FrozenDict or get_origin(t) is FrozenDict


_SCALARS = (bool, int, float, str, type(None))


def _is_scalar_union(t: Any) -> bool:
    args = get_args(t)
    return bool(args) and get_origin(t) in (Union, UnionType) and all(a in _SCALARS for a in args)


def _structure_scalar_union(v: Any, t: Any) -> Any:
    if not isinstance(v, get_args(t)):
        raise ConfigError(f"expected one of {get_args(t)}, got {type(v).__name__} {v!r}")
    return v


_TUPLE = "$tuple"


def _is_collection_type(t: Any) -> bool:
    return is_sequence(t) or is_any_set(t) or get_origin(t) is tuple


def _collection_structure_factory(conv: cattrs.Converter) -> Callable[[Any], Any]:
    """Lists, tuples and sets from JSON lists only (never from a string or a mapping)."""

    def factory(t: Any) -> Any:
        args = get_args(t)
        origin = get_origin(t) or t
        hetero = origin is tuple and bool(args) and args[-1] is not Ellipsis and args != ((),)

        def structure_collection(v: Any, _: Any) -> Any:
            if isinstance(v, (str, bytes, Mapping)) or not isinstance(v, (list, tuple, set, frozenset)):
                raise ConfigError(f"expected a list, got {type(v).__name__} {v!r:.80}")
            if hetero and len(v) != len(args):
                raise ConfigError(f"expected a list of {len(args)} items, got {len(v)}")
            out, errors = [], []
            for i, e in enumerate(v):
                et = args[i] if hetero else (args[0] if args else Any)
                try:
                    out.append(conv.structure(e, et))
                except Exception as exc:
                    exc.__notes__ = [
                        *getattr(exc, "__notes__", []),
                        IterableValidationNote(f"@ index {i}", i, et),
                    ]
                    errors.append(exc)
            if errors:
                raise IterableValidationError(f"While structuring {t!r}", errors, t)
            if is_any_set(t):
                return set(out) if origin is set else frozenset(out)
            return list(out) if origin is list or is_mutable_sequence(t) else tuple(out)

        return structure_collection

    return factory


def _unstructure_any(conv: cattrs.Converter) -> Callable[[Any], Any]:
    """Values in ``Any`` fields: containers walked so that tuples stay tuples (``{"$tuple": [...]}``)."""

    def unstructure_any(v: Any) -> Any:
        if isinstance(v, tuple) and not hasattr(v, "_fields"):
            return {_TUPLE: [unstructure_any(x) for x in v]}
        if isinstance(v, list):
            return [unstructure_any(x) for x in v]
        if type(v) is dict:
            return {k: unstructure_any(x) for k, x in v.items()}
        return conv.unstructure(v)

    return unstructure_any


def make_converter(trust: Trust | None = None) -> cattrs.Converter:
    """Build a fresh converter configured for mml (``cattrs.global_converter`` is never touched).

    ``trust`` decides which user classes named in a document may be imported
    (default: none; :data:`~mml.io._trust.TRUST_ALL` for documents you wrote).
    """
    trust = trust if trust is not None else Trust()
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook_factory(_is_collection_type, _collection_structure_factory(conv))

    # 1. numpy arrays: leaves on the way out, read-only arrays on the way in.
    conv.register_unstructure_hook_func(_is_ndarray_type, lambda a: a)

    def _structure_array(v: Any, _: Any) -> np.ndarray:
        if isinstance(v, (Mapping, str, bytes)) or v is None:
            raise ConfigError(f"expected an array, got {type(v).__name__} {v!r:.80}")
        arr = readonly_array(v)
        if arr.dtype.kind == "O":
            raise ConfigError(f"expected a numeric or string array, got {v!r:.80}")
        return arr

    conv.register_structure_hook_func(_is_ndarray_type, _structure_array)
    conv.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, np.generic), lambda v: v.item()
    )
    # 2. Arrow tables: leaves.
    conv.register_unstructure_hook(pa.Table, lambda t: t)

    def _structure_table(v: Any, _: Any) -> pa.Table:
        if not isinstance(v, pa.Table):
            raise ConfigError(f"expected an Arrow table, got {type(v).__name__}")
        return v

    conv.register_structure_hook(pa.Table, _structure_table)

    # FrozenDict annotations behave like Mapping.
    def _structure_fd(v: Any, t: Any) -> FrozenDict[Any, Any]:
        args = get_args(t)
        if args:
            return FrozenDict(conv.structure(dict(v), dict[args[0], args[1]]))  # type: ignore[valid-type]
        return FrozenDict(v)

    conv.register_structure_hook_func(_is_frozendict_type, _structure_fd)
    conv.register_unstructure_hook_func(
        _is_frozendict_type, lambda m: {k: conv.unstructure(v) for k, v in m.items()}
    )

    # Unions of plain scalars (e.g. ``bool | int | float | str``) pass through as they are.
    conv.register_structure_hook_func(_is_scalar_union, _structure_scalar_union)

    # 3. Tagged unions. Concrete components carry their kind and import path.
    def _concrete_unstructure_factory(cls: type) -> Any:
        base_fn: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(cls, conv)
        kind = cls.__dict__["kind"]
        path = type_path(cls)

        def unstructure_component(obj: Any) -> dict[str, Any]:
            d = base_fn(obj)
            d["kind"] = kind
            d["type"] = path
            return d

        return unstructure_component

    conv.register_unstructure_hook_factory(_has_kind, _concrete_unstructure_factory)

    def _concrete_structure_factory(cls: type) -> Any:
        base_fn: Callable[..., Any] = make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True)
        kind = cls.__dict__["kind"]

        def structure_component(value: Any, t: Any) -> Any:
            if not isinstance(value, Mapping):
                raise ConfigError(f"expected a document (a mapping) for a {cls.__name__}, got {value!r:.200}")
            if "kind" in value and value["kind"] != kind:
                raise ConfigError(f"kind {value['kind']!r} does not match {cls.__name__} (kind {kind!r})")
            return base_fn({k: v for k, v in value.items() if k not in ("kind", "type")}, t)

        return structure_component

    conv.register_structure_hook_factory(
        lambda t: _has_kind(t) and not _is_union_base(t), _concrete_structure_factory
    )

    def _plain_structure_factory(cls: type) -> Any:
        base_fn: Callable[..., Any] = make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True)

        def structure_record(value: Any, t: Any) -> Any:
            if not isinstance(value, Mapping):
                raise ConfigError(f"expected a document (a mapping) for a {cls.__name__}, got {value!r:.200}")
            return base_fn(value, t)

        return structure_record

    conv.register_structure_hook_factory(
        lambda t: isinstance(t, type) and attrs.has(t) and not _has_kind(t) and not _is_union_base(t),
        _plain_structure_factory,
    )

    conv.register_unstructure_hook_func(
        _is_union_base, lambda obj: conv.unstructure(obj, unstructure_as=type(obj))
    )

    def _structure_union(value: Any, base: type) -> Any:
        if isinstance(value, base):
            return value
        if not isinstance(value, Mapping) or "kind" not in value:
            raise ConfigError(
                f"expected a document for a {base.__name__} with a 'kind' tag, got {value!r:.200}"
            )
        kind = value["kind"]
        if not isinstance(kind, str):
            raise ConfigError(f"a {base.__name__} 'kind' is a string, got {kind!r:.100}")
        cls = find_kind(base, kind)
        if cls is None and "type" in value:
            cls = import_type(value["type"], trust)
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise ConfigError(f"{value['type']!r} is not a {base.__name__}")
        if cls is None:
            known = sorted(c.__dict__["kind"] for c in _all_subclasses(base) if "kind" in c.__dict__)
            raise ConfigError(f"unknown {base.__name__} kind {kind!r}; known kinds: {', '.join(known)}")
        return conv.structure(value, cls)

    conv.register_structure_hook_func(_is_union_base, _structure_union)

    # 4. Fields annotated ``Any`` may hold components (a model spec, an optimizer): their
    # documents carry ``kind`` and ``type``, so they are rebuilt rather than left as dicts.
    def _revive(value: Any) -> Any:
        if isinstance(value, Mapping):
            if set(value) == {_TUPLE} and isinstance(value[_TUPLE], list):
                return tuple(_revive(v) for v in value[_TUPLE])
            if isinstance(value.get("kind"), str) and "type" in value:
                cls = import_type(value["type"], trust)
                if cls.__dict__.get("kind") != value["kind"]:
                    raise ConfigError(
                        f"kind {value['kind']!r} does not match {value['type']!r} "
                        f"(whose kind is {cls.__dict__.get('kind')!r})"
                    )
                return conv.structure(value, cls)
            return {k: _revive(v) for k, v in value.items()}
        if isinstance(value, list):
            return [_revive(v) for v in value]
        return value

    conv.register_structure_hook_func(lambda t: t is Any, lambda v, _: _revive(v))
    conv.register_unstructure_hook_func(lambda t: t is Any, _unstructure_any(conv))
    return conv


@functools.lru_cache(maxsize=16)
def get_converter(trust: Trust | None = None) -> cattrs.Converter:
    """The converter mml uses for ``trust`` (built once per trust; it holds no data, only hooks)."""
    return make_converter(trust)


def unstructure(obj: Any, unstructure_as: Any = None) -> Any:
    """The document of an mml value: plain dicts/lists/scalars, with arrays/tables/tensors as leaves."""
    return get_converter().unstructure(obj, unstructure_as=unstructure_as)


def _a(name: str) -> str:
    """``name`` with its indefinite article: "an AbstractPhase", "a ModelGraph"."""
    return f"{'an' if name[:1] in 'AEIOU' else 'a'} {name}"


def _closest(key: str, cls: Any) -> str:
    import difflib

    removed = getattr(cls, "_removed_keys", None) or {}
    if key in removed:  # a key of an older document: say the new spelling
        return f" ({key} was removed: {removed[key]})"
    names = [a.alias or a.name for a in attrs.fields(cls)] if attrs.has(cls) else []
    close = difflib.get_close_matches(key, names, n=1)
    return (
        f"; did you mean {close[0]!r}?" if close else (f"; valid keys: {', '.join(names)}" if names else "")
    )


def validation_messages(exc: BaseException, path: str = "$") -> list[str]:
    """``"$.json.path: what is wrong"`` for each problem in a cattrs validation error."""
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return [f"{path}.{k}: unknown key{_closest(k, exc.cl)}" for k in sorted(exc.extra_fields)]
    if isinstance(exc, (cattrs.ClassValidationError, IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        out: list[str] = []
        for inner, note in with_notes:
            if isinstance(note, IterableValidationNote):
                idx = note.index
                sub = f"{path}.{idx}" if isinstance(idx, str) and idx.isidentifier() else f"{path}[{idx!r}]"
            else:
                sub = f"{path}.{note.name}"
            out.extend(validation_messages(inner, sub))
        for inner in without:
            out.extend(validation_messages(inner, path))
        return out
    if isinstance(exc, KeyError):
        return [
            f"{path}: required key {exc.args[0]!r} is missing"
            if exc.args
            else f"{path}: a required key is missing"
        ]
    if isinstance(exc, RecursionError):
        return [f"{path}: the document is nested too deeply"]
    return [f"{path}: {exc}"]


def structure(
    doc: Any, cls: Any, *, trusted: Trust | str | Any = None, path: str = "$", source: str = "the document"
) -> Any:
    """Rebuild a value of type ``cls`` from its document.

    Every import path the document names is checked first (``trusted=``: exact
    ``"pkg.mod:Name"``, ``"pkg.mod:*"``, or ``"*"`` for a document you wrote yourself):
    an :class:`~mml.UntrustedTypeError` lists the untrusted ones and nothing is imported.
    Unknown keys and mistyped values are a :class:`~mml.ConfigError` naming each JSON path.

    >>> import mml
    >>> structure({"kind": "splitter.random", "ratio": {"a": 1.0}}, mml.splitters.AbstractSplitter)
    Traceback (most recent call last):
    ...
    mml.errors.ConfigError: cannot build an AbstractSplitter from the document: $.ratio: unknown key; did you mean 'ratios'?
    """
    trust = check_trusted(doc, trusted, source=source)
    try:
        return get_converter(trust).structure(doc, cls)
    except (cattrs.BaseValidationError, RecursionError) as exc:
        raise ConfigError(
            f"cannot build {_a(str(getattr(cls, '__name__', cls)))} from the document: "
            + "; ".join(validation_messages(exc, path))
        ) from exc


def structure_checked(doc: Any, cls: Any) -> Any:
    """:func:`structure` for a document already checked against the caller's trust (nested calls)."""
    return structure(doc, cls, trusted=TRUST_ALL)
