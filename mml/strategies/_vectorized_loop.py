"""One training phase of K members as stacked steps (the engine behind :func:`run_vectorized`).

It follows :mod:`mml.training`'s loop member by member — the same sampler streams and keys,
step and epoch counters, callback hooks (epoch and phase level), History rows and failure
records — while the arithmetic of a step runs once over ``(K, ...)`` tensors.

>>> StackedPhase.__name__
'StackedPhase'
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from mml._fields import FrozenDict
from mml.callbacks import Event
from mml.errors import CallbackError, TrainingError
from mml.random import fold_in, torch_generator
from mml.strategies._stacked import (
    FlatLayout,
    dropout_masks,
    member_losses,
    mlp_forward,
    select_members,
    stack_mappings,
    stack_records,
    stacked_update,
    tensor_fields,
    vmapped_forward,
)
from mml.strategies._vectorized_check import phase_nodes, train_optimizers
from mml.training import (
    GRAPH_OPTIMIZER,
    ErrorRecord,
    History,
    PhaseResult,
    TrainPhase,
    compile_loss,
    dispatch,
    evaluate,
)

__all__ = ["StackedPhase", "head_view"]


def head_view(experiment: Any, head: str, binding: Any) -> Any:
    """The view a head reads in a phase: the binding's split, the columns the head's reference selects."""
    from mml.graph import resolve_keys

    ref: Any = experiment.graph[head].upstream_refs[0]
    fs = experiment.featuresets[binding.featureset]
    if binding.split is not None and binding.split not in fs.split_indices:
        raise TrainingError(
            f"FeatureSet {binding.featureset!r} has no split {binding.split!r} "
            f"(splits: {', '.join(fs.split_indices) or 'none'})"
        )
    view = fs[binding.split] if binding.split is not None else fs.view()
    keys = {d: list(resolve_keys(ref, fs, d)) for d in ("features", "targets", "tags")}
    return view.select(features=keys["features"], targets=keys["targets"], tags=keys["tags"], rep=ref.rep)


def _padded(arrays: Sequence[Any], n: int) -> Any:
    import torch

    first = np.asarray(next(a for a in arrays if a is not None))
    dtype = np.float32 if first.dtype.kind == "f" else first.dtype
    if all(a is not None and len(a) == n for a in arrays):
        return torch.from_numpy(np.stack([np.asarray(a, dtype) for a in arrays]))
    out = np.zeros((len(arrays), n, *first.shape[1:]), dtype)
    for k, a in enumerate(arrays):
        if a is not None:
            out[k, : len(a)] = a
    return torch.from_numpy(out)


class StackedPhase:
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
        per_member = [train_optimizers(g, ph, self.trainable) for g, ph in zip(self.graphs, phases)]
        self.opts = {name: [o[name] for o in per_member] for name in per_member[0]}
        self.spec = {n: g0[n].model for n in self.active}
        self.act = {n: _activation(self.spec[n].activation) for n in self.active if self._is_mlp(n)}
        self.rates = {n: [g[n].model.dropout for g in self.graphs] for n in self.active}
        self.scales = {
            n: torch.tensor([1.0 / (1.0 - r) for r in rs], dtype=torch.float32).view(K, 1, 1)
            for n, rs in self.rates.items()
        }
        self.prepared, self.stream_keys, self.phase_keys, self.bindings = [], [], [], []
        for m, ph in zip(members, phases):
            b = ph.inputs[self.head]
            self.bindings.append(b)
            self.prepared.append(b.sampler.prepare(head_view(m.job.experiment, self.head, b)))
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
        self.opt_steps = {name: [s.opt_steps[name] for s in shells] for name in self.opts}
        self.step = [s.step for s in shells]
        self.epoch = [0] * K
        self.batch = [0] * K

    def _node_params(self, flats: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Node → its ``(K, ...)`` params: views into the packed ``flats``, or the fixed stacks."""
        views = {name: self.layouts[name].views(f) for name, f in flats.items()}
        out = dict(self.fixed)
        for label in self.trainable:
            name, prefix = self.owner[label]
            out[label] = {
                pname[len(prefix) :]: t for pname, t in views[name].items() if pname.startswith(prefix)
            }
        return out

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
        """Put member ``k``'s params (restored by a callback) into the packed tensors (new tensors)."""
        for name, flat in self.flat.items():
            new = flat.clone()
            new[k] = self.layouts[name].pack_member(self._param_dict(state, name))
            self.flat[name] = new

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
        iters: dict[int, Any] = {
            k: self.bindings[k].sampler.batches(
                self.prepared[k], key=self.stream_keys[k], epoch=epoch, stream=self.bindings[k].stream
            )
            for k in live
            if not self.stopped[k]
        }
        sums: list[dict[str, float]] = [{} for _ in range(self.K)]
        counts: list[int] = [0] * self.K
        last = dict.fromkeys(live, -1)
        index = 0
        while iters:
            batches: list[Any] = [None] * self.K
            for k in list(iters):
                b = next(iters[k], None)
                if b is None or self.failure[k] is not None:
                    del iters[k]
                else:
                    batches[k] = b
            if not iters:
                break
            for k, losses in self._step(batches, epoch, index).items():
                last[k] = index
                counts[k] += 1
                for name, v in losses.items():
                    sums[k][name] = sums[k].get(name, 0.0) + v
            index += 1
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

    # -- one stacked step -------------------------------------------------------------------

    def _step(self, batches: list[Any], epoch: int, index: int) -> dict[int, dict[str, float]]:
        import torch

        K = self.K
        run = [b is not None for b in batches]
        datas = [None if b is None else next(iter(b.roles.values())) for b in batches]
        sizes = [0 if d is None else len(d.features) for d in datas]
        n = max(sizes)
        x = _padded([None if d is None else d.features for d in datas], n)
        t = _padded([None if d is None else d.targets for d in datas], n)
        ragged = not all(run) or len(set(sizes)) > 1
        mask = torch.arange(n).unsqueeze(0) < torch.tensor(sizes).unsqueeze(1) if ragged else None
        g0 = self.graphs[0]
        outs: dict[str, Any] = {}
        with torch.enable_grad():
            leaves = {name: f.detach().requires_grad_() for name, f in self.flat.items()}
            params = self._node_params(leaves)
            for label in self.active:
                node = g0[label]
                if node.is_head:
                    h = x
                else:
                    h = outs[node.node_upstreams[0]]
                    if self.stagewise:
                        h = h.detach()
                spec = self.spec[label]
                if not self._is_mlp(label):  # other built-ins: the backend's own forward under vmap
                    outs[label] = vmapped_forward(
                        spec, self.shells[0].params(label), params[label], h, node.frozen
                    )
                    continue
                masks = None
                if not node.frozen and any(self.rates[label]):
                    gens = [
                        torch_generator(fold_in(fold_in(self.phase_keys[k], self.step[k]), label))
                        if run[k] and self.rates[label][k]
                        else None
                        for k in range(K)
                    ]
                    masks = dropout_masks(self.rates[label], sizes, spec.hidden, gens)
                y = mlp_forward(
                    self.act[label], len(spec.hidden) + 1, params[label], h, masks, self.scales[label]
                )
                outs[label] = y.reshape(K, n, *self.members[0].state.params(label).output_shape)
            values = []
            for fn, kind, node_label in zip(self.loss_fns, self.loss_kinds, self.loss_nodes):
                values.append(member_losses(fn, kind, outs[node_label], t, mask))
            vals = torch.stack(values)  # (L, K)
            live = torch.tensor([r and self.failure[k] is None for k, r in enumerate(run)])
            total = torch.where(live, (vals * self.weight_t).sum(0), torch.zeros(()))
            flat = list(leaves.values())
            grads = torch.autograd.grad(total.sum(), flat, allow_unused=True)
        listed = vals.detach().T.tolist()  # (K, L)
        out: dict[int, dict[str, float]] = {}
        ok = list(run)
        for k in range(K):
            if not run[k]:
                continue
            losses = dict(zip(self.loss_names, listed[k]))
            total_f = 0.0
            for name, w in zip(self.loss_names, self.weights[k]):
                total_f += losses[name] * w
            losses["loss"] = total_f
            if not math.isfinite(total_f):
                ok[k] = False
                bad = [nm for nm, v in losses.items() if not math.isfinite(v)]
                exc = TrainingError(
                    f"non-finite loss in phase {self.label!r}, epoch {epoch}, batch {index} (step {self.step[k]}): "
                    f"{', '.join(f'{nm}={losses[nm]}' for nm in bad)}; the state of the last good step is kept — "
                    "lower the learning rate, check the inputs for NaN/inf, or scale the data"
                )
                self._fail(k, exc, epoch, index)
                continue
            s = self.step[k] + 1
            self.rows[k].extend((self.label, epoch, index, s, name, v) for name, v in losses.items())
            out[k] = losses
        named = {name: torch.zeros_like(f) if g is None else g for (name, f), g in zip(leaves.items(), grads)}
        self._update(named, ok)
        for k in range(K):
            if ok[k]:
                self.step[k] += 1
                self.epoch[k] = epoch
                self.batch[k] = index + 1
                self.n_steps[k] += 1
        return out

    def _update(self, grads: dict[str, Any], ok: list[bool]) -> None:
        import torch

        sel = None if all(ok) else torch.tensor(ok)
        for name, opts in self.opts.items():
            p, state = self.flat[name], self.flat_state[name]
            new_p, new_s = stacked_update(
                opts, self.opt_steps[name], {"flat": grads[name]}, state, {"flat": p}
            )
            new_p = new_p["flat"]
            if sel is not None:
                new_p = select_members(sel, new_p, p)
                new_s = attrs.evolve(
                    new_s,
                    **{
                        f: FrozenDict(
                            {
                                "flat": select_members(
                                    sel, getattr(new_s, f)["flat"], getattr(state, f)["flat"]
                                )
                            }
                        )
                        for f in tensor_fields(new_s)
                    },
                )
            self.flat[name], self.flat_state[name] = new_p, new_s
            self.opt_steps[name] = [s + 1 if o else s for s, o in zip(self.opt_steps[name], ok)]
