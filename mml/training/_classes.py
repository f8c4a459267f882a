"""Classification heads: the output width of a ``cross_entropy`` head, read off its class ids.

A node trained with ``cross_entropy`` against integer class ids in a scalar target key outputs
one score per class. When its model leaves ``output_shape`` to the data (``None``), the width is
``n_classes = max(class id) + 1`` over the FeatureSet's rows; a declared ``output_shape`` too
narrow for the class ids, negative or non-integral class ids are a :class:`~mml.ConfigError`
when the run's first state is built — before any training step.

>>> import mml, numpy as np
>>> from mml.graph import FeatureSetRef, ModelGraph, ModelNode
>>> from mml.models import SequentialMLP
>>> from mml.training import AppliedLoss, Experiment, TrainPhase
>>> fs = mml.FeatureSet.from_dict({"x": np.zeros((6, 2), np.float32), "c": [0, 1, 2, 2, 1, 0]},
...                               features="x", targets="c", label="iris").with_split("train", range(6))
>>> g = ModelGraph.of(ModelNode("clf", SequentialMLP(hidden=(4,)), FeatureSetRef("iris")))
>>> exp = Experiment({"iris": fs}, g, TrainPhase.simple("fit", featureset="iris", heads=["clf"],
...                  losses=AppliedLoss("cross_entropy", "clf")))
>>> class_widths(exp)
{'clf': (3,)}
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from mml.errors import ConfigError
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.graph._refs import resolve_keys
from mml.training._phases import iter_phases

__all__ = ["class_widths", "with_class_widths"]


def _source_ref(graph: ModelGraph, label: str) -> FeatureSetRef | None:
    frontier, seen = [label], set()
    while frontier:
        cur = frontier.pop(0)
        if cur in seen:
            continue
        seen.add(cur)
        for ref in graph[cur].upstream_refs:
            if isinstance(ref, FeatureSetRef):
                return ref
            frontier.append(ref.label)
    return None


def _n_classes(fs: Any, key: str, node: str) -> int:
    ids = fs.column_array("targets", key, "raw")
    where = f"cross_entropy on node {node!r} reads targets key {key!r} of FeatureSet {fs.label!r}"
    if ids.dtype.kind == "f":
        if not np.all(np.isfinite(ids)) or not np.all(ids == np.round(ids)):
            raise ConfigError(
                f"{where}, which holds non-integral values; cross_entropy needs class ids 0..n_classes-1 "
                "(encode the classes, e.g. with pandas.factorize)"
            )
    elif ids.dtype.kind not in "iub":
        raise ConfigError(f"{where}, which has dtype {ids.dtype}; encode the classes as ids 0..n_classes-1")
    if ids.size and ids.min() < 0:
        raise ConfigError(
            f"{where}, which holds the negative class id {int(ids.min())}; use ids 0..n_classes-1"
        )
    return int(ids.max()) + 1 if ids.size else 0


def class_widths(experiment: Any) -> dict[str, tuple[int, ...]]:
    """Output shapes ``(n_classes,)`` of the ``cross_entropy`` nodes whose model leaves them to the data."""
    graph = experiment.graph
    out: dict[str, tuple[int, ...]] = {}
    for phase in iter_phases(experiment.plan):
        for applied in getattr(phase, "losses", ()):
            if applied.loss.fn != "cross_entropy" or applied.node not in graph or applied.node in out:
                continue
            node = graph[applied.node]
            ref = _source_ref(graph, applied.node)
            if not isinstance(node, ModelNode) or ref is None or ref.featureset not in experiment.featuresets:
                continue
            fs = experiment.featuresets[ref.featureset]
            keys = resolve_keys(ref, fs, "targets")
            if len(keys) != 1 or fs.key_shape("targets", keys[0]) != ():
                continue  # one-hot or several target keys: the target shape is the width
            n_classes = _n_classes(fs, keys[0], applied.node)
            declared = getattr(node.model, "output_shape", None)
            if declared is None and "output_shape" in attrs.fields_dict(type(node.model)):
                out[applied.node] = (n_classes,)
            elif declared is not None and int(np.prod(declared)) < n_classes:
                raise ConfigError(
                    f"node {applied.node!r} outputs {declared} scores but is trained with cross_entropy on targets "
                    f"{keys[0]!r}, whose class ids go up to {n_classes - 1}: set output_shape=({n_classes},) "
                    "(n_classes) or leave output_shape out to infer it"
                )
    return out


def with_class_widths(experiment: Any) -> ModelGraph:
    """The experiment's graph with inferred classification widths written into the models' ``output_shape``."""
    graph = experiment.graph
    for label, shape in class_widths(experiment).items():
        node = graph[label]
        graph = graph.replace(label, attrs.evolve(node, model=attrs.evolve(node.model, output_shape=shape)))
    return graph
