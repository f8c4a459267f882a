"""Which jobs can train as one stacked model: :func:`vectorize_problem` says why not, or ``None``.

K jobs vectorise when they are the same experiment up to shape-preserving hyperparameters —
learning rates, weight decay, betas, dropout rates, loss weights, epoch counts, the key and the
FeatureSet's rows (cross-validation folds) — and every training phase is of the supported
kind: one input binding, one sampler role, torch :class:`~mml.models.SequentialMLP` nodes
(dropout included) and :class:`~mml.models.SequentialCNN` / :class:`~mml.models.TemporalCNN`
nodes (without dropout) joined as a chain or tree, an SGD/Adam/AdamW optimizer (clipped or not), callbacks with
epoch-level hooks only, on the CPU. Everything else runs sequentially (the message names
what stopped it).

>>> vectorize_problem([])
'there are no jobs'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from mml.callbacks import AbstractCallback
from mml.graph import ModelGraph
from mml.strategies._jobs import Job
from mml.strategies._stacked import optimizer_problem
from mml.training import EvalPhase, PhaseGroup, TrainPhase

__all__ = ["vectorize_problem", "plan_leaves", "train_optimizers", "loss_inputs_problem", "phase_nodes"]


def plan_leaves(plan: Any) -> list[Any]:
    """The leaf phases of a plan, in run order (groups flattened)."""
    if isinstance(plan, PhaseGroup):
        return [leaf for p in plan.phases for leaf in plan_leaves(p)]
    return [plan]


def phase_nodes(graph: ModelGraph, phase: TrainPhase) -> tuple[list[str], list[str]]:
    """``(active, trainable)`` node labels of a training phase, in topological order, as the loop picks them."""
    loss_nodes = {a.node for a in phase.losses}
    seen = set(loss_nodes)
    stack = list(loss_nodes)
    while stack:
        for up in graph[stack.pop()].node_upstreams:
            if up not in seen:
                seen.add(up)
                stack.append(up)
    active = [n for n in graph.topological_order if n in seen]
    trainable = [n for n in active if not graph[n].frozen]
    if phase.mode == "stagewise":
        trainable = [n for n in trainable if n in loss_nodes]
    return active, trainable


def train_optimizers(graph: ModelGraph, phase: TrainPhase, trainable: Sequence[str]) -> dict[str, Any]:
    """Optimizer label → spec as the training loop resolves them (``None`` where one is missing)."""
    from mml.training import GRAPH_OPTIMIZER

    if phase.mode == "stagewise":
        return {n: graph[n].optimizer or phase.optimizer or graph.optimizer for n in trainable}
    return {GRAPH_OPTIMIZER: graph.optimizer or phase.optimizer}


def _without_dropout(model: Any) -> Any:
    return attrs.evolve(model, dropout=0.0) if hasattr(model, "dropout") else model


def _normal_graph(graph: ModelGraph) -> tuple[Any, ...]:
    """The graph with the shape-preserving hyperparameters blanked (dropout, optimizers)."""
    from mml.graph import ModelNode

    out = []
    for label in graph.topological_order:
        node = graph[label]
        if isinstance(node, ModelNode):
            node = attrs.evolve(node, model=_without_dropout(node.model), optimizer=None)
        out.append(node)
    return tuple(out)


def _normal_phase(phase: Any) -> Any:
    if isinstance(phase, TrainPhase):
        return attrs.evolve(
            phase,
            losses=tuple(attrs.evolve(a, weight=1.0) for a in phase.losses),
            n_epochs=1,
            optimizer=None,
            callbacks=(),
        )
    return phase


def loss_inputs_problem(phase: TrainPhase) -> str | None:
    """Why a phase's losses cannot be vectorised: only ``("outputs", "targets")`` without roles."""
    for a in phase.losses:
        if tuple((s.role, s.source) for s in a.specs) != ((None, "outputs"), (None, "targets")):
            return f"loss {a.name!r} reads {a.inputs}; vectorised losses read ('outputs', 'targets')"
    return None


