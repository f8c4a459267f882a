"""``export(experiment, state) -> Predictor``: keep what inference needs, drop everything else.

>>> import mml, numpy as np
>>> from mml.graph import FeatureSetRef, ModelGraph, ModelNode
>>> from mml.models import SequentialMLP
>>> x = np.linspace(0, 1, 32, dtype=np.float32).reshape(16, 2)
>>> fs = mml.FeatureSet.from_dict({"x": x, "y": x.sum(1)}, features="x", targets="y", label="toy")
>>> fs = mml.scalers.fit_transform(mml.scalers.fit_transform(fs.with_split("train", np.arange(16)), "standard"),
...     "minmax", domain="targets")
>>> g = ModelGraph.of(ModelNode("mlp", SequentialMLP(hidden=(4,)), FeatureSetRef("toy")))
>>> exp = mml.Experiment({"toy": fs}, g, mml.EvalPhase.simple("e", featureset="toy", heads=["mlp"], split="train"))
>>> predictor = export(exp, mml.init(exp, 0))
>>> predictor.predict({"x": x[:3]}).shape
(3, 1)
>>> len(predictor.schemas["toy"])        # the schema holds no rows
0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from mml.errors import ConfigError, GraphError
from mml.graph import FeatureSetRef, GraphState, ModelGraph, ModelNode, resolve_keys
from mml.inference._inputs import DEFAULT_BATCH_SIZE
from mml.inference._predictor import OutputSpec, Predictor, check_outputs
from mml.inference._transform import schema_of

__all__ = ["export"]

#: what a head trained with a loss of this name outputs
_TASK_OF_LOSS = {
    "cross_entropy": "multiclass",
    "bce_with_logits": "binary_logit",
    "bce": "binary_probability",
}


def _task(experiment: Any, node: str) -> str:
    from mml.training import iter_phases

    found = set()
    for phase in iter_phases(experiment.plan):
        for applied in phase.losses:
            if applied.node == node and applied.loss.fn in _TASK_OF_LOSS:
                found.add(_TASK_OF_LOSS[applied.loss.fn])
    if len(found) > 1:
        raise ConfigError(
            f"node {node!r} is trained with losses of different kinds ({sorted(found)}); export cannot tell what its output means"
        )
    return found.pop() if found else "regression"


def _strip(node: Any) -> Any:
    return attrs.evolve(node, optimizer=None) if isinstance(node, ModelNode) else node


def export(
    experiment: Any,
    state: Any,
    outputs: str | Sequence[str] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    group_by: str | None = None,
    sort_by: str | None = None,
) -> Predictor:
    """A :class:`~mml.inference.Predictor` for ``outputs`` (default: the graph's tails).

    ``state`` is a ``TrainState`` (or a ``GraphState``). The predictor keeps the nodes the outputs
    need (their ancestors) and their params, a row-less schema of each FeatureSet they read with
    the scaler records of the keys involved, and, per output, whether and how it maps back to raw
    target units (outputs shaped like their targets, read from ``transformed`` targets, go back
    through the target scalers; heads trained with ``cross_entropy``/``bce``/``bce_with_logits``
    are classification heads). Optimizer states, splits and the training rows are left behind.
    ``group_by``/``sort_by`` record how long-form DataFrames group into samples.
    """
    graph: ModelGraph = experiment.graph
    gstate: GraphState = getattr(state, "graph", state)
    if not isinstance(gstate, GraphState):
        raise ConfigError(f"export takes a TrainState or a GraphState, got {type(state).__name__}")
    names = (
        tuple(graph.tails)
        if outputs is None
        else ((outputs,) if isinstance(outputs, str) else tuple(outputs))
    )
    if not names:
        raise ConfigError("export needs at least one output node")
    check_outputs(graph, names)
    needed = graph.ancestors(names)
    missing = [n for n in needed if n not in gstate.shapes]
    if missing:
        raise GraphError(
            f"the state has no built node(s) {sorted(missing)}; export the state the experiment was run with"
        )
    sub = ModelGraph.of(*[_strip(graph[n]) for n in graph.topological_order if n in needed])
    sub_state = GraphState(
        params={n: gstate.params[n] for n in sub.topological_order},
        shapes={n: gstate.shapes[n] for n in sub.topological_order},
        gradient_stops=tuple(e for e in gstate.gradient_stops if e[0] in needed and e[1] in needed),
    )
    pairs: dict[str, dict[tuple[str, str], None]] = {}
    for label in sub.topological_order:
        for ref in sub[label].upstream_refs:
            if isinstance(ref, FeatureSetRef):
                fs = experiment.featuresets[ref.featureset]
                for k in resolve_keys(ref, fs, "features"):
                    fs.resolve_rep("features", k, ref.rep)  # a missing representation fails here
                    pairs.setdefault(ref.featureset, {})[("features", k)] = None
    specs = []
    for n in names:
        task = _task(experiment, n)
        source = sub.source_ref(n, lambda r: bool(experiment.featuresets[r.featureset].keys("targets")))
        if source is None:
            specs.append(OutputSpec(n, None, (), inverse=False, task=task))
            continue
        fs = experiment.featuresets[source.featureset]
        targets = resolve_keys(source, fs, "targets")
        for k in targets:
            pairs.setdefault(source.featureset, {})[("targets", k)] = None
        inverse = (
            task == "regression"
            and source.rep != "raw"
            and tuple(gstate.shapes[n].output_shape) == fs.domain_shape("targets", targets)
        )
        specs.append(OutputSpec(n, source.featureset, targets, inverse=inverse, task=task))
    schemas = {label: schema_of(experiment.featuresets[label], list(p)) for label, p in pairs.items()}
    return Predictor(
        schemas=schemas,
        graph=sub,
        state=sub_state,
        outputs=tuple(specs),
        batch_size=batch_size,
        group_by=group_by,
        sort_by=sort_by,
    )
