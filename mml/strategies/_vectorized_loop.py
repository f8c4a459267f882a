"""One training phase of K members as stacked steps (the engine behind :func:`run_vectorized`).

It follows :mod:`mml.training`'s loop member by member — the same sampler streams and keys,
step and epoch counters, callback hooks (epoch and phase level), History rows and failure
records — while the arithmetic of a step runs once over ``(K, ...)`` tensors.

>>> StackedPhase.__name__
'StackedPhase'
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from mml._fields import FrozenDict
from mml.callbacks import Event
from mml.errors import CallbackError
from mml.random import fold_in
from mml.strategies._stacked import (
    FlatLayout,
    FlatOptimizer,
    stack_mappings,
    stack_records,
    tensor_fields,
)
from mml.strategies._vectorized_check import phase_nodes, train_optimizers
from mml.strategies._vectorized_step import StackedSteps
from mml.training import (
    GRAPH_OPTIMIZER,
    ErrorRecord,
    History,
    PhaseResult,
    TrainPhase,
    check_batches,
    compile_loss,
    dispatch,
    evaluate,
    head_view,
)

__all__ = ["StackedPhase"]

#: bytes of batches gathered at once (a chunk of an epoch's steps, all members)
_CHUNK_BYTES = 16 << 20


def _sources(arrays: Sequence[Any]) -> list[Any]:
    """Each member's prepared array as a torch tensor (floats as float32) with one zero row after its rows.

    The zero row is the padding of a shorter batch (gathering it gives the zeros a padded
    batch holds). Members that share an array (the same object) share its tensor.
    """
    import torch

    seen: dict[int, Any] = {}
    out = []
    for a in arrays:
        src = seen.get(id(a))
        if src is None:
            arr = np.asarray(a)
            part = np.asarray(arr, np.float32 if arr.dtype.kind == "f" else arr.dtype)
            zero = np.zeros((1, *part.shape[1:]), part.dtype)
            src = seen[id(a)] = torch.from_numpy(np.concatenate([part, zero]))
        out.append(src)
    return out


def _gather(srcs: Sequence[Any], idx: Any) -> Any:
    """Member ``k``'s rows ``idx[k]`` of its own source ``srcs[k]``: a ``(K, steps, B, ...)`` tensor.

    One ``index_select`` per member, from its own rows (they stay in the cache), into one buffer.
    """
    import torch

    K, steps, B = idx.shape
    first = srcs[0]
    out = torch.empty((K, steps, B, *first.shape[1:]), dtype=first.dtype)
    for k in range(K):
        torch.index_select(srcs[k], 0, idx[k].reshape(-1), out=out[k].view(steps * B, *first.shape[1:]))
    return out


class StackedPhase(StackedSteps):
    """K members' runs of one :class:`~mml.training.TrainPhase` (not a value: used once)."""

    def __init__(self, members: Sequence[Any], phases: Sequence[TrainPhase]) -> None:
        import torch

        from mml.backends import torch_activation as _activation

        self.members, self.phases = list(members), list(phases)
        self.K = K = len(members)
        p0 = phases[0]
        self.label = p0.label
        self.graphs = [m.job.experiment.graph for m in members]
        g0 = self.graphs[0]
        self.active, self.trainable = phase_nodes(g0, p0)
        self.stagewise = p0.mode == "stagewise"
        self.head = next(iter(p0.inputs))
        self.loss_names = [a.name for a in p0.losses]
        self.loss_nodes = [a.node for a in p0.losses]
        self.loss_fns = [compile_loss(a.loss, "torch") for a in p0.losses]
        self.loss_kinds = [
            a.loss.fn if a.loss.fn in ("mse", "mae") and not a.loss.kwargs else None for a in p0.losses
        ]
        self.weights = [[a.weight for a in ph.losses] for ph in phases]
        self.weight_t = torch.tensor(self.weights, dtype=torch.float32).T  # (L, K)
        self.weight64 = torch.tensor(self.weights, dtype=torch.float64).T
        self.unit_weights = all(w == 1.0 for ws in self.weights for w in ws)
        self.unit_single = self.unit_weights and len(self.loss_names) == 1
        per_member = [train_optimizers(g, ph, self.trainable) for g, ph in zip(self.graphs, phases)]
        self.opts = {name: [o[name] for o in per_member] for name in per_member[0]}
        self.spec = {n: g0[n].model for n in self.active}
        self.act = {n: _activation(self.spec[n].activation) for n in self.active if self._is_mlp(n)}
        self.rates = {n: [g[n].model.dropout for g in self.graphs] for n in self.active}
        self.scales = {
            n: torch.tensor([1.0 / (1.0 - r) for r in rs], dtype=torch.float32).view(K, 1, 1)
            for n, rs in self.rates.items()
        }
        self.frozen = {n for n in self.active if g0[n].frozen}
        self.dropping = {n for n in self.act if n not in self.frozen and any(self.rates[n])}
        self.node_plan: list[tuple[str, bool, Any, bool, tuple[int, ...]]] = [
            # (label, is a head, its upstream, is an MLP, output shape)
            (
                n,
                g0[n].is_head,
                None if g0[n].is_head else g0[n].node_upstreams[0],
                n in self.act,
                tuple(members[0].state.params(n).output_shape) if n in self.act else (),
            )
            for n in self.active
        ]
        self.prepared, self.stream_keys, self.phase_keys, self.bindings = [], [], [], []
        seen: list[tuple[Any, Any, Any, Any]] = []  # members reading the same view share its arrays
        for m, ph in zip(members, phases):
            b = ph.inputs[self.head]
            self.bindings.append(b)
            exp = m.job.experiment
            fs, ref = exp.featuresets.get(b.featureset), exp.graph[self.head].upstream_refs[0]
            same = next(
                (d for f, r, bb, d in seen if f is fs and r == ref and bb == b),
                None,
            )
            if same is None:
                b.sampler.batch_roles(b.stream)  # an unknown stream fails here, as in the member's run
                same = b.sampler.prepare(head_view(exp, self.head, b))
                check_batches(ph.label, self.head, b, same, b.sampler.num_batches(same, b.stream))
                seen.append((fs, ref, b, same))
            self.prepared.append(same)
            pk = fold_in(m.state.key, ph.label)
            self.phase_keys.append(pk)
            self.stream_keys.append(fold_in(fold_in(pk, "sampler"), f"{b.featureset}/{b.split}"))
        self.rows: list[list[tuple[str, int, int, int, str, float]]] = [[] for _ in range(K)]
        self.failure: list[ErrorRecord | None] = [None] * K
        self.stopped = [False] * K
        self.n_steps = [0] * K

    def _is_mlp(self, label: str) -> bool:
        from mml.models import SequentialMLP

        return isinstance(self.spec[label], SequentialMLP)

    # -- state ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        shells = []
        for m, ph in zip(self.members, self.phases):
            state = m.state
            for name, opt in train_optimizers(m.job.experiment.graph, ph, self.trainable).items():
                if state.opt_state(name) is None:
                    state = state.with_opt_state(
                        name, opt.init(self._param_dict(state, name))
                    ).with_opt_steps(name, 0)
            state = attrs.evolve(state, epoch=0, batch=0, stop=False)
            for i, cb in enumerate(ph.callbacks):
                state = state.with_callback_state(f"{ph.label}/{i}", cb.init())
            shells.append(state)
        self.shells = shells
        K = self.K
        # trainable params live packed per optimizer, (K, P); frozen active nodes stacked as they are
        self.fixed = {
            n: stack_mappings([s.params(n).params for s in shells])
            for n in self.active
            if n not in self.trainable
        }
        self.owner: dict[str, tuple[str, str]] = {}  # node -> (optimizer label, name prefix)
        self.layouts: dict[str, FlatLayout] = {}
        self.flat: dict[str, Any] = {}
        self.flat_state: dict[str, Any] = {}
        self.optimizers: dict[str, FlatOptimizer] = {}
        for name in self.opts:
            labels = self.trainable if name == GRAPH_OPTIMIZER else [name]
            prefix = (lambda n: f"{n}/") if name == GRAPH_OPTIMIZER else (lambda n: "")
            shapes = []
            for label in labels:
                self.owner[label] = (name, prefix(label))
                for pname, t in shells[0].params(label).params.items():
                    shapes.append((prefix(label) + pname, tuple(t.shape)))
            lay = self.layouts[name] = FlatLayout(shapes)
            self.flat[name] = lay.pack(stack_mappings([self._param_dict(s, name) for s in shells]))
            rec = stack_records([s.opt_state(name) for s in shells])
            self.flat_state[name] = attrs.evolve(
                rec, **{f: FrozenDict({"flat": lay.pack(getattr(rec, f))}) for f in tensor_fields(rec)}
            )
            self.optimizers[name] = FlatOptimizer(self.opts[name], lay.entries)
        self.opt_steps = {name: [s.opt_steps[name] for s in shells] for name in self.opts}
        self.step = [s.step for s in shells]
        self.epoch = [0] * K
        self.batch = [0] * K
        self.opt_tensors = {
            name: {f: getattr(rec, f)["flat"] for f in tensor_fields(rec)}
            for name, rec in self.flat_state.items()
        }
        self._leaves()
        self.x_src = _sources([d.features for d in self.prepared])
        has_t = self.prepared[0].targets is not None
        self.t_src = _sources([d.targets for d in self.prepared]) if has_t else None

    def _leaves(self) -> None:
        """The tensors a step differentiates: views of the packed params (they follow their in-place updates).

        A ``SequentialMLP`` layer's bias is viewed as ``(K, 1, out)``, what its ``baddbmm`` adds.
        """
        self.leaf_list: dict[str, list[Any]] = {}
        self.node_params: dict[str, dict[str, Any]] = dict(self.fixed)
        self.layers: dict[str, list[tuple[Any, Any]]] = {}
        mlp = {label for label in self.trainable if self._is_mlp(label)}
        for name, lay in self.layouts.items():
            flat = self.flat[name]
            K = flat.shape[0]
            leaves = []
            for pname, shape, o, size in lay.entries:
                label = next(
                    lb
                    for lb in self.trainable
                    if self.owner[lb][0] == name and pname.startswith(self.owner[lb][1])
                )
                shape_k = (1, *shape) if label in mlp and pname.endswith(".bias") else shape
                leaf = flat[:, o : o + size].view(K, *shape_k).detach().requires_grad_()
                leaves.append(leaf)
                prefix = self.owner[label][1]
                self.node_params.setdefault(label, {})[pname[len(prefix) :]] = leaf
            self.leaf_list[name] = leaves
        self.all_leaves = [leaf for leaves in self.leaf_list.values() for leaf in leaves]
        for label in self.active:
            if self._is_mlp(label):
                ps = self.node_params[label]
                fixed = label not in self.trainable  # stacked as they are: biases (K, out)
                self.layers[label] = [
                    (
                        ps[f"layers.{i}.weight"],
                        ps[f"layers.{i}.bias"].unsqueeze(1) if fixed else ps[f"layers.{i}.bias"],
                    )
                    for i in range(len(self.spec[label].hidden) + 1)
                ]

    def _param_dict(self, state: Any, name: str) -> dict[str, Any]:
        if name == GRAPH_OPTIMIZER:
            return {f"{n}/{k}": v for n in self.trainable for k, v in state.params(n).params.items()}
        return dict(state.params(name).params)

    def full_state(self, k: int) -> Any:
        """Member ``k``'s TrainState now (its own copies of the stacked tensors)."""
        state = self.shells[k]
        graph = state.graph
        new = dict(graph.params.items())
        members = {name: self.layouts[name].member(f, k) for name, f in self.flat.items()}
        for label in self.trainable:
            name, prefix = self.owner[label]
            own = {pname: members[name][prefix + pname] for pname in graph.params[label].params}
            new[label] = attrs.evolve(graph.params[label], params=FrozenDict(own))
        state = attrs.evolve(state, graph=attrs.evolve(graph, params=FrozenDict(new)))
        for name, rec in self.flat_state.items():
            lay = self.layouts[name]
            rec = attrs.evolve(
                rec, **{f: FrozenDict(lay.member(getattr(rec, f)["flat"], k)) for f in tensor_fields(rec)}
            )
            state = state.with_opt_state(name, rec).with_opt_steps(name, self.opt_steps[name][k])
        return attrs.evolve(state, step=self.step[k], epoch=self.epoch[k], batch=self.batch[k])

    def _write_params(self, k: int, state: Any) -> None:
        """Put member ``k``'s params (restored by a callback) into its row of the packed tensors."""
        import torch

        with torch.no_grad():
            for name, flat in self.flat.items():
                flat[k] = self.layouts[name].pack_member(self._param_dict(state, name))

    # -- callbacks --------------------------------------------------------------------------

    def _dispatch(self, k: int, hook: str, state: Any, **where: Any) -> tuple[Any, dict[str, float], bool]:
        """Member ``k``'s callbacks through training's :func:`dispatch`; a restored graph is packed back."""
        ph = self.phases[k]
        slots = [f"{ph.label}/{i}" for i in range(len(ph.callbacks))]
        event = Event(
            hook,
            phase=ph.label,
            state=state,
            metrics=dict(where.pop("metrics", {})),
            experiment=self.members[k].job.experiment,
            phase_value=ph,
            evaluate=evaluate,
            **where,
        )
        new, logged, stop = dispatch(ph.callbacks, slots, hook, event, state)
        if new.graph is not state.graph:  # a callback restored weights (EarlyStopping's best)
            self._write_params(k, new)
        return new, logged, stop

    def _hook(self, k: int, hook: str, **where: Any) -> tuple[dict[str, float], bool]:
        if not any(cb.overrides(hook) for cb in self.phases[k].callbacks):
            return {}, False
        try:
            state, logged, stop = self._dispatch(k, hook, self.full_state(k), **where)
        except CallbackError as exc:
            self._fail(k, exc, where.get("epoch"), where.get("batch") if "batch" in hook else None)
            return {}, False
        self.shells[k] = state
        return logged, stop

    def _fail(self, k: int, exc: BaseException, epoch: int | None, batch: int | None) -> None:
        self.failure[k] = ErrorRecord.from_exception(exc, phase=self.label, epoch=epoch, batch=batch)

    def _running(self, k: int) -> bool:
        return self.failure[k] is None and not self.stopped[k]

    # -- the fold ---------------------------------------------------------------------------

    def run(self) -> None:
        t0 = time.perf_counter()
        self._prepare()
        for k in range(self.K):
            _, stop = self._hook(k, "on_phase_start", epoch=0, step=self.step[k])
            self.stopped[k] = stop
        for epoch in range(max(ph.n_epochs for ph in self.phases)):
            live = [k for k in range(self.K) if self._running(k) and epoch < self.phases[k].n_epochs]
            if not live:
                break
            for k in live:
                _, stop = self._hook(k, "on_epoch_start", epoch=epoch, step=self.step[k])
                self.stopped[k] = stop  # a stop here: no step of this epoch, its end hooks still run
            live = [k for k in live if self.failure[k] is None]
            self._epoch(live, epoch)
        for k in range(self.K):
            self._finish(k, t0)

    def _epoch(self, live: list[int], epoch: int) -> None:
        K = self.K
        going = [k for k in live if not self.stopped[k]]
        orders = {
            k: self.bindings[k].sampler.epoch_order(self.prepared[k], fold_in(self.stream_keys[k], epoch))
            for k in going
        }
        idx, sizes = self._epoch_index(orders)
        step0 = list(self.step)
        ref = going[0] if going else 0  # members not stepping this epoch: any number will do
        opt0 = {
            name: [steps[k] if k in orders else steps[ref] for k in range(K)]
            for name, steps in self.opt_steps.items()
        }
        self._dead = False  # a member failed in this epoch: its later batches are empty
        records: list[tuple[int, list[list[float]], list[bool]]] = []
        # the batches are gathered a chunk of steps at a time (one index_select, then views)
        row_bytes = self.x_src[0][0].numel() * self.x_src[0].element_size()
        if self.t_src is not None:
            row_bytes += self.t_src[0][0].numel() * self.t_src[0].element_size()
        chunk = max(1, _CHUNK_BYTES // max(1, K * idx.shape[2] * row_bytes))
        xs: Any = None
        ts: Any = None
        for index, sz in enumerate(sizes):
            if self._dead:
                sz = [0 if self.failure[k] is not None else v for k, v in enumerate(sz)]
            if not any(sz):
                break
            if index % chunk == 0:
                xs = _gather(self.x_src, idx[:, index : index + chunk])
                ts = None if self.t_src is None else _gather(self.t_src, idx[:, index : index + chunk])
            i = index % chunk
            records.append(
                self._step(epoch, index, sz, xs[:, i], None if ts is None else ts[:, i], step0, opt0)
            )
        sums, counts, last = self._step_rows(epoch, records, step0)
        for k in going:
            if counts[k]:
                self.step[k] = step0[k] + counts[k]
                self.epoch[k] = epoch
                self.batch[k] = last[k] + 1
                self.n_steps[k] += counts[k]
                for steps in self.opt_steps.values():
                    steps[k] += counts[k]
        for k in live:
            if self.failure[k] is not None:
                continue
            means = {name: v / counts[k] for name, v in sums[k].items()}
            logged, stop = self._hook(
                k, "on_epoch_end", epoch=epoch, batch=last[k], step=self.step[k], metrics=means
            )
            if self.failure[k] is not None:
                continue
            self.stopped[k] = self.stopped[k] or stop
            self.epoch[k] = epoch + 1
            rows = self.rows[k]
            rows.extend((self.label, epoch, -1, self.step[k], n, v) for n, v in means.items())
            rows.extend((self.label, epoch, -1, self.step[k], n, v) for n, v in logged.items())

    def _finish(self, k: int, t0: float) -> None:
        m, ph = self.members[k], self.phases[k]
        status, error = "completed", self.failure[k]
        if error is None:
            logged, _ = self._hook(k, "on_phase_end", epoch=self.epoch[k], step=self.step[k])
            error = self.failure[k]
            self.rows[k].extend(
                (self.label, self.epoch[k], -1, self.step[k], n, v) for n, v in logged.items()
            )
            if error is None and self.stopped[k]:
                status = "stopped"
        if error is not None:
            status = "failed"
        state = attrs.evolve(self.full_state(k), stop=False)
        result = PhaseResult(
            ph.label, ph.kind, status, error, self.n_steps[k], time.perf_counter() - t0, None, ()
        )
        m.state = state
        m.history = m.history.merge(
            History.from_rows(self.rows[k], status=status, phases=(result,), error=error)
        )
