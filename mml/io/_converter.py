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
   an unknown kind.

Leaves are moved out of the document into files by :mod:`mml.io._artifact`.

>>> import mml, numpy as np
>>> k = mml.random.key(3)
>>> mml.io.structure(mml.io.unstructure(k), mml.random.Key) == k
True
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from types import UnionType
from typing import Any, Union, get_args, get_origin

import attrs
import cattrs
import numpy as np
import pyarrow as pa
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from mml._fields import FrozenDict, readonly_array
from mml.errors import ConfigError, MMLError

__all__ = [
    "make_converter",
    "get_converter",
    "unstructure",
    "structure",
    "type_path",
    "import_type",
    "find_kind",
]


def type_path(cls: type) -> str:
    """``"module:QualName"`` for a class."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_type(path: str) -> type:
    """Import a class named ``"module:QualName"``. Only attrs classes are accepted."""
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise ConfigError(f"a type path looks like 'package.module:ClassName', got {path!r}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"cannot import {path!r} ({exc}); a user component class must be importable under "
            "the same module path when loading"
        ) from exc
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


def make_converter() -> cattrs.Converter:
    """Build a fresh converter configured for mml (``cattrs.global_converter`` is never touched)."""
    conv = cattrs.Converter()

    # 1. numpy arrays: leaves on the way out, read-only arrays on the way in.
    conv.register_unstructure_hook_func(_is_ndarray_type, lambda a: a)
    conv.register_structure_hook_func(_is_ndarray_type, lambda v, _: readonly_array(v))
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
        return make_dict_structure_fn(cls, conv)

    conv.register_structure_hook_factory(
        lambda t: _has_kind(t) and not _is_union_base(t), _concrete_structure_factory
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
        cls = find_kind(base, kind)
        if cls is None and isinstance(value.get("type"), str):
            cls = import_type(value["type"])
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
            if isinstance(value.get("kind"), str) and isinstance(value.get("type"), str):
                cls = import_type(value["type"])
                if cls.__dict__.get("kind") == value["kind"]:
                    return conv.structure(value, cls)
            return {k: _revive(v) for k, v in value.items()}
        if isinstance(value, list):
            return [_revive(v) for v in value]
        return value

    conv.register_structure_hook_func(lambda t: t is Any, lambda v, _: _revive(v))
    return conv


@functools.lru_cache(maxsize=1)
def get_converter() -> cattrs.Converter:
    """The converter mml uses (built once; it holds no data, only hooks)."""
    return make_converter()


def unstructure(obj: Any, unstructure_as: Any = None) -> Any:
    """The document of an mml value: plain dicts/lists/scalars, with arrays/tables/tensors as leaves."""
    return get_converter().unstructure(obj, unstructure_as=unstructure_as)


def _format_exception(exc: BaseException, type_: Any) -> str:
    # an mml error already says what is wrong and how to fix it: keep its words
    if isinstance(exc, MMLError):
        return str(exc)
    return cattrs.v.format_exception(exc, type_)


def structure(doc: Any, cls: Any) -> Any:
    """Rebuild a value of type ``cls`` from its document."""
    try:
        return get_converter().structure(doc, cls)
    except cattrs.BaseValidationError as exc:
        raise ConfigError(
            f"cannot build a {getattr(cls, '__name__', cls)} from the document: "
            + "; ".join(cattrs.transform_error(exc, format_exception=_format_exception))
        ) from exc
