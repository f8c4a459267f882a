"""Bad input: each a specific GraphError that names the nodes involved and says how to fix it."""

from __future__ import annotations

import pytest

from mml.errors import GraphError
from mml.graph import (
    ConcatNode,
    FeatureSetRef,
    InvalidGraphError,
    MergeNode,
    ModelGraph,
    ModelNode,
    NodeRef,
    UnknownNodeError,
)

from .strategies import StubModel, StubOptimizer

FS = FeatureSetRef("fs")


def m(label: str, up: FeatureSetRef | NodeRef | str, backend: str = "torch", **kw: object) -> ModelNode:
    ref = NodeRef(up) if isinstance(up, str) else up
    return ModelNode(label, StubModel(backend=backend), ref, **kw)  # type: ignore[arg-type]


def problems(nodes: list, optimizer: object = None) -> InvalidGraphError:  # type: ignore[type-arg]
    error = ModelGraph.validate(nodes, optimizer).failure()
    assert isinstance(error, InvalidGraphError) and isinstance(error, GraphError)
    with pytest.raises(InvalidGraphError) as info:
        ModelGraph(nodes, optimizer)
    assert str(info.value) == str(error)
    return error


def test_valid_graph_validates_to_success() -> None:
    g = ModelGraph.validate([m("a", FS), m("b", "a")]).unwrap()
    assert isinstance(g, ModelGraph) and g.tails == ("b",)


def test_cycle_shows_its_path() -> None:
    error = problems(
        [m("src", FS), m("a", "c"), m("b", "a"), ConcatNode("c", (NodeRef("b"), NodeRef("src")))]
    )
    assert [p.code for p in error.problems] == ["cycle"]
    assert "a -> b -> c -> a" in str(error)
    assert set(error.problems[0].labels) == {"a", "b", "c"}


def test_self_loop_is_a_cycle() -> None:
    error = problems([m("a", FS), ConcatNode("loop", (NodeRef("a"), NodeRef("loop")))])
    assert "loop -> loop" in str(error) and error.problems[0].code == "cycle"


def test_two_separate_cycles_are_both_reported() -> None:
    error = problems([m("a", "b"), m("b", "a"), m("c", "d"), m("d", "c"), m("ok", FS)])
    assert [p.code for p in error.problems] == ["cycle", "cycle"]
    assert "a -> b -> a" in str(error) and "c -> d -> c" in str(error)


def test_dangling_reference_names_both_nodes_and_suggests() -> None:
    error = problems([m("encoder", FS), m("head", "encodr")])
    (p,) = error.problems
    assert p.code == "unknown_reference" and p.labels == ("head", "encodr")
    assert "'head'" in p.message and "'encodr'" in p.message and "did you mean 'encoder'" in p.message


def test_duplicate_labels() -> None:
    error = problems([m("a", FS), ConcatNode("a", (FS, FeatureSetRef("other")))])
    (p,) = error.problems
    assert p.code == "duplicate_label" and p.labels == ("a",)
    assert "'a'" in p.message and "ModelNode" in p.message and "ConcatNode" in p.message


def test_model_node_with_two_upstreams() -> None:
    with pytest.raises(GraphError) as info:
        ModelNode("head", StubModel(), (NodeRef("a"), NodeRef("b")))  # type: ignore[arg-type]
    assert "'head'" in str(info.value) and "'a'" in str(info.value) and "'b'" in str(info.value)
    assert "exactly one upstream" in str(info.value)


def test_backend_mismatch_under_a_graph_wide_optimizer() -> None:
    nodes = [m("enc", FS, "torch"), m("keras", FS, "tensorflow"), m("head", "enc", "torch")]
    error = problems(nodes, StubOptimizer())
    (p,) = error.problems
    assert p.code == "backend_mismatch"
    assert "torch: 'enc', 'head'" in p.message and "tensorflow: 'keras'" in p.message
    assert set(p.labels) == {"enc", "keras", "head"}
    # fine without a graph-wide optimizer, or with the odd one out frozen
    g = ModelGraph(nodes)
    assert g.backends == ("tensorflow", "torch")
    assert g.freeze("keras").with_optimizer(StubOptimizer()).optimizer == StubOptimizer()
    with pytest.raises(InvalidGraphError, match="backend"):
        g.with_optimizer(StubOptimizer())