def _phase_problem(graph: ModelGraph, phase: TrainPhase) -> str | None:
    from mml.graph import ModelNode
    from mml.models import SequentialCNN, SequentialMLP, TemporalCNN

    label = phase.label
    if len(phase.inputs) != 1:
        return f"phase {label!r} binds {len(phase.inputs)} heads; vectorised phases bind one"
    if phase.active_nodes is not None or phase.trainable is not None:
        return f"phase {label!r} sets active_nodes= / trainable=, which are not vectorised"
    from mml.samplers import SimpleSampler

    if not all(isinstance(b.sampler, SimpleSampler) for b in phase.inputs.values()):
        return f"phase {label!r} uses a multi-role sampler; vectorised phases use SimpleSampler"
    if phase.device is not None or phase.record != "none":
        return f"phase {label!r} sets device= or record=; vectorised training runs on the CPU, unrecorded"
    problem = loss_inputs_problem(phase)
    if problem:
        return f"phase {label!r}: {problem}"
    for node_label in graph.topological_order:
        node = graph[node_label]
        if not isinstance(node, ModelNode):
            return f"node {node_label!r} is a {type(node).__name__}; vectorised graphs hold model nodes only"
        model = node.model
        if not isinstance(model, (SequentialMLP, SequentialCNN, TemporalCNN)) or model.backend != "torch":
            return (
                f"node {node_label!r} is a {type(model).__name__} ({getattr(model, 'backend', '?')}); only torch "
                "SequentialMLP, SequentialCNN and TemporalCNN nodes are vectorised"
            )
        if not isinstance(model, SequentialMLP) and model.dropout:
            return f"node {node_label!r}: dropout in a {type(model).__name__} is not vectorised (SequentialMLP's is)"
        if node.device is not None:
            return f"node {node_label!r} sets device=; vectorised training runs on the CPU"
    active, trainable = phase_nodes(graph, phase)
    heads = [n for n in active if graph[n].is_head]
    if heads != list(phase.inputs):
        return f"phase {label!r} reaches head(s) {heads} but binds {list(phase.inputs)}"
    if not trainable:
        return f"phase {label!r} has no trainable node"
    for cb in phase.callbacks:
        if not isinstance(cb, AbstractCallback) or cb.has_batch_hooks:
            return (
                f"callback {type(cb).__name__} of phase {label!r} has batch hooks, which are not vectorised"
            )
        if type(cb).lr_scale is not AbstractCallback.lr_scale:
            return (
                f"callback {type(cb).__name__} of phase {label!r} scales the learning rate (not vectorised)"
            )
    return None


def vectorize_problem(jobs: Sequence[Job]) -> str | None:
    """Why ``jobs`` cannot train as one stacked model, or ``None`` when they can."""
    if not jobs:
        return "there are no jobs"
    first = jobs[0].experiment
    if first.callbacks:
        return "the experiment has experiment-level callbacks, which are not vectorised"
    leaves = plan_leaves(first.plan)
    for leaf in leaves:
        if not isinstance(leaf, (TrainPhase, EvalPhase)):
            return f"phase {leaf.label!r} is a {type(leaf).__name__}; vectorised plans hold train and eval phases"
        if isinstance(leaf, TrainPhase):
            problem = _phase_problem(first.graph, leaf)
            if problem:
                return problem
    shape = (_normal_graph(first.graph), [_normal_phase(p) for p in leaves], tuple(first.featuresets))
    for i, job in enumerate(jobs[1:], 1):
        exp = job.experiment
        other = plan_leaves(exp.plan)
        if (_normal_graph(exp.graph), [_normal_phase(p) for p in other], tuple(exp.featuresets)) != shape:
            return (
                f"job {i} differs from job 0 in more than shape-preserving hyperparameters (learning rate, "
                "weight decay, dropout, loss weights, epochs, data rows); shape-changing values run one by one"
            )
        if exp.callbacks:
            return "the experiment has experiment-level callbacks, which are not vectorised"
        for leaf in other:
            if isinstance(leaf, TrainPhase):
                problem = _phase_problem(exp.graph, leaf)
                if problem:
                    return problem
    for j, leaf in enumerate(leaves):
        if not isinstance(leaf, TrainPhase):
            continue
        per_job = [plan_leaves(job.experiment.plan)[j] for job in jobs]
        opts: dict[str, list[Any]] = {}
        for job, phase in zip(jobs, per_job):
            graph = job.experiment.graph
            _, trainable = phase_nodes(graph, phase)
            for name, opt in train_optimizers(graph, phase, trainable).items():
                if opt is None:
                    return f"phase {phase.label!r}: no optimizer for {name!r}"
                opts.setdefault(name, []).append(opt)
        for name, specs in opts.items():
            problem = optimizer_problem(specs)
            if problem:
                return f"phase {leaf.label!r}, {name!r}: {problem}"
    return None
