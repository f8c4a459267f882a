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
    _Index,
    _to_nodes,
)
from mml.graph._draw import graph_text
from mml.graph._edits import _GraphEdits, _labels_arg
from mml.graph._nodes import AbstractNode, ModelNode
from mml.graph._paths import gradient_stops
from mml.graph._refs import FeatureSetRef, Ref, close_matches

__all__ = ["GraphProblem", "InvalidGraphError", "ModelGraph", "UnknownNodeError"]


@attrs.frozen(repr=False, cache_hash=True)
class ModelGraph(_GraphEdits):
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

    def with_optimizer(self, optimizer: Any) -> ModelGraph:
        """A new graph with the graph-wide optimizer spec ``optimizer`` (``None`` for per-node).

        >>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"))).with_optimizer("adam").optimizer
        'adam'
        """
        return ModelGraph(self.nodes, optimizer)

    def _with_nodes(self, nodes: Iterable[AbstractNode]) -> ModelGraph:
        """A new graph of ``nodes`` with this one's optimizer (what every edit returns)."""
        return ModelGraph(tuple(nodes), self.optimizer)

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