def test_node_list_must_hold_nodes_and_mapping_keys_must_be_labels() -> None:
    with pytest.raises(GraphError, match="item 1"):
        ModelGraph((m("a", FS), "not a node"))  # type: ignore[arg-type]
    with pytest.raises(GraphError, match="key 'x' maps to a node labelled 'a'"):
        ModelGraph({"x": m("a", FS)})


def test_remove_of_a_multi_input_node_feeding_a_model_node_says_why() -> None:
    g = ModelGraph.of(
        m("a", FS), m("b", FS), ConcatNode("cat", (NodeRef("a"), NodeRef("b"))), m("head", "cat")
    )
    with pytest.raises(GraphError) as info:
        g.remove("cat")
    msg = str(info.value)
    assert "cannot remove 'cat'" in msg and "'head'" in msg and "exactly one upstream" in msg
    assert "'a'" in msg and "'b'" in msg
    # a joining consumer takes the inputs spliced in instead
    g2 = ModelGraph.of(
        m("a", FS),
        m("b", FS),
        ConcatNode("cat", (NodeRef("a"), NodeRef("b"))),
        MergeNode("mg", (NodeRef("cat"), FS)),
    )
    assert g2.remove("cat")["mg"].upstream_refs == (NodeRef("a"), NodeRef("b"), FS)


def test_remove_of_a_node_a_join_takes_targets_from() -> None:
    g = ModelGraph.of(
        m("a", FS), m("b", FS), ConcatNode("cat", (NodeRef("a"), NodeRef("b")), targets=NodeRef("a"))
    )
    with pytest.raises(GraphError, match=r"takes its targets from 'a'"):
        g.remove("a")
    g2 = ModelGraph.of(
        m("a0", FS),
        m("a", "a0"),
        m("b", FS),
        ConcatNode("cat", (NodeRef("a"), NodeRef("b")), targets=NodeRef("a")),
    )
    assert g2.remove("a")["cat"].targets == NodeRef("a0")  # type: ignore[attr-defined]


def test_unknown_labels_in_lookups_and_edits() -> None:
    g = ModelGraph.of(m("encoder", FS), m("head", "encoder"))
    with pytest.raises(UnknownNodeError, match="did you mean 'encoder'") as info:
        g["encodr"]
    assert isinstance(info.value, KeyError) and isinstance(info.value, GraphError)
    with pytest.raises(UnknownNodeError, match=r"'nope', 'gone'"):
        g.freeze(["encoder", "nope", "gone"])
    for edit in (
        lambda: g.remove("x"),
        lambda: g.replace("x", m("y", FS)),
        lambda: g.insert_after("x", m("y", FS)),
        lambda: g.insert_before("x", m("y", FS)),
        lambda: g.downstream("x"),
        lambda: g.upstream_labels("x"),
    ):
        with pytest.raises(UnknownNodeError, match="'x'"):
            edit()


def test_bad_edits() -> None:
    g = ModelGraph.of(
        m("a", FS), m("b", FS), ConcatNode("cat", (NodeRef("a"), NodeRef("b"))), m("head", "cat")
    )
    with pytest.raises(GraphError, match="'head' does not read from 'a'"):
        g.insert_between("a", "head", m("x", FS))
    with pytest.raises(GraphError, match=r"'cat': it has 2 upstreams.*insert_between"):
        g.insert_before("cat", m("x", FS))
    with pytest.raises(GraphError, match=r"must already list NodeRef\(label='head'\)"):
        g.insert_after("head", ConcatNode("x", (NodeRef("a"), NodeRef("b"))))
    with pytest.raises(GraphError, match="only ModelNodes"):
        g.freeze("cat")
    with pytest.raises(InvalidGraphError, match=r"used by 2"):
        g.add(m("a", FS))
    with pytest.raises(GraphError, match="takes a node"):
        g.add("a")  # type: ignore[arg-type]
    with pytest.raises(InvalidGraphError, match="cycle"):
        g.replace("a", m("a", "head"))


def test_scikit_learn_nodes_do_not_count_as_a_gradient_backend() -> None:
    # issue 16.6: a FitPhase fits the scikit-learn node; no gradient ever trains it, so a
    # graph-wide optimizer over sklearn -> torch needs no freeze
    nodes = [m("pca", FS, "sklearn"), m("head", "pca", "torch")]
    g = ModelGraph(nodes, StubOptimizer())
    assert g.optimizer == StubOptimizer() and g.backends == ("sklearn", "torch")
    assert ModelGraph.validate([*nodes, m("forest", FS, "sklearn")], StubOptimizer()).unwrap()
