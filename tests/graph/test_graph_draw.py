"""Drawing: mermaid and dot show every FeatureSet, node and edge, frozen styling and shapes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from mml.errors import GraphError
from mml.graph import (
    ConcatNode,
    FeatureSetRef,
    MergeNode,
    ModelGraph,
    ModelNode,
    NodeRef,
    to_dot,
    to_mermaid,
)

from .strategies import StubModel, dags


def _graph() -> ModelGraph:
    return ModelGraph.of(
        ModelNode("enc", StubModel(), FeatureSetRef("train", features=("x", "y"))),
        ModelNode("side", StubModel(backend="sklearn"), FeatureSetRef("aux"), frozen=True),
        ConcatNode("cat", (NodeRef("enc"), NodeRef("side"))),
        MergeNode("mix", (NodeRef("cat"), NodeRef("cat"))),
        ModelNode("head", StubModel(), NodeRef("mix")),
    )


def test_mermaid_shows_featuresets_nodes_styles_and_edges() -> None:
    text = to_mermaid(_graph())
    assert text.startswith("flowchart LR")
    assert 'f0[("train")]:::featureset' in text and 'f1[("aux")]:::featureset' in text
    assert "enc<br/>StubModel · torch" in text
    assert ":::frozen" in text and "side<br/>StubModel · sklearn<br/>(frozen)" in text
    assert '{{"cat<br/>concat axis=-1"}}:::join' in text
    assert '(["mix<br/>merge sum"]):::join' in text
    assert 'f0 -->|"features: x, y"| n0' in text
    assert text.count("-->") == len(_graph().edges) == 7
    assert _graph().to_mermaid() == text


def test_dot_shows_the_same() -> None:
    text = to_dot(_graph())
    assert text.startswith("digraph ModelGraph {") and text.rstrip().endswith("}")
    assert '"featureset:train" [label="train", shape=cylinder' in text
    assert '"side" [label="side\\nStubModel · sklearn\\n(frozen)", shape=box, style="filled,dashed"' in text
    assert "shape=hexagon" in text and "shape=invtrapezium" in text
    assert '"featureset:train" -> "enc" [label="features: x, y"];' in text
    assert text.count(" -> ") == 7
    assert _graph().to_dot() == text


def test_shapes_are_drawn_and_unknown_labels_rejected() -> None:
    shapes = {"enc": ((2,), (8,)), "cat": (((8,), (4,)), (12,)), "train": (2,)}
    mer = to_mermaid(_graph(), shapes)
    assert "enc<br/>StubModel · torch<br/>in: (2,)<br/>out: (8,)" in mer
    assert "in: (8,), (4,)<br/>out: (12,)" in mer
    assert 'train<br/>out: (2,)")]' in mer
    assert "in: (2,)\\nout: (8,)" in to_dot(_graph(), shapes)
    with pytest.raises(GraphError, match=r"'ecn'.*did you mean 'enc'"):
        to_mermaid(_graph(), {"ecn": ((1,), (1,))})


def test_quotes_in_model_text_are_escaped() -> None:
    g = ModelGraph.of(ModelNode("a", 'say "hi"', FeatureSetRef("fs")))
    assert "#quot;" in to_mermaid(g)
    assert '\\"hi\\"' in to_dot(g)


@settings(max_examples=25)
@given(dags())
def test_every_node_and_edge_is_drawn(g: ModelGraph) -> None:
    mer, dot = to_mermaid(g), to_dot(g)
    assert mer.count("-->") == len(g.edges) == dot.count(" -> ")
    for label in g:
        assert f'"{label}" [label=' in dot
        assert f'["{label}<br/>' in mer or f'{{{{"{label}<br/>' in mer
    for name in g.featuresets:
        assert f'[("{name}")]' in mer and f'"featureset:{name}"' in dot
