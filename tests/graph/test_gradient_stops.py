"""Gradient stops are a fact of the graph's data paths, through joining nodes (issue 16.2)."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import ConcatNode, FeatureSetRef, MergeNode, ModelGraph, ModelNode, NodeRef, gradient_stops

from .strategies import StubModel

FS = FeatureSetRef("fs")


def m(label: str, up: FeatureSetRef | str, backend: str) -> ModelNode:
    return ModelNode(label, StubModel(backend=backend), NodeRef(up) if isinstance(up, str) else up)


def joined(a: str, b: str, head: str, join: type = ConcatNode) -> ModelGraph:
    return ModelGraph.of(
        m("a", FS, a), m("b", FS, b), join("cat", (NodeRef("a"), NodeRef("b"))), m("head", "cat", head)
    )


@pytest.mark.parametrize(
    ("a", "b", "head", "stops"),
    [
        ("torch", "torch", "tensorflow", (("a", "head"), ("b", "head"))),
        ("tensorflow", "tensorflow", "torch", (("a", "head"), ("b", "head"))),
        ("torch", "tensorflow", "torch", (("b", "head"),)),
        # the join computes in torch, so the Keras output is converted there and back again
        ("torch", "tensorflow", "tensorflow", (("a", "head"), ("b", "head"))),
        ("torch", "torch", "torch", ()),
        ("sklearn", "torch", "torch", (("a", "head"),)),
    ],
)
def test_stops_through_a_joining_node(a: str, b: str, head: str, stops: tuple) -> None:  # type: ignore[type-arg]
    g = joined(a, b, head)
    assert gradient_stops(g) == stops == g.gradient_stops
    assert gradient_stops(joined(a, b, head, MergeNode)) == stops


def test_stops_at_a_tail_join_and_along_chains() -> None:
    g = ModelGraph.of(
        m("t", FS, "torch"), m("k", FS, "tensorflow"), ConcatNode("cat", (NodeRef("t"), NodeRef("k")))
    )
    assert g.gradient_stops == (("k", "cat"),)  # a loss on 'cat' computes in torch
    chain = ModelGraph.of(m("a", FS, "torch"), m("b", "a", "tensorflow"), m("c", "b", "tensorflow"))
    assert chain.gradient_stops == (("a", "b"),)
    assert ModelGraph.of(m("a", FS, "torch"), m("b", "a", "torch")).gradient_stops == ()


def test_build_lists_the_same_stops_as_the_graph() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    from mml.models import SequentialMLP

    fs = mml.FeatureSet.from_dict(
        {"x": np.ones((8, 3), np.float32), "y": np.zeros(8, np.float32)},
        features="x",
        targets="y",
        label="fs",
    )
    g = ModelGraph.of(
        ModelNode("a", SequentialMLP(hidden=(4,), output_shape=(2,)), FS),
        ModelNode("b", SequentialMLP(hidden=(4,), output_shape=(2,)), FS),
        ConcatNode("cat", (NodeRef("a"), NodeRef("b"))),
        ModelNode("head", SequentialMLP(hidden=(4,), backend="tensorflow"), NodeRef("cat")),
    )
    state = mml.graph.build(g, {"fs": fs}, key=0)
    assert state.gradient_stops == (("a", "head"), ("b", "head")) == gradient_stops(g)
    assert "gradient stops between a -> head" in repr(state)
