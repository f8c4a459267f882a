"""Execution as a fold: :func:`steps` lazily yields ``(state, context)``; :func:`run_phase`
and :func:`run` fold it.

The functional core lives here: no printing, no files. Every step takes a
:class:`~mml.training.TrainState` and returns a new one; the input state and the experiment
are never changed, so the same ``(experiment, state)`` run twice gives bit-identical results
on the CPU, and a "preview" is simply a run whose result is dropped.

>>> import mml
>>> callable(steps) and callable(run_phase) and callable(run)
True
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from mml._fields import FrozenDict
from mml.callbacks._base import AbstractCallback, Event
from mml.data._batch import torch_view
from mml.errors import CallbackError, MMLError, TrainingError
from mml.graph import TargetPlan, node_targets, target_plan
from mml.graph._targets import target_leaves
from mml.random import Key, as_key, fold_in
from mml.training._class_ids import check_class_ids
from mml.training._devices import resolve_device
from mml.training._experiment import (
    GRADIENT_BACKENDS,
    Experiment,
    check_graphwise_backends,
    heads_of,
    node_backend,
)
from mml.training._losses import AppliedLoss, compile_loss
from mml.training._phases import AbstractPhase, EvalPhase, FitPhase, InputBinding, PhaseGroup, TrainPhase
from mml.training._results import ErrorRecord, EvalResult, History, PhaseResult, _locate
from mml.training._state import GRAPH_OPTIMIZER, ExecutionContext, TrainState, box

__all__ = ["init", "steps", "run_phase", "run", "evaluate", "fit_nodes"]


def init(experiment: Experiment, key: Key | int) -> TrainState:
    """Build the graph and initialise every node from ``key``: the run's first state.

    The same key gives bit-identical params. Optimizer states are created when a training
    phase first needs them.
    """
    from mml.graph import build
    from mml.training._classes import with_class_widths

    key = as_key(key)
    gstate = build(with_class_widths(experiment), experiment.featuresets, fold_in(key, "init"))
    return TrainState(graph=gstate, key=key)


# -- phase preparation (once per phase) ---------------------------------------------------


def loss_backend(graph: Any, label: str) -> str:
    """The tensor library a loss bound to ``label`` computes in: ``"tensorflow"`` or ``"torch"``.

    A model node's own backend (scikit-learn outputs are numpy and go to torch); a joining
    node's is that of its inputs (torch wins, as when the graph combines them).
    """
    node = graph[label]
    model = getattr(node, "model", None)
    if model is not None:
        return "tensorflow" if getattr(model, "backend", None) == "tensorflow" else "torch"
    found = {loss_backend(graph, up) for up in node.node_upstreams}
    return "tensorflow" if found == {"tensorflow"} else "torch"


class _LossPlan:
    """One applied loss, resolved once per phase (not a value: never saved)."""

    __slots__ = (
        "applied",
        "fn",
        "getters",
        "graph",
        "head",
        "name",
        "node",
        "targets",
        "tf",
        "weight",
        "weight_roles",
    )

    def __init__(self, applied: AppliedLoss, graph: Any, bound: Sequence[str]) -> None:
        self.applied = applied
        self.graph = graph
        self.targets = target_plan(graph, applied.node)  # joining nodes' targets= strategies
        self.tf = loss_backend(graph, applied.node) == "tensorflow"
        self.fn = compile_loss(applied.loss, "tensorflow" if self.tf else "torch")
        self.name = applied.name
        self.node = applied.node
        self.weight = applied.weight
        heads = [h for h in heads_of(graph, applied.node) if h in bound]
        self.head = heads[0] if heads else None
        self.getters = [(s.role or "default", s.source, s.key) for s in applied.specs]
        # per-sample weights and masks of every role the loss reads are combined (product / and)
        self.weight_roles = tuple(dict.fromkeys(g[0] for g in self.getters))

    def value(self, outputs: Mapping[str, Any], data: Mapping[str, Any]) -> Any:
        tf = self.tf
        args = []
        for role, source, key in self.getters:
            if source == "outputs":
                try:
                    y = outputs[role][self.node]
                except KeyError:
                    raise TrainingError(_missing(self, role, outputs)) from None
            elif source == "targets":
                if role not in data:
                    raise TrainingError(_missing(self, role, data))
                y = node_targets(self.graph, self.node, data[role], self.targets)
                if y is None:
                    raise TrainingError(
                        f"loss {self.name!r} reads targets but the batch of {self.head!r} has none"
                    )
            else:
                try:
                    sd = data[role][self.head]
                except KeyError:
                    raise TrainingError(_missing(self, role, data)) from None
                y = sd.tags[key] if source == "tags" else getattr(sd, source)
                if y is None:
                    raise TrainingError(
                        f"loss {self.name!r} reads {source} but the batch of {self.head!r} has none"
                    )
            args.append(_as_tf(y) if tf else _as_torch(y))
        w = m = None
        if self.head is not None:
            for role in self.weight_roles:
                sd = data.get(role, {}).get(self.head)
                if sd is None:
                    continue
                if sd.weights is not None:
                    sw = _as_tf(sd.weights) if tf else _as_torch(sd.weights)
                    w = sw if w is None else w * sw
                if sd.mask is not None:
                    sm = _as_tf(sd.mask) if tf else _as_torch(sd.mask)
                    m = sm if m is None else m & sm
        return self.fn(args, w, m)


def _as_torch(y: Any) -> Any:
    import torch

    if isinstance(y, torch.Tensor):
        return y
    if hasattr(y, "numpy"):  # a TensorFlow tensor crossing into torch
        y = y.numpy()
    a = np.asarray(y)
    if a.dtype.kind in "biuf":
        return torch_view(a)
    return torch.as_tensor(a)


def _as_tf(y: Any) -> Any:
    from mml.training._losses_tf import as_tf

    return as_tf(y)


def _missing(lp: _LossPlan, role: str, found: Mapping[str, Any]) -> str:
    return (
        f"loss {lp.name!r} reads role {role!r} but the batch has roles {', '.join(found)}; qualify the "
        "inputs with a role, e.g. inputs=('anchor.outputs', 'positive.outputs', 'negative.outputs')"
    )


def _ancestors(graph: Any, labels: Sequence[str]) -> set[str]:
    seen = set(labels)
    stack = list(labels)
    while stack:
        for up in graph[stack.pop()].node_upstreams:
            if up not in seen:
                seen.add(up)
                stack.append(up)
    return seen


def _resolve_keys(experiment: Experiment, head: str, binding: InputBinding) -> dict[str, Any]:
    from mml.graph._refs import resolve_keys

    node = experiment.graph[head]
    ref: Any = node.upstream_refs[0]  # a head reads a FeatureSetRef
    fs = experiment.featuresets[binding.featureset]
    out: dict[str, Any] = {d: list(resolve_keys(ref, fs, d)) for d in ("features", "targets", "tags")}
    out["rep"] = ref.rep
    return out


def _view(experiment: Experiment, head: str, binding: InputBinding, split: str | None = None) -> Any:
    fs = experiment.featuresets[binding.featureset]
    split = binding.split if split is None else split
    if split is not None and split not in fs.split_indices:
        raise TrainingError(
            f"FeatureSet {binding.featureset!r} has no split {split!r} (splits: {', '.join(fs.split_indices) or 'none'})"
        )
    view = fs[split] if split is not None else fs.view()
    keys = _resolve_keys(experiment, head, binding)
    return view.select(features=keys["features"], targets=keys["targets"], tags=keys["tags"], rep=keys["rep"])


def _to_torch(sd: Any, device: Any) -> Any:
    """SampleData (numpy) → SampleData of torch tensors on ``device`` (floats as float32), once per batch."""
    import torch

    def conv(a: Any) -> Any:
        if a is None:
            return None
        if isinstance(a, torch.Tensor):
            t = a
        else:
            a = np.asarray(a)
            if a.dtype.kind == "f":
                if a.dtype != np.float32:
                    a = a.astype(np.float32)
            elif a.dtype.kind not in "iub":
                return a
            t = torch_view(a)  # shares read-only batch memory (no per-step copy)
        if device is not None and t.device != device:
            t = t.to(device, non_blocking=True)
        return t

    return _replace(
        sd,
        features=conv(sd.features),
        targets=conv(sd.targets),
        weights=conv(sd.weights),
        mask=conv(sd.mask),
    )


def _device_data_wanted(device: Any) -> bool:
    """Whether a head's prepared data move to ``device`` once per phase (any device but the CPU).

    On the CPU the numpy arrays are already where the model runs, and a batch's conversion
    shares their memory; elsewhere gathering on the device saves one host-to-device copy per
    step.
    """
    return device is not None and getattr(device, "type", "cpu") != "cpu"


def _device_data(prepared: Any, device: Any) -> Any:
    """A head's prepared data as torch tensors on ``device``, once per phase.

    Features and targets become tensors as :func:`_to_torch` makes them per batch (floats as
    float32, integers and booleans as they are), numeric tags keep their dtype (as losses read
    them); UUIDs and text stay numpy on the host. The sampler then gathers every chunk of
    batches on the device, so the rows (and values) are those of the numpy path.
    """
    from mml.samplers._prepared import to_device

    return to_device(prepared, device, float_dtype=np.float32)


def _to_tf(sd: Any, device: Any = None) -> Any:
    """SampleData (numpy) → SampleData of TensorFlow tensors (floats as float32), once per batch."""
    from mml.training._losses_tf import as_tf

    def conv(a: Any) -> Any:
        if a is None:
            return None
        if not hasattr(a, "dtype") or getattr(a.dtype, "kind", "f") not in "biuf":
            return a
        return as_tf(a)

    return _replace(
        sd,
        features=conv(sd.features),
        targets=conv(sd.targets),
        weights=conv(sd.weights),
        mask=conv(sd.mask),
    )


def _converter(graph: Any, head: str) -> Any:
    """How the data of ``head`` is converted once per batch: to TensorFlow for Keras heads."""
    return (
        _to_tf if getattr(getattr(graph[head], "model", None), "backend", None) == "tensorflow" else _to_torch
    )


def _is_tf_params(rec: Any) -> bool:
    return rec is not None and hasattr(rec, "trainable") and not hasattr(rec, "params")


def param_dict(rec: Any) -> Mapping[str, Any]:
    """A node's trainable tensors by name (Keras variables are named by position: ``"0"``, ``"1"``...)."""
    if _is_tf_params(rec):
        return {str(i): v for i, v in enumerate(rec.trainable)}
    return rec.params  # type: ignore[no-any-return]


