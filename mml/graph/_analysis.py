"""Validating a graph's nodes and deriving its facts, once: the analysis behind :class:`ModelGraph`.

:func:`_analyse` checks a tuple of nodes — unique labels, connection limits, resolvable
references, no cycles, every node reachable from a head, one backend under a graph-wide
optimizer — and reports every problem at once as :class:`GraphProblem` values; for a valid
graph it returns the :class:`_Index` of derived facts (topological order, heads, tails,
neighbours, ancestors) that :class:`~mml.graph.ModelGraph` keeps beside its value.

>>> from mml.graph import FeatureSetRef, ModelNode, NodeRef
>>> problems, index = _analyse((ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", NodeRef("a"))), None)
>>> problems, index.order, index.tails
([], ('a', 'b'), ('b',))
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from mml.errors import GraphError
from mml.graph._nodes import AbstractNode, ModelNode
from mml.graph._paths import GRADIENT_BACKENDS
from mml.graph._refs import FeatureSetRef, Ref, close_matches

__all__ = ["GraphProblem", "InvalidGraphError", "UnknownNodeError"]


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
