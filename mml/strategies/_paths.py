"""Dotted paths into a value: read with :func:`get_path`, replace with :func:`set_path`.

A path is a string of segments joined by ``.``. Each segment steps into the current value:

* an **attrs value** by field name (``plan``, ``graph``, ``model``, ``hidden``);
* a **mapping** by key (``featuresets.toy``, ``inputs.mlp``);
* a **tuple or list** by integer index (``phases.0``, ``phases.-1``) or by the ``label`` of
  an element (``phases.fit``, ``nodes.mlp``).

So ``"plan.phases.0.n_epochs"`` and ``"plan.phases.fit.n_epochs"`` name the same number,
and ``"graph.nodes.mlp.model.hidden"`` the hidden sizes of node ``mlp``. :func:`set_path`
rebuilds every value on the way with ``attrs.evolve`` (so validation runs again) and
never changes its input.

>>> import attrs
>>> @attrs.frozen
... class Inner:
...     label: str
...     size: int
>>> @attrs.frozen
... class Outer:
...     items: tuple
>>> v = Outer((Inner("a", 1), Inner("b", 2)))
>>> get_path(v, "items.b.size")
2
>>> set_path(v, "items.1.size", 5)
Outer(items=(Inner(label='a', size=1), Inner(label='b', size=5)))
>>> v.items[1].size
2
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from mml._fields import FrozenDict
from mml.errors import ConfigError, DataError, GraphError, TrainingError

__all__ = ["get_path", "set_path", "parse_path"]


def parse_path(path: str) -> tuple[str, ...]:
    """The segments of a dotted path (empty segments are an error).

    >>> parse_path("plan.phases.0.n_epochs")
    ('plan', 'phases', '0', 'n_epochs')
    """
    if not isinstance(path, str) or not path:
        raise ConfigError(f"a path is a non-empty dotted string like 'plan.phases.0.n_epochs', got {path!r}")
    segs = tuple(path.split("."))
    if any(not s for s in segs):
        raise ConfigError(f"path {path!r} has an empty segment; write segments joined by single dots")
    return segs


def _where(segs: tuple[str, ...], i: int) -> str:
    return ".".join(segs[:i]) or "(the root)"


def _init_fields(cls: type) -> dict[str, Any]:
    return {a.name: a for a in attrs.fields(cls) if a.init}


def _seq_index(seq: Any, seg: str, segs: tuple[str, ...], i: int) -> int:
    try:
        idx = int(seg)
    except ValueError:
        labels = [getattr(x, "label", None) for x in seq]
        matches = [j for j, lab in enumerate(labels) if lab == seg]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(repr(lab) for lab in labels if lab is not None) or "(elements have no labels)"
        what = "several elements have" if matches else "no element has"
        raise ConfigError(
            f"path {'.'.join(segs)!r}: at {_where(segs, i)!r} {what} label {seg!r}; "
            f"use an index 0..{len(seq) - 1} or one of the labels {known}"
        ) from None
    if not -len(seq) <= idx < len(seq):
        raise ConfigError(
            f"path {'.'.join(segs)!r}: index {idx} is out of range at {_where(segs, i)!r}, "
            f"which has {len(seq)} elements"
        )
    return idx % len(seq)


def _step(obj: Any, segs: tuple[str, ...], i: int) -> tuple[str, Any, Any]:
    """``(how, where, child)``: how the segment addresses ``obj`` and the child it names."""
    seg = segs[i]
    if attrs.has(type(obj)):
        fields = _init_fields(type(obj))
        if seg not in fields:
            raise ConfigError(
                f"path {'.'.join(segs)!r}: {type(obj).__name__} at {_where(segs, i)!r} has no field {seg!r}; "
                f"fields: {', '.join(fields)}"
            )
        return "attr", fields[seg], getattr(obj, seg)
    if isinstance(obj, Mapping):
        if seg not in obj:
            raise ConfigError(
                f"path {'.'.join(segs)!r}: the mapping at {_where(segs, i)!r} has no key {seg!r}; "
                f"keys: {', '.join(map(str, obj)) or '(none)'}"
            )
        return "key", seg, obj[seg]
    if isinstance(obj, (tuple, list)):
        idx = _seq_index(obj, seg, segs, i)
        return "index", idx, obj[idx]
    raise ConfigError(
        f"path {'.'.join(segs)!r}: cannot step into {type(obj).__name__} {obj!r} at {_where(segs, i)!r} "
        f"with {seg!r}; paths go through attrs fields, mapping keys and tuple indices or labels"
    )


def get_path(value: Any, path: str) -> Any:
    """The value at ``path`` inside ``value``.

    >>> get_path({"a": (10, 20)}, "a.1")
    20
    """
    segs = parse_path(path)
    obj = value
    for i in range(len(segs)):
        _, _, obj = _step(obj, segs, i)
    return obj


def _set(obj: Any, segs: tuple[str, ...], i: int, new: Any) -> Any:
    if i == len(segs):
        return new
    how, where, child = _step(obj, segs, i)
    replaced = _set(child, segs, i + 1, new)
    if how == "attr":
        return attrs.evolve(obj, **{where.alias: replaced})
    if how == "key":
        if isinstance(obj, FrozenDict):
            return obj.set(where, replaced)
        out = dict(obj)
        out[where] = replaced
        return out if isinstance(obj, dict) else FrozenDict(out)
    items = list(obj)
    items[where] = replaced
    return type(obj)(items) if isinstance(obj, list) else tuple(items)


def set_path(value: Any, path: str, new: Any) -> Any:
    """A copy of ``value`` with the thing at ``path`` replaced by ``new`` (``value`` is unchanged).

    Every attrs value on the way is rebuilt with ``attrs.evolve``, so its converters and
    validators run: an invalid replacement fails here, naming the problem.

    >>> set_path({"a": (10, 20)}, "a.0", 1)
    {'a': (1, 20)}
    """
    segs = parse_path(path)
    try:
        return _set(value, segs, 0, new)
    except (ConfigError, DataError, GraphError, TrainingError) as exc:  # a validator refused it
        if str(exc).startswith(f"path {path!r}"):
            raise  # the walk's own errors name the path already
        raise type(exc)(f"path {path!r} = {new!r}: {exc}") from exc
