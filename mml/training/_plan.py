"""What a training phase resolves once before its first step, and the batches of each step.

:class:`TrainPlan` validates the phase against the graph and the state (active, trainable and
frozen nodes, optimizers, devices), prepares one sampler stream per head and groups heads that
share their data; :meth:`TrainPlan.schedule` yields, per step, the :class:`StepPlan` and the
head → batch mapping of the phase's batch schedule. Neither is a value: they are never saved.

>>> callable(TrainPlan.schedule)
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from mml.backends import is_accelerator, resolve_device
from mml.callbacks import AbstractCallback
from mml.errors import TrainingError
from mml.graph import ModelNode
from mml.random import fold_in
from mml.samplers import cast_floats
from mml.training._class_ids import check_class_ids
from mml.training._experiment import GRADIENT_BACKENDS, Experiment, check_graphwise_backends
from mml.training._incremental import classes_of, incremental_nodes
from mml.training._lossplan import LossPlan
from mml.training._phases import TrainPhase
from mml.training._state import GRAPH_OPTIMIZER, TrainState
from mml.training._views import feed_backend, head_view

__all__ = ["StepPlan", "TrainPlan", "check_batches"]


def check_batches(phase: str, head: str, binding: Any, prepared: Any, n_batches: int) -> None:
    """A :class:`~mml.TrainingError` when a head's sampler makes no batch of its split per epoch.

    A training phase without a step would end "completed" with the model untouched (a batch
    larger than the split with ``drop_last=True``, say).
    """
    if n_batches > 0:
        return
    where = f"split {binding.split!r}" if binding.split is not None else "all rows"
    raise TrainingError(
        f"phase {phase!r}: head {head!r} gets no batch per epoch: {where} of FeatureSet "
        f"{binding.featureset!r} has {len(prepared)} sample(s) and {binding.sampler!r} makes none of them; "
        "lower batch_size, set drop_last=False, or bind a larger split"
    )


def _device_data(prepared: Any, device: Any) -> Any:
    """A head's prepared data as torch tensors on ``device``, once per phase.

    Features and targets become float32 tensors as a batch's conversion makes them, numeric
    tags keep their dtype (as losses read them); UUIDs and text stay numpy on the host. The
    sampler then gathers every chunk of batches on the device, so the rows (and values) are
    those of the numpy path.
    """
    from mml.samplers import to_device

    return to_device(prepared, device, float_dtype=np.float32)


class StepPlan:
    """What one step runs: its heads, active nodes, losses and trainable nodes by backend.

    One for every step under a ``zip_*`` schedule; one per binding group under
    ``alternate_*``. Not a value: never saved.
    """

    __slots__ = (
        "active",
        "heads",
        "losses",
        "role_plan",
        "stagewise",
        "streams",
        "tf_nodes",
        "torch_nodes",
        "trainable",
    )

    def __init__(
        self,
        heads: tuple[str, ...],
        active: frozenset[str],
        losses: tuple[LossPlan, ...],
        torch_nodes: tuple[str, ...],
        tf_nodes: tuple[str, ...],
        stagewise: bool,
        role_plan: tuple[tuple[str, tuple[str, ...], frozenset[str]], ...] | None = None,
        streams: tuple[str, ...] = (),
    ) -> None:
        self.heads = heads
        self.active = active
        self.losses = losses
        self.torch_nodes = torch_nodes
        self.tf_nodes = tf_nodes
        self.trainable = torch_nodes + tf_nodes  # the order their gradients are taken in
        self.stagewise = stagewise
        # heads whose batches have different role sets: per role, the heads that have it and
        # the nodes those heads alone feed (``None``: every head has every role)
        self.role_plan = role_plan
        self.streams = streams  # the streams that feed a step, in head order


class TrainPlan:
    """What a training phase resolves once before its first step."""

    def __init__(
        self,
        experiment: Experiment,
        phase: TrainPhase,
        state: TrainState,
        *,
        device_data: Callable[[Any], bool] = is_accelerator,
    ) -> None:
        graph = experiment.graph
        self.graph = graph
        self.phase = phase
        self.stagewise = phase.mode == "stagewise"
        bound = tuple(phase.inputs)
        self.losses = [LossPlan(a, graph, bound) for a in phase.losses]
        loss_nodes = [lp.node for lp in self.losses]
        self.active = (
            frozenset(phase.active_nodes) if phase.active_nodes is not None else graph.ancestors(loss_nodes)
        )
        missing_heads = [h for h in graph.heads if h in self.active and h not in phase.inputs]
        if missing_heads:
            raise TrainingError(
                f"phase {phase.label!r}: active head node(s) {', '.join(map(repr, missing_heads))} have no input "
                "binding; add them to inputs= or restrict active_nodes="
            )
        frozen = set(state.fitted) | {n for n in graph if graph[n].frozen}
        gradient_nodes = [
            n for n in graph.topological_order if n in self.active and graph[n].backend in GRADIENT_BACKENDS
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
        # scikit-learn nodes with partial_fit train batch by batch (mml/training/_incremental.py)
        self.incremental = incremental_nodes(graph, self.active, frozen)
        if phase.trainable is not None:
            self.incremental = tuple(n for n in self.incremental if n in phase.trainable)
        if not trainable and not self.incremental:
            raise TrainingError(
                f"phase {phase.label!r} has no trainable node (all frozen, fitted or without a loss); "
                "unfreeze a node, bind a loss to a torch or Keras node, or fit scikit-learn nodes "
                "without partial_fit in a FitPhase"
            )
        self.trainable = tuple(trainable)
        self.tf_nodes = frozenset(n for n in trainable if feed_backend(graph, n) == "tensorflow")
        if not self.stagewise:
            check_graphwise_backends(phase.label, graph, trainable)
        self.optimizers: dict[str, Any] = {}
        if self.stagewise:
            for n in trainable:
                opt = graph[n].optimizer or phase.optimizer or graph.optimizer
                if opt is None:
                    raise TrainingError(
                        f"phase {phase.label!r}: node {n!r} has no optimizer; set ModelNode(optimizer=mml.optim.adam()) "
                        "or TrainPhase(optimizer=...)"
                    )
                self.optimizers[n] = opt
        elif trainable:
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
            if n in self.active and isinstance(graph[n], ModelNode):
                name = graph[n].device or phase.device
                if name is not None:
                    self.devices[n] = resolve_device(name)
        # data: one prepared stream per head
        self.heads = [h for h in graph.topological_order if h in phase.inputs and h in self.active]
        self.prepared: dict[str, Any] = {}
        self.nbatches: dict[str, int] = {}
        columns: dict[str, Any] = {}
        # The view is read once per (data, sampler, columns), whichever heads or streams read it;
        # floating features and targets are cast once to the float32 every model computes in.
        read: dict[tuple[Any, ...], Any] = {}
        for h in self.heads:
            b = phase.inputs[h]
            view = head_view(experiment, h, b)
            columns[h] = view.columns
            k = (b.featureset, b.split, b.sampler, view.columns)
            if k not in read:
                read[k] = b.sampler.prepare(view)
            self.prepared[h] = read[k]
            self.nbatches[h] = b.sampler.num_batches(self.prepared[h], b.stream)
            check_batches(phase.label, h, b, self.prepared[h], self.nbatches[h])
        check_class_ids(self.losses, self.prepared, state.graph.shapes)
        self.classes = {
            n: classes_of(graph, n, {h: getattr(self.prepared[h], "targets", None) for h in self.heads})
            for n in self.incremental
        }
        # scikit-learn heads (partial_fit) keep the data's own dtype
        gradient_heads = {h for h in self.heads if graph[h].backend in GRADIENT_BACKENDS}
        cast = {
            id(d): cast_floats(d, np.float32)
            if all(h in gradient_heads for h in self.heads if self.prepared[h] is d)
            else d
            for d in read.values()
        }
        self.prepared = {h: cast[id(d)] for h, d in self.prepared.items()}
        groups: dict[tuple[Any, ...], list[str]] = {}
        for h in self.heads:
            b = phase.inputs[h]
            groups.setdefault((b.featureset, b.split, b.sampler, b.stream), []).append(h)
        self.groups = [tuple(g) for g in groups.values()]
        # Heads of one group see the same rows in the same order, but may read different columns:
        # one stream per distinct column selection, all drawn with the same key (so they align).
        self.readers: dict[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]] = {}
        moved: dict[tuple[int, Any], Any] = {}
        for g in self.groups:
            by_cols: dict[Any, list[str]] = {}
            for h in g:
                by_cols.setdefault(columns[h], []).append(h)
            self.readers[g] = tuple((hs[0], tuple(hs)) for hs in by_cols.values())
            # A stream's batches are gathered where its heads run (one device, all torch heads):
            # its data move there once, and no step copies a batch from the host. scikit-learn
            # heads are fed torch batches too, but partial_fit reads the sampler's numpy batches
            # in the data's own dtype (mml/training/_incremental.py): their streams stay on the host.
            for first, hs in self.readers[g]:
                devs = {self.devices.get(h) for h in hs}
                dev = next(iter(devs))
                on_device = all(h in gradient_heads and feed_backend(graph, h) == "torch" for h in hs)
                if len(devs) == 1 and device_data(dev) and on_device:
                    src = self.prepared[first]
                    if (id(src), dev) not in moved:  # streams of one prepared view move once
                        moved[id(src), dev] = _device_data(src, dev)
                    self.prepared[first] = moved[id(src), dev]
        self.callbacks: tuple[AbstractCallback, ...] = phase.callbacks
        self.slots = tuple(f"{phase.label}/{i}" for i in range(len(phase.callbacks)))
        self.batch_callbacks = any(cb.has_batch_hooks for cb in phase.callbacks)
        self.lr_callbacks = [
            (cb, s)
            for cb, s in zip(phase.callbacks, self.slots)
            if type(cb).lr_scale is not AbstractCallback.lr_scale
        ]
        self.backends = {h: feed_backend(graph, h) for h in self.heads}
        if phase.batch_schedule.startswith("zip") or len(self.groups) == 1:
            every = self._step_plan(self.heads, self.losses)
            self.step_plans = dict.fromkeys(self.groups, every)
        else:
            self.step_plans = self._alternate_plans()

    def _step_plan(self, heads: Sequence[str], losses: Sequence[LossPlan]) -> StepPlan:
        active = self.active if len(heads) == len(self.heads) else self.active & self.graph.fed_by(heads)
        if self.stagewise:
            own = {lp.node for lp in losses}
            trainable = tuple(n for n in self.trainable if n in own)
        else:
            trainable = self.trainable  # a node no loss of the step reaches gets a zero gradient
        return StepPlan(
            tuple(heads),
            active,
            tuple(losses),
            tuple(n for n in trainable if n not in self.tf_nodes),
            tuple(n for n in trainable if n in self.tf_nodes),
            self.stagewise,
            self._role_plan(heads, active),
            tuple(dict.fromkeys(self._stream_of(h) for h in heads)),
        )

    def _stream_of(self, head: str) -> str:
        b = self.phase.inputs[head]
        return b.stream if b.stream is not None else b.sampler.stream_names[0]

    def _role_plan(
        self, heads: Sequence[str], active: frozenset[str]
    ) -> tuple[tuple[str, tuple[str, ...], frozenset[str]], ...] | None:
        """Per role: the heads whose batches have it and the nodes those heads alone feed.

        ``None`` when every head's batches have the same roles (the step runs every role over
        every head). A loss that reads a role some head of its node lacks is refused when the
        Experiment is built, so every loss finds its node's outputs in the roles it reads.
        """
        roles_of = {h: self.phase.inputs[h].sampler.batch_roles(self.phase.inputs[h].stream) for h in heads}
        if len(set(roles_of.values())) <= 1:
            return None
        plan = []
        for r in dict.fromkeys(r for h in heads for r in roles_of[h]):
            hs = tuple(h for h in heads if r in roles_of[h])
            plan.append((r, hs, active & self.graph.fed_by(hs)))
        return tuple(plan)

    def _alternate_plans(self) -> dict[tuple[str, ...], StepPlan]:
        label = self.phase.label
        owner: dict[tuple[str, ...], list[LossPlan]] = {g: [] for g in self.groups}
        for lp in self.losses:
            heads = {h for h in self.graph.heads_of(lp.node) if h in self.heads}
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

    def schedule(self, epoch: int) -> Iterator[tuple[StepPlan, dict[str, Any]]]:
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
        """The product of the learning-rate factors the phase's callbacks set (1.0 without any)."""
        scale = 1.0
        for cb, slot in self.lr_callbacks:
            scale *= cb.lr_scale(state.callback_state(slot))
        return scale