def _with_param_dict(rec: Any, params: Mapping[str, Any]) -> Any:
    if _is_tf_params(rec):
        return _replace(rec, trainable=tuple(params[str(i)] for i in range(len(rec.trainable))))
    return _replace(rec, params=FrozenDict.wrap(dict(params)))


def _params_device(state: TrainState, label: str) -> Any:
    rec = state.graph.params[label]
    params = getattr(rec, "params", None)
    if params:
        v = next(iter(params.values()))
        return getattr(v, "device", None)
    return None


def _move_params(state: TrainState, label: str, device: Any) -> TrainState:
    import torch

    rec: Any = state.graph.params[label]  # a backend params record (TorchParams here)
    params = getattr(rec, "params", None)
    if not params:
        return state
    if all(isinstance(v, torch.Tensor) and v.device == device for v in params.values()):
        return state
    moved = {
        k: torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v for k, v in params.items()
    }
    moved = {k: v.to(device) for k, v in moved.items()}
    new = attrs.evolve(rec, params=moved)
    if getattr(rec, "buffers", None):
        new = attrs.evolve(
            new,
            buffers={
                k: torch.as_tensor(np.asarray(v)).to(device)
                if not isinstance(v, torch.Tensor)
                else v.to(device)
                for k, v in rec.buffers.items()
            },
        )
    return state.with_params(label, new)


def _fed_by(graph: Any, heads: Sequence[str]) -> frozenset[str]:
    """The nodes whose every head is in ``heads`` (they can run on those heads' data alone)."""
    hs = set(heads)
    return frozenset(n for n in graph.topological_order if set(heads_of(graph, n)) <= hs)


class _StepPlan:
    """What one step runs: its heads, active nodes, losses and trainable nodes by backend.

    One for every step under a ``zip_*`` schedule; one per binding group under
    ``alternate_*``. Not a value: never saved.
    """

    __slots__ = ("active", "heads", "losses", "stagewise", "tf_nodes", "torch_nodes")

    def __init__(
        self,
        heads: tuple[str, ...],
        active: frozenset[str],
        losses: tuple[_LossPlan, ...],
        torch_nodes: tuple[str, ...],
        tf_nodes: tuple[str, ...],
        stagewise: bool,
    ) -> None:
        self.heads = heads
        self.active = active
        self.losses = losses
        self.torch_nodes = torch_nodes
        self.tf_nodes = tf_nodes
        self.stagewise = stagewise


