"""Graph analysis: topological order, cycles, derived facts and validation problems pinned (issue 17).

Orders and strongly connected components are compared with networkx (an independent reference).
"""

from __future__ import annotations

import itertools
import random
from typing import Any, ClassVar

import attrs
import pytest

from mml.errors import GraphError
from mml.graph import (
    AbstractNode,
    ConcatNode,
    FeatureSetRef,
    GraphProblem,
    InvalidGraphError,
    ModelGraph,
    ModelNode,
    NodeRef,
)
from mml.graph._analysis import _analyse, _cycles, _to_nodes, _topological_order

from .strategies import StubModel, StubOptimizer

FS = FeatureSetRef("fs")


def m(label: str, up: Any, backend: str = "torch", **kw: Any) -> ModelNode:
    ref = NodeRef(up) if isinstance(up, str) else up
    return ModelNode(label, StubModel(backend=backend), ref, **kw)


def cat(label: str, *ups: Any) -> ConcatNode:
    return ConcatNode(label, tuple(NodeRef(u) if isinstance(u, str) else u for u in ups))


def problems(nodes: list[Any], optimizer: Any = None) -> list[tuple[str, str, tuple[str, ...]]]:
    found, index = _analyse(tuple(nodes), optimizer)
    assert (index is None) == bool(found)
    return [(p.code, p.message, p.labels) for p in found]


def test_topological_order_breaks_ties_by_position() -> None:
    nodes = [cat("v", "z", "w"), m("w", "y"), m("z", "x"), m("y", FS), m("x", FS)]
    g = ModelGraph(nodes)
    assert g.topological_order == ("y", "w", "x", "z", "v")
    assert g.heads == ("y", "x")
    assert g.tails == ("v",)
    g2 = ModelGraph([m("x", FS), m("y", FS), m("z", "x"), m("w", "y"), cat("v", "z", "w")])
    assert g2.topological_order == ("x", "y", "z", "w", "v")


def test_topological_order_matches_networkx() -> None:
    nx = pytest.importorskip("networkx")
    rng = random.Random(0)
    for _ in range(30):
        n = rng.randint(1, 9)
        labels = [f"n{i}" for i in range(n)]
        ups = {lab: [labels[j] for j in range(i) if rng.random() < 0.35] for i, lab in enumerate(labels)}
        shuffled = labels[:]
        rng.shuffle(shuffled)
        graph = nx.DiGraph()
        graph.add_nodes_from(shuffled)
        graph.add_edges_from((u, v) for v in labels for u in ups[v])
        position = {lab: i for i, lab in enumerate(shuffled)}
        expected = list(nx.lexicographical_topological_sort(graph, key=position.__getitem__))
        assert _topological_order(shuffled, ups) == expected


def test_topological_order_leaves_out_cycles_and_what_follows() -> None:
    ups = {"a": [], "b": ["a", "c"], "c": ["b"], "d": ["c"], "e": ["a", "a"]}
    assert _topological_order(list(ups), ups) == ["a", "e"]


def test_cycles_match_networkx_components() -> None:
    nx = pytest.importorskip("networkx")
    rng = random.Random(1)
    for _ in range(40):
        n = rng.randint(1, 8)
        labels = [f"n{i}" for i in range(n)]
        rng.shuffle(labels)  # positions differ from name order
        ups = {lab: [u for u in labels if rng.random() < 0.25] for lab in labels}
        graph = nx.DiGraph()
        graph.add_nodes_from(labels)
        graph.add_edges_from((u, v) for v in labels for u in ups[v])
        position = {lab: i for i, lab in enumerate(labels)}
        comps = [
            c
            for c in nx.strongly_connected_components(graph)
            if len(c) > 1 or graph.has_edge(*2 * [next(iter(c))])
        ]
        cycles = _cycles(labels, ups)
        assert len(cycles) == len(comps)
        starts = sorted((min(c, key=position.__getitem__) for c in comps), key=position.__getitem__)
        assert [p[0] for p in cycles] == starts
        for path in cycles:
            assert path[0] == path[-1]
            comp = next(c for c in comps if path[0] in c)
            assert set(path) <= comp
            for u, v in itertools.pairwise(path):
                assert graph.has_edge(u, v)
            # the shortest way around from the start
            others = [
                nx.shortest_path_length(graph, path[0], w) + 1
                for w in graph.predecessors(path[0])
                if w in comp
            ]
            assert len(path) - 1 == min(others)


