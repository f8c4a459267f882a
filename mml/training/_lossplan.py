"""Applied losses resolved once per phase: which backend computes each, where its inputs come from.

>>> import mml
>>> from mml.graph import FeatureSetRef, ModelGraph, ModelNode
>>> from mml.models import SequentialMLP
>>> g = ModelGraph.of(ModelNode("m", SequentialMLP(hidden=(2,), backend="tensorflow"), FeatureSetRef("fs")))
>>> loss_backend(g, "m")
'tensorflow'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mml.backends import as_loss_input
from mml.errors import TrainingError
from mml.graph import ModelGraph, ModelNode, node_targets, target_plan
from mml.training._losses import AppliedLoss, compile_loss

__all__ = ["LossPlan", "loss_backend"]


def loss_backend(graph: ModelGraph, label: str) -> str:
    """The tensor library a loss bound to ``label`` computes in: ``"tensorflow"`` or ``"torch"``.

    A model node's own backend (scikit-learn outputs are numpy and go to torch); a joining
    node's is that of its inputs (torch wins, as when the graph combines them).
    """
    node = graph[label]
    if isinstance(node, ModelNode):
        return "tensorflow" if node.backend == "tensorflow" else "torch"
    found = {loss_backend(graph, up) for up in node.node_upstreams}
    return "tensorflow" if found == {"tensorflow"} else "torch"


class LossPlan:
    """One applied loss, resolved once per phase (not a value: never saved)."""

    __slots__ = (
        "applied",
        "backend",
        "fn",
        "getters",
        "graph",
        "head",
        "name",
        "node",
        "targets",
        "tf",
        "weight",
        "weight_roles",
    )

    def __init__(self, applied: AppliedLoss, graph: ModelGraph, bound: Sequence[str]) -> None:
        self.applied = applied
        self.graph = graph
        self.targets = target_plan(graph, applied.node)  # joining nodes' targets= strategies
        self.backend = loss_backend(graph, applied.node)
        self.tf = self.backend == "tensorflow"
        self.fn = compile_loss(applied.loss, self.backend)
        self.name = applied.name
        self.node = applied.node
        self.weight = applied.weight
        heads = [h for h in graph.heads_of(applied.node) if h in bound]
        self.head = heads[0] if heads else None
        self.getters = [(s.role or "default", s.source, s.key) for s in applied.specs]
        # per-sample weights and masks of every role the loss reads are combined (product / and)
        self.weight_roles = tuple(dict.fromkeys(g[0] for g in self.getters))

    def value(self, outputs: Mapping[str, Any], data: Mapping[str, Any]) -> Any:
        """The loss of one step: a scalar tensor of :attr:`backend`."""
        backend = self.backend
        args = []
        for role, source, key in self.getters:
            if source == "outputs":
                try:
                    y = outputs[role][self.node]
                except KeyError:
                    raise TrainingError(_missing(self, role, outputs)) from None
            elif source == "targets":
                if role not in data:
                    raise TrainingError(_missing(self, role, data))
                y = node_targets(self.graph, self.node, data[role], self.targets)
                if y is None:
                    raise TrainingError(
                        f"loss {self.name!r} reads targets but the batch of {self.head!r} has none"
                    )
            else:
                try:
                    sd = data[role][self.head]
                except KeyError:
                    raise TrainingError(_missing(self, role, data)) from None
                y = sd.tags[key] if source == "tags" else getattr(sd, source)
                if y is None:
                    raise TrainingError(
                        f"loss {self.name!r} reads {source} but the batch of {self.head!r} has none"
                    )
            args.append(as_loss_input(y, backend))
        w = m = None
        if self.head is not None:
            for role in self.weight_roles:
                sd = data.get(role, {}).get(self.head)
                if sd is None:
                    continue
                if sd.weights is not None:
                    sw = as_loss_input(sd.weights, backend)
                    w = sw if w is None else w * sw
                if sd.mask is not None:
                    sm = as_loss_input(sd.mask, backend)
                    m = sm if m is None else m & sm
        return self.fn(args, w, m)


def _missing(lp: LossPlan, role: str, found: Mapping[str, Any]) -> str:
    return (
        f"loss {lp.name!r} reads role {role!r} but the batch has roles {', '.join(found)}; qualify the "
        "inputs with a role, e.g. inputs=('anchor.outputs', 'positive.outputs', 'negative.outputs')"
    )
