"""The :class:`Predictor`: a trained pipeline as one frozen value, from new raw data to raw units.

A Predictor holds, per FeatureSet the graph reads, a row-less *schema* (the input keys, their
per-sample shapes and dtypes, and the fitted params of the scaler records those keys and the
predicted targets need), the sub-graph the outputs need with its trained parameters, and per
output how it maps back to raw target units. It never holds training rows. Make one with
:func:`mml.export`; save it with ``mml.save`` and load it with ``mml.load``.

``predict`` streams its input in batches (Parquet files by row group): per batch it checks and
casts the raw columns, replays the scaler records, runs the graph forward and inverts the target
scalers — the computation an ``EvalPhase(inverse_transform=True)`` does on the same rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, final

import attrs
import numpy as np

from mml._fields import FrozenDict, frozen_dict, frozen_tuple
from mml.data import FeatureSet
from mml.errors import ConfigError, DataError, GraphError
from mml.graph import FeatureSetRef, GraphState, ModelGraph, forward, resolve_keys
from mml.inference._inputs import DEFAULT_BATCH_SIZE, Chunk, read_chunks
from mml.inference._transform import scaler_records, transform_arrays
from mml.scalers import inverse_transform

__all__ = ["Predictor", "OutputSpec", "PredictionBatch", "TASKS"]

#: what a head's outputs mean: values in target units, logits over classes, one logit, one probability
TASKS: tuple[str, ...] = ("regression", "multiclass", "binary_logit", "binary_probability")


def _check_task(instance: Any, attribute: Any, value: str) -> None:
    if value not in TASKS:
        raise ConfigError(f"OutputSpec.task must be one of {', '.join(TASKS)}, got {value!r}")


@final
@attrs.frozen
class OutputSpec:
    """One predicted node: the targets its output lines up with and how to read it.

    ``inverse`` says whether the output goes back through the target scalers of ``targets``
    (keys of FeatureSet ``featureset``) to raw units; ``task`` is one of :data:`TASKS`.

    >>> OutputSpec("mlp", "toy", ("y",), inverse=True).task
    'regression'
    """

    node: str
    featureset: str | None
    targets: tuple[str, ...] = attrs.field(converter=frozen_tuple)
    inverse: bool = False
    task: str = attrs.field(default="regression", validator=_check_task)


@attrs.frozen
class PredictionBatch:
    """The predictions of one batch: per output node an array, and the batch's sample ids."""

    outputs: Mapping[str, np.ndarray]
    ids: Mapping[str, np.ndarray]
    n: int


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _layout(parts: list[np.ndarray]) -> np.ndarray:
    """Keys as one array, by the layout rule of ``FeatureSet.to_numpy``; floats as float32."""
    if len(parts) == 1:
        x = parts[0]
        x = x.reshape(-1, 1) if x.ndim == 1 else x
    else:
        dtype = np.result_type(*[p.dtype for p in parts])
        x = np.concatenate(
            [p.reshape(*p.shape, 1) if p.ndim == 1 else p for p in parts], axis=-1, dtype=dtype
        )
    if x.dtype.kind == "f" and x.dtype != np.float32:
        x = x.astype(np.float32)
    return np.ascontiguousarray(x)


