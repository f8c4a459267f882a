"""Incremental scikit-learn nodes in a training phase: ``partial_fit`` batch by batch.

A :class:`~mml.training.TrainPhase` trains torch and Keras nodes by gradients. A scikit-learn
node whose estimator has ``partial_fit`` (``SGDRegressor``, ``SGDClassifier``,
``MLPRegressor``, ``MiniBatchKMeans``, ``IncrementalPCA``, ``StandardScaler``, ...) that is
active in the phase and neither frozen nor fitted by a ``FitPhase`` with ``freeze_after_fit``
is trained too: on every step, before the gradient step, it takes one ``partial_fit`` on the
batch — its input is what its upstream nodes output, its targets are its own (joining nodes'
``targets=`` applied). Nodes later in the graph then see its updated output.

>>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef
>>> from mml.models import SklearnModel
>>> g = ModelGraph.of(ModelNode("sgd", SklearnModel("sklearn.linear_model:SGDRegressor"), FeatureSetRef("fs")))
>>> incremental_nodes(g, {"sgd"}, frozen=set())
('sgd',)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from mml.errors import TrainingError
from mml.graph import ModelGraph, ModelNode, forward, node_targets
from mml.random import Key, fold_in

__all__ = ["has_partial_fit", "incremental_nodes", "classes_of", "partial_fit_batch"]


def has_partial_fit(model: Any) -> bool:
    """Whether ``model`` is a scikit-learn spec whose estimator class has ``partial_fit``.

    >>> from mml.models import SklearnModel
    >>> has_partial_fit(SklearnModel("sklearn.linear_model:SGDRegressor")), has_partial_fit(SklearnModel("sklearn.linear_model:Ridge"))
    (True, False)
    """
    if getattr(model, "backend", None) != "sklearn":
        return False
    from mml.models import import_object

    return hasattr(import_object(model.estimator, "sklearn estimator"), "partial_fit")


def incremental_nodes(graph: ModelGraph, active: Collection[str], frozen: Collection[str]) -> tuple[str, ...]:
    """The active, unfrozen scikit-learn nodes with ``partial_fit``, in topological order."""
    return tuple(
        n
        for n in graph.topological_order
        if n in active and n not in frozen and has_partial_fit(getattr(graph[n], "model", None))
    )


def classes_of(graph: ModelGraph, label: str, head_targets: Mapping[str, Any]) -> Any:
    """The class labels a classifier node will see (``partial_fit`` needs them on its first call).

    ``None`` for a node that is not a classifier.
    """
    from mml.backends import is_classifier

    node = graph[label]
    if not isinstance(node, ModelNode) or not is_classifier(node.model):
        return None
    y = node_targets(graph, label, head_targets)
    return None if y is None else np.unique(_numpy(y).ravel())


def _numpy(x: Any) -> Any:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def partial_fit_batch(
    graph: ModelGraph,
    state: Any,
    raw: Mapping[str, Any],
    data: Mapping[str, Any],
    nodes: tuple[str, ...],
    *,
    key: Key,
    classes: Mapping[str, Any],
) -> Any:
    """``state`` after one ``partial_fit`` of each of ``nodes`` (in order) on one batch.

    ``raw`` maps head label → the batch's SampleData as the sampler made it (numpy, the
    FeatureSet's dtypes): a head node's features and every node's targets come from it, as
    ``FitPhase`` would give them. ``data`` is the same batch converted for the model nodes
    upstream, which :func:`~mml.graph.forward` runs to make a non-head node's input.
    """
    from mml.backends import partial_fit  # scikit-learn's partial_fit (with classes=)

    for label in nodes:
        node = graph[label]
        if not isinstance(node, ModelNode):
            raise TrainingError(f"partial_fit: node {label!r} is a {type(node).__name__}, not a model node")
        if node.is_head:
            x = raw[label].features
        else:
            ups = node.node_upstreams
            x = forward(graph, state.graph, data, training=False, active_nodes=ups).outputs[ups[0]]
        y = node_targets(graph, label, raw)
        params = partial_fit(
            node.model,
            state.params(label),
            _numpy(x),
            None if y is None else _numpy(y),
            key=fold_in(key, label),
            classes=classes.get(label),
        )
        state = state.with_params(label, params)
    return state