class _TrainPlan:
    """What a training phase resolves once before its first step."""

    def __init__(self, experiment: Experiment, phase: TrainPhase, state: TrainState) -> None:
        graph = experiment.graph
        self.graph = graph
        self.phase = phase
        self.stagewise = phase.mode == "stagewise"
        bound = tuple(phase.inputs)
        self.losses = [_LossPlan(a, graph, bound) for a in phase.losses]
        loss_nodes = [lp.node for lp in self.losses]
        self.active = (
            frozenset(phase.active_nodes)
            if phase.active_nodes is not None
            else frozenset(_ancestors(graph, loss_nodes))
        )
        missing_heads = [h for h in graph.heads if h in self.active and h not in phase.inputs]
        if missing_heads:
            raise TrainingError(
                f"phase {phase.label!r}: active head node(s) {', '.join(map(repr, missing_heads))} have no input "
                "binding; add them to inputs= or restrict active_nodes="
            )
        frozen = set(state.fitted) | {n for n in graph if getattr(graph[n], "frozen", False)}
        gradient_nodes = [
            n
            for n in graph.topological_order
            if n in self.active
            and getattr(getattr(graph[n], "model", None), "backend", None) in GRADIENT_BACKENDS
        ]
        if phase.trainable is not None:
            bad = [n for n in phase.trainable if n in frozen]
            if bad:
                raise TrainingError(
                    f"phase {phase.label!r}: node(s) {', '.join(map(repr, bad))} are frozen (in the graph or fitted "
                    "by a FitPhase) but listed as trainable; unfreeze them with graph.unfreeze(...) first"
                )
            other = [n for n in phase.trainable if n not in gradient_nodes]
            if other:
                raise TrainingError(
                    f"phase {phase.label!r}: node(s) {', '.join(map(repr, other))} cannot be trained by gradients "
                    "here (inactive, joining or scikit-learn nodes); fit scikit-learn nodes with a FitPhase"
                )
            trainable = [n for n in graph.topological_order if n in phase.trainable]
        else:
            trainable = [n for n in gradient_nodes if n not in frozen]
            if self.stagewise:
                trainable = [n for n in trainable if n in loss_nodes]
        if self.stagewise:
            no_loss = [n for n in trainable if n not in loss_nodes]
            if no_loss:
                raise TrainingError(
                    f"phase {phase.label!r} (stage-wise): trainable node(s) {', '.join(map(repr, no_loss))} have no "
                    "loss bound; gradients stop between nodes, so bind a loss to each or use mode='graphwise'"
                )
        if not trainable:
            raise TrainingError(
                f"phase {phase.label!r} has no trainable node (all frozen, fitted or without a loss); "
                "unfreeze a node or bind a loss to a torch or Keras node"
            )
        self.trainable = tuple(trainable)
        self.tf_nodes = frozenset(n for n in trainable if node_backend(graph, n) == "tensorflow")
        if not self.stagewise:
            check_graphwise_backends(phase.label, graph, trainable)
        self.optimizers: dict[str, Any] = {}
        if self.stagewise:
            for n in trainable:
                opt = getattr(graph[n], "optimizer", None) or phase.optimizer or graph.optimizer
                if opt is None:
                    raise TrainingError(
                        f"phase {phase.label!r}: node {n!r} has no optimizer; set ModelNode(optimizer=mml.optim.adam()) "
                        "or TrainPhase(optimizer=...)"
                    )
                self.optimizers[n] = opt
        else:
            opt = graph.optimizer or phase.optimizer
            if opt is None:
                raise TrainingError(
                    f"phase {phase.label!r} (graph-wise) needs one optimizer: ModelGraph(optimizer=...) or "
                    "TrainPhase(optimizer=...)"
                )
            self.optimizers[GRAPH_OPTIMIZER] = opt
        self.phase_key = fold_in(state.key, phase.label)
        self.sampler_key = fold_in(self.phase_key, "sampler")
        # devices: the node's own wins over the phase's
        self.devices: dict[str, Any] = {}
        for n in graph.topological_order:
            if n in self.active and getattr(graph[n], "model", None) is not None:
                name = getattr(graph[n], "device", None) or phase.device
                if name is not None:
                    self.devices[n] = resolve_device(name)
        # data: one prepared stream per head
        self.heads = [h for h in graph.topological_order if h in phase.inputs and h in self.active]
        self.prepared: dict[str, Any] = {}
        self.nbatches: dict[str, int] = {}
        columns: dict[str, Any] = {}
        for h in self.heads:
            b = phase.inputs[h]
            view = _view(experiment, h, b)
            columns[h] = view.columns
            self.prepared[h] = b.sampler.prepare(view)
            self.nbatches[h] = b.sampler.num_batches(self.prepared[h], b.stream)
        check_class_ids(self.losses, self.prepared, state.graph.shapes)
        groups: dict[tuple[Any, ...], list[str]] = {}
        for h in self.heads:
            b = phase.inputs[h]
            groups.setdefault((b.featureset, b.split, b.sampler, b.stream), []).append(h)
        self.groups = [tuple(g) for g in groups.values()]
        # Heads of one group see the same rows in the same order, but may read different columns:
        # one stream per distinct column selection, all drawn with the same key (so they align).
        self.readers: dict[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]] = {}
        for g in self.groups:
            by_cols: dict[Any, list[str]] = {}
            for h in g:
                by_cols.setdefault(columns[h], []).append(h)
            self.readers[g] = tuple((hs[0], tuple(hs)) for hs in by_cols.values())
            # A stream's batches are gathered where its heads run (one device, all torch heads):
            # its data move there once, and no step copies a batch from the host.
            for first, hs in self.readers[g]:
                devs = {self.devices.get(h) for h in hs}
                dev = next(iter(devs))
                if (
                    len(devs) == 1
                    and _device_data_wanted(dev)
                    and all(_converter(graph, h) is _to_torch for h in hs)
                ):
                    self.prepared[first] = _device_data(self.prepared[first], dev)
        self.callbacks: tuple[AbstractCallback, ...] = phase.callbacks
        self.slots = tuple(f"{phase.label}/{i}" for i in range(len(phase.callbacks)))
        self.batch_callbacks = any(cb.has_batch_hooks for cb in phase.callbacks)
        self.lr_callbacks = [
            (cb, s)
            for cb, s in zip(phase.callbacks, self.slots)
            if type(cb).lr_scale is not AbstractCallback.lr_scale
        ]
        self.converters = {h: _converter(graph, h) for h in self.heads}
        if phase.batch_schedule.startswith("zip") or len(self.groups) == 1:
            every = self._step_plan(self.heads, self.losses)
            self.step_plans = dict.fromkeys(self.groups, every)
        else:
            self.step_plans = self._alternate_plans()

    def _step_plan(self, heads: Sequence[str], losses: Sequence[_LossPlan]) -> _StepPlan:
        active = self.active if len(heads) == len(self.heads) else self.active & _fed_by(self.graph, heads)
        if self.stagewise:
            own = {lp.node for lp in losses}
            trainable = tuple(n for n in self.trainable if n in own)
        else:
            trainable = self.trainable  # a node no loss of the step reaches gets a zero gradient
        return _StepPlan(
            tuple(heads),
            active,
            tuple(losses),
            tuple(n for n in trainable if n not in self.tf_nodes),
            tuple(n for n in trainable if n in self.tf_nodes),
            self.stagewise,
        )

    def _alternate_plans(self) -> dict[tuple[str, ...], _StepPlan]:
        label = self.phase.label
        owner: dict[tuple[str, ...], list[_LossPlan]] = {g: [] for g in self.groups}
        for lp in self.losses:
            heads = {h for h in heads_of(self.graph, lp.node) if h in self.heads}
            found = [g for g in self.groups if heads <= set(g)]
            if not found:
                raise TrainingError(
                    f"phase {label!r} (batch_schedule={self.phase.batch_schedule!r}): loss {lp.name!r} needs head(s) "
                    f"{', '.join(map(repr, sorted(heads)))}, which are fed by different bindings; an alternate "
                    "schedule feeds one binding per step — use a 'zip_*' schedule or bind those heads to the same data"
                )
            owner[found[0]].append(lp)
        idle = [g for g, lps in owner.items() if not lps]
        if idle:
            raise TrainingError(
                f"phase {label!r} (batch_schedule={self.phase.batch_schedule!r}): the binding of head(s) "
                f"{', '.join(repr(h) for g in idle for h in g)} feeds no loss; bind a loss to a node below them "
                "or drop the binding"
            )
        return {g: self._step_plan(g, owner[g]) for g in self.groups}

    def head_batches(self, head: str, epoch: int) -> Iterator[Any]:
        b = self.phase.inputs[head]
        fskey = fold_in(self.sampler_key, f"{b.featureset}/{b.split}")
        return b.sampler.batches(self.prepared[head], key=fskey, epoch=epoch, stream=b.stream)

    def schedule(self, epoch: int) -> Iterator[tuple[_StepPlan, dict[str, Any]]]:
        """Per step: the step plan and head → Batch (see ``docs/training.md``, batch schedules).

        Heads bound to the same (FeatureSet, split, sampler, stream) form one group and share
        each batch. With groups ``S1 = [b1, b2, b3]`` and ``S2 = [c1, c2]``: ``zip_strict``
        gives ``(b1, c1), (b2, c2)``; ``zip_cycle`` ``(b1, c1), (b2, c2), (b3, c1)``;
        ``alternate_strict`` ``b1, c1, b2, c2``; ``alternate_cycle`` ``b1, c1, b2, c2, b3, c1``.
        A cycled group restarts the same epoch's stream (the same batches again).
        """
        mode = self.phase.batch_schedule
        groups = self.groups
        counts = [self.nbatches[g[0]] for g in groups]
        n = max(counts) if mode.endswith("cycle") else min(counts)
        plans = [self.step_plans[g] for g in groups]
        if len(groups) == 1 and len(self.readers[groups[0]]) == 1:
            g, sp = groups[0], plans[0]
            for batch in self.head_batches(g[0], epoch):
                yield sp, dict.fromkeys(g, batch)
            return
        iters = [self._group_batches(g, epoch) for g in groups]

        def nxt(i: int) -> dict[str, Any]:
            try:
                return next(iters[i])
            except StopIteration:  # only a '*_cycle' schedule gets here: restart the same stream
                iters[i] = self._group_batches(groups[i], epoch)
                return next(iters[i])

        if len(groups) == 1 or mode.startswith("zip"):
            sp = plans[0]
            for _ in range(n):
                batches: dict[str, Any] = {}
                for i in range(len(groups)):
                    batches.update(nxt(i))
                yield sp, batches
        else:
            for _ in range(n):
                for i in range(len(groups)):
                    yield plans[i], nxt(i)

    def _group_batches(self, group: tuple[str, ...], epoch: int) -> Iterator[dict[str, Any]]:
        """head → batch for one group; heads reading the same columns share one batch."""
        readers = self.readers[group]
        streams = [self.head_batches(first, epoch) for first, _ in readers]
        for batches in zip(*streams):
            out: dict[str, Any] = {}
            for (_, heads), batch in zip(readers, batches):
                for h in heads:
                    out[h] = batch
            yield out

    def lr_scale(self, state: TrainState) -> float:
        scale = 1.0
        for cb, slot in self.lr_callbacks:
            scale *= cb.lr_scale(state.callback_state(slot))
        return scale


