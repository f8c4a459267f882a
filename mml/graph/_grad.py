"""Gradients through a graph: one call that records every backend the trained nodes run on.

:func:`value_and_grad` is what a training step calls: it opens one gradient tape per backend
of the nodes to train (:mod:`mml.backends`), runs the caller's forward-and-loss function on
the graph state whose parameters those tapes watch, and returns the function's result with
each node's gradients. The caller never imports a framework.

>>> import mml, numpy as np
>>> from mml.graph import FeatureSetRef, ModelGraph, ModelNode, build, forward
>>> from mml.models import SequentialMLP
>>> fs = mml.FeatureSet.from_dict({"x": np.ones((4, 2), np.float32), "y": np.zeros(4, np.float32)},
...                               features="x", targets="y", label="d")
>>> g = ModelGraph.of(ModelNode("m", SequentialMLP(hidden=(3,)), FeatureSetRef("d")))
>>> gs = build(g, {"d": fs}, mml.random.key(0))
>>> def fn(state):
...     y = forward(g, state, np.ones((4, 2), np.float32), training=True).outputs["m"]
...     return [("m", (y**2).mean())], y.shape
>>> shape, grads = value_and_grad(g, gs, fn, ["m"])
>>> tuple(shape), sorted(grads["m"]) == sorted(gs.params["m"].params)
((4, 1), True)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mml._fields import FrozenDict
from mml.backends import Term, open_tape, replace_fields
from mml.errors import GraphError
from mml.graph._build import GraphState
from mml.graph._graph import ModelGraph
from mml.graph._nodes import ModelNode

__all__ = ["value_and_grad"]

A = TypeVar("A")

#: the backends whose tapes a step opens, in the order their gradients are taken
_ORDER = ("torch", "tensorflow")


def value_and_grad(
    graph: ModelGraph,
    state: GraphState,
    fn: Callable[[GraphState], tuple[Sequence[Term], A]],
    nodes: Sequence[str],
    *,
    per_node: bool = False,
) -> tuple[A, dict[str, dict[str, Any]]]:
    """``(aux, grads)``: run ``fn`` under gradient recording of ``nodes`` and differentiate its terms.

    ``fn(state) -> (terms, aux)`` runs the forward pass and the losses on the given graph
    state (whose watched parameters it must use); ``terms`` are ``(node, loss)`` pairs.
    ``grads`` maps each node to its parameters' gradients, by the names of
    :func:`mml.backends.trainable_dict`: of the sum of the terms of its backend, or with
    ``per_node`` (stage-wise) of the terms bound to it. A torch node none of whose terms
    needs a gradient is left out of ``grads``.
    """
    by_backend: dict[str, dict[str, Any]] = {}
    params = state.params
    for label in nodes:
        node = graph[label]
        if not isinstance(node, ModelNode) or node.backend is None:
            raise GraphError(f"node {label!r} has no model to differentiate; train model nodes only")
        by_backend.setdefault(node.backend, {})[label] = params[label]
    tapes = [open_tape(b, by_backend.pop(b), per_node=per_node) for b in _ORDER if b in by_backend]
    if by_backend:
        open_tape(next(iter(by_backend)), {})  # raises: a backend without gradients
    watched = state
    leaves: dict[str, Any] = {}
    for tape in tapes:
        leaves.update(tape.records)
    if leaves:
        merged = dict(params.items())
        merged.update(leaves)
        watched = replace_fields(state, params=FrozenDict.wrap(merged))
    if len(tapes) == 1:
        with tapes[0]:
            terms, aux = fn(watched)
    else:
        with contextlib.ExitStack() as stack:
            for tape in tapes:
                stack.enter_context(tape)
            terms, aux = fn(watched)
    grads: dict[str, dict[str, Any]] = {}
    for tape in tapes:
        grads.update(tape.gradient(terms))
    return aux, grads
