"""The stacked step of :class:`~mml.strategies._vectorized_loop.StackedPhase`: every member's batch
``index`` in one forward and backward pass, its optimizer update, and the epoch's step rows.

A mixin (``StackedPhase`` is its only subclass), in its own module so that the loop and the
step each stay one concept under 500 lines; it holds no data of its own.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from mml.errors import TrainingError
from mml.random import fold_in, torch_generator
from mml.strategies._stacked import dropout_masks, member_losses, mlp_forward, vmapped_forward, where_members

__all__ = ["StackedSteps"]


def _total(values: Any, weights: Any) -> float:
    """A member's weighted loss total, added up in the order its own run adds it (same bits)."""
    total = 0.0
    for v, w in zip(values, weights):
        total += v * w
    return total


class StackedSteps:
    """The per-step methods of ``StackedPhase`` (a mixin: the phase's fields are its state)."""

    __slots__ = ()

    if TYPE_CHECKING:
        K: Any
        _dead: Any
        act: Any
        all_leaves: Any
        dropping: Any
        flat: Any
        frozen: Any
        label: Any
        layers: Any
        leaf_list: Any
        loss_fns: Any
        loss_kinds: Any
        loss_names: Any
        loss_nodes: Any
        node_params: Any
        node_plan: Any
        opt_tensors: Any
        optimizers: Any
        phase_keys: Any
        rates: Any
        rows: Any
        scales: Any
        shells: Any
        spec: Any
        stagewise: Any
        unit_single: Any
        unit_weights: Any
        weight_t: Any
        weights: Any
        x_src: Any

        def _fail(self, k: int, exc: BaseException, epoch: int | None, batch: int | None) -> None: ...

    def _epoch_index(self, orders: dict[int, tuple[Any, Any]]) -> tuple[Any, list[list[int]]]:
        """``(K, S, B)`` rows of every member's batches in its own source, and the ``(S, K)`` batch sizes.

        Member ``k``'s batch ``s`` is its sampler's ``rows[bounds[s]:bounds[s + 1]]`` — the rows
        its own run's batch ``s`` holds; the rest of the ``B`` slots (and every slot of a member
        without batch ``s``) point at its source's zero row.
        """
        import torch

        K = self.K
        counts = {k: np.diff(bounds) for k, (_, bounds) in orders.items()}
        S = max((len(c) for c in counts.values()), default=0)
        sizes = np.zeros((S, K), np.int64)
        for k, c in counts.items():
            sizes[: len(c), k] = c
        B = int(sizes.max()) if S else 0
        idx = np.empty((K, S, B), np.int64)
        for k in range(K):
            idx[k] = len(self.x_src[k]) - 1
            if k not in orders or not len(counts[k]):
                continue
            rows, bounds = orders[k]
            c = counts[k]
            batch_of = np.repeat(np.arange(len(c)), c)
            within = np.arange(int(bounds[-1] - bounds[0])) - np.repeat(bounds[:-1] - bounds[0], c)
            idx[k, batch_of, within] = rows[bounds[0] : bounds[-1]]
        return torch.from_numpy(idx), sizes.tolist()

    def _step_rows(
        self, epoch: int, records: list[tuple[int, list[list[float]], list[bool]]], step0: list[int]
    ) -> tuple[list[dict[str, float]], list[int], list[int]]:
        """The epoch's step rows of every member (in step order), its loss sums, step counts and last batch."""

        K = self.K
        sums: list[dict[str, float]] = [{} for _ in range(K)]
        counts = [0] * K
        last = [-1] * K
        if not records:
            return sums, counts, last
        names, label = self.loss_names, self.label
        for k in range(K):
            rows, weights, acc = self.rows[k], self.weights[k], sums[k]
            s0 = step0[k] + 1
            for index, vals, ok in records:
                if not ok[k]:
                    continue
                losses = {name: v[k] for name, v in zip(names, vals)}
                losses["loss"] = _total([v[k] for v in vals], weights)
                s = s0 + index
                for name, v in losses.items():
                    rows.append((label, epoch, index, s, name, v))
                    acc[name] = acc.get(name, 0.0) + v
                counts[k] += 1
                last[k] = index
        return sums, counts, last

    # -- one stacked step -------------------------------------------------------------------

    def _step(
        self,
        epoch: int,
        index: int,
        sizes: list[int],
        xb: Any,
        tb: Any,
        step0: list[int],
        opt0: dict[str, list[int]],
    ) -> tuple[int, list[list[float]], list[bool]]:
        """Batch ``index`` of every member with ``sizes[k] > 0`` rows: ``(index, (L, K) losses, taken)``."""
        import torch

        K = self.K
        n = max(sizes)
        full = min(sizes) == n  # every member has a batch, all of one size: no mask
        run = [v > 0 for v in sizes]
        x = xb[:, :n]  # (K, n, ...): each member's batch, zero-padded to n rows
        t = None if tb is None else tb[:, :n]
        if self._dead:  # a member that failed in this epoch: an empty batch (zeros), as in a padded one
            dead = torch.tensor([not r for r in run])
            x = where_members(dead, torch.zeros((), dtype=x.dtype), x)
            if t is not None:
                t = where_members(dead, torch.zeros((), dtype=t.dtype), t)
        mask = None if full else torch.arange(n).unsqueeze(0) < torch.tensor(sizes).unsqueeze(1)
        outs: dict[str, Any] = {}
        with torch.enable_grad():
            for label, head, up, mlp, out_shape in self.node_plan:
                h = x if head else outs[up]
                if not head and self.stagewise:
                    h = h.detach()
                if not mlp:  # other built-ins: the backend's own forward under vmap
                    outs[label] = vmapped_forward(
                        self.spec[label],
                        self.shells[0].params(label),
                        self.node_params[label],
                        h,
                        label in self.frozen,
                    )
                    continue
                masks = None
                if label in self.dropping:
                    rates = self.rates[label]
                    gens = [
                        torch_generator(fold_in(fold_in(self.phase_keys[k], step0[k] + index), label))
                        if run[k] and rates[k]
                        else None
                        for k in range(K)
                    ]
                    masks = dropout_masks(rates, sizes, self.spec[label].hidden, gens)
                y = mlp_forward(self.act[label], self.layers[label], h, masks, self.scales[label])
                outs[label] = y.reshape(K, n, *out_shape)
            values = [
                member_losses(fn, kind, outs[node], t, mask)
                for fn, kind, node in zip(self.loss_fns, self.loss_kinds, self.loss_nodes)
            ]
            vals = values[0].unsqueeze(0) if len(values) == 1 else torch.stack(values)  # (L, K)
            if full:
                total = vals.sum() if self.unit_weights else (vals * self.weight_t).sum()
            else:
                live = torch.tensor(run)
                total = torch.where(live, (vals * self.weight_t).sum(0), torch.zeros(())).sum()
            grads = torch.autograd.grad(total, self.all_leaves, allow_unused=True)
        listed = vals.detach().tolist()  # (L, K)
        ok = self._finite(listed, run, epoch, index, step0)
        if any(ok):
            sel = None if all(ok) else torch.tensor(ok)
            i = 0
            for name, leaves in self.leaf_list.items():
                gs = grads[i : i + len(leaves)]
                i += len(leaves)
                g = torch.cat(
                    [(torch.zeros_like(f) if gr is None else gr).reshape(K, -1) for f, gr in zip(leaves, gs)],
                    dim=1,
                )
                steps = [s + index for s in opt0[name]]
                self.optimizers[name].step(self.flat[name], self.opt_tensors[name], g, steps, sel)
        return index, listed, ok

    def _finite(
        self, listed: list[list[float]], run: list[bool], epoch: int, index: int, step0: list[int]
    ) -> list[bool]:
        """Which members take the step: those with a batch and a finite loss (the others fail here).

        ``listed`` is the ``(L, K)`` losses; a member's total is added up as its own run adds it.
        """
        if self.unit_single:
            if all(not r or math.isfinite(v) for v, r in zip(listed[0], run)):
                return run
        else:
            ws = self.weights
            for k, r in enumerate(run):
                if r and not math.isfinite(_total([v[k] for v in listed], ws[k])):
                    break
            else:
                return run
        ok = list(run)
        listed = [list(col) for col in zip(*listed)]  # (K, L)
        for k in range(self.K):
            if not run[k]:
                continue
            losses = dict(zip(self.loss_names, listed[k]))
            losses["loss"] = total = _total(listed[k], self.weights[k])
            if math.isfinite(total):
                continue
            ok[k] = False
            bad = [nm for nm, v in losses.items() if not math.isfinite(v)]
            exc = TrainingError(
                f"non-finite loss in phase {self.label!r}, epoch {epoch}, batch {index} "
                f"(step {step0[k] + index}): {', '.join(f'{nm}={losses[nm]}' for nm in bad)}; the state of "
                "the last good step is kept — lower the learning rate, check the inputs for NaN/inf, or "
                "scale the data"
            )
            self._fail(k, exc, epoch, index)
            self._dead = True
        return ok
