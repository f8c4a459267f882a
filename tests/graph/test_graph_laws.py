"""Laws of ModelGraph over random DAGs: order, pure edits, validation, serialization, value semantics."""

from __future__ import annotations

import itertools
import json
import re

import attrs
import pytest
from hypothesis import given, settings, strategies as st

import mml.io
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

from .strategies import StubModel, StubOptimizer, dags, node_lists


def _snapshot(g: ModelGraph) -> tuple[object, ...]:
    return (g.nodes, g.optimizer, hash(g), repr(g))


def _ancestors(g: ModelGraph, label: str) -> set[str]:
    seen: set[str] = set()
    stack = [label]
    while stack:
        for up in g.upstream_labels(stack.pop()):
            if up not in seen:
                seen.add(up)
                stack.append(up)
    return seen


@settings(max_examples=40)
@given(dags())
def test_topological_order_respects_every_edge_and_is_a_permutation(g: ModelGraph) -> None:
    order = g.topological_order
    assert sorted(order) == sorted(n.label for n in g.nodes) and list(g) == list(order)
    position = {label: i for i, label in enumerate(order)}
    for ref, label in g.edges:
        if isinstance(ref, NodeRef):
            assert position[ref.label] < position[label]
    # ties are broken by insertion order: the heads keep their relative insertion order
    inserted = [n.label for n in g.nodes]
    assert list(g.heads) == [x for x in order if g[x].is_head]
    assert sorted(g.heads, key=inserted.index) == list(g.heads)


@settings(max_examples=40)
@given(dags())
def test_heads_tails_and_neighbours(g: ModelGraph) -> None:
    for label in g:
        node = g[label]
        assert (label in g.heads) == all(isinstance(r, FeatureSetRef) for r in node.upstream_refs)
        assert (label in g.tails) == (not g.downstream(label))
        for up in g.upstream_labels(label):
            assert label in g.downstream(up)
        for down in g.downstream(label):
            assert label in g.upstream_labels(down)
    used = {r for n in g.nodes for r in n.upstream_refs if isinstance(r, FeatureSetRef)}
    assert set(g.featureset_refs) == used and len(g.featureset_refs) == len(used)
    assert g.backends == (("torch",) if any(isinstance(n, ModelNode) for n in g.nodes) else ())
    assert g.heads and g.tails


@settings(max_examples=40)
@given(st.data())
def test_order_is_deterministic_and_does_not_depend_on_how_the_graph_was_made(data: st.DataObject) -> None:
    nodes = data.draw(node_lists())
    assert ModelGraph(nodes).topological_order == ModelGraph.of(*nodes).topological_order
    assert ModelGraph({n.label: n for n in nodes}) == ModelGraph(nodes)


@settings(max_examples=50)
@given(dags(), st.data())
def test_edits_return_new_graphs_and_leave_the_original_unchanged(g: ModelGraph, data: st.DataObject) -> None:
    before = _snapshot(g)
    label = data.draw(st.sampled_from(list(g)))
    models = [x for x in g if isinstance(g[x], ModelNode)]
    fresh = "new_node"
    assert fresh not in g
    edits = [
        lambda: g.add(ModelNode(fresh, StubModel(), NodeRef(label))),
        lambda: g.replace(label, attrs.evolve(g[label], label=fresh)),
        lambda: g.insert_after(label, ModelNode(fresh, StubModel(), NodeRef(label))),
        lambda: g.with_optimizer(None if g.optimizer else StubOptimizer()),
    ]
    if models:
        edits += [lambda: g.freeze(models), lambda: g.unfreeze(models[0])]
    if len(g[label].upstream_refs) == 1:
        edits.append(lambda: g.insert_before(label, ModelNode(fresh, StubModel(), NodeRef("x"))))
    try:
        edits.append(lambda: g.remove(label))
        g.remove(label)
    except Exception:
        edits.pop()
    for edit in edits:
        new = edit()
        assert isinstance(new, ModelGraph)
        assert _snapshot(g) == before


