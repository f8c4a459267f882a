"""Building a graph (shape inference + parameter init) and running it forward.

``build(graph, featuresets, key) -> GraphState`` walks the graph in topological order:
head shapes come from the referenced FeatureSet columns, a tail's output shape defaults to
its target shape, merge/concat shapes come from the node's own rule; every model node's
params are initialised from ``fold_in(key, label)``. ``forward`` runs the nodes in the same
order and returns every node's output.

>>> import mml, numpy as np
>>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef
>>> from mml.models import SequentialMLP
>>> fs = mml.FeatureSet.from_dict({"x": np.ones((8, 3), np.float32), "y": np.zeros(8, np.float32)},
...                               features="x", targets="y", label="toy")
>>> g = ModelGraph.of(ModelNode("mlp", SequentialMLP(hidden=(4,)), FeatureSetRef("toy")))
>>> state = build(g, {"toy": fs}, key=mml.random.key(0))
>>> state.shapes["mlp"].output_shape
(1,)
>>> out = forward(g, state, mml.SampleData(features=fs.to_numpy()))
>>> tuple(out.outputs["mlp"].shape)
(8, 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import numpy as np

from mml._fields import FrozenDict, frozen_dict
from mml.backends import AbstractNodeParams, apply, to_backend
from mml.data import Batch, FeatureSet, SampleData
from mml.errors import GraphError, MMLError, ShapeError
from mml.graph._graph import ModelGraph
from mml.graph._nodes import AbstractNode, ModelNode
from mml.graph._refs import FeatureSetRef, NodeRef
from mml.graph._targets import target_shape
from mml.random import Key, as_key, fold_in

__all__ = ["NodeShapes", "GraphState", "ForwardResult", "build", "forward", "head_inputs", "gradient_stops"]

Shape = tuple[int, ...]


def _shape(v: Any) -> Shape:
    return tuple(int(s) for s in v)


def _shapes(v: Any) -> tuple[Shape, ...]:
    return tuple(_shape(s) for s in v)


@attrs.frozen
class NodeShapes:
    """Per-sample input shapes (one per upstream) and output shape of a node."""

    input_shapes: tuple[tuple[int, ...], ...] = attrs.field(converter=_shapes)
    output_shape: tuple[int, ...] = attrs.field(converter=_shape)


@attrs.frozen
class GraphState:
    """The learned state of a built graph: node label → params record (``None`` for merges).

    Params records come from :mod:`mml.backends` (``TorchParams``, ``KerasParams``,
    ``SklearnParams``). A GraphState saves and loads with ``mml.save``/``mml.load`` and loads
    without torch or tensorflow installed (tensors come back as numpy arrays then).
    """

    params: Mapping[str, AbstractNodeParams | None] = attrs.field(converter=frozen_dict)
    shapes: Mapping[str, NodeShapes] = attrs.field(converter=frozen_dict)
    gradient_stops: tuple[tuple[str, str], ...] = attrs.field(
        default=(), converter=lambda v: tuple(map(tuple, v))
    )

    def __getitem__(self, label: str) -> Any:
        try:
            return self.params[label]
        except KeyError:
            raise GraphError(
                f"the graph state has no node {label!r}; nodes: {', '.join(self.params)}"
            ) from None

    def with_params(self, updates: Mapping[str, Any]) -> GraphState:
        """A new state with some nodes' params replaced."""
        unknown = [k for k in updates if k not in self.params]
        if unknown:
            raise GraphError(f"cannot update unknown nodes {unknown}; nodes: {', '.join(self.params)}")
        merged = dict(self.params)
        merged.update(updates)
        return attrs.evolve(self, params=merged)

    def __repr__(self) -> str:
        lines = ["GraphState("]
        for label, s in self.shapes.items():
            p = self.params.get(label)
            kind = type(p).__name__ if p is not None else "merge"
            ins = " + ".join(str(list(i)) for i in s.input_shapes)
            lines.append(f"  {label}: {ins} -> {list(s.output_shape)} [{kind}]")
        for a, b in self.gradient_stops:
            lines.append(f"  gradient stops between {a} -> {b} (backend boundary)")
        lines.append(")")
        return "\n".join(lines)


@attrs.frozen
class ForwardResult:
    """Outputs of every node that ran, and params records whose buffers changed (training)."""

    outputs: Mapping[str, Any]
    params: Mapping[str, Any]

    def update(self, state: GraphState) -> GraphState:
        """``state`` with the changed params (e.g. BatchNorm statistics) written in."""
        return state.with_params(self.params) if self.params else state


# -- build ----------------------------------------------------------------------------------


