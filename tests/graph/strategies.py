"""Hypothesis strategies for graph tests: random valid DAGs of ModelNodes and ConcatNodes.

Reusable by other graph tests (``from .strategies import dags, StubModel``).
"""

from __future__ import annotations

import string
from typing import Any, ClassVar

import attrs
from hypothesis import strategies as st

from mml.graph import AbstractNode, ConcatNode, FeatureSetRef, ModelGraph, ModelNode, NodeRef

__all__ = ["StubModel", "StubOptimizer", "dags", "labels", "node_lists", "stub_models"]


@attrs.frozen
class StubModel:
    """A stand-in model spec: opaque to the graph apart from ``backend``."""

    kind: ClassVar[str] = "model.test_graph_stub"
    width: int = 1
    backend: str = "torch"


@attrs.frozen
class StubOptimizer:
    """A stand-in optimizer spec."""

    kind: ClassVar[str] = "optim.test_graph_stub"
    lr: float = 0.1


labels = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=6)


def stub_models(backends: tuple[str, ...] = ("torch",)) -> st.SearchStrategy[StubModel]:
    return st.builds(StubModel, width=st.integers(1, 64), backend=st.sampled_from(backends))


@st.composite
def node_lists(
    draw: Any,
    min_nodes: int = 1,
    max_nodes: int = 8,
    backends: tuple[str, ...] = ("torch",),
    shuffle: bool = True,
) -> tuple[AbstractNode, ...]:
    """Nodes of a random valid DAG over one or two FeatureSetRefs (insertion order shuffled)."""
    n = draw(st.integers(min_nodes, max_nodes))
    names = draw(st.lists(labels, min_size=n, max_size=n, unique=True))
    fs_names = draw(st.lists(st.sampled_from(["train", "aux"]), min_size=1, max_size=2, unique=True))
    fs_refs: list[FeatureSetRef | NodeRef] = [
        FeatureSetRef(name, features=draw(st.sampled_from([(), ("x",), ("x", "y")]))) for name in fs_names
    ]
    nodes: list[AbstractNode] = []
    for name in names:
        sources = fs_refs + [NodeRef(x.label) for x in nodes]
        if len(sources) >= 2 and draw(st.integers(0, 3)) == 0:
            ups = draw(st.lists(st.sampled_from(sources), min_size=2, max_size=3, unique=True))
            nodes.append(
                ConcatNode(name, tuple(ups), axis=draw(st.sampled_from([-1, 0])), pad=draw(st.booleans()))
            )
        else:
            nodes.append(
                ModelNode(
                    name,
                    draw(stub_models(backends)),
                    draw(st.sampled_from(sources)),
                    frozen=draw(st.booleans()),
                )
            )
    if shuffle:
        nodes = draw(st.permutations(nodes))
    return tuple(nodes)


@st.composite
def dags(draw: Any, min_nodes: int = 1, max_nodes: int = 8, with_optimizer: bool | None = None) -> ModelGraph:
    """A random valid :class:`ModelGraph` (one backend, so a graph-wide optimizer is allowed)."""
    nodes = draw(node_lists(min_nodes=min_nodes, max_nodes=max_nodes))
    if with_optimizer is None:
        with_optimizer = draw(st.booleans())
    return ModelGraph(nodes, StubOptimizer(draw(st.sampled_from([0.1, 0.01]))) if with_optimizer else None)