@settings(max_examples=40)
@given(dags(), st.data())
def test_remove_undoes_add_of_a_new_tail(g: ModelGraph, data: st.DataObject) -> None:
    label = data.draw(st.sampled_from(list(g)))
    tail = ModelNode("fresh_tail", StubModel(width=7), NodeRef(label))
    added = g.add(tail)
    assert "fresh_tail" in added.tails and len(added) == len(g) + 1
    assert added.remove("fresh_tail") == g


@settings(max_examples=40)
@given(dags(), st.data())
def test_inserts_are_undone_by_remove(g: ModelGraph, data: st.DataObject) -> None:
    label = data.draw(st.sampled_from(list(g)))
    node = ModelNode("ins", StubModel(width=3), FeatureSetRef("anything"))
    after = g.insert_after(label, node)
    assert after.upstream_labels("ins") == (label,)
    assert after.downstream(label) == ("ins",)
    assert set(after.downstream("ins")) == set(g.downstream(label))
    assert after.remove("ins") == g
    if len(g[label].upstream_refs) == 1:
        before = g.insert_before(label, node)
        assert before.upstream_labels(label) == ("ins",)
        assert before["ins"].upstream_refs == g[label].upstream_refs
        assert before.remove("ins") == g
    for up in g.upstream_labels(label):
        between = g.insert_between(up, label, node)
        assert between.upstream_labels("ins") == (up,)
        assert "ins" in between.upstream_labels(label) and up not in between.upstream_labels(label)
        assert between.remove("ins") == g


@settings(max_examples=40)
@given(dags(), st.data())
def test_remove_reroutes_upstreams_to_consumers(g: ModelGraph, data: st.DataObject) -> None:
    label = data.draw(st.sampled_from(list(g)))
    removed = g[label]
    single_consumers = [d for d in g.downstream(label) if isinstance(g[d], ModelNode)]
    if len(removed.upstream_refs) > 1 and single_consumers:
        with pytest.raises(Exception, match="exactly one upstream"):
            g.remove(label)
        return
    new = g.remove(label)
    assert label not in new and len(new) == len(g) - 1
    for d in g.downstream(label):
        for ref in removed.upstream_refs:
            assert ref in new[d].upstream_refs
    assert set(new.topological_order) == set(g.topological_order) - {label}


@settings(max_examples=40)
@given(dags(), st.data())
def test_replace_renames_consumers_and_replace_back_restores(g: ModelGraph, data: st.DataObject) -> None:
    label = data.draw(st.sampled_from(list(g)))
    assert g.replace(label, g[label]) == g
    renamed = g.replace(label, attrs.evolve(g[label], label="renamed"))
    assert label not in renamed and "renamed" in renamed
    assert renamed.downstream("renamed") == g.downstream(label)
    assert renamed.replace("renamed", g[label]) == g


@settings(max_examples=40)
@given(dags(), st.data())
def test_freeze_and_unfreeze(g: ModelGraph, data: st.DataObject) -> None:
    models = [x for x in g if isinstance(g[x], ModelNode)]
    if not models:
        return
    chosen = data.draw(st.lists(st.sampled_from(models), min_size=1, unique=True))
    frozen = g.freeze(chosen)
    assert all(frozen[x].frozen for x in chosen)
    assert all(frozen[x] == g[x] for x in g if x not in chosen)
    thawed = frozen.unfreeze(chosen)
    assert all(not thawed[x].frozen for x in chosen)
    originally_trainable = [x for x in chosen if not g[x].frozen]
    assert (
        g.freeze(originally_trainable).unfreeze(originally_trainable) == g if originally_trainable else True
    )


@settings(max_examples=50)
@given(dags(), st.data())
def test_validation_rejects_every_cycle_and_names_it(g: ModelGraph, data: st.DataObject) -> None:
    # re-point the upstream of a ModelNode `a` at one of its descendants-or-self `d`
    models = [x for x in g if isinstance(g[x], ModelNode)]
    if not models:
        return
    d = data.draw(st.sampled_from(list(g)))
    candidates = [x for x in models if x == d or x in _ancestors(g, d)]
    if not candidates:
        return
    a = data.draw(st.sampled_from(candidates))
    nodes = [attrs.evolve(n, upstream=NodeRef(d)) if n.label == a else n for n in g.nodes]
    result = ModelGraph.validate(nodes, g.optimizer)
    error = result.failure()
    assert isinstance(error, InvalidGraphError)
    cycles = [p for p in error.problems if p.code == "cycle"]
    assert len(cycles) == 1
    assert a in cycles[0].labels and d in cycles[0].labels
    path = re.search(r"cycle: (.*?);", cycles[0].message).group(1).split(" -> ")  # type: ignore[union-attr]
    assert path[0] == path[-1] and len(path) >= 2
    by_label = {n.label: n for n in nodes}
    for up, down in itertools.pairwise(path):
        assert up in by_label[down].node_upstreams
    assert " -> ".join(path) in str(error)
    with pytest.raises(InvalidGraphError):
        ModelGraph(nodes, g.optimizer)


