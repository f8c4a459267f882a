"""The :class:`ModelGraph`: a frozen, validated DAG of nodes, with pure edits.

A graph is a value: its nodes (in insertion order) and an optional graph-wide optimizer
spec. It is validated when it is made — acyclic, every node reachable from a head, connection
limits, unique labels, resolvable references, one backend under a graph-wide optimizer —
and every problem is reported at once. Derived facts (topological order, heads, tails,
neighbours) are computed once and kept beside the value, outside equality, hashing and
serialization. Edits return new graphs; the original never changes.

>>> from mml.graph import ModelGraph, ModelNode, ConcatNode, FeatureSetRef, NodeRef
>>> g = ModelGraph.of(
...     ModelNode("a", "spec-a", FeatureSetRef("fs", features=("x",))),
...     ModelNode("b", "spec-b", FeatureSetRef("fs", features=("y",))),
...     ConcatNode("cat", (NodeRef("a"), NodeRef("b"))),
...     ModelNode("head", "spec-h", NodeRef("cat")),
... )
>>> list(g), g.heads, g.tails
(['a', 'b', 'cat', 'head'], ('a', 'b'), ('head',))
>>> g.remove("head").tails
('cat',)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs
from returns.result import Failure, Result, Success

from mml.errors import GraphError
from mml.graph._analysis import (
    GraphProblem,
    InvalidGraphError,
    UnknownNodeError,
    _analyse,
    _describe,
    _Index,
    _to_nodes,
)
from mml.graph._draw import describe_ref, graph_text
from mml.graph._nodes import AbstractNode, ModelNode
from mml.graph._paths import gradient_stops
from mml.graph._refs import FeatureSetRef, NodeRef, Ref, close_matches

__all__ = ["GraphProblem", "InvalidGraphError", "ModelGraph", "UnknownNodeError"]


def _labels_arg(labels: str | Iterable[str]) -> tuple[str, ...]:
    return (labels,) if isinstance(labels, str) else tuple(labels)


@attrs.frozen(repr=False, cache_hash=True)
class ModelGraph:
    """A validated DAG of nodes plus an optional graph-wide optimizer spec (a frozen value).

    ``nodes`` is a sequence of nodes (or a mapping of label to node) kept in insertion order;
    construction raises :class:`InvalidGraphError` listing every problem (use
    :meth:`validate` for a ``Result`` instead). Iterating yields labels in topological order.

    >>> from mml.graph import ModelNode, FeatureSetRef, NodeRef
    >>> g = ModelGraph.of(ModelNode("enc", "spec", FeatureSetRef("fs")),
    ...                   ModelNode("head", "spec", NodeRef("enc")))
    >>> len(g), "enc" in g, g["head"].upstream
    (2, True, NodeRef(label='enc'))
    """

    nodes: tuple[AbstractNode, ...] = attrs.field(converter=_to_nodes)
    optimizer: Any = None
    _index: _Index = attrs.field(init=False, eq=False, hash=False, repr=False)
    # facts other modules derive from this graph (e.g. the forward plan per set of active
    # nodes), kept on the value: never compared, hashed or saved, gone with the graph
    _derived: dict[Any, Any] = attrs.field(init=False, eq=False, hash=False, repr=False)

    def __attrs_post_init__(self) -> None:
        problems, index = _analyse(self.nodes, self.optimizer)
        if problems:
            raise InvalidGraphError(problems)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_derived", {})

    # -- construction -------------------------------------------------------------------

    @classmethod
    def of(cls, *nodes: AbstractNode, optimizer: Any = None) -> ModelGraph:
        """A graph of the given nodes, in this order.

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> ModelGraph.of(ModelNode("m", "spec", FeatureSetRef("fs"))).heads
        ('m',)
        """
        return cls(nodes, optimizer)

    @classmethod
    def validate(
        cls, nodes: Iterable[AbstractNode] | Mapping[str, AbstractNode], optimizer: Any = None
    ) -> Result[ModelGraph, GraphError]:
        """``Success(graph)``, or ``Failure(error)`` whose ``problems`` lists everything wrong.

        >>> from mml.graph import ModelNode, NodeRef
        >>> r = ModelGraph.validate([ModelNode("a", "spec", NodeRef("b")), ModelNode("b", "spec", NodeRef("a"))])
        >>> [p.code for p in r.failure().problems]
        ['cycle']
        """
        try:
            return Success(cls(nodes, optimizer))  # type: ignore[arg-type]
        except GraphError as exc:
            return Failure(exc)

    # -- derived facts --------------------------------------------------------------------

    @property
    def topological_order(self) -> tuple[str, ...]:
        """Labels such that every node comes after its upstreams; ties keep insertion order.

        >>> from mml.graph import ModelNode, FeatureSetRef, NodeRef
        >>> ModelGraph.of(ModelNode("b", "s", NodeRef("a")), ModelNode("a", "s", FeatureSetRef("fs"))).topological_order
        ('a', 'b')
        """
        return self._index.order

    @property
    def heads(self) -> tuple[str, ...]:
        """Labels of the nodes fed only by FeatureSets, in topological order.

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"))).heads
        ('a',)
        """
        return self._index.heads

    @property
    def tails(self) -> tuple[str, ...]:
        """Labels of the nodes no other node consumes (the outputs), in topological order.

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"))).tails
        ('a',)
        """
        return self._index.tails

    @property
    def edges(self) -> tuple[tuple[Ref, str], ...]:
        """Every ``(upstream ref, consumer label)`` pair, in topological order of the consumer.

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"))).edges[0][1]
        'a'
        """
        return self._index.edges

    @property
    def featureset_refs(self) -> tuple[FeatureSetRef, ...]:
        """Every distinct FeatureSetRef the graph reads, in order of first use.

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"))).featureset_refs
        (FeatureSetRef(featureset='fs', features=(), targets=(), tags=(), rep=None),)
        """
        return self._index.featureset_refs

    @property
    def featuresets(self) -> tuple[str, ...]:
        """Labels of the FeatureSets the graph reads, in order of first use.

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs", features="x"))).featuresets
        ('fs',)
        """
        return tuple(dict.fromkeys(r.featureset for r in self._index.featureset_refs))

    @functools.cached_property
    def gradient_stops(self) -> tuple[tuple[str, str], ...]:
        """Pairs ``(upstream, downstream)`` of nodes between which gradients stop (a backend boundary).

        Computed once over the graph's data paths, through joining nodes (see
        :func:`mml.graph.gradient_stops`).

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"))).gradient_stops
        ()
        """
        return gradient_stops(self)

    @property
    def backends(self) -> tuple[str, ...]:
        """The distinct ``backend`` values of the model specs, sorted.

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"))).backends  # a str spec has no backend
        ()
        """
        found = {n.backend for n in self.nodes if isinstance(n, ModelNode) and n.backend is not None}
        return tuple(sorted(found))

    def downstream(self, label: str) -> tuple[str, ...]:
        """Labels of the nodes that consume ``label``, in topological order.

        >>> from mml.graph import ModelNode, FeatureSetRef, NodeRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", NodeRef("a"))).downstream("a")
        ('b',)
        """
        self._check_known(label)
        return self._index.downstream[label]

    def upstream_labels(self, label: str) -> tuple[str, ...]:
        """Labels of the nodes ``label`` consumes, in its upstream order (FeatureSets left out).

        >>> from mml.graph import ModelNode, FeatureSetRef, NodeRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", NodeRef("a"))).upstream_labels("b")
        ('a',)
        """
        self._check_known(label)
        return self._index.upstream[label]

    def ancestors(self, labels: str | Iterable[str]) -> frozenset[str]:
        """``labels`` and every node upstream of them (what must run to compute them).

        >>> from mml.graph import ModelNode, FeatureSetRef, NodeRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", NodeRef("a")))
        >>> sorted(g.ancestors("b")), sorted(g.ancestors(["a"]))
        (['a', 'b'], ['a'])
        """
        labels = _labels_arg(labels)
        for label in labels:
            self._check_known(label)
        return frozenset().union(*(self._index.ancestors[label] for label in labels))

    def heads_of(self, label: str) -> tuple[str, ...]:
        """The head nodes upstream of (or equal to) ``label``, in topological order.

        >>> from mml.graph import ModelNode, FeatureSetRef, NodeRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", NodeRef("a"))).heads_of("b")
        ('a',)
        """
        self._check_known(label)
        return self._index.heads_of[label]

    def source_ref(
        self, label: str, accept: Callable[[FeatureSetRef], bool] | None = None
    ) -> FeatureSetRef | None:
        """The nearest :class:`FeatureSetRef` upstream of (or on) ``label`` that ``accept`` takes.

        Breadth first from ``label``, each node's upstreams in order; ``None`` when no reference is
        accepted. Losses and exports use it to find the FeatureSet whose targets a node predicts.

        >>> from mml.graph import ConcatNode, ModelNode, FeatureSetRef, NodeRef
        >>> g = ModelGraph.of(
        ...     ModelNode("a", "s", FeatureSetRef("x")),
        ...     ConcatNode("c", (NodeRef("a"), FeatureSetRef("y"))),
        ... )
        >>> g.source_ref("c").featureset, g.source_ref("c", lambda r: r.featureset == "x").featureset
        ('y', 'x')
        >>> g.source_ref("c", lambda r: False) is None
        True
        """
        self._check_known(label)
        frontier, seen = [label], set()
        while frontier:
            cur = frontier.pop(0)
            if cur in seen:
                continue
            seen.add(cur)
            for ref in self._index.by_label[cur].upstream_refs:
                if isinstance(ref, FeatureSetRef):
                    if accept is None or accept(ref):
                        return ref
                else:
                    frontier.append(ref.label)
        return None

    def fed_by(self, heads: Iterable[str]) -> frozenset[str]:
        """The nodes whose every head is in ``heads`` (they can run on those heads' data alone).

        >>> from mml.graph import ModelNode, FeatureSetRef, NodeRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", NodeRef("a")))
        >>> sorted(g.fed_by(["a"]))
        ['a', 'b']
        """
        hs = set(heads)
        return frozenset(n for n in self._index.order if set(self._index.heads_of[n]) <= hs)

    # -- mapping-like access --------------------------------------------------------------

    def _check_known(self, label: str) -> None:
        if label not in self._index.by_label:
            raise UnknownNodeError(
                f"the graph has no node {label!r}{close_matches(str(label), self._index.by_label)}; "
                f"its nodes are: {', '.join(map(repr, self._index.order))}"
            )

    def __getitem__(self, label: str) -> AbstractNode:
        self._check_known(label)
        return self._index.by_label[label]

    def __contains__(self, item: object) -> bool:
        if isinstance(item, AbstractNode):
            return self._index.by_label.get(item.label) == item
        return isinstance(item, str) and item in self._index.by_label

    def __iter__(self) -> Iterator[str]:
        return iter(self._index.order)

    def __len__(self) -> int:
        return len(self.nodes)

    # -- pure edits -----------------------------------------------------------------------

    def _with_nodes(self, nodes: Iterable[AbstractNode]) -> ModelGraph:
        return ModelGraph(tuple(nodes), self.optimizer)

    def add(self, node: AbstractNode) -> ModelGraph:
        """A new graph with ``node`` appended.

        >>> from mml.graph import ModelNode, FeatureSetRef, NodeRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")))
        >>> g.add(ModelNode("b", "s", NodeRef("a"))).tails
        ('b',)
        """
        if not isinstance(node, AbstractNode):
            raise GraphError(
                f"ModelGraph.add takes a node (ModelNode, ConcatNode, MergeNode), got {node!r:.100}"
            )
        return self._with_nodes((*self.nodes, node))

    def remove(self, label: str) -> ModelGraph:
        """A new graph without ``label``; its consumers read from its upstreams instead.

        Removing a node with several upstreams that feeds a ModelNode (which takes exactly one
        input) is an error.

        >>> from mml.graph import ModelNode, FeatureSetRef, NodeRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", NodeRef("a")),
        ...                   ModelNode("c", "s", NodeRef("b")))
        >>> g.remove("b")["c"].upstream
        NodeRef(label='a')
        """
        removed = self[label]
        out = []
        for node in self.nodes:
            if node.label == label:
                continue
            try:
                out.append(node.reroute(label, removed.upstream_refs))
            except GraphError as exc:
                raise GraphError(f"cannot remove {label!r}: {exc}") from None
        return self._with_nodes(out)

    def replace(self, label: str, node: AbstractNode) -> ModelGraph:
        """A new graph with ``node`` in the place of ``label``; consumers follow a new label.

        >>> from mml.graph import ModelNode, FeatureSetRef, NodeRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", NodeRef("a")))
        >>> g.replace("a", ModelNode("a2", "other", FeatureSetRef("fs")))["b"].upstream
        NodeRef(label='a2')
        """
        self._check_known(label)
        new_ref = (NodeRef(node.label),)
        out = []
        for n in self.nodes:
            if n.label == label:
                out.append(node)
            elif node.label != label:
                out.append(n.reroute(label, new_ref))
            else:
                out.append(n)
        return self._with_nodes(out)

    @staticmethod
    def _attach(node: AbstractNode, ref: Ref, where: str) -> AbstractNode:
        if node.max_upstreams == 1:
            return node.with_upstreams((ref,))
        if ref not in node.upstream_refs:
            raise GraphError(
                f"{_describe(node)} joins several inputs, so to insert it {where} it must already list "
                f"{ref!r} among its upstreams"
            )
        return node

    def insert_between(self, upstream_label: str, downstream_label: str, node: AbstractNode) -> ModelGraph:
        """A new graph with ``node`` on the edge ``upstream_label -> downstream_label``.

        A ModelNode is re-pointed at ``upstream_label``; a joining node must already list it.

        >>> from mml.graph import ModelNode, FeatureSetRef, NodeRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", NodeRef("a")))
        >>> list(g.insert_between("a", "b", ModelNode("mid", "s", NodeRef("a"))))
        ['a', 'mid', 'b']
        """
        self._check_known(upstream_label)
        down = self[downstream_label]
        if upstream_label not in down.node_upstreams:
            raise GraphError(
                f"cannot insert {node.label!r} between {upstream_label!r} and {downstream_label!r}: "
                f"{downstream_label!r} does not read from {upstream_label!r} (its upstreams: "
                f"{', '.join(describe_ref(r) for r in down.upstream_refs)}); use insert_after or insert_before"
            )
        new = self._attach(node, NodeRef(upstream_label), f"after {upstream_label!r}")
        out: list[AbstractNode] = []
        for n in self.nodes:
            if n.label == downstream_label:
                out += [new, n.reroute(upstream_label, (NodeRef(new.label),))]
            else:
                out.append(n)
        return self._with_nodes(out)

    def insert_before(self, label: str, node: AbstractNode) -> ModelGraph:
        """A new graph with ``node`` between ``label`` and its one upstream.

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")))
        >>> g2 = g.insert_before("a", ModelNode("pre", "s", FeatureSetRef("fs")))
        >>> list(g2), g2.heads
        (['pre', 'a'], ('pre',))
        """
        target = self[label]
        refs = target.upstream_refs
        if len(refs) != 1:
            raise GraphError(
                f"cannot insert {node.label!r} before {label!r}: it has {len(refs)} upstreams "
                f"({', '.join(describe_ref(r) for r in refs)}); use insert_between(upstream, {label!r}, node) "
                "to pick the edge"
            )
        new = self._attach(node, refs[0], f"before {label!r}")
        out: list[AbstractNode] = []
        for n in self.nodes:
            if n.label == label:
                out += [new, n.with_upstreams((NodeRef(new.label),))]
            else:
                out.append(n)
        return self._with_nodes(out)

    def insert_after(self, label: str, node: AbstractNode) -> ModelGraph:
        """A new graph with ``node`` reading ``label``; every former consumer of ``label`` reads ``node``.

        >>> from mml.graph import ModelNode, FeatureSetRef, NodeRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", NodeRef("a")))
        >>> g.insert_after("a", ModelNode("post", "s", NodeRef("a")))["b"].upstream
        NodeRef(label='post')
        """
        self._check_known(label)
        new = self._attach(node, NodeRef(label), f"after {label!r}")
        new_ref = (NodeRef(new.label),)
        out: list[AbstractNode] = []
        for n in self.nodes:
            out.append(n.reroute(label, new_ref))
            if n.label == label:
                out.append(new)
        return self._with_nodes(out)

    def _set_frozen(self, labels: str | Iterable[str], frozen: bool) -> ModelGraph:
        wanted = _labels_arg(labels)
        unknown = [x for x in wanted if x not in self._index.by_label]
        if unknown:
            hints = "".join(close_matches(x, self._index.by_label) for x in unknown)
            raise UnknownNodeError(
                f"cannot {'freeze' if frozen else 'unfreeze'} unknown node(s) {', '.join(map(repr, unknown))}"
                f"{hints}; the graph's nodes are: {', '.join(map(repr, self._index.order))}"
            )
        not_models = [x for x in wanted if not isinstance(self._index.by_label[x], ModelNode)]
        if not_models:
            raise GraphError(
                f"only ModelNodes have parameters to {'freeze' if frozen else 'unfreeze'}; "
                + ", ".join(_describe(self._index.by_label[x]) for x in not_models)
                + " has none"
            )
        chosen = set(wanted)
        return self._with_nodes(
            attrs.evolve(n, frozen=frozen) if n.label in chosen else n  # type: ignore[misc]
            for n in self.nodes
        )

    def freeze(self, labels: str | Iterable[str]) -> ModelGraph:
        """A new graph whose ModelNodes ``labels`` (a label or several) are frozen.

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"))).freeze("a")["a"].frozen
        True
        """
        return self._set_frozen(labels, True)

    def unfreeze(self, labels: str | Iterable[str]) -> ModelGraph:
        """A new graph whose ModelNodes ``labels`` (a label or several) are trainable again.

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"), frozen=True))
        >>> g.unfreeze(["a"])["a"].frozen
        False
        """
        return self._set_frozen(labels, False)

    def with_optimizer(self, optimizer: Any) -> ModelGraph:
        """A new graph with the graph-wide optimizer spec ``optimizer`` (``None`` for per-node).

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"))).with_optimizer("adam").optimizer
        'adam'
        """
        return ModelGraph(self.nodes, optimizer)

    # -- drawing and display --------------------------------------------------------------

    def to_mermaid(self, shapes: Mapping[str, Any] | None = None) -> str:
        """A mermaid flowchart of the graph (see :func:`mml.graph.to_mermaid`).

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"))).to_mermaid().splitlines()[0]
        'flowchart LR'
        """
        from mml.graph._draw import to_mermaid

        return to_mermaid(self, shapes)

    def to_dot(self, shapes: Mapping[str, Any] | None = None) -> str:
        """A Graphviz dot description of the graph (see :func:`mml.graph.to_dot`).

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"))).to_dot().splitlines()[0]
        'digraph ModelGraph {'
        """
        from mml.graph._draw import to_dot

        return to_dot(self, shapes)

    def _repr_html_(self) -> str:
        from mml.graph._html import graph_html

        return graph_html(self)

    def __repr__(self) -> str:
        return graph_text(self)
