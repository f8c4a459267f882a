"""Graph references, nodes, edits, paths and targets pinned value by value (issue 17).

Every message is compared in full; derived facts (orders, stops, plans) are written out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from mml.errors import GraphError, ShapeError
from mml.graph import ConcatNode, FeatureSetRef, MergeNode, ModelGraph, ModelNode, NodeRef
from mml.graph._paths import gradient_stops, join_backend
from mml.graph._refs import check_label, close_matches, resolve_featureset, resolve_keys
from mml.graph._targets import TargetLeaf, TargetPlan, node_targets, target_leaves, target_plan, target_shape

from .strategies import StubModel

T, K, S = StubModel(backend="torch"), StubModel(backend="tensorflow"), StubModel(backend="sklearn")


def _raises(exc: type[Exception], fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(exc) as err:
        fn(*args, **kwargs)
    return str(err.value)


# -- references ------------------------------------------------------------------------------


def test_check_label_messages() -> None:
    assert check_label("a-b_1") == "a-b_1"
    assert _raises(GraphError, check_label, 3) == "a node label must be a string, got 3 (int)"
    assert (
        _raises(GraphError, check_label, None, "head") == "a head label must be a string, got None (NoneType)"
    )
    assert _raises(GraphError, check_label, "") == (
        "a node label must not be empty; give the node a name such as 'encoder'"
    )
    assert _raises(GraphError, check_label, "", "stage") == (
        "a stage label must not be empty; give the stage a name such as 'encoder'"
    )
    for bad, ch, fixed in (
        ("a/b", "/", "a_b"),
        ("x:y.z", ":", "x_y_z"),
        ("a b", " ", "a_b"),
        ("t\tu", "\t", "t_u"),
    ):
        assert _raises(GraphError, check_label, bad) == (
            f"node label {bad!r} contains the reserved character {ch!r}; labels may not contain "
            f"'.', '/', ':' or whitespace (try {fixed!r})"
        )


def test_close_matches_lists_up_to_three() -> None:
    assert (
        close_matches("enc", ["enc1", "enc2", "enc3", "enc4"])
        == " (did you mean 'enc4' or 'enc3' or 'enc2'?)"
    )
    assert close_matches("zzz", ["encoder"]) == ""
    assert close_matches("head", iter(["heads"])) == " (did you mean 'heads'?)"


def test_featureset_ref_fields_and_messages() -> None:
    r = FeatureSetRef("fs", features=["a", "b"], targets="y", tags=None, rep="raw")
    assert (r.features, r.targets, r.tags, r.rep) == (("a", "b"), ("y",), (), "raw")
    assert r.name == "fs"
    assert r.keys("features") == ("a", "b") and r.keys("targets") == ("y",) and r.keys("tags") == ()
    assert (
        _raises(GraphError, r.keys, "weights")
        == "unknown domain 'weights'; use one of features, targets, tags"
    )
    assert r.describe() == "features: a, b; targets: y; rep: raw"
    assert FeatureSetRef("fs", tags="c", rep="transformed").describe() == "tags: c; rep: transformed"
    for bad in ("", 3):
        assert _raises(GraphError, FeatureSetRef, bad) == (
            f"FeatureSetRef needs the label of a FeatureSet (a non-empty string), got {bad!r}"
        )
    assert _raises(GraphError, FeatureSetRef, "fs", features=["a", ""]) == (
        "key names in a FeatureSetRef must be non-empty strings, got ''"
    )
    assert _raises(GraphError, FeatureSetRef, "fs", targets=[1]) == (
        "key names in a FeatureSetRef must be non-empty strings, got 1"
    )
    assert _raises(GraphError, FeatureSetRef, "fs", rep="both") == (
        "FeatureSetRef rep must be None (transformed if present, else raw), 'raw' or 'transformed'; got 'both'"
    )
    assert NodeRef("h").name == "h"
    with pytest.raises(GraphError, match=r"node label 'a\.b'"):
        NodeRef("a.b")


class _FS:
    label = "cells"

    def keys(self, domain: str) -> tuple[str, ...]:
        return {"features": ("volt", "amp"), "targets": ("soh",), "tags": ()}[domain]


def test_resolving_featuresets_and_keys() -> None:
    assert resolve_featureset(FeatureSetRef("a"), {"a": 1}) == 1
    assert _raises(GraphError, resolve_featureset, NodeRef("a"), {"a": 1}) == (
        "resolve_featureset takes a FeatureSetRef, got NodeRef(label='a')"
    )
    assert _raises(GraphError, resolve_featureset, FeatureSetRef("b"), {}) == (
        "no FeatureSet labelled 'b'; available FeatureSets: none"
    )
    fs = _FS()
    assert resolve_keys(FeatureSetRef("cells"), fs, "features") == ("volt", "amp")
    assert resolve_keys(FeatureSetRef("cells", features="amp"), fs, "features") == ("amp",)
    assert _raises(
        GraphError, resolve_keys, FeatureSetRef("cells", features=["vol", "x"]), fs, "features"
    ) == (
        "FeatureSet 'cells' has no features key(s) 'vol', 'x' (did you mean 'volt'?); "
        "its features keys are: 'volt', 'amp'"
    )
    assert _raises(GraphError, resolve_keys, FeatureSetRef("cells", tags="t"), fs, "tags") == (
        "FeatureSet 'cells' has no tags key(s) 't'; its tags keys are: none"
    )
    assert FeatureSetRef.of(fs, features="volt", targets="soh", rep="raw") == FeatureSetRef(
        "cells", features=("volt",), targets=("soh",), rep="raw"
    )
    with pytest.raises(GraphError, match="no targets key"):
        FeatureSetRef.of(fs, targets="y")
    with pytest.raises(GraphError, match="no tags key"):
        FeatureSetRef.of(fs, tags="y")
    assert _raises(GraphError, FeatureSetRef.of, "cells") == (
        "FeatureSetRef.of takes a FeatureSet, got str; for a label alone use FeatureSetRef('label', features=...)"
    )

    class _NoKeys:
        label = "x"

    assert "got _NoKeys" in _raises(GraphError, FeatureSetRef.of, _NoKeys())


# -- nodes -----------------------------------------------------------------------------------


def test_model_node_messages() -> None:
    fs = FeatureSetRef("fs")
    assert _raises(GraphError, ModelNode, "m", T, [fs, NodeRef("a"), 3]) == (
        "ModelNode 'm' takes exactly one upstream, got 3 (FeatureSet 'fs', 'a', 3); pass the "
        "reference itself, or join several inputs with a ConcatNode or MergeNode in front of it"
    )
    assert _raises(GraphError, ModelNode, "m", T, "fs") == (
        "ModelNode 'm': upstream must be a FeatureSetRef or a NodeRef, got 'fs'; "
        "e.g. upstream=FeatureSetRef('my_featureset') or upstream=NodeRef('encoder')"
    )
    assert _raises(GraphError, ModelNode, "m", None, fs) == "ModelNode 'm' needs a model spec, got None"
    assert _raises(GraphError, ModelNode, "m", T, fs, frozen=1) == (
        "ModelNode 'm': frozen must be True or False, got 1"
    )
    assert _raises(GraphError, ModelNode, "m", T, fs, device=0) == (
        "ModelNode 'm': device must be None or a string such as 'cpu' or 'cuda:0', got 0"
    )
    assert ModelNode("m", T, fs, device="cuda:1").device == "cuda:1"
    n = ModelNode("m", T, NodeRef("a"))
    assert n.backend == "torch" and ModelNode("m", StubModel(backend=3), fs).backend is None  # type: ignore[arg-type]
    assert n.trainable and not ModelNode("m", T, fs, frozen=True).trainable
    assert not n.is_head and ModelNode("m", T, fs).is_head
    assert n.with_upstreams([fs]).upstream == fs
    assert _raises(GraphError, n.with_upstreams, [fs, fs]).startswith(
        "ModelNode 'm' takes exactly one upstream, got 2"
    )
    assert n.reroute("b", [fs]) is n
    assert n.reroute("a", [NodeRef("c")]).upstream == NodeRef("c")
    assert _raises(GraphError, n.reroute, "a", [NodeRef("b"), fs]) == (
        "ModelNode 'm' takes exactly one upstream, but 'a' would be replaced by 2 inputs ('b', FeatureSet 'fs'); "
        "put a ConcatNode or MergeNode in front of 'm' to join them"
    )
    c = ConcatNode("c", (NodeRef("a"), fs, NodeRef("b"), NodeRef("a")))
    assert c.node_upstreams == ("a", "b") and not c.is_head


# -- graph edits -----------------------------------------------------------------------------


def _chain() -> ModelGraph:
    return ModelGraph.of(
        ModelNode("a", T, FeatureSetRef("fs", features="x")),
        ModelNode("b", T, FeatureSetRef("gs")),
        ConcatNode("cat", (NodeRef("a"), NodeRef("b"))),
        ModelNode("head", T, NodeRef("cat")),
    )


def test_derived_facts() -> None:
    g = _chain()
    assert g.featuresets == ("fs", "gs")
    assert g.backends == ("torch",)
    assert ModelGraph.of(ModelNode("a", K, FeatureSetRef("f")), ModelNode("b", T, NodeRef("a"))).backends == (
        "tensorflow",
        "torch",
    )
    assert g.downstream("a") == ("cat",) and g.upstream_labels("cat") == ("a", "b")
    assert g.ancestors("head") == frozenset({"a", "b", "cat", "head"})
    assert g.ancestors(["a", "b"]) == frozenset({"a", "b"})
    assert g.heads_of("head") == ("a", "b")
    assert g.fed_by(["a"]) == frozenset({"a"})
    assert g.fed_by(["a", "b"]) == frozenset({"a", "b", "cat", "head"})
    assert len(g) == 4 and list(g) == ["a", "b", "cat", "head"]
    assert g["a"] in g and ModelNode("a", K, FeatureSetRef("fs")) not in g
    assert "a" in g and "z" not in g and 3 not in g
    assert ModelGraph.of(ModelNode("a", "spec", FeatureSetRef("f"))).backends == ()


def test_lookup_messages() -> None:
    g = _chain()
    msg = "the graph has no node 'haed' (did you mean 'head'?); its nodes are: 'a', 'b', 'cat', 'head'"
    for fn in (g.downstream, g.upstream_labels, g.heads_of, g.__getitem__, g.ancestors):
        assert _raises(GraphError, fn, "haed") == msg
    assert _raises(GraphError, g.ancestors, ["a", "haed"]) == msg


def test_edits() -> None:
    g = _chain()
    assert _raises(GraphError, g.add, "node") == (
        "ModelGraph.add takes a node (ModelNode, ConcatNode, MergeNode), got 'node'"
    )
    r = g.replace("head", ModelNode("out", K, NodeRef("cat")))
    assert list(r) == ["a", "b", "cat", "out"]
    same = g.replace("a", ModelNode("a", K, FeatureSetRef("fs")))
    assert same["a"].model == K and same["cat"] == g["cat"]
    assert _raises(GraphError, g.replace, "zz", ModelNode("a", T, FeatureSetRef("fs"))).startswith(
        "the graph has no node 'zz'"
    )
    m = g.insert_between("cat", "head", ModelNode("mid", T, FeatureSetRef("fs")))
    assert list(m) == ["a", "b", "cat", "mid", "head"] and m["mid"].upstream == NodeRef("cat")
    assert m["head"].upstream == NodeRef("mid")
    assert _raises(GraphError, g.insert_between, "a", "head", ModelNode("x", T, FeatureSetRef("fs"))) == (
        "cannot insert 'x' between 'a' and 'head': 'head' does not read from 'a' (its upstreams: "
        "cat); use insert_after or insert_before"
    )
    join = MergeNode("j", (NodeRef("b"), FeatureSetRef("fs")))
    assert _raises(GraphError, g.insert_between, "a", "cat", join) == (
        "MergeNode 'j' joins several inputs, so to insert it after 'a' it must already list "
        "NodeRef(label='a') among its upstreams"
    )
    pre = g.insert_before("a", ModelNode("pre", T, NodeRef("q")))
    assert list(pre)[:2] == ["pre", "a"] and pre["pre"].upstream == FeatureSetRef("fs", features="x")
    assert pre["a"].upstream == NodeRef("pre")
    assert _raises(GraphError, g.insert_before, "cat", ModelNode("p", T, FeatureSetRef("fs"))) == (
        "cannot insert 'p' before 'cat': it has 2 upstreams (a, b); "
        "use insert_between(upstream, 'cat', node) to pick the edge"
    )
    post = g.insert_after("b", ModelNode("post", T, FeatureSetRef("fs")))
    assert list(post) == ["a", "b", "post", "cat", "head"]
    assert post["post"].upstream == NodeRef("b") and post["cat"].upstream_refs == (
        NodeRef("a"),
        NodeRef("post"),
    )


def test_freeze_messages_and_values() -> None:
    g = _chain()
    f = g.freeze(["a", "head"])
    assert [f[x].frozen for x in ("a", "b", "head")] == [True, False, True]
    assert f.unfreeze("a")["a"].frozen is False and f.unfreeze("a")["head"].frozen is True
    assert _raises(GraphError, g.freeze, ["a", "haed", "bb"]) == (
        "cannot freeze unknown node(s) 'haed', 'bb' (did you mean 'head'?) (did you mean 'b'?); "
        "the graph's nodes are: 'a', 'b', 'cat', 'head'"
    )
    assert _raises(GraphError, g.unfreeze, "zz") == (
        "cannot unfreeze unknown node(s) 'zz'; the graph's nodes are: 'a', 'b', 'cat', 'head'"
    )
    assert (
        _raises(GraphError, g.freeze, "cat")
        == "only ModelNodes have parameters to freeze; ConcatNode 'cat' has none"
    )
    assert _raises(GraphError, g.unfreeze, ["cat"]) == (
        "only ModelNodes have parameters to unfreeze; ConcatNode 'cat' has none"
    )
    assert g.with_optimizer("adam").optimizer == "adam" and g.optimizer is None
    assert ModelGraph.validate([ModelNode("a", T, FeatureSetRef("f"))]).unwrap() == ModelGraph.of(
        ModelNode("a", T, FeatureSetRef("f"))
    )


# -- paths -----------------------------------------------------------------------------------


def test_join_backend() -> None:
    assert join_backend(["tensorflow", "torch"]) == "torch"
    assert join_backend(iter(["tensorflow", None])) == "tensorflow"
    assert join_backend([None, "sklearn"]) is None
    assert join_backend([]) is None


def test_gradient_stops_through_joins() -> None:
    fs = FeatureSetRef("fs")
    g = ModelGraph.of(
        ModelNode("t1", T, fs),
        ModelNode("k1", K, fs),
        ModelNode("s1", S, fs),
        ConcatNode("cat", (NodeRef("t1"), NodeRef("k1"))),  # computes in torch
        MergeNode("kk", (NodeRef("k1"), fs)),  # tensorflow and numpy: tensorflow
        ModelNode("t2", T, NodeRef("cat")),
        ModelNode("k2", K, NodeRef("kk")),
        ModelNode("t3", T, NodeRef("s1")),
        ModelNode("n", "no backend", NodeRef("t2")),
        ConcatNode("tail", (NodeRef("t2"), NodeRef("k2"))),
    )
    # k1 -> cat computes in torch (t1 is torch): broken, so k1 -> t2 stops; kk stays tensorflow, so
    # k1 -> k2 does not; s1 is scikit-learn; the tail joins torch and tensorflow in torch.
    got = gradient_stops(g)
    assert got == (("k1", "t2"), ("s1", "t3"), ("k2", "tail"))
    assert g.gradient_stops is g.gradient_stops and g.gradient_stops == got


def test_gradient_stops_hand_computed() -> None:
    fs = FeatureSetRef("fs")
    g = ModelGraph.of(
        ModelNode("k", K, fs),
        ModelNode("t", T, fs),
        MergeNode("m", (NodeRef("t"), NodeRef("k"))),
        ModelNode("h", T, NodeRef("m")),
        ConcatNode("tail", (NodeRef("k"), fs)),
    )
    assert gradient_stops(g) == (("k", "h"),)
    g2 = ModelGraph.of(
        ModelNode("k", K, fs),
        ModelNode("t", T, fs),
        MergeNode("m", (NodeRef("t"), NodeRef("k"))),
    )
    assert gradient_stops(g2) == (("k", "m"),)
    g3 = ModelGraph.of(
        ModelNode("s", S, fs), ModelNode("t", T, NodeRef("s")), ModelNode("u", T, NodeRef("t"))
    )
    assert gradient_stops(g3) == (("s", "t"),)
    g4 = ModelGraph.of(ModelNode("a", "x", fs), ModelNode("t", T, NodeRef("a")))
    assert gradient_stops(g4) == ()
    g5 = ModelGraph.of(
        ModelNode("k", K, fs),
        ModelNode("t", T, fs),
        MergeNode("m", (NodeRef("t"), NodeRef("k"))),
        MergeNode("m2", (NodeRef("m"), NodeRef("k"))),
        ModelNode("h", K, NodeRef("m2")),
    )
    assert gradient_stops(g5) == (("k", "h"), ("t", "h"))


# -- targets ---------------------------------------------------------------------------------


def _tg(strategy: object = "concat") -> ModelGraph:
    return ModelGraph.of(
        ModelNode("a", "s", FeatureSetRef("fs", targets="u")),
        ModelNode("b", "s", FeatureSetRef("fs", targets="v")),
        ModelNode("c", "s", FeatureSetRef("fs", targets="u")),
        ConcatNode("cat", (NodeRef("a"), NodeRef("b"), NodeRef("c")), targets=strategy),
        ModelNode("head", "s", NodeRef("cat")),
    )


def test_target_plans() -> None:
    la, lb = (
        TargetLeaf("a", FeatureSetRef("fs", targets="u")),
        TargetLeaf("b", FeatureSetRef("fs", targets="v")),
    )
    lc = TargetLeaf("c", FeatureSetRef("fs", targets="u"))
    g = _tg()
    plan = target_plan(g, "head")
    assert plan == TargetPlan(g["cat"], "concat", (la, lb))  # c reads a's columns: once
    assert target_leaves(plan) == (la, lb)
    assert target_plan(_tg("first"), "head") == la
    assert target_plan(_tg("last"), "head") == lc
    assert target_plan(_tg(NodeRef("b")), "head") == lb
    assert target_plan(_tg("mean"), "cat") == TargetPlan(_tg("mean")["cat"], "mean", (la, lb))
    assert la.source == ("fs", ("u",), None)
    one = ModelGraph.of(
        ModelNode("a", "s", FeatureSetRef("fs", targets="u")),
        ModelNode("b", "s", FeatureSetRef("fs", targets="u")),
        MergeNode("m", (NodeRef("a"), NodeRef("b"))),
    )
    assert target_plan(one, "m") == TargetLeaf("a", FeatureSetRef("fs", targets="u"))


def test_node_targets_values_and_message() -> None:
    g = _tg()
    ya, yb = np.array([1.0, 2.0]), np.array([[3.0, 4.0], [5.0, 6.0]])
    got = node_targets(g, "head", {"a": ya, "b": yb, "c": np.zeros(2)})
    assert got.tolist() == [[1.0, 3.0, 4.0], [2.0, 5.0, 6.0]]
    m = node_targets(_tg("mean"), "head", {"a": np.array([[1.0], [2.0]]), "b": np.array([[3.0], [6.0]])})
    assert m.tolist() == [[2.0], [4.0]]
    three = ModelGraph.of(
        ModelNode("a", "s", FeatureSetRef("f", targets="u")),
        ModelNode("b", "s", FeatureSetRef("g", targets="u")),
        ModelNode("c", "s", FeatureSetRef("h", targets="u")),
        MergeNode("m", (NodeRef("a"), NodeRef("b"), NodeRef("c")), targets="mean"),
    )
    assert node_targets(
        three, "m", {"a": np.array([3.0]), "b": np.array([6.0]), "c": np.array([0.0])}
    ).tolist() == [3.0]
    assert node_targets(g, "head", {"a": None, "b": None}) is None
    assert node_targets(g, "head", {"a": None, "b": np.array([1.0])}).tolist() == [[1.0]]
    assert _raises(GraphError, node_targets, g, "head", {"a": ya}) == (
        "the targets of node 'head' come from head 'b' (FeatureSet 'fs'), but no batch of 'b' was given "
        "(heads: 'a'); bind an input to 'b'"
    )
    assert _raises(GraphError, node_targets, g, "head", {}) == (
        "the targets of node 'head' come from head 'a' (FeatureSet 'fs'), but no batch of 'a' was given "
        "(heads: none); bind an input to 'a'"
    )


def test_target_shapes_and_messages() -> None:
    shapes = {"u": (1,), "v": (3,)}
    assert target_shape(_tg(), "head", lambda h, r: shapes[r.targets[0]]) == (4,)
    assert target_shape(_tg(), "head", lambda h, r: ()) == (2,)
    assert target_shape(_tg(), "head", lambda h, r: None) is None
    assert target_shape(_tg(), "head", lambda h, r: (2, 5) if h == "a" else (2, 1)) == (2, 6)
    assert target_shape(_tg("mean"), "head", lambda h, r: (2,)) == (2,)
    assert target_shape(_tg("mean"), "head", lambda h, r: None if h == "a" else (3,)) == (3,)
    assert _raises(ShapeError, target_shape, _tg("mean"), "head", lambda h, r: shapes[r.targets[0]]) == (
        "ConcatNode 'cat' (targets='mean') averages targets of per-sample shapes (1,), (3,), which differ; "
        "choose targets='concat', 'first' or a NodeRef to one upstream"
    )
    assert _raises(ShapeError, target_shape, _tg(), "head", lambda h, r: (2, 1) if h == "a" else (3, 1)) == (
        "ConcatNode 'cat' (targets='concat') concatenates targets along the last axis, but their per-sample "
        "shapes (2, 1), (3, 1) differ before it; choose targets='first' or a NodeRef to one upstream"
    )