@final
@attrs.frozen
class Predictor:
    """A trained pipeline, ready for new raw data (see :func:`mml.export`).

    ``schemas`` maps each FeatureSet label the graph reads to a row-less FeatureSet with the
    columns and scaler records the pipeline needs; ``graph`` and ``state`` are the sub-graph the
    ``outputs`` need and its trained parameters. ``batch_size`` bounds the rows in memory at
    once; ``group_by``/``sort_by`` say how a DataFrame in long form groups into samples.
    """

    kind: ClassVar[str] = "predictor"

    schemas: Mapping[str, FeatureSet] = attrs.field(converter=frozen_dict)
    graph: ModelGraph
    state: GraphState
    outputs: tuple[OutputSpec, ...] = attrs.field(converter=frozen_tuple)
    batch_size: int = DEFAULT_BATCH_SIZE
    group_by: str | None = None
    sort_by: str | None = None

    # -- the input side ---------------------------------------------------------------------

    @property
    def feeds(self) -> tuple[tuple[str, FeatureSetRef], ...]:
        """``(feed key, ref)`` for every FeatureSet input of the graph: keyed by the node label."""
        out = []
        for label in self.graph.topological_order:
            for ref in self.graph[label].upstream_refs:
                if isinstance(ref, FeatureSetRef):
                    out.append((label, ref))
        return tuple(out)

    def input_keys(self, featureset: str | None = None) -> tuple[str, ...]:
        """The feature keys the pipeline reads from a FeatureSet (the only one when not named).

        >>> # see docs/inference.md for a trained example
        """
        label = self._one_featureset(featureset)
        keys: dict[str, None] = {}
        for _, ref in self.feeds:
            if ref.featureset == label:
                keys.update(dict.fromkeys(resolve_keys(ref, self.schemas[label], "features")))
        return tuple(keys)

    def _one_featureset(self, featureset: str | None) -> str:
        if featureset is None:
            if len(self.schemas) != 1:
                raise ConfigError(
                    f"this predictor reads FeatureSets {', '.join(self.schemas)}; name one of them"
                )
            return next(iter(self.schemas))
        if featureset not in self.schemas:
            raise ConfigError(
                f"this predictor reads no FeatureSet {featureset!r}; it reads {', '.join(self.schemas)}"
            )
        return featureset

    def _sources(self, data: Any) -> dict[str, Any]:
        if len(self.schemas) == 1:
            return {next(iter(self.schemas)): data}
        if not isinstance(data, Mapping) or set(data) != set(self.schemas):
            raise DataError(
                f"this predictor reads several FeatureSets ({', '.join(self.schemas)}); give a mapping from "
                "each FeatureSet label to its data"
            )
        return dict(data)

    def _chunks(
        self,
        data: Any,
        batch_size: int | None,
        group_by: str | None,
        sort_by: str | None,
        keep: tuple[str, ...],
    ) -> Iterator[dict[str, Chunk]]:
        size = self.batch_size if batch_size is None else batch_size
        gb = self.group_by if group_by is None else group_by
        sb = self.sort_by if sort_by is None else sort_by
        streams = {
            label: read_chunks(
                src,
                self.schemas[label],
                self.input_keys(label),
                batch_size=size,
                group_by=gb,
                sort_by=sb if gb is not None else None,
                keep=keep,
            )
            for label, src in self._sources(data).items()
        }
        while True:
            got = {label: next(it, None) for label, it in streams.items()}
            if all(c is None for c in got.values()):
                return
            chunks = {label: c for label, c in got.items() if c is not None}
            if len(chunks) < len(got) or len({c.n for c in chunks.values()}) > 1:
                raise DataError(
                    f"the inputs of FeatureSets {', '.join(got)} have different numbers of samples; "
                    "give one row per sample in each"
                )
            yield chunks

    # -- the graph --------------------------------------------------------------------------

    def _forward(self, chunks: Mapping[str, Chunk]) -> dict[str, np.ndarray]:
        transformed: dict[str, dict[str, np.ndarray]] = {}
        feed: dict[str, np.ndarray] = {}
        for label, ref in self.feeds:
            schema = self.schemas[ref.featureset]
            cache = transformed.setdefault(ref.featureset, {})
            parts = []
            for k in resolve_keys(ref, schema, "features"):
                raw = chunks[ref.featureset].arrays[k]
                if schema.resolve_rep("features", k, ref.rep) == "raw":
                    parts.append(raw)
                    continue
                if k not in cache:
                    cache[k] = transform_arrays(schema, "features", {k: raw})[k]
                parts.append(cache[k])
            feed[label] = _layout(parts)
        nodes = [o.node for o in self.outputs]
        n = next(iter(chunks.values())).n
        if n == 0:  # no samples: the model runs on one zero sample, for the outputs' shape and dtype
            feed = {label: np.zeros((1, *x.shape[1:]), dtype=x.dtype) for label, x in feed.items()}
        with self._no_grad():
            result = forward(self.graph, self.state, feed, training=False, active_nodes=nodes)
        return {node: _numpy(result.outputs[node])[:n] for node in nodes}

    def _no_grad(self) -> Any:
        if "torch" in self.graph.backends:
            import torch

            return torch.no_grad()
        return contextlib.nullcontext()

    def _raw_units(self, spec: OutputSpec, y: np.ndarray) -> np.ndarray:
        if spec.task == "multiclass":
            return y.argmax(axis=-1)
        if spec.task == "binary_logit":
            return (y > 0).astype(np.int64).reshape(len(y))
        if spec.task == "binary_probability":
            return (y > 0.5).astype(np.int64).reshape(len(y))
        if spec.inverse and spec.featureset is not None:
            return inverse_transform(self.schemas[spec.featureset], y, domain="targets", keys=spec.targets)
        return y

    def _proba(self, spec: OutputSpec, y: np.ndarray) -> np.ndarray:
        if spec.task == "multiclass":
            return _softmax(y.astype(np.float64)).astype(y.dtype)
        if spec.task in ("binary_logit", "binary_probability"):
            p = y.reshape(len(y))
            if spec.task == "binary_logit":
                p = 1.0 / (1.0 + np.exp(-p.astype(np.float64)))
            p = np.asarray(p, dtype=y.dtype)
            return np.stack([1 - p, p], axis=1)
        raise ConfigError(
            f"node {spec.node!r} is a regression head; predict_proba is for heads trained with cross_entropy, "
            "bce or bce_with_logits (use predict)"
        )

    # -- public -----------------------------------------------------------------------------

    def predict_batches(
        self,
        data: Any,
        *,
        batch_size: int | None = None,
        group_by: str | None = None,
        sort_by: str | None = None,
        keep: tuple[str, ...] = (),
        proba: bool = False,
    ) -> Iterator[PredictionBatch]:
        """Predictions batch by batch (bounded memory), each with the batch's sample ids.

        ``keep`` names input columns to pass through as ids; the ``group_by`` values and sample
        UUIDs (of FeatureSets and mml Parquet files) are always passed.
        """
        for chunks in self._chunks(data, batch_size, group_by, sort_by, tuple(keep)):
            ys = self._forward(chunks)
            outs = {
                s.node: (self._proba(s, ys[s.node]) if proba else self._raw_units(s, ys[s.node]))
                for s in self.outputs
            }
            first = next(iter(chunks.values()))
            yield PredictionBatch(FrozenDict(outs), first.ids, first.n)

    def predict(
        self,
        data: Any,
        *,
        batch_size: int | None = None,
        group_by: str | None = None,
        sort_by: str | None = None,
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Predictions for new raw ``data``, in raw target units.

        ``data`` is a pandas DataFrame (one row per sample, or the long form with ``group_by`` /
        ``sort_by`` as the FeatureSet was built), a mapping of key → array, a pyarrow Table, a
        Parquet path or a FeatureSet. Columns are named by key (or ``domain.key.raw``). Returns an
        array with one row per sample — the node's output mapped back through the target scalers,
        class ids for classification heads — or a mapping node → array when there are several
        outputs. With ``group_by``, rows come out in sorted order of the group value.
        """
        return self._collect(
            self.predict_batches(data, batch_size=batch_size, group_by=group_by, sort_by=sort_by)
        )

    def predict_proba(
        self,
        data: Any,
        *,
        batch_size: int | None = None,
        group_by: str | None = None,
        sort_by: str | None = None,
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Class probabilities ``(n, n_classes)`` of classification heads (binary heads: ``(n, 2)``)."""
        batches = self.predict_batches(
            data, batch_size=batch_size, group_by=group_by, sort_by=sort_by, proba=True
        )
        return self._collect(batches)

    def _collect(self, batches: Iterator[PredictionBatch]) -> np.ndarray | dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {s.node: [] for s in self.outputs}
        for b in batches:
            for n, y in b.outputs.items():
                parts[n].append(y)
        out = {n: np.concatenate(v) if len(v) != 1 else v[0] for n, v in parts.items()}
        return out[self.outputs[0].node] if len(out) == 1 else out

    def __repr__(self) -> str:
        lines = ["Predictor("]
        for label, schema in self.schemas.items():
            keys = ", ".join(
                f"{k}{list(schema.key_shape('features', k)) if schema.key_shape('features', k) else ''}:"
                f"{schema.key_dtype('features', k, 'raw')}"
                for k in self.input_keys(label)
            )
            scalers = ", ".join(r.describe().partition(" (")[0] for r in scaler_records(schema)) or "none"
            lines.append(f"  inputs from {label!r}: {keys}")
            lines.append(f"  scalers: {scalers}")
        for s in self.outputs:
            shape = list(self.state.shapes[s.node].output_shape)
            where = f" -> raw {', '.join(s.targets)}" if s.inverse else ""
            lines.append(f"  output {s.node!r}: {shape} {s.task}{where}")
        lines.append(f"  nodes: {', '.join(self.graph.topological_order)}")
        lines.append(")")
        return "\n".join(lines)


def _numpy(y: Any) -> np.ndarray:
    if hasattr(y, "detach"):
        return y.detach().cpu().numpy()
    if hasattr(y, "numpy") and not isinstance(y, np.ndarray):
        return np.asarray(y.numpy())
    return np.asarray(y)


def check_outputs(graph: ModelGraph, outputs: tuple[str, ...]) -> None:
    """Every output names a node of ``graph``."""
    from mml.graph import close_matches

    for n in outputs:
        if n not in graph:
            raise GraphError(
                f"outputs= names node {n!r}{close_matches(n, graph.topological_order)}, which is not in the graph; "
                f"nodes: {', '.join(graph.topological_order)}"
            )
