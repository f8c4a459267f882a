"""Short names for user components in config documents — an explicit mapping, never global state.

ModularML lets a config say ``scaler: my_scaler`` because classes register themselves in a
process-wide registry. mml has no such registry: the names a document may use are passed
where the document is read (``experiment_from_config(config, registry={"my_scaler":
MyScaler})``) or declared in the document itself (a top-level ``registry:`` section mapping
names to import paths). :func:`named_kinds` turns both into the ``name → import path`` table
the config reader resolves ``kind: my_scaler`` (and ``scaler: my_scaler``) against, one call
at a time.

>>> from mml.scalers import Negate
>>> doc = {"featuresets": {"fs": {"transforms": [{"scaler": "flip"}, {"scaler": {"kind": "flip"}}]}}}
>>> apply_registry(doc, {"flip": Negate}, builtin={})["featuresets"]["fs"]["transforms"][0]
{'scaler': {'kind': 'scaler.negate', 'type': 'mml.scalers._elementwise:Negate'}}
>>> apply_registry({"registry": {"flip": "mml.scalers:Negate"}, **doc}, None, builtin={})["featuresets"]["fs"]["transforms"][1]
{'scaler': {'kind': 'scaler.negate', 'type': 'mml.scalers:Negate'}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mml.errors import ConfigError

__all__ = ["apply_registry", "named_kinds"]


def _path_of(name: str, value: Any, where: str) -> str:
    if isinstance(value, str):
        module, sep, qualname = value.partition(":")
        if not sep or not module or not qualname:
            raise ConfigError(
                f"{where}[{name!r}] must be an import path 'package.module:Class', got {value!r}"
            )
        return value
    if isinstance(value, type):
        if "kind" not in value.__dict__ or not hasattr(value, "__attrs_attrs__"):
            raise ConfigError(
                f"{where}[{name!r}] is {value.__qualname__}, which is not an mml component (an attrs class "
                "with a kind = ClassVar tag, e.g. a subclass of AbstractScaler)"
            )
        if "<locals>" in value.__qualname__:
            raise ConfigError(
                f"{where}[{name!r}]: {value.__qualname__} is defined inside a function, so a saved "
                "document could not name it; define it at module level"
            )
        return f"{value.__module__}:{value.__qualname__}"
    raise ConfigError(
        f"{where}[{name!r}] must be a component class or an import path 'package.module:Class', "
        f"got {type(value).__name__}"
    )


def named_kinds(
    registry: Mapping[str, Any] | None,
    declared: Mapping[str, Any] | None,
    *,
    builtin: Mapping[str, str],
) -> dict[str, str]:
    """``name → import path`` for the names a caller passes and a document declares.

    ``registry`` maps names to component classes (or import paths); ``declared`` is the
    document's own ``registry:`` section (import paths). A name used twice with different
    targets, or one that is also a built-in ``kind`` tag, is a :class:`~mml.ConfigError`.
    """
    out: dict[str, str] = {}
    for where, table in (("registry", registry), ("$.registry", declared)):
        if table is None:
            continue
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must map names to component classes or import paths, got {table!r}")
        for name, value in table.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{where}: names must be non-empty strings, got {name!r}")
            if name in builtin:
                raise ConfigError(
                    f"{where}: {name!r} is already the kind of a built-in component; pick another name"
                )
            path = _path_of(name, value, where)
            if out.get(name, path) != path:
                raise ConfigError(
                    f"{where}: {name!r} names {path}, but the registry passed in names it {out[name]}; "
                    "use one name per class"
                )
            out[name] = path
    return out


def apply_registry(
    config: Mapping[str, Any], registry: Mapping[str, Any] | None, *, builtin: Mapping[str, str]
) -> Any:
    """``config`` with registered names resolved and its ``registry:`` section dropped.

    Every ``kind: NAME`` and every ``scaler: NAME`` (a string) whose ``NAME`` is registered —
    by ``registry`` or by the config's own ``registry:`` section — becomes the component's own
    ``kind`` tag plus its import path, so the rest of the reader sees an ordinary document.
    The named classes are imported: a config is the user's own code.
    """
    from mml.io import import_type

    names = named_kinds(registry, config.get("registry"), builtin=builtin)
    if not names:
        return {k: v for k, v in config.items() if k != "registry"}
    kinds: dict[str, str] = {}
    for name, path in names.items():
        cls = import_type(path)
        kind = cls.__dict__.get("kind") if isinstance(cls, type) else None
        if not isinstance(kind, str):
            raise ConfigError(f"registry[{name!r}] = {path!r} is not an mml component class (no kind tag)")
        kinds[name] = kind

    def ref(name: str) -> dict[str, str]:
        return {"kind": kinds[name], "type": names[name]}

    def walk(value: Any) -> Any:
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for k, v in value.items():
                if k == "scaler" and isinstance(v, str) and v in names:
                    out[k] = ref(v)
                else:
                    out[k] = walk(v)
            if isinstance(out.get("kind"), str) and out["kind"] in names:
                out.update(ref(out["kind"]))
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk({k: v for k, v in config.items() if k != "registry"})
