"""Evaluation: forward bound splits in order without training, average losses, stack outputs.

>>> callable(evaluate)
True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from mml.backends import feed_data, no_grad, params_device, to_numpy
from mml.graph import ModelGraph, TargetPlan, forward, node_targets, target_leaves, target_plan
from mml.scalers import inverse_transform
from mml.training._class_ids import check_class_ids
from mml.training._experiment import Experiment
from mml.training._losses import AppliedLoss
from mml.training._lossplan import LossPlan
from mml.training._phases import EvalPhase, InputBinding
from mml.training._results import EvalResult
from mml.training._state import ExecutionContext, TrainState
from mml.training._validate import require_train_state
from mml.training._views import feed_backend, full_batches, head_keys

__all__ = ["eval_steps", "evaluate"]


def evaluate(
    experiment: Experiment,
    state: TrainState,
    inputs: Mapping[str, InputBinding],
    *,
    losses: Sequence[AppliedLoss] = (),
    batch_size: int = 1024,
    nodes: Sequence[str] | None = None,
    inverse_transform: bool = False,
    split: str | None = None,
    label: str = "eval",
) -> EvalResult:
    """Forward the bound splits in order (no training), compute ``losses`` and stack outputs.

    ``split`` overrides the split of every binding (``Evaluation(split="val")`` uses it).
    Losses are averaged over samples (batch losses weighted by batch size).
    """
    require_train_state(state, "evaluate")
    graph = experiment.graph
    heads = [h for h in graph.topological_order if h in inputs]
    want = (
        list(nodes) if nodes is not None else list(dict.fromkeys([*graph.tails, *(a.node for a in losses)]))
    )
    active = graph.ancestors(want)
    lplans = [LossPlan(a, graph, heads) for a in losses]
    iters = {h: full_batches(experiment, h, inputs[h], batch_size, split) for h in heads if h in active}
    devices = {h: params_device(state.graph.params[h]) for h in iters}
    backends = {h: feed_backend(graph, h) for h in iters}
    outs: dict[str, list[Any]] = {n: [] for n in want}
    head_tgts: dict[str, list[Any]] = {}
    uuids: list[Any] = []
    sums: dict[str, float] = {}
    count = 0
    with no_grad():
        for batch_tuple in zip(*iters.values()):
            batches = dict(zip(iters, batch_tuple))
            first = batch_tuple[0]
            roles = tuple(first.roles)
            check_class_ids(lplans, {h: b.roles[roles[0]] for h, b in batches.items()}, state.graph.shapes)
            data = {
                r: {h: feed_data(b.roles[r], backends[h], devices.get(h)) for h, b in batches.items()}
                for r in roles
            }
            outputs = {}
            for r in roles:
                outputs[r] = forward(graph, state.graph, data[r], training=False, active_nodes=active).outputs
            nb = len(first)
            count += nb
            for lp in lplans:
                sums[lp.name] = sums.get(lp.name, 0.0) + float(lp.value(outputs, data)) * nb
            r0 = roles[0]
            for n in want:
                y = outputs[r0].get(n)
                if y is not None:
                    outs[n].append(to_numpy(y))
            for h, b in batches.items():
                if b.roles[r0].targets is not None:
                    head_tgts.setdefault(h, []).append(np.asarray(b.roles[r0].targets))
            if first.roles[r0].sample_uuids is not None:
                uuids.append(np.asarray(first.roles[r0].sample_uuids))
    loss_means = {k: v / max(count, 1) for k, v in sums.items()}
    if lplans:
        loss_means["loss"] = sum(lp.weight * loss_means[lp.name] for lp in lplans)
    stacked = {n: np.concatenate(v) for n, v in outs.items() if v}
    by_head = {h: np.concatenate(v) for h, v in head_tgts.items()}
    targets = _node_targets(graph, want, by_head)
    if inverse_transform:
        stacked, targets = _inverse(experiment, inputs, want, stacked, targets, by_head)
    ids = {"default": np.concatenate(uuids)} if uuids else {}
    return EvalResult(label, loss_means, stacked, targets, ids)


def _node_targets(graph: ModelGraph, nodes: Sequence[str], by_head: Mapping[str, Any]) -> dict[str, Any]:
    """Each node's targets from the heads' stacked targets (joining nodes' ``targets=`` applied)."""
    out = {}
    for n in nodes:
        leaves = target_leaves(target_plan(graph, n))
        if leaves and all(leaf.head in by_head for leaf in leaves):
            y = node_targets(graph, n, by_head)
            if y is not None:
                out[n] = y
    return out


def _inverse(
    experiment: Experiment,
    inputs: Mapping[str, InputBinding],
    nodes: Sequence[str],
    outs: dict[str, Any],
    tgts: dict[str, Any],
    by_head: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Outputs and targets in raw units: each head's targets inverted with its own scalers.

    A node whose targets concatenate several heads' (``targets="concat"``) has its output
    columns split the same way; averaged targets of different columns (``"mean"``) have no
    single inverse, so such a node keeps transformed units.
    """
    graph = experiment.graph

    def invert(h: str, arr: Any) -> Any:
        b = inputs[h]
        resolved = head_keys(experiment, h, b)
        if resolved["rep"] == "raw":
            return arr  # the node read raw targets: already in raw units
        fs = experiment.featuresets[b.featureset]
        return inverse_transform(fs, arr, domain="targets", keys=resolved["targets"])

    new_o, new_t = dict(outs), dict(tgts)
    for n in nodes:
        if n not in tgts:
            continue
        plan = target_plan(graph, n)
        leaves = target_leaves(plan)
        if isinstance(plan, TargetPlan) and (
            plan.strategy != "concat"
            or any(isinstance(p, TargetPlan) and p.strategy != "concat" for p in plan.parts)
        ):
            continue
        raw = {leaf.head: invert(leaf.head, by_head[leaf.head]) for leaf in leaves}
        new_t[n] = node_targets(graph, n, raw)
        if n not in outs or outs[n].shape != tgts[n].shape:
            continue
        if len(leaves) == 1:
            new_o[n] = invert(leaves[0].head, outs[n])
        elif all(by_head[leaf.head].ndim == 2 for leaf in leaves):
            # the output columns line up with the concatenated targets: split, invert, rejoin
            cuts = np.cumsum([by_head[leaf.head].shape[1] for leaf in leaves])[:-1]
            pieces = np.split(outs[n], cuts, axis=1)
            new_o[n] = np.concatenate([invert(leaf.head, p) for leaf, p in zip(leaves, pieces)], axis=1)
    return new_o, new_t


def eval_steps(
    experiment: Experiment, phase: EvalPhase, state: TrainState
) -> Iterator[tuple[TrainState, ExecutionContext]]:
    res = evaluate(
        experiment,
        state,
        phase.inputs,
        losses=phase.losses,
        batch_size=phase.batch_size,
        nodes=phase.nodes,
        inverse_transform=phase.inverse_transform,
        label=phase.label,
    )
    ctx = ExecutionContext(
        phase.label, 0, -1, state.step, {}, {"default": res.outputs}, res.losses, event="eval"
    )
    yield state, ctx
