"""Facts about the data paths of a graph: where gradients stop.

Joining nodes (:class:`~mml.graph.ConcatNode`, :class:`~mml.graph.MergeNode`) carry data but
hold no parameters, so the edges that matter for gradients are the *paths* from one model
node to the next, through any number of joining nodes. A joining node computes in the tensor
library of its inputs (torch if any input is torch, else TensorFlow if any is, else numpy),
exactly as :func:`~mml.graph.forward` converts them.

>>> from mml.graph import ModelGraph, ModelNode, ConcatNode, FeatureSetRef, NodeRef
>>> class Spec:
...     def __init__(self, backend): self.backend = backend
>>> g = ModelGraph.of(
...     ModelNode("a", Spec("torch"), FeatureSetRef("fs")),
...     ModelNode("b", Spec("torch"), FeatureSetRef("fs")),
...     ConcatNode("cat", (NodeRef("a"), NodeRef("b"))),
...     ModelNode("head", Spec("tensorflow"), NodeRef("cat")),
... )
>>> gradient_stops(g)
(('a', 'head'), ('b', 'head'))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mml.graph._nodes import ModelNode
from mml.graph._refs import NodeRef

if TYPE_CHECKING:  # the graph module imports this one
    from mml.graph._graph import ModelGraph

__all__ = ["GRADIENT_BACKENDS", "gradient_stops", "join_backend"]

#: backends whose nodes are trained by gradients (scikit-learn nodes are fitted, never differentiated)
GRADIENT_BACKENDS: tuple[str, ...] = ("torch", "tensorflow")


def join_backend(backends: Any) -> str | None:
    """The tensor library a joining node computes in, given its inputs' libraries.

    >>> join_backend(["tensorflow", "torch"]), join_backend(["tensorflow", None]), join_backend([None, "sklearn"])
    ('torch', 'tensorflow', None)
    """
    found = set(backends)
    if "torch" in found:
        return "torch"
    if "tensorflow" in found:
        return "tensorflow"
    return None


def _output_backends(graph: ModelGraph) -> dict[str, str | None]:
    """Per node: the library its output is in (``None`` for numpy: scikit-learn, FeatureSets)."""
    out: dict[str, str | None] = {}
    for label in graph.topological_order:
        node = graph[label]
        if isinstance(node, ModelNode):
            b = node.backend
            out[label] = b if b in GRADIENT_BACKENDS else None
        else:
            out[label] = join_backend(
                out[r.label] if isinstance(r, NodeRef) else None for r in node.upstream_refs
            )
    return out


def gradient_stops(graph: ModelGraph) -> tuple[tuple[str, str], ...]:
    """The ``(upstream, downstream)`` pairs between which gradients stop at a backend boundary.

    Each pair joins a model node to the next model node along a data path (through any
    joining nodes), or to a tail joining node (where a loss may be bound). Gradients stop when
    the data change library anywhere on the way: at the consuming model node, or at a joining
    node that computes in another library. Pairs are in topological order of the downstream
    node, then of the upstream one. :attr:`ModelGraph.gradient_stops` caches this.

    >>> from mml.graph import ModelGraph, ModelNode, MergeNode, FeatureSetRef, NodeRef
    >>> class Spec:
    ...     def __init__(self, backend): self.backend = backend
    >>> g = ModelGraph.of(
    ...     ModelNode("t", Spec("torch"), FeatureSetRef("fs")),
    ...     ModelNode("k", Spec("tensorflow"), FeatureSetRef("fs")),
    ...     MergeNode("sum", (NodeRef("t"), NodeRef("k"))),
    ...     ModelNode("head", Spec("torch"), NodeRef("sum")),
    ... )
    >>> gradient_stops(g)  # the Keras output becomes torch at 'sum'
    (('k', 'head'),)
    """
    order = {label: i for i, label in enumerate(graph.topological_order)}
    lib = _output_backends(graph)
    found: set[tuple[str, str]] = set()
    for a in graph.topological_order:
        node = graph[a]
        if not isinstance(node, ModelNode) or node.backend is None:
            continue
        mine = lib[a]
        stack = [(d, False) for d in graph.downstream(a)]
        seen: set[tuple[str, bool]] = set()
        while stack:
            d, broken = stack.pop()
            if (d, broken) in seen:
                continue
            seen.add((d, broken))
            down = graph[d]
            if isinstance(down, ModelNode):
                if down.backend is None:
                    continue  # a spec that names no backend: nothing to say
                if broken or down.backend != node.backend:
                    found.add((a, d))
                continue
            broken = broken or lib[d] != mine
            after = graph.downstream(d)
            if not after:
                if broken:
                    found.add((a, d))
                continue
            stack.extend((x, broken) for x in after)
    return tuple(sorted(found, key=lambda p: (order[p[1]], order[p[0]])))
