"""Classification heads: the output width of a ``cross_entropy`` head, read off its class ids.

A node trained with ``cross_entropy`` against integer class ids in a scalar target key outputs
one score per class. When its model leaves ``output_shape`` to the data (``None``), the width is
``n_classes = max(class id) + 1`` over the FeatureSet's rows, when the run's first state is built.
A declared ``output_shape`` is kept; it, and targets that are not class ids, are checked when a
phase starts (``mml.training._class_ids``), before its first step.

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

from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mml.graph import ModelGraph, ModelNode, resolve_keys
from mml.training._phases import iter_phases

if TYPE_CHECKING:  # the Experiment module imports this one
    from mml.training._experiment import Experiment

__all__ = ["class_widths", "with_class_widths"]


def _n_classes(fs: Any, key: str) -> int | None:
    """``max(id) + 1`` over the non-negative class ids, ``None`` when the targets are not class ids."""
    ids = fs.column_array("targets", key, "raw")
    if ids.dtype.kind == "f":
        if not np.all(np.isfinite(ids)) or not np.all(ids == np.round(ids)):
            return None
    elif ids.dtype.kind not in "iub":
        return None
    valid = ids[ids >= 0]  # negative ids are ignored (masked) samples, checked with the other ids per phase
    return int(valid.max()) + 1 if valid.size else None


def class_widths(experiment: Experiment) -> dict[str, tuple[int, ...]]:
    """Output shapes ``(n_classes,)`` of the ``cross_entropy`` nodes whose model leaves them to the data."""
    graph = experiment.graph
    out: dict[str, tuple[int, ...]] = {}
    for phase in iter_phases(experiment.plan):
        for applied in phase.losses:
            if applied.loss.fn != "cross_entropy" or applied.node not in graph or applied.node in out:
                continue
            node = graph[applied.node]
            ref = graph.source_ref(applied.node)
            if not isinstance(node, ModelNode) or ref is None or ref.featureset not in experiment.featuresets:
                continue
            fs = experiment.featuresets[ref.featureset]
            keys = resolve_keys(ref, fs, "targets")
            if len(keys) != 1 or fs.key_shape("targets", keys[0]) != ():
                continue  # one-hot or several target keys: the target shape is the width
            declared = getattr(node.model, "output_shape", None)
            if declared is not None or "output_shape" not in attrs.fields_dict(type(node.model)):
                continue  # a declared width is checked against the ids when a phase starts
            n_classes = _n_classes(fs, keys[0])
            if n_classes is not None:
                out[applied.node] = (n_classes,)
    return out


def with_class_widths(experiment: Experiment) -> ModelGraph:
    """The experiment's graph with inferred classification widths written into the models' ``output_shape``."""
    graph = experiment.graph
    for label, shape in class_widths(experiment).items():
        node = graph[label]
        assert isinstance(node, ModelNode)  # class_widths lists model nodes only
        graph = graph.replace(label, attrs.evolve(node, model=attrs.evolve(node.model, output_shape=shape)))
    return graph
