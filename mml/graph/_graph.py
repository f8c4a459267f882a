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
import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
from returns.result import Failure, Result, Success

from mml.errors import GraphError
from mml.graph._nodes import AbstractNode, ModelNode
from mml.graph._paths import GRADIENT_BACKENDS, gradient_stops
from mml.graph._refs import FeatureSetRef, NodeRef, Ref, close_matches

__all__ = ["GraphProblem", "InvalidGraphError", "ModelGraph", "UnknownNodeError"]


@attrs.frozen
class GraphProblem:
    """One thing wrong with a graph: a ``code``, a readable ``message`` and the ``labels`` involved.

    Codes: ``"duplicate_label"``, ``"connections"``, ``"unknown_reference"``, ``"cycle"``,
    ``"unreachable"``, ``"backend_mismatch"``.

    >>> p = GraphProblem("cycle", "cycle: a -> b -> a", ("a", "b"))
    >>> str(p)
    'cycle: a -> b -> a'
    """

    code: str
    message: str
    labels: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message


class InvalidGraphError(GraphError):
    """A graph failed validation; ``problems`` holds every :class:`GraphProblem` found.

    >>> err = InvalidGraphError([GraphProblem("cycle", "cycle: a -> a", ("a",))])
    >>> err.problems[0].code, str(err)
    ('cycle', 'invalid ModelGraph (1 problem):\\n  - cycle: a -> a')
    """

    __module__ = "mml.graph"  # its public home: tracebacks and error records name mml.graph

    def __init__(self, problems: Sequence[GraphProblem]) -> None:
        self.problems: tuple[GraphProblem, ...] = tuple(problems)
        n = len(self.problems)
        lines = "\n".join(f"  - {p.message}" for p in self.problems)
        super().__init__(f"invalid ModelGraph ({n} problem{'s' if n != 1 else ''}):\n{lines}")


class UnknownNodeError(GraphError, KeyError):
    """A label that names no node of the graph (also a ``KeyError``, as ``graph[label]`` should raise).

    >>> issubclass(UnknownNodeError, KeyError)
    True
    """

    __module__ = "mml.graph"  # its public home: tracebacks and error records name mml.graph

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _to_nodes(value: Any) -> tuple[AbstractNode, ...]:
    if isinstance(value, AbstractNode):
        value = (value,)
    if isinstance(value, Mapping):
        for key, node in value.items():
            if isinstance(node, AbstractNode) and key != node.label:
                raise GraphError(
                    f"ModelGraph nodes: key {key!r} maps to a node labelled {node.label!r}; the key of each "
                    "node must be its label (or pass a sequence of nodes)"
                )
        value = tuple(value.values())
    nodes = tuple(value)
    for i, node in enumerate(nodes):
        if not isinstance(node, AbstractNode):
            raise GraphError(
                f"ModelGraph nodes must be nodes (ModelNode, ConcatNode, MergeNode, ...); item {i} is "
                f"{node!r:.100}"
            )
    return nodes


class _Index:
    """Derived facts of a valid graph (computed once; never compared, hashed or saved)."""

    __slots__ = (
        "ancestors",
        "by_label",
        "downstream",
        "edges",
        "featureset_refs",
        "heads",
        "heads_of",
        "order",
        "tails",
        "upstream",
    )

    def __init__(self, nodes: tuple[AbstractNode, ...], order: tuple[str, ...]) -> None:
        self.by_label: dict[str, AbstractNode] = {n.label: n for n in nodes}
        self.order = order
        self.upstream: dict[str, tuple[str, ...]] = {n.label: n.node_upstreams for n in nodes}
        down: dict[str, list[str]] = {label: [] for label in order}
        for label in order:
            for up in self.upstream[label]:
                down[up].append(label)
        self.downstream: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in down.items()}
        self.heads = tuple(label for label in order if self.by_label[label].is_head)
        self.tails = tuple(label for label in order if not self.downstream[label])
        edges: list[tuple[Ref, str]] = []
        fs_refs: dict[FeatureSetRef, None] = {}
        for label in order:
            for ref in self.by_label[label].upstream_refs:
                edges.append((ref, label))
                if isinstance(ref, FeatureSetRef):
                    fs_refs[ref] = None
        self.edges = tuple(edges)
        self.featureset_refs = tuple(fs_refs)
        # each node with everything upstream of it, and the heads among them (topological order)
        self.ancestors: dict[str, frozenset[str]] = {}
        for label in order:
            self.ancestors[label] = frozenset({label}).union(
                *(self.ancestors[u] for u in self.upstream[label])
            )
        self.heads_of = {label: tuple(h for h in self.heads if h in self.ancestors[label]) for label in order}


