"""Checks of an Experiment that need the graph, the FeatureSets and the plan together.

:func:`~mml.training._experiment.validate` calls :func:`plan_problems`, which returns every
problem as a sentence (collected into one :class:`~mml.TrainingError` with the others), so a
mistake surfaces when the Experiment is built — not after the first epoch:

* a graph node reads a FeatureSet the Experiment does not have;
* a callback monitors a value (``EarlyStopping("val_loss")``) that an evaluation callback
  listed *after* it logs — on each epoch it would read the value before it exists;
* an evaluation callback reads a split that a bound FeatureSet lacks;
* an elementwise loss (``mse``, ``mae``, ``huber``, ``bce``) compares a node output and
  targets of different per-sample sizes (torch would broadcast them silently);
* a ``TrainPhase`` has only scikit-learn nodes without ``partial_fit``, which it cannot train;
* a phase's ``active_nodes`` leave out a node that an active node reads (it would have no input),
  or a node a loss of the phase is bound to (the loss would read nothing).

>>> ELEMENTWISE_LOSSES
('mse', 'mae', 'huber', 'bce', 'bce_with_logits')
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mml.errors import MMLError, TrainingError
from mml.graph import ModelGraph, ModelNode, close_matches, target_shape
from mml.training._phases import AbstractPhase, TrainPhase, iter_phases

if TYPE_CHECKING:  # the Experiment module imports this one
    from mml.training._experiment import Experiment

__all__ = ["ELEMENTWISE_LOSSES", "active_nodes", "check_state", "plan_problems", "require_train_state"]

#: built-in losses that compare outputs and targets element by element (their sizes must agree)
ELEMENTWISE_LOSSES: tuple[str, ...] = ("mse", "mae", "huber", "bce", "bce_with_logits")


def _missing_featuresets(exp: Experiment) -> list[str]:
    out = []
    for label in exp.graph.featuresets:
        if label in exp.featuresets:
            continue
        readers = [
            n
            for n in exp.graph
            for r in exp.graph[n].upstream_refs
            if getattr(r, "featureset", None) == label
        ]
        out.append(
            f"node(s) {', '.join(map(repr, dict.fromkeys(readers)))} read FeatureSet {label!r}"
            f"{close_matches(label, exp.featuresets)}, which the Experiment does not have (FeatureSets: "
            f"{', '.join(map(repr, exp.featuresets)) or 'none'}); pass it in featuresets= or fix the FeatureSetRef"
        )
    return out


def _logs_prefix(cb: Any) -> str | None:
    """The prefix of the values an evaluation callback logs (``"val_"``), or ``None``."""
    from mml.callbacks import Evaluation, MetricCallback

    if isinstance(cb, Evaluation):
        return cb.prefix if cb.prefix is not None else f"{cb.split}_"
    if isinstance(cb, MetricCallback):
        return f"{cb.split}_"
    return None


def _callback_problems(exp: Experiment, phase: AbstractPhase) -> list[str]:
    out = []
    cbs = phase.callbacks
    where = f"phase {phase.label!r}"
    for i, cb in enumerate(cbs):
        monitor = getattr(cb, "monitor", None)
        if isinstance(monitor, str):
            logged_before = any((p := _logs_prefix(c)) and monitor.startswith(p) for c in cbs[:i])
            later = [c for c in cbs[i + 1 :] if (p := _logs_prefix(c)) and monitor.startswith(p)]
            if later and not logged_before:
                out.append(
                    f"{where}: {type(cb).__name__}({monitor!r}) is listed before the {type(later[0]).__name__} "
                    f"that logs {monitor!r}, so at every epoch end it would look for the value before it is "
                    f"computed; list {type(later[0]).__name__} first in callbacks="
                )
        split = getattr(cb, "split", None) if _logs_prefix(cb) is not None else None
        if isinstance(split, str):
            for head, b in phase.inputs.items():
                fs = exp.featuresets.get(b.featureset)
                if fs is not None and split not in fs.split_indices:
                    out.append(
                        f"{where}: {type(cb).__name__}(split={split!r}) evaluates head {head!r} on FeatureSet "
                        f"{b.featureset!r}, which has no split {split!r}{close_matches(split, fs.split_indices)} "
                        f"(splits: {', '.join(map(repr, fs.split_indices)) or 'none'}); split it first or pick "
                        "an existing split"
                    )
                    break
    return out


def _leaf_shape(exp: Experiment) -> Any:
    def leaf(head: str, ref: Any) -> tuple[int, ...] | None:
        fs = exp.featuresets.get(ref.featureset)
        if fs is None:
            return None
        keys = ref.targets or None
        if not keys and not fs.keys("targets"):
            return None
        try:
            return tuple(fs.domain_shape("targets", keys))
        except MMLError:
            return None  # a missing key is reported by the loss checks

    return leaf


def _loss_shape_problems(exp: Experiment, phase: AbstractPhase) -> list[str]:
    out = []
    g = exp.graph
    for applied in phase.losses:
        node = g[applied.node] if applied.node in g else None
        if not isinstance(node, ModelNode):
            continue
        fn = getattr(applied.loss, "fn", None)
        sources = [s.source for s in applied.specs]
        if fn not in ELEMENTWISE_LOSSES or sources[:2] != ["outputs", "targets"]:
            continue
        declared = getattr(node.model, "output_shape", None)
        if declared is None:
            continue  # a tail sized from its targets, or a shape known only once built
        try:
            targets = target_shape(g, applied.node, _leaf_shape(exp))
        except MMLError:
            continue  # build reports an impossible combination, naming the joining node
        if targets is None or math.prod(declared) == math.prod(targets):
            continue
        out.append(
            f"phase {phase.label!r}: loss {applied.name!r} ({fn}) compares the output of {applied.node!r} "
            f"(per-sample shape {tuple(declared)}) with targets of per-sample shape {tuple(targets)}, element by "
            f"element; give {applied.node!r} output_shape={tuple(targets)} (or None: the target shape), or bind "
            "the loss to a node of that shape"
        )
    return out


def active_nodes(graph: ModelGraph, phase: AbstractPhase) -> set[str]:
    """The nodes a phase runs: its ``active_nodes``, else its losses' nodes and their ancestors."""
    if phase.active_nodes is not None:
        return {n for n in phase.active_nodes if n in graph}
    bound = [applied.node for applied in phase.losses if applied.node in graph]
    return set(graph.ancestors(bound)) if bound else set()


