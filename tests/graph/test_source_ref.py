"""ModelGraph.source_ref: the nearest FeatureSetRef upstream of a node, breadth first."""

import pytest

from mml.graph import ConcatNode, FeatureSetRef, MergeNode, ModelGraph, ModelNode, NodeRef, UnknownNodeError


def _graph() -> ModelGraph:
    # a <- fs "deep" (two hops from "c"); b <- fs "near"; c = concat(a, b); d <- c
    return ModelGraph.of(
        ModelNode("a", "s", FeatureSetRef("deep")),
        ModelNode("b", "s", FeatureSetRef("near")),
        ConcatNode("c", (NodeRef("a"), NodeRef("b"))),
        ModelNode("d", "s", NodeRef("c")),
    )


def test_the_nearest_reference_wins_and_ties_go_to_the_first_upstream():
    g = _graph()
    assert g.source_ref("a") == FeatureSetRef("deep")  # its own reference
    assert g.source_ref("d").featureset == "deep"  # a and b are both two hops: a is listed first
    assert g.source_ref("d", lambda r: r.featureset != "deep").featureset == "near"
    assert g.source_ref("d", lambda r: False) is None


def test_a_reference_on_the_node_itself_comes_before_one_further_up():
    g = ModelGraph.of(
        ModelNode("a", "s", FeatureSetRef("far")),
        MergeNode("m", (NodeRef("a"), FeatureSetRef("own"))),
    )
    assert g.source_ref("m").featureset == "own"
    assert g.source_ref("m", lambda r: r.featureset == "far").featureset == "far"


def test_an_unknown_label_is_named():
    with pytest.raises(UnknownNodeError, match="no node 'zz'"):
        _graph().source_ref("zz")


def test_join_nodes_have_no_model_facts_and_model_nodes_their_own():
    g = _graph()
    join, model = g["c"], ModelNode("m", "s", FeatureSetRef("fs"), optimizer="opt", frozen=True, device="cpu")
    assert (join.backend, join.frozen, join.optimizer, join.device) == (None, False, None, None)
    assert (model.frozen, model.optimizer, model.device) == (True, "opt", "cpu")