# -- callbacks ---------------------------------------------------------------------------


def _locate_hook(exc: BaseException, hook: str, event: Event) -> None:
    # only the axes the hook has: a phase-level hook's event carries epoch/batch defaults
    epoch = event.epoch if "epoch" in hook or "batch" in hook else None
    batch = event.batch if "batch" in hook else None
    _locate(exc, event.phase, epoch, batch)


def _dispatch(
    callbacks: Sequence[AbstractCallback],
    slots: Sequence[str],
    hook: str,
    event: Event,
    state: TrainState,
) -> tuple[TrainState, dict[str, float], bool]:
    metrics: dict[str, float] = dict(event.metrics)
    logged: dict[str, float] = {}
    stop = False
    for cb, slot in zip(callbacks, slots):
        if not cb.overrides(hook):
            continue
        ev = attrs.evolve(event, state=state, metrics=metrics)
        try:
            res = getattr(cb, hook)(ev, state.callback_state(slot))
        except MMLError as exc:
            if isinstance(exc, CallbackError):
                raise
            err = CallbackError(
                f"callback {type(cb).__name__} failed in {hook} (phase {event.phase!r}, epoch {event.epoch}, "
                f"batch {event.batch}): {exc}"
            )
            _locate_hook(err, hook, event)
            raise err from exc
        except Exception as exc:
            err = CallbackError(
                f"callback {type(cb).__name__} raised {type(exc).__name__} in {hook} (phase {event.phase!r}, "
                f"epoch {event.epoch}, batch {event.batch}): {exc}; the run is marked failed and the state "
                "before this hook is kept"
            )
            _locate_hook(err, hook, event)
            raise err from exc
        if res is None:
            continue
        state = state.with_callback_state(slot, res.state)
        for k, v in res.metrics.items():
            metrics[k] = logged[k] = float(v)
        if res.restore is not None:
            state = state.with_graph(res.restore)
        stop = stop or res.stop
    return state, logged, stop


# -- the training step -------------------------------------------------------------------


def _replace(inst: Any, **changes: Any) -> Any:
    """``attrs.evolve`` without re-running converters and validators.

    Only for values the loop itself just built from already-valid parts (the hot path):
    re-validating a frozen record every step costs more than the step's arithmetic.
    """
    cls = inst.__class__
    new = object.__new__(cls)
    for a in cls.__attrs_attrs__:
        name = a.name
        object.__setattr__(new, name, changes[name] if name in changes else getattr(inst, name))
    return new