def _active_problems(exp: Experiment, phase: AbstractPhase) -> list[str]:
    """Explicit ``active_nodes`` must be closed upstream and hold every node a loss reads."""
    g = exp.graph
    if phase.active_nodes is None or any(n not in g for n in phase.active_nodes):
        return []  # an unknown label is its own problem (with a "did you mean"); fix that first
    active = active_nodes(g, phase)
    listed = ", ".join(map(repr, phase.active_nodes))
    out = []
    for n in g.topological_order:
        if n not in active:
            continue
        for up in g.upstream_labels(n):
            if up not in active:
                out.append(
                    f"phase {phase.label!r}: active node {n!r} reads node {up!r}, which is not in active_nodes "
                    f"[{listed}]; add {up!r} to active_nodes= (a node runs only when the nodes it reads run)"
                )
    for applied in phase.losses:
        if applied.node in g and applied.node not in active:
            out.append(
                f"phase {phase.label!r}: loss {applied.name!r} is bound to node {applied.node!r}, which is not in "
                f"active_nodes [{listed}]; add {applied.node!r} to active_nodes= or bind the loss to an active node"
            )
    return out


def _sklearn_only_problems(exp: Experiment, phase: AbstractPhase) -> list[str]:
    from mml.training._incremental import has_partial_fit

    g = exp.graph
    active = active_nodes(g, phase)
    models = [node for n in g.topological_order if n in active and isinstance(node := g[n], ModelNode)]
    if not models or any(m.backend != "sklearn" for m in models):
        return []
    if any(has_partial_fit(m.model) and not m.frozen for m in models):
        return []
    return [
        f"phase {phase.label!r} is a TrainPhase, but its only nodes ({', '.join(repr(m.label) for m in models)}) are "
        "scikit-learn nodes without partial_fit, which no training step can update; fit them with a "
        f"FitPhase({phase.label!r}, inputs) instead, or add a torch/Keras node (or an estimator with partial_fit)"
    ]


def require_train_state(state: Any, where: str) -> None:
    """A :class:`~mml.TrainingError` naming ``where`` unless ``state`` is a TrainState with a graph."""
    from mml.training._state import TrainState

    if not isinstance(state, TrainState) or state.graph is None:
        got = type(state).__name__ if not isinstance(state, TrainState) else "a TrainState without a graph"
        raise TrainingError(
            f"{where} takes the TrainState that mml.init(experiment, key) returns (or one a run returned), "
            f"got {got}"
        )


def check_state(exp: Experiment, state: Any, where: str) -> None:
    """Refuse a state that is not a TrainState, or one made for another graph or other data.

    ``where`` names the entry point (``"run"``). The state's nodes, recorded shapes and torch
    tensors are compared with the experiment's graph and FeatureSets
    (:func:`mml.graph.state_mismatches`); the numbers are never read.
    """
    from mml.graph import state_mismatches

    require_train_state(state, where)
    problems = state_mismatches(exp.graph, exp.featuresets, state.graph)
    if problems:
        raise TrainingError(
            f"{where}: the state does not fit experiment {exp.label!r} (was it made for another graph or other "
            f"data?): {'; '.join(problems)}; start from mml.init(experiment, key), or use the experiment the "
            "state was trained with"
        )


def plan_problems(exp: Experiment) -> list[str]:
    """Every problem of the checks listed in the module docstring, as sentences."""
    problems = _missing_featuresets(exp)
    for phase in iter_phases(exp.plan):
        problems += _callback_problems(exp, phase)
        problems += _loss_shape_problems(exp, phase)
        problems += _active_problems(exp, phase)
        if isinstance(phase, TrainPhase):
            problems += _sklearn_only_problems(exp, phase)
    return problems