def test_all_problems_are_collected_at_once() -> None:
    nodes = [
        ModelNode("a", StubModel(), FeatureSetRef("fs")),
        ModelNode("a", StubModel(), FeatureSetRef("fs")),  # duplicate label
        ModelNode("b", StubModel(), NodeRef("ghost")),  # dangling reference
        ModelNode("c", StubModel(), NodeRef("d")),  # c <-> d cycle
        ModelNode("d", StubModel(), NodeRef("c")),
        ModelNode("e", StubModel(), NodeRef("d")),  # unreachable: downstream of the cycle
        ModelNode("f", StubModel(backend="tensorflow"), NodeRef("a")),  # second backend
    ]
    error = ModelGraph.validate(nodes, StubOptimizer()).failure()
    codes = [p.code for p in error.problems]
    assert codes == ["duplicate_label", "unknown_reference", "cycle", "unreachable", "backend_mismatch"]
    assert all(isinstance(p, GraphProblem) for p in error.problems)
    for p in error.problems:
        assert p.message in str(error)
    assert "5 problems" in str(error)


@settings(max_examples=50)
@given(dags())
def test_round_trip_serialization(g: ModelGraph) -> None:
    back = mml.io.roundtrip(g)
    assert back == g and hash(back) == hash(g)
    assert back.topological_order == g.topological_order and back.heads == g.heads
    doc = mml.io.unstructure(g)
    assert set(doc) == {"nodes", "optimizer"}  # derived facts are never serialized
    json.dumps(doc)


def test_round_trip_with_real_model_and_optimizer_specs() -> None:
    models = pytest.importorskip("mml.models")
    optim = pytest.importorskip("mml.optim")
    g = ModelGraph.of(
        ModelNode("enc", models.SequentialMLP(), FeatureSetRef("fs", features=("x",))),
        ModelNode("aux", models.SequentialMLP(), FeatureSetRef("fs"), optimizer=optim.sgd(0.1)),
        ConcatNode("cat", (NodeRef("enc"), NodeRef("aux")), targets=NodeRef("enc")),
        optimizer=optim.adam(1e-3),
    )
    back = mml.io.roundtrip(g)
    assert back == g
    assert type(back["enc"].model) is models.SequentialMLP  # type: ignore[attr-defined]


@settings(max_examples=40)
@given(dags())
def test_hash_and_eq_by_value(g: ModelGraph) -> None:
    twin = ModelGraph(tuple(attrs.evolve(n) for n in g.nodes), g.optimizer)
    assert twin == g and hash(twin) == hash(g) and twin is not g
    assert len({g, twin}) == 1
    other = g.add(ModelNode("zz_extra", StubModel(), FeatureSetRef("fs")))
    assert other != g


@settings(max_examples=30)
@given(dags())
def test_repr_lists_nodes_and_edges(g: ModelGraph) -> None:
    text = repr(g)
    assert text.count("\n") >= len(g) + len(g.edges)
    for label in g:
        assert label in text
    for ref, label in g.edges:
        if isinstance(ref, NodeRef):
            assert f"{ref.label} -> {label}" in text


def test_getitem_contains_iter_len() -> None:
    enc = ModelNode("enc", StubModel(), FeatureSetRef("fs"))
    g = ModelGraph.of(ModelNode("head", StubModel(), NodeRef("enc")), enc)
    assert list(g) == ["enc", "head"] and len(g) == 2
    assert g["enc"] is enc and "enc" in g and enc in g and "nope" not in g and 3 not in g
    assert isinstance(g["enc"], AbstractNode)
