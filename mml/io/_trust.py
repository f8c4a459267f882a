"""Trust: which named classes and callables a document may make mml import.

A document names code by import path (``"package.module:Name"``): the ``type`` of a component,
a :class:`~mml.training.Loss` function, a model ``factory``, an ``estimator``, a metric. A
document read from disk is untrusted input, so every such name is checked against an
allow-list *before anything is imported*:

* mml's own attrs classes (``mml.…`` modules, reached without passing through a module);
* scikit-learn estimator classes (``sklearn.<public module>:<Name>``, checked after import to
  be a ``BaseEstimator`` subclass) and ``sklearn.metrics`` functions;
* torch ``nn.Module`` classes under ``torch.nn:<Name>`` and Keras layers, models and losses
  under ``keras``, ``keras.layers``, ``keras.models``, ``keras.losses`` (checked after import);
* what the caller trusts: ``trusted=["mypkg.models:MyNet", "mypkg.losses:*"]`` (an exact
  name, or every name of one module), or ``"*"`` for a document you wrote yourself.

This module is the one place where mml imports by name (:func:`import_path`).

>>> t = as_trust(["mypkg.losses:*"])
>>> is_trusted("mypkg.losses:focal", t), is_trusted("mypkg.other:focal", t)
(True, False)
>>> is_trusted("sklearn.linear_model:Ridge", as_trust(None)), is_trusted("os:system", as_trust(None))
(True, False)
>>> untrusted_names({"kind": "loss", "type": "evil.x:Y", "fn": "subprocess:Popen"}, as_trust(None))
[('$.fn', 'subprocess:Popen'), ('$.type', 'evil.x:Y')]
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

import attrs

from mml.errors import ConfigError, UntrustedTypeError

__all__ = [
    "public_class_path",
    "Trust",
    "TRUST_ALL",
    "as_trust",
    "is_trusted",
    "import_path",
    "named_paths",
    "untrusted_names",
    "check_trusted",
]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_PATH = re.compile(rf"({_IDENT}(?:\.{_IDENT})*):({_IDENT}(?:\.{_IDENT})*)")
_PATTERN = re.compile(rf"\*|{_IDENT}(?:\.{_IDENT})*:(?:\*|{_IDENT}(?:\.{_IDENT})*)")

#: document keys whose string values name code (when they hold a ``module:name`` string)
NAMING_KEYS = ("fn", "factory", "estimator", "$estimator")
_KERAS_MODULES = ("keras", "keras.layers", "keras.models", "keras.losses")

#: mml's own classes renamed since 0.1, by the path documents written then name them (a fixed
#: table of mml paths: a document cannot add to it); CHANGELOG 0.2 lists each rename
RENAMED = {
    "mml.scalers._sklearn:SklearnParams": "mml.scalers._sklearn:SklearnScalerParams",
}


def _check_pattern(instance: Any, attribute: Any, value: tuple[str, ...]) -> None:
    for p in value:
        if not isinstance(p, str) or not _PATTERN.fullmatch(p):
            raise ConfigError(
                f"trusted pattern {p!r} is not 'package.module:Name', 'package.module:*' or '*'"
            )


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Trust:
    """The caller's trusted patterns: exact ``"pkg.mod:Name"``, ``"pkg.mod:*"`` or ``"*"``.

    >>> Trust(("pkg.mod:*",)).allows("pkg.mod:Net"), Trust(("pkg.mod:*",)).allows("pkg.mod.sub:Net")
    (True, False)
    """

    patterns: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple, validator=_check_pattern)

    def allows(self, path: str) -> bool:
        """Whether one of the patterns matches ``path``."""
        module = path.partition(":")[0]
        return any(p == "*" or p == path or p == f"{module}:*" for p in self.patterns)


#: trust everything: for documents the caller wrote (``mml run CONFIG``), never for artifacts
TRUST_ALL = Trust(("*",))


def as_trust(trusted: Trust | str | Iterable[str] | None) -> Trust:
    """A :class:`Trust` from what a caller passes as ``trusted=`` (``None``: nothing extra).

    >>> as_trust("pkg.mod:Net").patterns
    ('pkg.mod:Net',)
    """
    if isinstance(trusted, Trust):
        return trusted
    if trusted is None:
        return Trust()
    if isinstance(trusted, str):
        return Trust((trusted,))
    return Trust(tuple(trusted))


def split_path(path: Any, what: str = "object") -> tuple[str, str]:
    """``(module, qualname)`` of a well-formed ``"package.module:Name"``; a ConfigError otherwise."""
    m = _PATH.fullmatch(path) if isinstance(path, str) else None
    if m is None:
        raise ConfigError(f"a {what} path looks like 'package.module:Name', got {path!r:.200}")
    return m.group(1), m.group(2)


def _public(parts: Iterable[str]) -> bool:
    return all(not p.startswith("_") and p != "tests" for p in parts)


def _builtin_rule(path: str) -> str | None:
    """Which built-in allow rule covers ``path`` (decided from the string alone), or ``None``."""
    m = _PATH.fullmatch(path)
    if m is None:
        return None
    module, qualname = m.group(1), m.group(2)
    parts = module.split(".")
    if parts[0] == "mml" and not any(p.startswith("__") for p in parts):
        return "mml"
    if "." in qualname or qualname.startswith("_"):
        return None
    if parts[0] == "sklearn" and _public(parts):
        return "sklearn.metrics" if parts[:2] == ["sklearn", "metrics"] else "sklearn"
    if module == "torch.nn":
        return "torch.nn"
    if module in _KERAS_MODULES:
        return "keras"
    return None


def is_trusted(path: str, trust: Trust) -> bool:
    """Whether ``path`` may be imported: a built-in rule covers it or the caller trusts it."""
    return _builtin_rule(path) is not None or trust.allows(path)


def _rule_holds(rule: str, obj: Any) -> bool:
    if rule == "mml":
        return isinstance(obj, type) and obj.__module__.startswith("mml.") and attrs.has(obj)
    if rule == "sklearn":
        from sklearn.base import BaseEstimator

        return isinstance(obj, type) and issubclass(obj, BaseEstimator)
    if rule == "sklearn.metrics":
        return callable(obj) and not isinstance(obj, type) and obj.__module__.startswith("sklearn.metrics")
    if rule == "torch.nn":
        import torch

        return isinstance(obj, type) and issubclass(obj, torch.nn.Module)
    import keras

    return isinstance(obj, type) and issubclass(obj, (keras.Layer, keras.losses.Loss))


def import_path(path: Any, *, what: str = "object", trusted: Trust | None = None) -> Any:
    """Import the object named ``"package.module:Name"`` (``Name`` may be dotted).

    With ``trusted`` (a document is being read) the name is checked before anything is
    imported, and an object allowed by a built-in rule is checked to be what the rule allows.
    ``trusted=None`` means the name comes from the caller's own code (or from a document
    already checked). The qualified name never passes through a module object.

    >>> import_path("math:sqrt")(4.0)
    2.0
    >>> import_path("os:system", trusted=Trust())
    Traceback (most recent call last):
    ...
    mml.errors.UntrustedTypeError: the document names 1 untrusted type or callable (nothing was imported): 'os:system'. If you trust it, pass trusted=['os:system']
    """
    path = RENAMED.get(path, path) if isinstance(path, str) else path
    module_name, qualname = split_path(path, what)
    rule = None
    if trusted is not None:
        if not trusted.allows(path):
            rule = _builtin_rule(path)
            if rule is None:
                raise UntrustedTypeError([path])
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import module {module_name!r} of the {what} {path!r} ({type(exc).__name__}: {exc}); check "
            "the spelling, that the package is installed and on sys.path, and that it is importable by this "
            "name in a new process (a class or function defined in __main__ or a notebook is not)"
        ) from exc
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            hint = (
                "; a class or function defined in a script run as __main__ (or a notebook) cannot be imported "
                "by another process: move it into a module and name it 'mymodule:Name'"
                if module_name == "__main__"
                else "; check the name"
            )
            raise ConfigError(
                f"module {module_name!r} has no attribute {qualname!r} (the {what} {path!r}){hint}"
            ) from exc
        if isinstance(obj, ModuleType):
            raise ConfigError(
                f"the {what} {path!r} names a module; name the object as 'package.module:Name' instead"
            )
    if rule is not None and not _rule_holds(rule, obj):
        raise UntrustedTypeError([path])
    return obj


def import_function(path: str, what: str) -> Any:
    """:func:`import_path` for a function named in a spec (a loss, a metric): callable, no lambda.

    >>> import_function("math:sqrt", "metric")(9.0)
    3.0
    >>> import_function("math:pi", "metric")
    Traceback (most recent call last):
    ...
    mml.errors.ConfigError: metric 'math:pi' is not callable
    """
    qualname = path.partition(":")[2]
    obj = import_path(path, what=what)
    if qualname.split(".")[-1] == "<lambda>" or getattr(obj, "__name__", "") == "<lambda>":
        raise ConfigError(
            f"{path!r} is a lambda; name a module-level function instead (lambdas cannot be saved)"
        )
    if not callable(obj):
        raise ConfigError(f"{what} {path!r} is not callable")
    return obj


def named_paths(doc: Any, root: str = "$") -> list[tuple[str, str]]:
    """Every ``(json_path, import_path)`` a document names, found without importing anything.

    Component ``type`` tags (beside a ``kind``, and boxed values), :data:`NAMING_KEYS` and the
    import paths in a ``metrics`` list.

    >>> named_paths({"nodes": [{"kind": "model.torch_module", "factory": "pkg:f"}]})
    [('$.nodes[0].factory', 'pkg:f')]
    """
    out: list[tuple[str, str]] = []
    stack: list[tuple[Any, str]] = [(doc, root)]
    while stack:
        x, where = stack.pop()
        if isinstance(x, Mapping):
            typed = "kind" in x or set(x) == {"type", "value"}
            for k, v in x.items():
                sub = f"{where}.{k}"
                if isinstance(v, str) and ":" in v and ((k == "type" and typed) or k in NAMING_KEYS):
                    out.append((sub, v))
                elif k == "metrics" and isinstance(v, list):
                    out.extend((f"{sub}[{i}]", m) for i, m in enumerate(v) if isinstance(m, str) and ":" in m)
                else:
                    stack.append((v, sub))
        elif isinstance(x, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(x))
    return sorted(out)


def untrusted_names(doc: Any, trust: Trust) -> list[tuple[str, str]]:
    """The ``(json_path, import_path)`` pairs of ``doc`` that ``trust`` does not cover."""
    return [(where, p) for where, p in named_paths(doc) if not is_trusted(p, trust)]


def check_trusted(
    doc: Any, trusted: Trust | str | Iterable[str] | None, *, source: str = "the document"
) -> Trust:
    """Raise :class:`~mml.UntrustedTypeError` naming every untrusted import path in ``doc``.

    First from the strings alone (nothing is imported if any name is untrusted), then each
    name allowed only by a built-in rule is imported from its library and checked to be what
    the rule allows. Returns the :class:`Trust` to structure the document with.
    """
    trust = as_trust(trusted)
    names = named_paths(doc)
    bad = [(w, p) for w, p in names if not is_trusted(p, trust)]
    if not bad:
        empty = Trust()
        for w, p in names:
            if not trust.allows(p):
                try:
                    import_path(p, what=f"name at {w}", trusted=empty)
                except UntrustedTypeError:
                    bad.append((w, p))
    if bad:
        raise UntrustedTypeError(sorted({p for _, p in bad}), where=[w for w, _ in bad], source=source)
    return trust


def public_class_path(cls: type) -> str:
    """The shortest importable ``"module:Name"`` of an already-imported class (``sklearn.decomposition:PCA``).

    Used when *writing* a document: it only imports parent packages of a module that is
    already loaded, never a name read from a document.

    >>> import collections
    >>> public_class_path(collections.OrderedDict)
    'collections:OrderedDict'
    """
    parts = cls.__module__.split(".")
    for i in range(1, len(parts) + 1):
        mod_name = ".".join(parts[:i])
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:  # pragma: no cover - a parent of a loaded module always imports
            continue
        if getattr(mod, cls.__qualname__, None) is cls:
            return f"{mod_name}:{cls.__qualname__}"
    return f"{cls.__module__}:{cls.__qualname__}"