def test_cycle_paths_are_shortest_and_in_data_flow_direction() -> None:
    # a reads c and b; b reads a; c reads b: a -> b -> a is shorter than a -> b -> c -> a
    ups = {"a": ["c", "b"], "b": ["a"], "c": ["b"]}
    assert _cycles(list(ups), ups) == [["a", "b", "a"]]
    ups = {"x": [], "p": ["r"], "q": ["p"], "r": ["q"], "s": ["s"]}
    assert _cycles(list(ups), ups) == [["p", "q", "r", "p"], ["s", "s"]]
    ups = {"s": ["s"], "p": ["r"], "q": ["p"], "r": ["q"]}
    assert _cycles(list(ups), ups) == [["s", "s"], ["p", "q", "r", "p"]]
    assert _cycles(["a", "b"], {"a": [], "b": ["a"]}) == []
    # the cycle starts at the first node by position, not by name
    assert _cycles(["z", "a"], {"z": ["a"], "a": ["z"]}) == [["z", "a", "z"]]
    # the search stops at the first way back: s -> a -> s, not the longer s -> c -> d -> s found later
    ups = {"s": ["a", "d"], "c": ["s"], "a": ["s"], "d": ["c"]}
    assert _cycles(list(ups), ups) == [["s", "a", "s"]]


def test_derived_facts() -> None:
    fs2 = FeatureSetRef("other", features=("x",))
    nodes = [m("a", FS), m("b", fs2), cat("c", "a", "b", FS), m("d", "c"), m("e", "a")]
    g = ModelGraph(nodes)
    assert g.topological_order == ("a", "b", "c", "d", "e")
    assert g.heads == ("a", "b")
    assert g.tails == ("d", "e")
    assert g.downstream("a") == ("c", "e")
    assert g.downstream("d") == ()
    assert g.upstream_labels("c") == ("a", "b")
    assert g.ancestors("d") == frozenset({"a", "b", "c", "d"})
    assert g.ancestors("e") == frozenset({"a", "e"})
    assert g.ancestors(["e", "b"]) == frozenset({"a", "b", "e"})
    assert g.heads_of("d") == ("a", "b")
    assert g.heads_of("e") == ("a",)
    assert g.heads_of("a") == ("a",)
    assert g.fed_by(["b"]) == frozenset({"b"})
    assert g.fed_by(["a"]) == frozenset({"a", "e"})
    assert g.fed_by(["a", "b"]) == frozenset("abcde")
    assert g.edges == (
        (FS, "a"),
        (fs2, "b"),
        (NodeRef("a"), "c"),
        (NodeRef("b"), "c"),
        (FS, "c"),
        (NodeRef("c"), "d"),
        (NodeRef("a"), "e"),
    )
    assert g.featureset_refs == (FS, fs2)


def test_duplicate_labels_in_full() -> None:
    assert problems([m("a", FS), m("b", "a"), m("a", "b"), cat("a", FS, FS)]) == [
        (
            "duplicate_label",
            "label 'a' is used by 3 nodes (a ModelNode at position 0 and a ModelNode at position 2 and a "
            "ConcatNode at position 3); every node needs its own label",
            ("a",),
        )
    ]


def test_unknown_references_in_full() -> None:
    assert problems([m("a", FS), m("b", "encodr"), m("encoder", "a")]) == [
        (
            "unknown_reference",
            "ModelNode 'b' refers to unknown node 'encodr' (did you mean 'encoder'?); known nodes: 'a', 'b', 'encoder'",
            ("b", "encodr"),
        )
    ]
    # a node never suggests itself
    assert problems([m("a", FS), m("ab", "abc")]) == [
        (
            "unknown_reference",
            "ModelNode 'ab' refers to unknown node 'abc'; known nodes: 'a', 'ab'",
            ("ab", "abc"),
        )
    ]


def test_cycles_and_unreachable_in_full() -> None:
    assert problems([m("a", FS), m("b", "c"), m("c", "b"), m("d", "c"), m("e", "zz")]) == [
        (
            "unknown_reference",
            "ModelNode 'e' refers to unknown node 'zz'; known nodes: 'a', 'b', 'c', 'd', 'e'",
            ("e", "zz"),
        ),
        (
            "cycle",
            "cycle: b -> c -> b; a ModelGraph must be acyclic: re-point one of these upstreams to break it",
            ("b", "c"),
        ),
        (
            "unreachable",
            "ModelNode 'd' is not reachable from any head (a node fed only by FeatureSets): every path into it "
            "passes through a cycle or a missing node",
            ("d",),
        ),
    ]
    # reachable through one live upstream even when another is broken
    assert problems([m("a", FS), m("b", "zz"), cat("c", "a", "b")]) == [
        (
            "unknown_reference",
            "ModelNode 'b' refers to unknown node 'zz'; known nodes: 'a', 'b', 'c'",
            ("b", "zz"),
        )
    ]
    assert [p[0] for p in problems([m("b", "zz"), m("c", "b")])] == ["unknown_reference", "unreachable"]


