"""One training step: forward, losses, gradients, optimizer update — ``state -> (state, context)``.

The step converts each head's batch once for its backend, calls the graph-level
:func:`mml.graph.value_and_grad` (which records whatever backends the trained nodes run on)
and applies the functional optimizers to the gradients. It imports no framework.

>>> callable(train_step) and callable(prepare_train_state)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mml._fields import FrozenDict
from mml.backends import (
    detach,
    feed_data,
    move_params,
    replace_fields,
    tensor_params,
    trainable_dict,
    with_evolved,
    with_trainable,
    zeros_like,
)
from mml.errors import TrainingError
from mml.graph import forward, value_and_grad
from mml.random import fold_in
from mml.training._incremental import partial_fit_batch
from mml.training._plan import StepPlan, TrainPlan
from mml.training._state import GRAPH_OPTIMIZER, ExecutionContext, TrainState, box

__all__ = ["prepare_train_state", "train_step"]


def train_step(
    plan: TrainPlan,
    sp: StepPlan,
    state: TrainState,
    batches: Mapping[str, Any],
    epoch: int,
    index: int,
) -> tuple[TrainState, ExecutionContext]:
    """The state after one update on ``batches`` (head → Batch) and the step's context.

    A non-finite loss raises :class:`~mml.TrainingError` (the caller keeps ``state``).
    """
    first = next(iter(batches.values()))
    devices = plan.devices
    backends = plan.backends
    if sp.role_plan is None:
        roles = tuple(first.roles)
        data = {
            r: {h: feed_data(b.roles[r], backends[h], devices.get(h)) for h, b in batches.items()}
            for r in roles
        }
        runs = dict.fromkeys(roles, sp.active)
    else:  # heads with different role sets: each role over the heads that have it
        roles = tuple(r for r, _, _ in sp.role_plan)
        data = {
            r: {h: feed_data(batches[h].roles[r], backends[h], devices.get(h)) for h in hs}
            for r, hs, _ in sp.role_plan
        }
        runs = {r: act for r, _, act in sp.role_plan}
    if plan.incremental:  # scikit-learn nodes take their partial_fit first; the step sees the update
        state = partial_fit_batch(
            plan.graph,
            state,
            {h: b.roles[roles[0]] for h, b in batches.items() if roles[0] in b.roles},
            data[roles[0]],
            plan.incremental,
            key=fold_in(plan.phase_key, f"partial_fit/{state.step}"),
            classes=plan.classes,
        )
    key = fold_in(plan.phase_key, state.step)  # ~2 us: cheap enough to derive on every step
    graph = plan.graph

    def losses_of(gs: Any) -> tuple[list[tuple[str, Any]], tuple[Any, Any, Any]]:
        outputs: dict[str, Any] = {}
        changed: dict[str, Any] = {}
        for r in roles:
            if not runs[r]:
                continue  # no active node runs on this role's heads alone
            k = key if len(roles) == 1 else fold_in(key, r)
            res = forward(
                graph, gs, data[r], training=True, key=k, active_nodes=runs[r], stop_gradients=sp.stagewise
            )
            outputs[r] = res.outputs
            if res.params:
                changed.update(res.params)
        values = [lp.value(outputs, data) for lp in sp.losses]
        terms = [(lp.node, v if lp.weight == 1.0 else v * lp.weight) for lp, v in zip(sp.losses, values)]
        return terms, (outputs, changed, values)

    (outputs, changed, values), named_grads = value_and_grad(
        graph, state.graph, losses_of, sp.trainable, per_node=sp.stagewise
    )
    losses = {lp.name: float(detach(v)) for lp, v in zip(sp.losses, values)}
    total_f = 0.0
    for lp in sp.losses:
        total_f += losses[lp.name] * lp.weight
    losses["loss"] = total_f
    if not math.isfinite(total_f):
        bad = [n for n, v in losses.items() if not math.isfinite(v)]
        raise TrainingError(
            f"non-finite loss in phase {plan.phase.label!r}, epoch {epoch}, batch {index} (step {state.step}): "
            f"{', '.join(f'{n}={losses[n]}' for n in bad)}; the state of the last good step is kept — lower the "
            "learning rate, check the inputs for NaN/inf, or scale the data"
        )
    if named_grads:
        new_state = _apply_updates(plan, sp, state, named_grads, changed, epoch, index)
    else:  # no gradient (scikit-learn nodes only): the state the forward pass evolved is still kept
        new_state = replace_fields(state, step=state.step + 1, epoch=epoch, batch=index + 1)
        if changed:
            nodes = state.graph.params
            evolved = dict(nodes.items())
            evolved.update((label, with_evolved(nodes[label], new)) for label, new in changed.items())
            new_state = replace_fields(
                new_state, graph=replace_fields(state.graph, params=FrozenDict.wrap(evolved))
            )
    ctx = ExecutionContext(
        plan.phase.label, epoch, index, state.step, data, outputs, losses, first.stream, streams=sp.streams
    )
    return new_state, ctx


def _apply_updates(
    plan: TrainPlan,
    sp: StepPlan,
    state: TrainState,
    named_grads: Mapping[str, Mapping[str, Any]],
    changed: Mapping[str, Any],
    epoch: int,
    index: int,
) -> TrainState:
    nodes = state.graph.params
    scale = plan.lr_scale(state) if plan.lr_callbacks else 1.0
    opt_states = dict(state.opt_states.items())
    opt_steps = dict(state.opt_steps.items())
    updates: dict[str, Any] = {}
    if sp.stagewise:
        for label, g in named_grads.items():
            rec = nodes[label]
            opt = plan.optimizers[label]
            n = opt_steps.get(label, 0)
            new_p, new_s = opt.update(g, opt_states[label].value, trainable_dict(rec), n, lr_scale=scale)
            opt_states[label] = box(new_s)
            opt_steps[label] = n + 1
            updates[label] = with_trainable(rec, new_p)
    else:
        recs = {label: nodes[label] for label in plan.trainable}
        flat_p = {f"{label}/{k}": v for label, rec in recs.items() for k, v in trainable_dict(rec).items()}
        flat_g: dict[str, Any] = {}
        for label, rec in recs.items():
            got = named_grads.get(label)
            # a node not run in this step (alternate schedule) gets a zero gradient
            g = got if got is not None else {k: zeros_like(v) for k, v in trainable_dict(rec).items()}
            for k, v in g.items():
                flat_g[f"{label}/{k}"] = v
        opt = plan.optimizers[GRAPH_OPTIMIZER]
        n = opt_steps.get(GRAPH_OPTIMIZER, 0)
        new_flat, new_s = opt.update(flat_g, opt_states[GRAPH_OPTIMIZER].value, flat_p, n, lr_scale=scale)
        opt_states[GRAPH_OPTIMIZER] = box(new_s)
        opt_steps[GRAPH_OPTIMIZER] = n + 1
        for label, rec in recs.items():
            updates[label] = with_trainable(rec, {k: new_flat[f"{label}/{k}"] for k in trainable_dict(rec)})
    for label, new in changed.items():
        # state the forward pass evolved (batch-norm statistics): torch buffers, Keras non-trainables
        updates[label] = with_evolved(updates.get(label, nodes[label]), new)
    merged = dict(nodes.items())
    merged.update(updates)
    return replace_fields(
        state,
        graph=replace_fields(state.graph, params=FrozenDict.wrap(merged)),
        opt_states=FrozenDict.wrap(opt_states),
        opt_steps=FrozenDict.wrap(opt_steps),
        step=state.step + 1,
        epoch=epoch,
        batch=index + 1,
    )


def prepare_train_state(plan: TrainPlan, state: TrainState) -> TrainState:
    """``state`` ready for the phase's first step: parameters placed, missing optimizer states made."""
    for label, dev in plan.devices.items():
        if label not in plan.tf_nodes:
            rec = state.params(label)
            moved = move_params(rec, dev)
            if moved is not rec:
                state = state.with_params(label, moved)
    for label in plan.tf_nodes:
        state = state.with_params(label, tensor_params(state.params(label)))
    for label, opt in plan.optimizers.items():
        if state.opt_state(label) is None:
            params: Mapping[str, Any]
            if label == GRAPH_OPTIMIZER:
                params = {
                    f"{n}/{k}": v for n in plan.trainable for k, v in trainable_dict(state.params(n)).items()
                }
            else:
                params = trainable_dict(state.params(label))
            state = state.with_opt_state(label, opt.init(params)).with_opt_steps(label, 0)
    return state
