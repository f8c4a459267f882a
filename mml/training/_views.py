"""The rows and columns a head reads in a phase: its binding's split, selected by its FeatureSetRef.

>>> callable(head_view) and callable(full_batches)
True
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mml.errors import TrainingError
from mml.graph import ModelGraph, ModelNode, resolve_keys
from mml.random import as_key
from mml.training._experiment import Experiment
from mml.training._phases import InputBinding

__all__ = ["feed_backend", "full_batches", "head_keys", "head_view"]


def feed_backend(graph: ModelGraph, label: str) -> str:
    """The tensor library a node's batches are converted to: ``"tensorflow"`` for Keras, else ``"torch"``."""
    node = graph[label]
    return "tensorflow" if isinstance(node, ModelNode) and node.backend == "tensorflow" else "torch"


def head_keys(experiment: Experiment, head: str, binding: InputBinding) -> dict[str, Any]:
    """The feature, target and tag keys (and representation) head ``head`` reads from its binding."""
    ref: Any = experiment.graph[head].upstream_refs[0]  # a head reads a FeatureSetRef
    fs = experiment.featuresets[binding.featureset]
    out: dict[str, Any] = {d: list(resolve_keys(ref, fs, d)) for d in ("features", "targets", "tags")}
    out["rep"] = ref.rep
    return out


def head_view(experiment: Experiment, head: str, binding: InputBinding, split: str | None = None) -> Any:
    """The view head ``head`` reads: the binding's split (or ``split``), its columns only."""
    fs = experiment.featuresets[binding.featureset]
    split = binding.split if split is None else split
    if split is not None and split not in fs.split_indices:
        raise TrainingError(
            f"FeatureSet {binding.featureset!r} has no split {split!r} (splits: {', '.join(fs.split_indices) or 'none'})"
        )
    view = fs[split] if split is not None else fs.view()
    keys = head_keys(experiment, head, binding)
    return view.select(features=keys["features"], targets=keys["targets"], tags=keys["tags"], rep=keys["rep"])


def full_batches(
    experiment: Experiment, head: str, binding: InputBinding, batch_size: int, split: str | None
) -> Iterator[Any]:
    """Every row of the head's view in order, in batches of ``batch_size`` (evaluation, fitting)."""
    from mml.samplers import SimpleSampler

    sampler = SimpleSampler(batch_size, shuffle=False)
    prepared = sampler.prepare(head_view(experiment, head, binding, split))
    return sampler.batches(prepared, key=as_key(0), epoch=0)