def _train_step(
    plan: _TrainPlan,
    sp: _StepPlan,
    state: TrainState,
    batches: Mapping[str, Any],
    epoch: int,
    index: int,
) -> tuple[TrainState, ExecutionContext]:
    from mml.graph import forward

    first = next(iter(batches.values()))
    roles = tuple(first.roles)
    devices = plan.devices
    conv = plan.converters
    data = {r: {h: conv[h](b.roles[r], devices.get(h)) for h, b in batches.items()} for r in roles}

    gs = state.graph
    nodes: Mapping[str, Any] = gs.params
    leaves: dict[str, dict[str, Any]] = {}
    flat: list[Any] = []
    grad_mode: Any = _NO_TAPE
    if sp.torch_nodes:
        import torch

        grad_mode = torch.enable_grad()
        with_leaves: dict[str, Any] = {}
        for label in sp.torch_nodes:
            rec = nodes[label]
            lv = {k: v.detach().requires_grad_() for k, v in rec.params.items()}
            leaves[label] = lv
            flat.extend(lv.values())
            with_leaves[label] = _replace(rec, params=lv)
        merged = dict(nodes.items())
        merged.update(with_leaves)
        gs = _replace(gs, params=FrozenDict.wrap(merged))
    tape: Any = None
    if sp.tf_nodes:
        import tensorflow as tf

        # a persistent tape: stage-wise, each Keras node takes the gradient of its own losses
        tape = tf.GradientTape(
            persistent=sp.stagewise and len(sp.tf_nodes) > 1, watch_accessed_variables=False
        )
    key = fold_in(plan.phase_key, state.step)  # ~2 us: cheap enough to derive on every step
    outputs: dict[str, Any] = {}
    changed: dict[str, Any] = {}
    active = sp.active
    with grad_mode, tape if tape is not None else _NO_TAPE:
        if tape is not None:
            for label in sp.tf_nodes:
                for v in nodes[label].trainable:
                    tape.watch(v)
        for r in roles:
            k = key if len(roles) == 1 else fold_in(key, r)
            res = forward(
                plan.graph,
                gs,
                data[r],
                training=True,
                key=k,
                active_nodes=active,
                stop_gradients=sp.stagewise,
            )
            outputs[r] = res.outputs
            if res.params:
                changed.update(res.params)
        total_t: Any = None
        total_tf: Any = None
        own_tf: dict[str, Any] = {}
        values = []
        for lp in sp.losses:
            v = lp.value(outputs, data)
            values.append(v)
            t = v if lp.weight == 1.0 else v * lp.weight
            if lp.tf:
                total_tf = t if total_tf is None else total_tf + t
                if sp.stagewise and lp.node in plan.tf_nodes:
                    own_tf[lp.node] = t if lp.node not in own_tf else own_tf[lp.node] + t
            else:
                total_t = t if total_t is None else total_t + t
    losses = {lp.name: float(v) if lp.tf else float(v.detach()) for lp, v in zip(sp.losses, values)}
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
    named_grads: dict[str, dict[str, Any]] = {}
    if flat and total_t is not None and total_t.requires_grad:
        grads = torch.autograd.grad(total_t, flat, allow_unused=True)
        i = 0
        for label in sp.torch_nodes:
            g: dict[str, Any] = {}
            for name, p in leaves[label].items():
                gi = grads[i]
                i += 1
                g[name] = torch.zeros_like(p) if gi is None else gi
            named_grads[label] = g
    if tape is not None:
        named_grads.update(_tf_grads(tape, sp, nodes, total_tf, own_tf))
        del tape
    if named_grads:
        new_state = _apply_updates(plan, sp, state, named_grads, changed, epoch, index)
    else:
        new_state = _replace(state, step=state.step + 1, epoch=epoch, batch=index + 1)
    ctx = ExecutionContext(plan.phase.label, epoch, index, state.step, data, outputs, losses, first.stream)
    return new_state, ctx


def _zeros(v: Any) -> Any:
    if hasattr(v, "detach"):
        import torch

        return torch.zeros_like(v)
    import tensorflow as tf

    return tf.zeros_like(v)


class _NoTape:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


_NO_TAPE = _NoTape()


