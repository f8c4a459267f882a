"""References: how graph nodes name their inputs without holding them.

Wiring in a :class:`~mml.graph.ModelGraph` is by *name*, never by pointer. A
:class:`FeatureSetRef` names a FeatureSet (and which of its keys to use); a :class:`NodeRef`
names another node of the same graph. References are resolved against an explicit
environment passed as an argument — there is no global registry.

>>> ref = FeatureSetRef("sensors", features=("voltage", "current"), targets="soh")
>>> ref.targets
('soh',)
>>> resolve_featureset(ref, {"sensors": "the FeatureSet"})
'the FeatureSet'
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from mml.errors import GraphError

__all__ = [
    "FeatureSetRef",
    "NodeRef",
    "Ref",
    "check_label",
    "close_matches",
    "resolve_featureset",
    "resolve_keys",
]

#: characters a node label may not contain (they separate parts of column names, paths,
#: mermaid/dot identifiers and ``kind:label`` strings)
RESERVED_CHARACTERS = (".", "/", ":")
_REPS = (None, "raw", "transformed")
_DOMAINS = ("features", "targets", "tags")


def check_label(label: object, what: str = "node") -> str:
    """Check a node label: a non-empty string without ``.``, ``/``, ``:`` or whitespace.

    Returns the label; raises :class:`~mml.errors.GraphError` naming it otherwise.

    >>> check_label("encoder")
    'encoder'
    >>> check_label("enc.1")
    Traceback (most recent call last):
    ...
    mml.errors.GraphError: node label 'enc.1' contains the reserved character '.'; labels may not contain '.', '/', ':' or whitespace (try 'enc_1')
    """
    if not isinstance(label, str):
        raise GraphError(f"a {what} label must be a string, got {label!r} ({type(label).__name__})")
    if not label:
        raise GraphError(f"a {what} label must not be empty; give the {what} a name such as 'encoder'")
    bad = next((c for c in label if c in RESERVED_CHARACTERS or c.isspace()), None)
    if bad is not None:
        fixed = "".join("_" if (c in RESERVED_CHARACTERS or c.isspace()) else c for c in label)
        raise GraphError(
            f"{what} label {label!r} contains the reserved character {bad!r}; labels may not contain "
            f"'.', '/', ':' or whitespace (try {fixed!r})"
        )
    return label


def close_matches(name: str, candidates: Iterable[str]) -> str:
    """A ``" (did you mean 'x'?)"`` hint for a misspelt name, or ``""``.

    >>> close_matches("encodr", ["encoder", "head"])
    " (did you mean 'encoder'?)"
    """
    matches = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"


def _key_tuple(value: str | Iterable[str] | None) -> tuple[str, ...]:
    # a single string is one key, not a sequence of one-letter keys
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    out = tuple(value)
    for k in out:
        if not isinstance(k, str) or not k:
            raise GraphError(f"key names in a FeatureSetRef must be non-empty strings, got {k!r}")
    return out


def _check_featureset_label(_: Any, __: Any, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise GraphError(f"FeatureSetRef needs the label of a FeatureSet (a non-empty string), got {value!r}")


def _check_rep(_: Any, __: Any, value: Any) -> None:
    if value not in _REPS:
        raise GraphError(
            f"FeatureSetRef rep must be None (transformed if present, else raw), 'raw' or 'transformed'; "
            f"got {value!r}"
        )


@attrs.frozen
class FeatureSetRef:
    """A reference to (a selection of keys of) a FeatureSet, by label.

    ``features``, ``targets`` and ``tags`` are tuples of key names; an empty tuple means
    "every key of that domain". ``rep`` picks the representation: ``None`` means
    ``transformed`` where it exists, else ``raw``.

    >>> FeatureSetRef("toy", features=["x", "y"])
    FeatureSetRef(featureset='toy', features=('x', 'y'), targets=(), tags=(), rep=None)
    >>> FeatureSetRef("toy") == FeatureSetRef("toy")
    True
    """

    featureset: str = attrs.field(validator=_check_featureset_label)
    features: tuple[str, ...] = attrs.field(default=(), converter=_key_tuple)
    targets: tuple[str, ...] = attrs.field(default=(), converter=_key_tuple)
    tags: tuple[str, ...] = attrs.field(default=(), converter=_key_tuple)
    rep: str | None = attrs.field(default=None, validator=_check_rep)

    @classmethod
    def of(
        cls,
        featureset: Any,
        *,
        features: str | Iterable[str] | None = None,
        targets: str | Iterable[str] | None = None,
        tags: str | Iterable[str] | None = None,
        rep: str | None = None,
    ) -> FeatureSetRef:
        """A reference to ``featureset`` (a FeatureSet, by its label), its named keys checked now.

        Every key named must exist in the FeatureSet (a :class:`~mml.errors.GraphError` listing
        the keys that do otherwise); an omitted domain means all of its keys.

        >>> import mml, numpy as np
        >>> fs = mml.FeatureSet.from_dict({"v": np.zeros(3), "t": np.zeros(3), "y": np.zeros(3)},
        ...                               features=["v", "t"], targets="y", label="cells")
        >>> FeatureSetRef.of(fs, features="v")
        FeatureSetRef(featureset='cells', features=('v',), targets=(), tags=(), rep=None)
        >>> FeatureSetRef.of(fs, features=["t"], targets="y").describe()
        'features: t; targets: y'
        >>> FeatureSetRef.of(fs, features="volt")
        Traceback (most recent call last):
        ...
        mml.errors.GraphError: FeatureSet 'cells' has no features key(s) 'volt'; its features keys are: 'v', 't'
        """
        label = getattr(featureset, "label", None)
        if not isinstance(label, str) or not hasattr(featureset, "keys"):
            raise GraphError(
                f"FeatureSetRef.of takes a FeatureSet, got {type(featureset).__name__}; for a label alone "
                "use FeatureSetRef('label', features=...)"
            )
        ref = cls(label, features=features, targets=targets, tags=tags, rep=rep)
        for domain in _DOMAINS:
            resolve_keys(ref, featureset, domain)
        return ref

    @property
    def name(self) -> str:
        """The label of the referenced FeatureSet (what error messages and drawings show).

        >>> FeatureSetRef("toy").name
        'toy'
        """
        return self.featureset

    def keys(self, domain: str) -> tuple[str, ...]:
        """The selected key names of ``domain`` (``"features"``, ``"targets"`` or ``"tags"``).

        >>> FeatureSetRef("toy", targets="y").keys("targets")
        ('y',)
        """
        if domain not in _DOMAINS:
            raise GraphError(f"unknown domain {domain!r}; use one of {', '.join(_DOMAINS)}")
        return getattr(self, domain)  # type: ignore[no-any-return]

    def describe(self) -> str:
        """A short text of the selection, for drawings and messages.

        >>> FeatureSetRef("toy", features=("x",), targets=("y",)).describe()
        'features: x; targets: y'
        >>> FeatureSetRef("toy").describe()
        ''
        """
        parts = [f"{d}: {', '.join(getattr(self, d))}" for d in _DOMAINS if getattr(self, d)]
        if self.rep is not None:
            parts.append(f"rep: {self.rep}")
        return "; ".join(parts)


def _check_node_label(_: Any, __: Any, value: Any) -> None:
    check_label(value)


@attrs.frozen
class NodeRef:
    """A reference to another node of the same graph, by label.

    >>> NodeRef("encoder")
    NodeRef(label='encoder')
    >>> NodeRef("a") == NodeRef("a"), hash(NodeRef("a")) == hash(NodeRef("a"))
    (True, True)
    """

    label: str = attrs.field(validator=_check_node_label)

    @property
    def name(self) -> str:
        """The label of the referenced node.

        >>> NodeRef("head").name
        'head'
        """
        return self.label


#: anything a node can consume
Ref = FeatureSetRef | NodeRef


def resolve_featureset(ref: FeatureSetRef, featuresets: Mapping[str, Any]) -> Any:
    """The FeatureSet ``ref`` names, looked up in an explicit mapping of label to FeatureSet.

    Raises :class:`~mml.errors.GraphError` naming the missing label and listing the ones
    that are there.

    >>> resolve_featureset(FeatureSetRef("train"), {"train": 1, "test": 2})
    1
    >>> resolve_featureset(FeatureSetRef("trian"), {"train": 1, "test": 2})
    Traceback (most recent call last):
    ...
    mml.errors.GraphError: no FeatureSet labelled 'trian' (did you mean 'train'?); available FeatureSets: 'train', 'test'
    """
    if not isinstance(ref, FeatureSetRef):
        raise GraphError(f"resolve_featureset takes a FeatureSetRef, got {ref!r}")
    try:
        return featuresets[ref.featureset]
    except KeyError:
        available = ", ".join(repr(k) for k in featuresets) or "none"
        raise GraphError(
            f"no FeatureSet labelled {ref.featureset!r}{close_matches(ref.featureset, featuresets)}; "
            f"available FeatureSets: {available}"
        ) from None


def resolve_keys(ref: FeatureSetRef, featureset: Any, domain: str) -> tuple[str, ...]:
    """The key names of ``domain`` that ``ref`` selects from ``featureset``.

    An empty selection means every key of the domain (``featureset.keys(domain)``); named keys
    are checked against the FeatureSet, and a missing one is a :class:`~mml.errors.GraphError`
    that lists the keys that exist.

    >>> class FS:  # any object with ``keys(domain)`` will do
    ...     def keys(self, domain):
    ...         return {"features": ("a", "b"), "targets": ("y",), "tags": ()}[domain]
    >>> resolve_keys(FeatureSetRef("fs"), FS(), "features")
    ('a', 'b')
    >>> resolve_keys(FeatureSetRef("fs", features="b"), FS(), "features")
    ('b',)
    """
    available = tuple(featureset.keys(domain))
    wanted = ref.keys(domain)
    if not wanted:
        return available
    missing = [k for k in wanted if k not in available]
    if missing:
        hints = "".join(close_matches(k, available) for k in missing)
        raise GraphError(
            f"FeatureSet {ref.featureset!r} has no {domain} key(s) {', '.join(map(repr, missing))}{hints}; "
            f"its {domain} keys are: {', '.join(map(repr, available)) or 'none'}"
        )
    return wanted