@attrs.frozen
class _Limited(AbstractNode):
    """A test node with configurable connection limits (the shipped nodes enforce theirs on construction)."""

    kind: ClassVar[str] = "node.test_limited"
    label: str
    ups: tuple[Any, ...]
    lo: int = 1
    hi: int | None = 1

    @property
    def min_upstreams(self) -> int:  # type: ignore[override]
        return self.lo

    @property
    def max_upstreams(self) -> int | None:  # type: ignore[override]
        return self.hi

    @property
    def upstream_refs(self) -> tuple[Any, ...]:
        return self.ups

    @property
    def trainable(self) -> bool:
        return False

    def with_upstreams(self, refs: Any) -> _Limited:
        return attrs.evolve(self, ups=tuple(refs))

    def reroute(self, old: str, new: Any) -> _Limited:
        return self


@pytest.mark.parametrize(
    ("n", "lo", "hi", "want"),
    [
        (0, 1, 1, "exactly 1"),
        (2, 1, 1, "exactly 1"),
        (1, 2, None, "at least 2"),
        (0, 1, 3, "1 to 3"),
        (4, 1, 3, "1 to 3"),
    ],
)
def test_connection_limits_in_full(n: int, lo: int, hi: int | None, want: str) -> None:
    node = _Limited("x", (FS,) * n, lo, hi)
    assert problems([node]) == [("connections", f"_Limited 'x' takes {want} upstream(s) but has {n}", ("x",))]


@pytest.mark.parametrize(("n", "lo", "hi"), [(1, 1, 1), (3, 1, 3), (1, 1, 3), (5, 2, None), (2, 2, None)])
def test_connection_limits_inclusive(n: int, lo: int, hi: int | None) -> None:
    assert problems([_Limited("x", (FS,) * n, lo, hi)]) == []


def test_backend_mismatch_in_full() -> None:
    nodes = [
        m("a", FS),
        m("b", "a", backend="tensorflow"),
        m("c", "a", backend="sklearn"),
        m("d", "a"),
        m("e", "d", backend="tensorflow"),
        m("f", "a", backend="tensorflow", frozen=True),
    ]
    assert problems(nodes, StubOptimizer()) == [
        (
            "backend_mismatch",
            "a graph-wide optimizer trains every trainable node in one backward pass, but the trainable nodes use "
            "2 backends (tensorflow: 'b', 'e'; torch: 'a', 'd'); freeze the nodes of all but one backend "
            "(graph.freeze([...])) or drop the graph-wide optimizer and give each node its own "
            "(graph.with_optimizer(None))",
            ("a", "d", "b", "e"),
        )
    ]
    assert problems(nodes) == []
    assert problems([m("a", FS), m("c", "a", backend="sklearn")], StubOptimizer()) == []
    assert problems([m("a", FS), m("b", "a", backend="tensorflow", frozen=True)], StubOptimizer()) == []


def test_invalid_graph_error_text() -> None:
    one = InvalidGraphError([GraphProblem("cycle", "cycle: a -> a", ("a",))])
    assert str(one) == "invalid ModelGraph (1 problem):\n  - cycle: a -> a"
    two = InvalidGraphError([GraphProblem("c", "m1"), GraphProblem("c", "m2")])
    assert str(two) == "invalid ModelGraph (2 problems):\n  - m1\n  - m2"
    assert two.problems == (GraphProblem("c", "m1"), GraphProblem("c", "m2"))
    assert str(GraphProblem("x", "msg")) == "msg"
    assert GraphProblem("x", "msg").labels == ()
    with pytest.raises(InvalidGraphError) as err:
        ModelGraph([m("a", "a")])
    assert [p.code for p in err.value.problems] == ["cycle"]


def test_node_collections() -> None:
    a, b = m("a", FS), m("b", "a")
    assert _to_nodes(a) == (a,)
    assert _to_nodes({"a": a, "b": b}) == (a, b)
    assert _to_nodes([a, b]) == (a, b)
    with pytest.raises(GraphError) as err:
        _to_nodes({"x": a})
    assert str(err.value) == (
        "ModelGraph nodes: key 'x' maps to a node labelled 'a'; the key of each node must be its label "
        "(or pass a sequence of nodes)"
    )
    with pytest.raises(GraphError) as err:
        _to_nodes([a, 3])
    assert (
        str(err.value)
        == "ModelGraph nodes must be nodes (ModelNode, ConcatNode, MergeNode, ...); item 1 is 3"
    )
    with pytest.raises(GraphError) as err:
        _to_nodes([a, "x" * 300])
    assert str(err.value).endswith("item 1 is '" + "x" * 99)


def test_unknown_node_error_text() -> None:
    from mml.graph import UnknownNodeError

    assert str(UnknownNodeError("no node 'x'")) == "no node 'x'"  # not KeyError's quoted repr
    assert str(UnknownNodeError()) == ""
    g = ModelGraph([m("a", FS)])
    with pytest.raises(UnknownNodeError) as err:
        g["zz"]
    assert "'zz'" in str(err.value) and not str(err.value).startswith('"')
