"""Does a :class:`~mml.graph.GraphState` belong to a graph and its data? The facts, as sentences.

A state carries, per node, the per-sample shapes it was built for and its params. A state made
for another graph (a node added, a hidden layer resized) or other data (a key added to the
features) must not train or predict silently with the old shapes: :func:`state_mismatches`
lists every difference, naming the node, what the state has and what the graph and data need.
Torch nodes' tensors are compared name by name and shape by shape against the spec built on
torch's ``meta`` device (no memory, no numbers).

>>> import mml, numpy as np
>>> from mml.graph import FeatureSetRef, ModelGraph, ModelNode, build
>>> fs = mml.FeatureSet.from_dict({"x": np.zeros((4, 3)), "y": np.zeros(4)}, features="x", targets="y", label="d")
>>> g = ModelGraph.of(ModelNode("m", mml.SequentialMLP(hidden=(4,)), FeatureSetRef("d")))
>>> state = build(g, {"d": fs}, 0)
>>> state_mismatches(g, {"d": fs}, state)
[]
>>> g8 = ModelGraph.of(ModelNode("m", mml.SequentialMLP(hidden=(8,)), FeatureSetRef("d")))
>>> state_mismatches(g8, {"d": fs}, state)[0]
"node 'm': params 'layers.0.weight' has shape (4, 3) in the state, but the model spec makes (8, 3)"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mml.backends import TorchParams, init_params, output_shape
from mml.data import FeatureSet
from mml.errors import MMLError
from mml.graph._build import GraphState
from mml.graph._graph import ModelGraph
from mml.graph._nodes import ModelNode
from mml.graph._refs import FeatureSetRef
from mml.random import key

__all__ = ["state_mismatches"]


def _shape(s: Any) -> str:
    return str(tuple(int(v) for v in s))


def _tensor_problems(label: str, spec: Any, rec: Any) -> list[str]:
    """A torch node's params and buffers against the spec built on the meta device."""

    try:
        want = init_params(spec, rec.input_shape, rec.output_shape, key=key(0), device="meta")
    except MMLError as exc:
        return [
            f"node {label!r}: the model spec cannot be built at the state's shapes (input "
            f"{_shape(rec.input_shape)}, output {_shape(rec.output_shape)}): {exc}"
        ]
    out = []
    for field in ("params", "buffers"):
        have, need = getattr(rec, field), getattr(want, field)
        for name in need:
            if name not in have:
                out.append(f"node {label!r}: the state has no {field} {name!r}, which the model spec makes")
            elif tuple(have[name].shape) != tuple(need[name].shape):
                out.append(
                    f"node {label!r}: {field} {name!r} has shape {_shape(have[name].shape)} in the state, but the "
                    f"model spec makes {_shape(need[name].shape)}"
                )
        extra = [n for n in have if n not in need]
        if extra:
            out.append(
                f"node {label!r}: the state has {field} {', '.join(map(repr, extra))}, which the model spec does not make"
            )
    return out


def state_mismatches(
    graph: ModelGraph, featuresets: Mapping[str, FeatureSet], state: GraphState
) -> list[str]:
    """Every way ``state`` does not fit ``graph`` over ``featuresets`` (``[]``: it fits).

    Checked: the state has exactly the graph's nodes; each node's recorded input shapes are those
    its FeatureSet keys or upstream nodes give now; a join node's output shape is what it makes
    of them; a torch node's tensors have the names and shapes its spec makes.
    """
    out: list[str] = []
    have = set(state.params)
    missing = [n for n in graph.topological_order if n not in have]
    extra = sorted(have - set(graph))
    if missing:
        out.append(f"the state has no node {', '.join(map(repr, missing))} of the graph")
    if extra:
        out.append(f"the state has node(s) {', '.join(map(repr, extra))}, which the graph does not")
    if missing or extra:
        return out
    for label in graph.topological_order:
        node = graph[label]
        rec_shapes = state.shapes.get(label)
        if rec_shapes is None:
            continue
        expected: list[tuple[int, ...]] = []
        for ref in node.upstream_refs:
            if isinstance(ref, FeatureSetRef):
                fs = featuresets.get(ref.featureset)
                if fs is None:
                    return out  # the Experiment's own checks name the missing FeatureSet
                try:
                    expected.append(tuple(fs.domain_shape("features", ref.features or None)))
                except MMLError:
                    return out  # the Experiment's own checks name the missing keys
            else:
                expected.append(tuple(state.shapes[ref.label].output_shape))
        recorded = [tuple(s) for s in rec_shapes.input_shapes]
        if recorded != expected:
            out.append(
                f"node {label!r} was built for input shape(s) {', '.join(map(_shape, recorded))}, but its inputs "
                f"now have {', '.join(map(_shape, expected))}"
            )
            continue
        if isinstance(node, ModelNode):
            rec = state.params[label]
            try:  # the spec's declared shape (a target-shaped spec answers the state's own)
                made = tuple(output_shape(node.model, expected[0], tuple(rec_shapes.output_shape)))
            except MMLError:
                made = tuple(rec_shapes.output_shape)
            if made != tuple(rec_shapes.output_shape):
                out.append(
                    f"node {label!r} output shape is {_shape(rec_shapes.output_shape)} in the state, but the model "
                    f"spec makes {_shape(made)}"
                )
                continue
            if isinstance(rec, TorchParams):
                out.extend(_tensor_problems(label, node.model, rec))
        else:
            try:
                made = tuple(node.output_shape(expected))  # type: ignore[attr-defined]
            except MMLError:
                continue
            if made != tuple(rec_shapes.output_shape):
                out.append(
                    f"node {label!r} output shape is {_shape(rec_shapes.output_shape)} in the state, but it makes "
                    f"{_shape(made)} of its inputs"
                )
    return out