def _tf_grads(
    tape: Any, sp: _StepPlan, nodes: Mapping[str, Any], total: Any, own: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    import tensorflow as tf

    zero = tf.UnconnectedGradients.ZERO
    out: dict[str, dict[str, Any]] = {}
    if sp.stagewise:
        for label in sp.tf_nodes:
            params = nodes[label].trainable
            if label in own:
                g = tape.gradient(own[label], list(params), unconnected_gradients=zero)
            else:
                g = [tf.zeros_like(v) for v in params]
            out[label] = {str(i): gi for i, gi in enumerate(g)}
        return out
    flat = [v for label in sp.tf_nodes for v in nodes[label].trainable]
    g = (
        tape.gradient(total, flat, unconnected_gradients=zero)
        if total is not None
        else [tf.zeros_like(v) for v in flat]
    )
    i = 0
    for label in sp.tf_nodes:
        n = len(nodes[label].trainable)
        out[label] = {str(j): g[i + j] for j in range(n)}
        i += n
    return out


def _apply_updates(
    plan: _TrainPlan,
    sp: _StepPlan,
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
            new_p, new_s = opt.update(g, opt_states[label].value, param_dict(rec), n, lr_scale=scale)
            opt_states[label] = box(new_s)
            opt_steps[label] = n + 1
            updates[label] = _with_param_dict(rec, new_p)
    else:
        recs = {label: nodes[label] for label in plan.trainable}
        flat_p = {f"{label}/{k}": v for label, rec in recs.items() for k, v in param_dict(rec).items()}
        flat_g: dict[str, Any] = {}
        for label, rec in recs.items():
            got = named_grads.get(label)
            # a node not run in this step (alternate schedule) gets a zero gradient
            g = got if got is not None else {k: _zeros(v) for k, v in param_dict(rec).items()}
            for k, v in g.items():
                flat_g[f"{label}/{k}"] = v
        opt = plan.optimizers[GRAPH_OPTIMIZER]
        n = opt_steps.get(GRAPH_OPTIMIZER, 0)
        new_flat, new_s = opt.update(flat_g, opt_states[GRAPH_OPTIMIZER].value, flat_p, n, lr_scale=scale)
        opt_states[GRAPH_OPTIMIZER] = box(new_s)
        opt_steps[GRAPH_OPTIMIZER] = n + 1
        for label, rec in recs.items():
            updates[label] = _with_param_dict(rec, {k: new_flat[f"{label}/{k}"] for k in param_dict(rec)})
    for label, new in changed.items():
        # state the forward pass evolved (batch-norm statistics): torch buffers, Keras non-trainables
        rec = updates.get(label, nodes[label])
        if _is_tf_params(new):
            updates[label] = _replace(rec, non_trainable=new.non_trainable)
        elif getattr(new, "buffers", None):
            updates[label] = _replace(rec, buffers=FrozenDict.wrap(dict(new.buffers.items())))
    merged = dict(nodes.items())
    merged.update(updates)
    return _replace(
        state,
        graph=_replace(state.graph, params=FrozenDict.wrap(merged)),
        opt_states=FrozenDict.wrap(opt_states),
        opt_steps=FrozenDict.wrap(opt_steps),
        step=state.step + 1,
        epoch=epoch,
        batch=index + 1,
    )


def _detach_outputs(ctx: ExecutionContext) -> ExecutionContext:
    outs = {
        r: {n: (y.detach() if hasattr(y, "detach") else y) for n, y in o.items()}
        for r, o in ctx.outputs.items()
    }
    return attrs.evolve(ctx, outputs=outs)


def _to_tf_params(rec: Any) -> Any:
    """A Keras node's record with TensorFlow tensors (a loaded state holds numpy arrays)."""
    import tensorflow as tf

    if all(isinstance(v, tf.Tensor) for v in (*rec.trainable, *rec.non_trainable)):
        return rec
    return attrs.evolve(
        rec,
        trainable=tuple(
            tf.convert_to_tensor(np.asarray(v)) if not isinstance(v, tf.Tensor) else v for v in rec.trainable
        ),
        non_trainable=tuple(
            tf.convert_to_tensor(np.asarray(v)) if not isinstance(v, tf.Tensor) else v
            for v in rec.non_trainable
        ),
    )


def _prepare_train_state(plan: _TrainPlan, state: TrainState) -> TrainState:
    for label, dev in plan.devices.items():
        if label not in plan.tf_nodes:
            state = _move_params(state, label, dev)
    for label in plan.tf_nodes:
        state = state.with_params(label, _to_tf_params(state.params(label)))
    for label, opt in plan.optimizers.items():
        if state.opt_state(label) is None:
            params: Mapping[str, Any]
            if label == GRAPH_OPTIMIZER:
                params = {
                    f"{n}/{k}": v for n in plan.trainable for k, v in param_dict(state.params(n)).items()
                }
            else:
                params = param_dict(state.params(label))
            state = state.with_opt_state(label, opt.init(params)).with_opt_steps(label, 0)
    return state


def _train_steps(
    experiment: Experiment, phase: TrainPhase, state: TrainState
) -> Iterator[tuple[TrainState, ExecutionContext]]:
    plan = _TrainPlan(experiment, phase, state)
    state = attrs.evolve(_prepare_train_state(plan, state), epoch=0, batch=0, stop=False)
    cbs, slots = plan.callbacks, plan.slots
    for cb, slot in zip(cbs, slots):
        state = state.with_callback_state(slot, cb.init())
    base = Event("on_phase_start", phase=phase.label, experiment=experiment, phase_value=phase)
    state, _, stop = _dispatch(cbs, slots, "on_phase_start", base, state)
    stopped = stop
    for epoch in range(phase.n_epochs):
        if stopped:
            break
        ev = attrs.evolve(base, hook="on_epoch_start", epoch=epoch, step=state.step)
        state, _, stop = _dispatch(cbs, slots, "on_epoch_start", ev, state)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        index = -1
        for index, (sp, batches) in enumerate(plan.schedule(epoch)):
            if plan.batch_callbacks:
                ev = attrs.evolve(base, hook="on_batch_start", epoch=epoch, batch=index, step=state.step)
                state, _, stop = _dispatch(cbs, slots, "on_batch_start", ev, state)
            try:
                new_state, ctx = _train_step(plan, sp, state, batches, epoch, index)
            except TrainingError as exc:
                exc.state = state  # type: ignore[attr-defined]
                _locate(exc, phase.label, epoch, index)
                raise
            state = new_state
            for k, v in ctx.losses.items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            if plan.batch_callbacks:
                ev = attrs.evolve(
                    base, hook="on_batch_end", epoch=epoch, batch=index, step=state.step, context=ctx
                )
                state, logged, stop = _dispatch(cbs, slots, "on_batch_end", ev, state)
                if logged:
                    ctx = attrs.evolve(ctx, metrics=logged)
                stopped = stopped or stop
            yield state, ctx
            if stopped:
                break
        means = {k: v / counts[k] for k, v in sums.items()}
        ev = attrs.evolve(base, hook="on_epoch_end", epoch=epoch, batch=index, step=state.step, metrics=means)
        state, logged, stop = _dispatch(cbs, slots, "on_epoch_end", ev, state)
        stopped = stopped or stop
        state = attrs.evolve(state, epoch=epoch + 1, stop=stopped)
        yield (
            state,
            ExecutionContext(
                phase.label, epoch, -1, state.step, {}, {}, means, event="epoch_end", metrics=logged
            ),
        )
    ev = attrs.evolve(base, hook="on_phase_end", epoch=state.epoch, step=state.step)
    state, logged, _ = _dispatch(cbs, slots, "on_phase_end", ev, state)
    state = attrs.evolve(state, stop=stopped)
    yield (
        state,
        ExecutionContext(
            phase.label, state.epoch, -1, state.step, {}, {}, {}, event="phase_end", metrics=logged
        ),
    )


# -- evaluation and fitting --------------------------------------------------------------


def _full_batches(
    experiment: Experiment, head: str, binding: InputBinding, batch_size: int, split: str | None
) -> Iterator[Any]:
    from mml.samplers import SimpleSampler

    sampler = SimpleSampler(batch_size, shuffle=False)
    prepared = sampler.prepare(_view(experiment, head, binding, split))
    return sampler.batches(prepared, key=as_key(0), epoch=0)


def evaluate(
    experiment: Experiment,
    state: TrainState,
    inputs: Mapping[str, InputBinding],
    *,
    losses: Sequence[AppliedLoss] = (),
    batch_size: int = 1024,
    nodes: Sequence[str] | None = None,
    inverse_transform: bool = False,
    split: str | None = None,
    label: str = "eval",
) -> EvalResult:
    """Forward the bound splits in order (no training), compute ``losses`` and stack outputs.

    ``split`` overrides the split of every binding (``Evaluation(split="val")`` uses it).
    Losses are averaged over samples (batch losses weighted by batch size).
    """
    import torch

    from mml.graph import forward

    graph = experiment.graph
    heads = [h for h in graph.topological_order if h in inputs]
    want = (
        list(nodes) if nodes is not None else list(dict.fromkeys([*graph.tails, *(a.node for a in losses)]))
    )
    active = frozenset(_ancestors(graph, want))
    lplans = [_LossPlan(a, graph, heads) for a in losses]
    iters = {h: _full_batches(experiment, h, inputs[h], batch_size, split) for h in heads if h in active}
    devices = {h: _params_device(state, h) for h in iters}
    convs = {h: _converter(graph, h) for h in iters}
    outs: dict[str, list[Any]] = {n: [] for n in want}
    head_tgts: dict[str, list[Any]] = {}
    uuids: list[Any] = []
    sums: dict[str, float] = {}
    count = 0
    with torch.no_grad():
        for batch_tuple in zip(*iters.values()):
            batches = dict(zip(iters, batch_tuple))
            first = batch_tuple[0]
            roles = tuple(first.roles)
            check_class_ids(lplans, {h: b.roles[roles[0]] for h, b in batches.items()}, state.graph.shapes)
            data = {r: {h: convs[h](b.roles[r], devices.get(h)) for h, b in batches.items()} for r in roles}
            outputs = {}
            for r in roles:
                outputs[r] = forward(graph, state.graph, data[r], training=False, active_nodes=active).outputs
            nb = len(first)
            count += nb
            for lp in lplans:
                sums[lp.name] = sums.get(lp.name, 0.0) + float(lp.value(outputs, data)) * nb
            r0 = roles[0]
            for n in want:
                y = outputs[r0].get(n)
                if y is not None:
                    outs[n].append(y.detach().cpu().numpy() if hasattr(y, "detach") else np.asarray(y))
            for h, b in batches.items():
                if b.roles[r0].targets is not None:
                    head_tgts.setdefault(h, []).append(np.asarray(b.roles[r0].targets))
            if first.roles[r0].sample_uuids is not None:
                uuids.append(np.asarray(first.roles[r0].sample_uuids))
    loss_means = {k: v / max(count, 1) for k, v in sums.items()}
    if lplans:
        loss_means["loss"] = sum(lp.weight * loss_means[lp.name] for lp in lplans)
    stacked = {n: np.concatenate(v) for n, v in outs.items() if v}
    by_head = {h: np.concatenate(v) for h, v in head_tgts.items()}
    targets = _node_targets(graph, want, by_head)
    if inverse_transform:
        stacked, targets = _inverse(experiment, inputs, want, stacked, targets, by_head)
    ids = {"default": np.concatenate(uuids)} if uuids else {}
    return EvalResult(label, loss_means, stacked, targets, ids)


def _node_targets(graph: Any, nodes: Sequence[str], by_head: Mapping[str, Any]) -> dict[str, Any]:
    """Each node's targets from the heads' stacked targets (joining nodes' ``targets=`` applied)."""
    out = {}
    for n in nodes:
        leaves = target_leaves(target_plan(graph, n))
        if leaves and all(leaf.head in by_head for leaf in leaves):
            y = node_targets(graph, n, by_head)
            if y is not None:
                out[n] = y
    return out


def _inverse(
    experiment: Experiment,
    inputs: Mapping[str, InputBinding],
    nodes: Sequence[str],
    outs: dict[str, Any],
    tgts: dict[str, Any],
    by_head: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Outputs and targets in raw units: each head's targets inverted with its own scalers.

    A node whose targets concatenate several heads' (``targets="concat"``) has its output
    columns split the same way; averaged targets of different columns (``"mean"``) have no
    single inverse, so such a node keeps transformed units.
    """
    graph = experiment.graph

    def invert(h: str, arr: Any) -> Any:
        b = inputs[h]
        resolved = _resolve_keys(experiment, h, b)
        if resolved["rep"] == "raw":
            return arr  # the node read raw targets: already in raw units
        fs = experiment.featuresets[b.featureset]
        return fs.inverse_transform(arr, domain="targets", keys=resolved["targets"])

    new_o, new_t = dict(outs), dict(tgts)
    for n in nodes:
        if n not in tgts:
            continue
        plan = target_plan(graph, n)
        leaves = target_leaves(plan)
        if isinstance(plan, TargetPlan) and (
            plan.strategy != "concat"
            or any(isinstance(p, TargetPlan) and p.strategy != "concat" for p in plan.parts)
        ):
            continue
        raw = {leaf.head: invert(leaf.head, by_head[leaf.head]) for leaf in leaves}
        new_t[n] = node_targets(graph, n, raw)
        if n not in outs or outs[n].shape != tgts[n].shape:
            continue
        if len(leaves) == 1:
            new_o[n] = invert(leaves[0].head, outs[n])
        elif all(by_head[leaf.head].ndim == 2 for leaf in leaves):
            # the output columns line up with the concatenated targets: split, invert, rejoin
            cuts = np.cumsum([by_head[leaf.head].shape[1] for leaf in leaves])[:-1]
            pieces = np.split(outs[n], cuts, axis=1)
            new_o[n] = np.concatenate([invert(leaf.head, p) for leaf, p in zip(leaves, pieces)], axis=1)
    return new_o, new_t


def fit_nodes(
    experiment: Experiment, phase: FitPhase, state: TrainState
) -> Iterator[tuple[TrainState, ExecutionContext]]:
    """The steps of a :class:`FitPhase`: one per fitted node, in topological order."""
    from mml.backends import fit
    from mml.graph import forward

    graph = experiment.graph
    heads = [h for h in graph.topological_order if h in phase.inputs]
    reachable = {
        n
        for n in graph.topological_order
        if set(heads_of(graph, n)) & set(heads) and set(heads_of(graph, n)) <= set(heads)
    }
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
            if n in reachable
            and getattr(getattr(graph[n], "model", None), "backend", None) == "sklearn"
            and n not in state.fitted
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
        model = getattr(node, "model", None)
        if model is None or getattr(model, "backend", None) != "sklearn":
            raise TrainingError(
                f"FitPhase {phase.label!r}: node {label!r} is not a scikit-learn node; train it with a TrainPhase"
            )
        ups = node.node_upstreams
        data = {}
        for h in heads_of(graph, label):
            b = phase.inputs[h]
            view = _view(experiment, h, b)
            batch = next(iter(_full_batches(experiment, h, b, max(len(view), 1), None)))
            data[h] = batch.roles[next(iter(batch.roles))]
        if node.is_head:
            x = data[label].features
        else:
            import torch

            with torch.no_grad():
                res = forward(
                    graph,
                    state.graph,
                    {h: _converter(graph, h)(d, None) for h, d in data.items()},
                    training=False,
                    active_nodes=frozenset(_ancestors(graph, ups)),
                )
            x = res.outputs[ups[0]]
            x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
        y = node_targets(graph, label, data)  # joining nodes' targets= strategies applied
        params = fit(model, state.params(label), x, y, key=fold_in(key, label))
        state = state.with_params(label, params)
        if phase.freeze_after_fit:
            state = state.mark_fitted(label)
        yield state, ExecutionContext(phase.label, 0, i, state.step, {}, {}, {}, event="fit")


def _eval_steps(
    experiment: Experiment, phase: EvalPhase, state: TrainState
) -> Iterator[tuple[TrainState, ExecutionContext]]:
    res = evaluate(
        experiment,
        state,
        phase.inputs,
        losses=phase.losses,
        batch_size=phase.batch_size,
        nodes=phase.nodes,
        inverse_transform=phase.inverse_transform,
        label=phase.label,
    )
    ctx = ExecutionContext(
        phase.label, 0, -1, state.step, {}, {"default": res.outputs}, res.losses, event="eval"
    )
    yield state, ctx


def steps(
    experiment: Experiment, phase: AbstractPhase, state: TrainState
) -> Iterator[tuple[TrainState, ExecutionContext]]:
    """Lazily yield ``(state, context)`` for every step of ``phase`` (a scan over batches).

    Training phases yield one ``"batch"`` context per update, then an ``"epoch_end"``
    context per epoch and a ``"phase_end"`` context; eval phases yield one ``"eval"``
    context; fit phases one ``"fit"`` context per fitted node. ``state`` is never changed.
    """
    if isinstance(phase, TrainPhase):
        return _train_steps(experiment, phase, state)
    if isinstance(phase, EvalPhase):
        return _eval_steps(experiment, phase, state)
    if isinstance(phase, FitPhase):
        return fit_nodes(experiment, phase, state)
    if isinstance(phase, PhaseGroup):
        return _group_steps(experiment, phase, state)
    raise TrainingError(f"unknown phase type {type(phase).__name__}")


def _group_steps(
    experiment: Experiment, group: PhaseGroup, state: TrainState
) -> Iterator[tuple[TrainState, ExecutionContext]]:
    for p in group.phases:
        last = state
        for last, ctx in steps(experiment, p, state):
            yield last, ctx
        state = last


# -- folding -----------------------------------------------------------------------------


def run_phase(
    experiment: Experiment, phase: AbstractPhase, state: TrainState, *, observer: Any = None
) -> tuple[TrainState, History]:
    """Fold :func:`steps` of one (leaf) phase: ``(final state, History)``.

    A failure (non-finite loss, a callback that raised) does not raise: the History has
    status ``"failed"`` and the error, and the returned state is the last good one.
    ``observer(state, ctx)`` (the shell's effects) sees every yielded pair.
    """
    if isinstance(phase, PhaseGroup):
        raise TrainingError("run_phase takes one phase; use run() for a plan or a PhaseGroup")
    t0 = time.perf_counter()
    rows: list[tuple[str, int, int, int, str, float]] = []
    recorded: list[ExecutionContext] = []
    record = getattr(phase, "record", "none")
    status = "completed"
    error: ErrorRecord | None = None
    eval_result = None
    n_steps = 0
    current = state
    label = phase.label
    try:
        if isinstance(phase, EvalPhase):
            eval_result = evaluate(
                experiment,
                state,
                phase.inputs,
                losses=phase.losses,
                batch_size=phase.batch_size,
                nodes=phase.nodes,
                inverse_transform=phase.inverse_transform,
                label=label,
            )
            rows.extend((label, 0, -1, state.step, k, v) for k, v in eval_result.losses.items())
            if observer is not None:
                ctx = ExecutionContext(
                    label,
                    0,
                    -1,
                    state.step,
                    {},
                    {"default": eval_result.outputs},
                    eval_result.losses,
                    event="eval",
                )
                observer(current, ctx)
        else:
            for current, ctx in steps(experiment, phase, state):
                ev = ctx.event
                if ev == "batch":
                    n_steps += 1
                    e, b, s = ctx.epoch, ctx.batch, ctx.step + 1
                    for name, v in ctx.losses.items():
                        rows.append((label, e, b, s, name, v))
                    for name, v in ctx.metrics.items():
                        rows.append((label, e, b, s, name, v))
                    if record != "none":
                        if record == "last_epoch" and recorded and recorded[-1].epoch != ctx.epoch:
                            recorded.clear()
                        recorded.append(_detach_outputs(ctx))
                elif ev in ("epoch_end", "phase_end"):
                    for name, v in ctx.losses.items():
                        rows.append((label, ctx.epoch, -1, ctx.step, name, v))
                    for name, v in ctx.metrics.items():
                        rows.append((label, ctx.epoch, -1, ctx.step, name, v))
                if observer is not None:
                    observer(current, ctx)
            if current.stop:
                status = "stopped"
    except TrainingError as exc:
        status = "failed"
        error = ErrorRecord.from_exception(exc, phase=label)
        good = getattr(exc, "state", None)
        current = good if good is not None else current
    result = PhaseResult(
        label, phase.kind, status, error, n_steps, time.perf_counter() - t0, eval_result, tuple(recorded)
    )
    current = attrs.evolve(current, stop=False) if current.stop else current
    return current, History.from_rows(rows, status=status, phases=(result,), error=error)


def run(
    experiment: Experiment,
    state: TrainState,
    *,
    progress: bool | None = None,
    log: str | None = None,
    observers: Sequence[Any] = (),
) -> tuple[TrainState, History]:
    """Run the whole plan: ``(final state, History)``. Neither argument is changed.

    Effects live in the shell: ``progress`` (default: on when stdout is a TTY and not in CI)
    draws a progress display; ``log`` writes every logged value to a ``.jsonl`` or ``.csv``
    file; ``observers`` (:mod:`mml.observers`: TensorBoard, MLflow, your own) see every
    event of every phase. They never change the numbers. A failed phase stops the run; the
    History says where and why.
    """
    from mml.training._shell import Shell

    shell = Shell.create(progress=progress, log=log, observers=observers)
    history = None
    try:
        result = _run_plan(experiment, state, shell)
        history = result[1]
        return result
    finally:
        shell.close(history)


def _run_plan(experiment: Experiment, state: TrainState, shell: Any) -> tuple[TrainState, History]:
    cbs = experiment.callbacks
    slots = tuple(f"experiment/{i}" for i in range(len(cbs)))
    history = History()
    base = Event("on_experiment_start", experiment=experiment)
    try:
        for cb, slot in zip(cbs, slots):
            state = state.with_callback_state(slot, cb.init())
        state, _, _ = _dispatch(cbs, slots, "on_experiment_start", base, state)
    except CallbackError as exc:
        return state, History(status="failed", error=exc)

    def walk(plan: AbstractPhase, state: TrainState, history: History) -> tuple[TrainState, History]:
        if isinstance(plan, PhaseGroup):
            ev = attrs.evolve(base, hook="on_group_start", group=plan.label, state=state)
            state, _, _ = _dispatch(cbs, slots, "on_group_start", ev, state)
            for p in plan.phases:
                state, history = walk(p, state, history)
                if history.status == "failed":
                    return state, history
            ev = attrs.evolve(base, hook="on_group_end", group=plan.label, state=state)
            state, _, _ = _dispatch(cbs, slots, "on_group_end", ev, state)
            return state, history
        ev = attrs.evolve(base, hook="on_phase_start", phase=plan.label, phase_value=plan, state=state)
        state, _, _ = _dispatch(cbs, slots, "on_phase_start", ev, state)
        shell.phase_start(plan)
        state, h = run_phase(experiment, plan, state, observer=shell.observe)
        shell.phase_end(plan, h)
        history = history.merge(h)
        ev = attrs.evolve(base, hook="on_phase_end", phase=plan.label, phase_value=plan, state=state)
        state, logged, _ = _dispatch(cbs, slots, "on_phase_end", ev, state)
        if logged:
            history = history.merge(
                History.from_rows(
                    [(plan.label, state.epoch, -1, state.step, k, v) for k, v in logged.items()]
                )
            )
        return state, history

    try:
        state, history = walk(experiment.plan, state, history)
        ev = attrs.evolve(base, hook="on_experiment_end", state=state)
        state, _, _ = _dispatch(cbs, slots, "on_experiment_end", ev, state)
    except CallbackError as exc:
        history = history.merge(History(status="failed", error=exc))
    return state, history