def _featureset(ref: FeatureSetRef, featuresets: Mapping[str, FeatureSet], node: str) -> FeatureSet:
    try:
        return featuresets[ref.featureset]
    except KeyError:
        raise GraphError(
            f"node {node!r} reads FeatureSet {ref.featureset!r}, which was not given; "
            f"available: {', '.join(featuresets) or '(none)'}"
        ) from None


def _ref_shape(ref: FeatureSetRef, fs: FeatureSet, domain: str, node: str) -> Shape | None:
    keys = getattr(ref, domain) or None
    if domain != "features" and not fs.keys(domain) and not keys:
        return None
    try:
        return fs.domain_shape(domain, keys)
    except MMLError as exc:
        raise GraphError(f"node {node!r}: {exc}") from exc


def _target_shape(graph: ModelGraph, label: str, featuresets: Mapping[str, FeatureSet]) -> Shape | None:
    def leaf(head: str, ref: FeatureSetRef) -> Shape | None:
        return _ref_shape(ref, _featureset(ref, featuresets, head), "targets", head)

    return target_shape(graph, label, leaf)


def build(
    graph: ModelGraph,
    featuresets: Mapping[str, FeatureSet],
    key: Key | int,
    *,
    device: Any = None,
) -> GraphState:
    """Infer shapes through ``graph`` and initialise every model node from ``key``.

    Same key ⇒ bit-identical params. A shape mismatch between stages raises
    :class:`~mml.ShapeError` naming both nodes and both shapes.
    """
    from mml import backends

    key = as_key(key)
    params: dict[str, Any] = {}
    shapes: dict[str, NodeShapes] = {}
    tails = set(graph.tails)
    for label in graph.topological_order:
        node = graph[label]
        in_shapes: list[Shape] = []
        for ref in node.upstream_refs:
            if isinstance(ref, FeatureSetRef):
                fs = _featureset(ref, featuresets, label)
                shape = _ref_shape(ref, fs, "features", label)
                assert shape is not None
                in_shapes.append(shape)
            else:
                in_shapes.append(shapes[ref.label].output_shape)
        if isinstance(node, ModelNode):
            target_shape = None
            if label in tails:
                # the targets of a tail are its inputs', combined by any joining node on the way
                target_shape = _target_shape(graph, label, featuresets)
            try:
                p = backends.init_params(
                    node.model,
                    in_shapes[0],
                    None,
                    key=fold_in(key, label),
                    device=node.device or device or "cpu",
                    target_shape=target_shape,
                )
            except ShapeError:
                raise
            except MMLError as exc:
                up = node.upstream_refs[0]
                src = f"node {up.label!r}" if isinstance(up, NodeRef) else f"FeatureSet {up.featureset!r}"
                raise type(exc)(
                    f"building node {label!r} (input {list(in_shapes[0])} from {src}): {exc}"
                ) from exc
            except (RuntimeError, ValueError, TypeError) as exc:
                up = node.upstream_refs[0]
                src = f"node {up.label!r}" if isinstance(up, NodeRef) else f"FeatureSet {up.featureset!r}"
                raise ShapeError(
                    f"node {label!r} cannot take input of shape {list(in_shapes[0])} from {src}: {exc}"
                ) from exc
            params[label] = p
            shapes[label] = NodeShapes((in_shapes[0],), p.output_shape)
        else:
            try:
                out_shape = node.output_shape(in_shapes)  # type: ignore[attr-defined]
            except ShapeError as exc:
                ups = ", ".join(
                    f"{r.label if isinstance(r, NodeRef) else r.featureset} {list(s)}"
                    for r, s in zip(node.upstream_refs, in_shapes)
                )
                raise ShapeError(f"node {label!r} cannot combine its inputs ({ups}): {exc}") from exc
            params[label] = None
            shapes[label] = NodeShapes(tuple(in_shapes), out_shape)
    return GraphState(params=params, shapes=shapes, gradient_stops=graph.gradient_stops)


def gradient_stops(graph: ModelGraph) -> tuple[tuple[str, str], ...]:
    """Pairs ``(upstream, downstream)`` of nodes between which gradients stop (a backend boundary).

    Model nodes are paired along the graph's data paths, through joining nodes; the same pairs
    as ``build(...).gradient_stops`` (a fact of the graph, cached on it).

    >>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef, NodeRef
    >>> from mml.models import SequentialMLP, SklearnModel
    >>> g = ModelGraph.of(ModelNode("pca", SklearnModel("sklearn.decomposition:PCA"), FeatureSetRef("fs")),
    ...                   ModelNode("head", SequentialMLP(hidden=(4,)), NodeRef("pca")))
    >>> gradient_stops(g)
    (('pca', 'head'),)
    """
    return graph.gradient_stops


# -- forward --------------------------------------------------------------------------------


@attrs.frozen
class _Step:
    label: str
    node: AbstractNode
    is_model: bool
    backend: str | None
    sources: tuple[tuple[str, str], ...]  # ("node", label) | ("fs", featureset label)


