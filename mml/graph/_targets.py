"""Where a node's targets come from: the FeatureSet inputs upstream, combined by joining nodes.

A model node's targets are those of its input; a :class:`~mml.graph.ConcatNode` or
:class:`~mml.graph.MergeNode` combines its upstreams' targets by its ``targets=`` strategy
(``"concat"``, ``"first"``, ``"last"``, ``"mean"`` or a :class:`~mml.graph.NodeRef`). The
rule is resolved once per node into a :class:`TargetPlan`; :func:`node_targets` applies it to
one batch (training, evaluation, fitting) and :func:`target_shape` to per-sample shapes
(:func:`~mml.graph.build`). Upstreams that read the same target columns (same FeatureSet,
target keys and representation) contribute them once, so two branches of one FeatureSet keep
its targets as they are.

>>> import numpy as np
>>> from mml.graph import ModelGraph, ModelNode, ConcatNode, FeatureSetRef, NodeRef
>>> g = ModelGraph.of(
...     ModelNode("a", "spec", FeatureSetRef("fs", targets="y1")),
...     ModelNode("b", "spec", FeatureSetRef("fs", targets="y2")),
...     ConcatNode("cat", (NodeRef("a"), NodeRef("b"))),
...     ModelNode("head", "spec", NodeRef("cat")),
... )
>>> node_targets(g, "head", {"a": np.zeros((3, 1)), "b": np.ones((3, 1))}).shape
(3, 2)
>>> target_shape(g, "head", lambda head, ref: (1,))
(2,)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from mml.data import SampleData
from mml.errors import GraphError, ShapeError
from mml.graph._join import AbstractJoinNode, _Ops
from mml.graph._nodes import ModelNode
from mml.graph._refs import FeatureSetRef, NodeRef

if TYPE_CHECKING:  # the graph module imports this one
    from mml.graph._graph import ModelGraph

__all__ = ["TargetLeaf", "TargetPlan", "target_plan", "node_targets", "target_shape", "target_leaves"]

Shape = tuple[int, ...]


@attrs.frozen
class TargetLeaf:
    """Targets read straight from data: those of the batch bound to head ``head`` (through ``ref``)."""

    head: str
    ref: FeatureSetRef

    @property
    def source(self) -> tuple[str, tuple[str, ...], str | None]:
        """What makes two leaves the same target columns: FeatureSet, target keys, representation."""
        return (self.ref.featureset, self.ref.targets, self.ref.rep)


@attrs.frozen
class TargetPlan:
    """Targets combined at joining node ``node`` by ``strategy`` from ``parts`` (plans or leaves)."""

    node: Any
    strategy: str
    parts: tuple[TargetPlan | TargetLeaf, ...]


Plan = TargetPlan | TargetLeaf


def target_plan(graph: ModelGraph, label: str) -> Plan:
    """How the targets of node ``label`` are made, resolved once (a :class:`TargetLeaf` or :class:`TargetPlan`).

    ``"first"``, ``"last"`` and a NodeRef pick one upstream here, so only ``"concat"`` and
    ``"mean"`` over distinct target columns remain to be computed per batch.

    >>> from mml.graph import ModelGraph, ModelNode, MergeNode, FeatureSetRef, NodeRef
    >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", FeatureSetRef("gs")),
    ...                   MergeNode("m", (NodeRef("a"), NodeRef("b")), targets=NodeRef("b")))
    >>> target_plan(g, "m")
    TargetLeaf(head='b', ref=FeatureSetRef(featureset='gs', features=(), targets=(), tags=(), rep=None))
    """
    node = graph[label]
    if isinstance(node, ModelNode):
        return _ref_plan(graph, label, node.upstream)
    if not isinstance(node, AbstractJoinNode):
        raise GraphError(
            f"node {label!r} is a {type(node).__name__}: targets are known for model and join nodes only"
        )
    refs = node.upstream_refs
    strategy = node.targets
    if isinstance(strategy, NodeRef):
        return _ref_plan(graph, label, refs[refs.index(strategy)])
    if strategy == "first":
        return _ref_plan(graph, label, refs[0])
    if strategy == "last":
        return _ref_plan(graph, label, refs[-1])
    parts: list[Plan] = []
    for ref in refs:
        part = _ref_plan(graph, label, ref)
        if part not in parts and not _same_columns(part, parts):
            parts.append(part)
    if len(parts) == 1:
        return parts[0]
    return TargetPlan(node, strategy, tuple(parts))


def _same_columns(part: Plan, parts: list[Plan]) -> bool:
    return isinstance(part, TargetLeaf) and any(
        isinstance(p, TargetLeaf) and p.source == part.source for p in parts
    )


def _ref_plan(graph: ModelGraph, consumer: str, ref: Any) -> Plan:
    if isinstance(ref, FeatureSetRef):
        return TargetLeaf(consumer, ref)
    return target_plan(graph, ref.label)


def target_leaves(plan: Plan) -> tuple[TargetLeaf, ...]:
    """The leaves of a plan, in order (the heads whose batches the targets are read from).

    >>> target_leaves(TargetLeaf("a", FeatureSetRef("fs"))) == (TargetLeaf("a", FeatureSetRef("fs")),)
    True
    """
    if isinstance(plan, TargetLeaf):
        return (plan,)
    return tuple(leaf for p in plan.parts for leaf in target_leaves(p))


def _values(value: Any) -> Any:
    return value.targets if isinstance(value, SampleData) else value


def node_targets(graph: ModelGraph, label: str, data: Mapping[str, Any], plan: Plan | None = None) -> Any:
    """The targets of node ``label`` for one batch: ``data`` maps head label → targets (or SampleData).

    ``plan`` (from :func:`target_plan`) saves resolving it again on every batch. A head the
    plan needs but ``data`` lacks is a :class:`~mml.errors.GraphError` naming both nodes.

    >>> import numpy as np
    >>> from mml.graph import ModelGraph, ModelNode, MergeNode, FeatureSetRef, NodeRef
    >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs", targets="u")),
    ...                   ModelNode("b", "s", FeatureSetRef("fs", targets="v")),
    ...                   MergeNode("m", (NodeRef("a"), NodeRef("b")), targets="mean"))
    >>> node_targets(g, "m", {"a": np.array([[1.0]]), "b": np.array([[3.0]])}).tolist()
    [[2.0]]
    """
    plan = target_plan(graph, label) if plan is None else plan
    return _evaluate(plan, label, data)


def _evaluate(plan: Plan, label: str, data: Mapping[str, Any]) -> Any:
    if isinstance(plan, TargetLeaf):
        try:
            return _values(data[plan.head])
        except KeyError:
            raise GraphError(
                f"the targets of node {label!r} come from head {plan.head!r} (FeatureSet "
                f"{plan.ref.featureset!r}), but no batch of {plan.head!r} was given (heads: "
                f"{', '.join(map(repr, data)) or 'none'}); bind an input to {plan.head!r}"
            ) from None
    values = [_evaluate(p, label, data) for p in plan.parts]
    return _combine(plan, values)


def _combine(plan: TargetPlan, values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return None
    if plan.strategy == "mean":
        total = present[0]
        for v in present[1:]:
            total = total + v
        return total / len(present)
    # targets are (batch, ...); scalar-per-sample targets are seen as (batch, 1)
    parts = [v if len(v.shape) > 1 else v[:, None] for v in present]
    return _Ops(parts[0]).concat(parts, -1)


def target_shape(
    graph: ModelGraph, label: str, leaf_shape: Callable[[str, FeatureSetRef], Shape | None]
) -> Shape | None:
    """The per-sample target shape of node ``label``; ``leaf_shape(head, ref)`` gives each input's.

    ``None`` when no input has targets. Shapes that ``"concat"`` or ``"mean"`` cannot combine
    are a :class:`~mml.errors.ShapeError` naming the joining node and the shapes.

    >>> from mml.graph import ModelGraph, ModelNode, ConcatNode, FeatureSetRef, NodeRef
    >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs", targets="u")),
    ...                   ModelNode("b", "s", FeatureSetRef("fs", targets="v")),
    ...                   ConcatNode("c", (NodeRef("a"), NodeRef("b"))))
    >>> target_shape(g, "c", lambda head, ref: {"u": (1,), "v": (3,)}[ref.targets[0]])
    (4,)
    """
    return _shape(target_plan(graph, label), leaf_shape)


def _shape(plan: Plan, leaf_shape: Callable[[str, FeatureSetRef], Shape | None]) -> Shape | None:
    if isinstance(plan, TargetLeaf):
        return leaf_shape(plan.head, plan.ref)
    shapes = [s for s in (_shape(p, leaf_shape) for p in plan.parts) if s is not None]
    if not shapes:
        return None
    node = plan.node
    where = f"{type(node).__name__} {node.label!r} (targets={plan.strategy!r})"
    if plan.strategy == "mean":
        if len(set(shapes)) > 1:
            raise ShapeError(
                f"{where} averages targets of per-sample shapes {', '.join(map(str, shapes))}, which differ; "
                "choose targets='concat', 'first' or a NodeRef to one upstream"
            )
        return shapes[0]
    shapes = [s if s else (1,) for s in shapes]
    if len({s[:-1] for s in shapes}) > 1:
        raise ShapeError(
            f"{where} concatenates targets along the last axis, but their per-sample shapes "
            f"{', '.join(map(str, shapes))} differ before it; choose targets='first' or a NodeRef to one upstream"
        )
    return (*shapes[0][:-1], sum(s[-1] for s in shapes))
