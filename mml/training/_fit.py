"""A :class:`~mml.training.FitPhase`: closed-form fits (scikit-learn) of nodes, in topological order.

>>> callable(fit_nodes)
True
"""

from __future__ import annotations

from collections.abc import Iterator

from mml.backends import feed_data, fit, no_grad, to_numpy
from mml.errors import TrainingError
from mml.graph import ModelNode, forward, node_targets
from mml.random import fold_in
from mml.training._experiment import Experiment
from mml.training._phases import FitPhase
from mml.training._state import ExecutionContext, TrainState
from mml.training._views import feed_backend, full_batches, head_view

__all__ = ["fit_nodes"]


def fit_nodes(
    experiment: Experiment, phase: FitPhase, state: TrainState
) -> Iterator[tuple[TrainState, ExecutionContext]]:
    """The steps of a :class:`FitPhase`: one per fitted node, in topological order."""
    graph = experiment.graph
    heads = [h for h in graph.topological_order if h in phase.inputs]
    reachable = {n for n in graph.fed_by(heads) if set(graph.heads_of(n)) & set(heads)}
    if phase.nodes is not None:
        todo = list(phase.nodes)
        bad = [n for n in todo if n not in reachable]
        if bad:
            raise TrainingError(
                f"phase {phase.label!r}: node(s) {', '.join(map(repr, bad))} are not fed by its inputs"
            )
    else:
        todo = [
            n
            for n in graph.topological_order
            if n in reachable and graph[n].backend == "sklearn" and n not in state.fitted
        ]
    if not todo:
        raise TrainingError(
            f"FitPhase {phase.label!r} has nothing to fit (no unfitted scikit-learn node fed by its inputs)"
        )
    key = fold_in(state.key, phase.label)
    for i, label in enumerate(graph.topological_order):
        if label not in todo:
            continue
        node = graph[label]
        if not isinstance(node, ModelNode) or node.backend != "sklearn":
            raise TrainingError(
                f"FitPhase {phase.label!r}: node {label!r} is not a scikit-learn node; train it with a TrainPhase"
            )
        ups = node.node_upstreams
        data = {}
        for h in graph.heads_of(label):
            b = phase.inputs[h]
            view = head_view(experiment, h, b)
            batch = next(iter(full_batches(experiment, h, b, max(len(view), 1), None)))
            data[h] = batch.roles[next(iter(batch.roles))]
        if node.is_head:
            x = data[label].features
        else:
            with no_grad():
                res = forward(
                    graph,
                    state.graph,
                    {h: feed_data(d, feed_backend(graph, h)) for h, d in data.items()},
                    training=False,
                    active_nodes=graph.ancestors(ups),
                )
            x = res.outputs[ups[0]]
            x = to_numpy(x)
        y = node_targets(graph, label, data)  # joining nodes' targets= strategies applied
        params = fit(node.model, state.params(label), x, y, key=fold_in(key, label))
        state = state.with_params(label, params)
        if phase.freeze_after_fit:
            state = state.mark_fitted(label)
        yield state, ExecutionContext(phase.label, 0, i, state.step, {}, {}, {}, event="fit")