def _plan(graph: ModelGraph, active: frozenset[str] | None) -> tuple[_Step, ...]:
    """The nodes to run (in order) for ``active`` nodes and everything upstream of them.

    Computed once per graph value and set of active nodes, and kept on the graph.
    """
    memo = graph._derived
    key = ("forward_plan", active)
    steps = memo.get(key)
    if steps is None:
        steps = memo[key] = _compute_plan(graph, active)
    return steps  # type: ignore[no-any-return]


def _compute_plan(graph: ModelGraph, active: frozenset[str] | None) -> tuple[_Step, ...]:
    if active is None:
        needed = set(graph.topological_order)
    else:
        unknown = sorted(a for a in active if a not in graph)
        if unknown:
            raise GraphError(
                f"active_nodes {unknown} are not in the graph; nodes: {', '.join(graph.topological_order)}"
            )
        needed = set(graph.ancestors(active))
    steps = []
    for label in graph.topological_order:
        if label not in needed:
            continue
        node = graph[label]
        sources = tuple(
            ("node", r.label) if isinstance(r, NodeRef) else ("fs", r.featureset) for r in node.upstream_refs
        )
        steps.append(_Step(label, node, isinstance(node, ModelNode), node.backend, sources))
    return tuple(steps)


def head_inputs(inputs: Any) -> Mapping[str, Any]:
    """Normalise forward inputs to a mapping (see :func:`forward`)."""
    if isinstance(inputs, Mapping):
        return inputs
    if isinstance(inputs, Batch):
        return {"*": inputs.roles[next(iter(inputs.roles))] if len(inputs.roles) == 1 else inputs}
    return {"*": inputs}


def _features(value: Any, label: str) -> Any:
    if isinstance(value, SampleData):
        return value.features
    if isinstance(value, Batch):
        raise GraphError(
            f"node {label!r} got a batch with roles {', '.join(value.roles)}; pass one role's SampleData per head"
        )
    return value


def _lookup(inputs: Mapping[str, Any], label: str, fs_label: str) -> Any:
    for k in (label, fs_label, "*"):
        if k in inputs:
            return _features(inputs[k], label)
    raise GraphError(
        f"no input for node {label!r} (reads FeatureSet {fs_label!r}); give inputs keyed by the head label "
        f"or the FeatureSet label; got keys {', '.join(inputs) or '(none)'}"
    )


def forward(
    graph: ModelGraph,
    state: GraphState,
    inputs: Any,
    *,
    training: bool = False,
    key: Key | None = None,
    active_nodes: Iterable[str] | None = None,
    stop_gradients: bool = False,
) -> ForwardResult:
    """Run the graph (or the part needed for ``active_nodes``) in topological order.

    ``inputs`` is one :class:`~mml.SampleData`/array used by every head, or a mapping keyed by
    head label or FeatureSet label. Outputs are backend tensors (torch for torch nodes,
    numpy for scikit-learn); data crossing a backend boundary is converted and gradients stop
    there. With ``stop_gradients=True`` torch outputs are detached between nodes (stage-wise
    training). Inputs are never mutated.
    """
    active = None if active_nodes is None else frozenset(active_nodes)
    steps = _plan(graph, active)
    feed = head_inputs(inputs)
    outputs: dict[str, Any] = {}
    changed: dict[str, Any] = {}
    for step in steps:
        xs = []
        for kind, name in step.sources:
            if kind == "node":
                x = outputs[name]
                if stop_gradients and hasattr(x, "detach"):
                    x = x.detach()
            else:
                x = _lookup(feed, step.label, name)
            xs.append(x)
        if step.is_model:
            node: ModelNode = step.node  # type: ignore[assignment]
            params = state.params[step.label]
            x = to_backend(xs[0], step.backend) if step.backend else xs[0]
            node_key = fold_in(key, step.label) if (training and key is not None) else None
            y, new_params = apply(node.model, params, x, training=training and not node.frozen, key=node_key)
            if new_params is not params:
                changed[step.label] = new_params
            outputs[step.label] = y
        else:
            backend = _common_backend(xs)
            xs = [to_backend(x, backend) for x in xs] if backend else xs
            outputs[step.label] = step.node.combine(xs)  # type: ignore[attr-defined]
    return ForwardResult(outputs=FrozenDict(outputs), params=FrozenDict(changed))


def _common_backend(xs: list[Any]) -> str | None:
    mods = {type(x).__module__.split(".")[0] for x in xs}
    if "torch" in mods:
        return "torch"
    if "tensorflow" in mods or "keras" in mods:
        return "tensorflow"
    if all(isinstance(x, np.ndarray) for x in xs):
        return None
    return None