def _describe(node: AbstractNode) -> str:
    return f"{type(node).__name__} {node.label!r}"


def _topological_order(labels: Sequence[str], upstream: Mapping[str, Iterable[str]]) -> list[str]:
    """Kahn's algorithm; ties broken by position in ``labels``. Nodes on or after a cycle are left out."""
    position = {label: i for i, label in enumerate(labels)}
    indegree = {label: 0 for label in labels}
    down: dict[str, list[str]] = {label: [] for label in labels}
    for label in labels:
        for up in set(upstream[label]):
            indegree[label] += 1
            down[up].append(label)
    ready = [position[label] for label in labels if indegree[label] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        label = labels[heapq.heappop(ready)]
        order.append(label)
        for d in down[label]:
            indegree[d] -= 1
            if indegree[d] == 0:
                heapq.heappush(ready, position[d])
    return order


def _cycles(labels: Sequence[str], upstream: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle path (in data-flow direction, first node repeated at the end) per cyclic component."""
    down: dict[str, list[str]] = {label: [] for label in labels}
    for label in labels:
        for up in dict.fromkeys(upstream[label]):
            down[up].append(label)
    # Tarjan's strongly connected components, iteratively (graphs may be deep)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in labels:
        if root in index:
            continue
        work = [(root, iter(down[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(down[w])))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                components.append(comp)
    position = {label: i for i, label in enumerate(labels)}
    cycles = []
    for comp in components:
        members = set(comp)
        start = min(comp, key=position.__getitem__)
        if len(comp) == 1 and start not in down[start]:
            continue
        # shortest way around from ``start`` back to itself, inside the component
        parent: dict[str, str] = {}
        frontier = [start]
        found = False
        while frontier and not found:
            nxt = []
            for v in frontier:
                for w in down[v]:
                    if w == start:
                        parent[start] = v
                        found = True
                        break
                    if w in members and w not in parent:
                        parent[w] = v
                        nxt.append(w)
                if found:
                    break
            frontier = nxt
        path = [start]
        v = parent[start]
        while v != start:
            path.append(v)
            v = parent[v]
        path.append(start)
        path.reverse()
        cycles.append(path)
    cycles.sort(key=lambda p: position[p[0]])
    return cycles


def _analyse(nodes: tuple[AbstractNode, ...], optimizer: Any) -> tuple[list[GraphProblem], _Index | None]:
    problems: list[GraphProblem] = []
    by_label: dict[str, AbstractNode] = {}
    positions: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        by_label.setdefault(node.label, node)
        positions.setdefault(node.label, []).append(i)
    for label, where in positions.items():
        if len(where) > 1:
            kinds = " and ".join(f"a {type(nodes[i]).__name__} at position {i}" for i in where)
            problems.append(
                GraphProblem(
                    "duplicate_label",
                    f"label {label!r} is used by {len(where)} nodes ({kinds}); every node needs its own label",
                    (label,),
                )
            )
    labels = list(by_label)

    for node in by_label.values():
        n = len(node.upstream_refs)
        lo, hi = node.min_upstreams, node.max_upstreams
        if n < lo or (hi is not None and n > hi):
            want = f"exactly {lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
            problems.append(
                GraphProblem(
                    "connections",
                    f"{_describe(node)} takes {want} upstream(s) but has {n}",
                    (node.label,),
                )
            )

    broken: set[str] = set()
    known_upstream: dict[str, list[str]] = {}
    for node in by_label.values():
        known_upstream[node.label] = []
        for up in node.node_upstreams:
            if up in by_label:
                known_upstream[node.label].append(up)
                continue
            broken.add(node.label)
            others = [x for x in labels if x != node.label]
            problems.append(
                GraphProblem(
                    "unknown_reference",
                    f"{_describe(node)} refers to unknown node {up!r}{close_matches(up, others)}; "
                    f"known nodes: {', '.join(map(repr, labels))}",
                    (node.label, up),
                )
            )

    for path in _cycles(labels, known_upstream):
        broken.update(path)
        problems.append(
            GraphProblem(
                "cycle",
                f"cycle: {' -> '.join(path)}; a ModelGraph must be acyclic: re-point one of these upstreams "
                "to break it",
                tuple(dict.fromkeys(path)),
            )
        )

    order = _topological_order(labels, known_upstream)
    reached: set[str] = set()
    for label in order:  # data flows from heads along the topological order
        node = by_label[label]
        if label not in broken and (node.is_head or any(u in reached for u in known_upstream[label])):
            reached.add(label)
    for label in labels:
        if label not in reached and label not in broken:
            problems.append(
                GraphProblem(
                    "unreachable",
                    f"{_describe(by_label[label])} is not reachable from any head (a node fed only by "
                    "FeatureSets): every path into it passes through a cycle or a missing node",
                    (label,),
                )
            )

    if optimizer is not None:
        by_backend: dict[str, list[str]] = {}
        for node in by_label.values():
            # scikit-learn nodes are fitted (FitPhase), never trained by gradients: they don't count
            if isinstance(node, ModelNode) and node.trainable and node.backend in GRADIENT_BACKENDS:
                by_backend.setdefault(node.backend, []).append(node.label)
        if len(by_backend) > 1:
            groups = "; ".join(f"{b}: {', '.join(map(repr, ls))}" for b, ls in sorted(by_backend.items()))
            problems.append(
                GraphProblem(
                    "backend_mismatch",
                    "a graph-wide optimizer trains every trainable node in one backward pass, but the "
                    f"trainable nodes use {len(by_backend)} backends ({groups}); freeze the nodes of all "
                    "but one backend (graph.freeze([...])) or drop the graph-wide optimizer and give each "
                    "node its own (graph.with_optimizer(None))",
                    tuple(label for ls in by_backend.values() for label in ls),
                )
            )

    if problems:
        return problems, None
    return [], _Index(nodes, tuple(order))


def _labels_arg(labels: str | Iterable[str]) -> tuple[str, ...]:
    return (labels,) if isinstance(labels, str) else tuple(labels)


def _describe_model(model: Any) -> str:
    if isinstance(model, str):
        return repr(model)
    backend = getattr(model, "backend", None)
    name = type(model).__name__
    return f"{name}[{backend}]" if isinstance(backend, str) else name


def _describe_ref(ref: Ref) -> str:
    if isinstance(ref, NodeRef):
        return ref.label
    sel = ref.describe()
    return f"[{ref.featureset}]" + (f" ({sel})" if sel else "")


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

    def __attrs_post_init__(self) -> None:
        problems, index = _analyse(self.nodes, self.optimizer)
        if problems:
            raise InvalidGraphError(problems)
        object.__setattr__(self, "_index", index)

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
                f"{', '.join(_describe_ref(r) for r in down.upstream_refs)}); use insert_after or insert_before"
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
                f"({', '.join(_describe_ref(r) for r in refs)}); use insert_between(upstream, {label!r}, node) "
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
        lines = ["ModelGraph(", "  nodes:"]
        width = max((len(label) for label in self._index.order), default=0)
        for label in self._index.order:
            node = self._index.by_label[label]
            if isinstance(node, ModelNode):
                extra = f"model={_describe_model(node.model)}"
                if node.frozen:
                    extra += ", frozen"
                if node.optimizer is not None:
                    extra += f", optimizer={type(node.optimizer).__name__}"
                if node.device is not None:
                    extra += f", device={node.device!r}"
            else:
                fields = {a.name: getattr(node, a.name) for a in attrs.fields(type(node))}  # type: ignore[arg-type]
                extra = ", ".join(f"{k}={v!r}" for k, v in fields.items() if k not in ("label", "upstreams"))
            lines.append(f"    {label:<{width}}  {type(node).__name__}({extra})")
        lines.append("  edges:")
        for ref, label in self._index.edges:
            lines.append(f"    {_describe_ref(ref)} -> {label}")
        lines.append(f"  optimizer={self.optimizer!r}")
        lines.append(")")
        return "\n".join(lines)
