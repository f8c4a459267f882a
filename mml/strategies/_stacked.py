"""Stacked arithmetic for vectorised training: K members' tensors along a new leading axis.

A member's parameters, optimizer moments and batches are stacked into ``(K, ...)`` tensors;
:class:`FlatOptimizer` is the optimizer step of every member at once on one packed ``(K, P)``
tensor per optimizer, written in place, with each member's own hyperparameters (learning
rate, weight decay, betas, schedule) and its own step count: a number the members share is a
Python scalar, one that differs a ``(K, 1)`` column, in the same order of operations as
:mod:`mml.optim`'s torch code (:func:`stacked_update` is its out-of-place form on named tensors).
:func:`mlp_forward` is :class:`~mml.models.SequentialMLP`'s forward pass over stacked
weights (``torch.baddbmm``), with each member's dropout masks drawn from its own key exactly
as the member's own run draws them.

>>> import torch
>>> s = stack_mappings([{"w": torch.zeros(2)}, {"w": torch.ones(2)}])
>>> s["w"].shape, unstack_mapping(s, 1)["w"].tolist()
(torch.Size([2, 2]), [1.0, 1.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from mml._fields import FrozenDict
from mml.optim import SGD, AbstractSchedule, Adam, AdamW, Clipped, learning_rate_at

__all__ = [
    "stack_mappings",
    "unstack_mapping",
    "stack_records",
    "unstack_record",
    "optimizer_problem",
    "stacked_update",
    "mlp_forward",
    "dropout_masks",
    "FlatLayout",
    "member_losses",
    "tensor_fields",
    "where_members",
    "vmapped_forward",
]


def stack_mappings(maps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{name: torch.stack([m[name] for m in maps])}`` (names of the first mapping, in order)."""
    import torch

    return {k: torch.stack([torch.as_tensor(m[k]) for m in maps]) for k in maps[0]}


def unstack_mapping(stacked: Mapping[str, Any], k: int) -> dict[str, Any]:
    """Member ``k``'s tensors (views of the stacked ones, which are never written to)."""
    return {name: t[k] for name, t in stacked.items()}


def stack_records(recs: Sequence[Any]) -> Any:
    """Optimizer states (attrs records of tensor mappings, e.g. ``AdamState``) stacked field by field."""
    first = recs[0]
    return attrs.evolve(
        first,
        **{f: FrozenDict(stack_mappings([getattr(r, f) for r in recs])) for f in tensor_fields(first)},
    )


def unstack_record(rec: Any, k: int) -> Any:
    """Member ``k``'s optimizer state from a stacked one."""
    return attrs.evolve(
        rec, **{f: FrozenDict(unstack_mapping(getattr(rec, f), k)) for f in tensor_fields(rec)}
    )


def optimizer_problem(opts: Sequence[Any]) -> str | None:
    """Why these members' optimizers cannot update together (``None``: they can).

    >>> import mml
    >>> optimizer_problem([mml.optim.adam(1e-3), mml.optim.adam(1e-2, weight_decay=0.1)]) is None
    True
    >>> optimizer_problem([mml.optim.adam(), mml.optim.sgd(0.1)])
    'the members use different optimizers (Adam, SGD)'
    """
    if any(isinstance(o, Clipped) and isinstance(o.optimizer, Clipped) for o in opts):
        return (
            "a clipped optimizer inside a clipped optimizer is not vectorised (clip once, norm= and value=)"
        )
    opts = _unclipped(opts)[0]
    kinds = {type(o) for o in opts}
    if len(kinds) > 1:
        return f"the members use different optimizers ({', '.join(sorted(k.__name__ for k in kinds))})"
    opt = opts[0]
    if not isinstance(opt, (Adam, AdamW, SGD)):
        return f"optimizer {type(opt).__name__} has no stacked update (vectorised: sgd, adam, adamw)"
    if isinstance(opt, (Adam, AdamW)) and len({o.amsgrad for o in opts}) > 1:
        return "the members differ in amsgrad"
    if isinstance(opt, SGD) and len({(o.momentum != 0, o.nesterov) for o in opts}) > 1:
        return "the members differ in whether SGD uses momentum / nesterov"
    return None


def _unclipped(opts: Sequence[Any]) -> tuple[list[Any], list[float | None], list[float | None]]:
    """The optimizers under any :class:`~mml.optim.Clipped`, with each member's norm and value bounds."""
    inner = [o.optimizer if isinstance(o, Clipped) else o for o in opts]
    norms = [o.norm if isinstance(o, Clipped) else None for o in opts]
    values = [o.value if isinstance(o, Clipped) else None for o in opts]
    return inner, norms, values


def _uniform(values: Sequence[Any]) -> bool:
    first = values[0]
    return all(v == first for v in values)


def _scalar(x: Any) -> bool:
    return isinstance(x, (int, float))


class FlatOptimizer:
    """Every member's optimizer step on packed ``(K, P)`` tensors, written in place (not a value).

    ``opts[k]`` is member ``k``'s optimizer (an :class:`~mml.optim.SGD`, :class:`~mml.optim.Adam`
    or :class:`~mml.optim.AdamW`, clipped or not); ``entries`` are the packed tensors' blocks
    (``FlatLayout.entries``: a member's global gradient norm is the norm of its blocks' norms,
    as in its own update). A number the members share is a Python scalar, in the same
    operations, in the same order, as :mod:`mml.optim`'s torch code — so where every member has
    the same numbers and step the update of each member equals its own update bit for bit;
    numbers that differ are ``(K, 1)`` columns. Columns that do not change with the step are
    built once.

    >>> import torch, mml
    >>> opt = FlatOptimizer([mml.optim.sgd(0.1), mml.optim.sgd(1.0)], [("w", (1,), 0, 1)])
    >>> p = torch.zeros(2, 1)
    >>> opt.step(p, {}, torch.ones(2, 1), [0, 0], None)
    >>> p.flatten().tolist()
    [-0.10000000149011612, -1.0]
    """

    def __init__(self, opts: Sequence[Any], entries: Sequence[tuple[str, tuple[int, ...], int, int]]) -> None:
        inner, norms, values = _unclipped(opts)
        self.opts = inner
        self.K = len(inner)
        self.entries = list(entries)
        self.norms, self.values = norms, values
        self.sgd = isinstance(inner[0], SGD)
        self.decoupled = isinstance(inner[0], AdamW)
        self.same = _uniform(inner)  # one set of numbers: scalars, unless the steps differ
        self.scheduled = any(isinstance(o.lr, AbstractSchedule) for o in inner)
        self._cols: dict[str, Any] = {}
        if self.sgd:
            self.momentum = inner[0].momentum != 0
            self.nesterov = inner[0].nesterov
            self.wd_on = any(o.weight_decay for o in inner)
        else:
            self.amsgrad = inner[0].amsgrad
            self.wd_on = any(o.weight_decay for o in inner)

    # -- numbers ----------------------------------------------------------------------------

    def _number(self, name: str, values: Sequence[float], like: Any, *, cache: bool) -> Any:
        """``values[0]`` when the members share it, else a ``(K, 1)`` column (cached if ``cache``)."""
        if _uniform(values):
            return values[0]
        if cache and name in self._cols:
            return self._cols[name]
        col = _column(values, like)
        if cache:
            self._cols[name] = col
        return col

    # -- the step ---------------------------------------------------------------------------

    def step(self, p: Any, state: dict[str, Any], g: Any, steps: Sequence[int], sel: Any) -> None:
        """Update ``p`` and the ``state`` tensors (``exp_avg``, ``momentum_buffers``, ...) in place.

        Member ``k`` takes its update number ``steps[k]``; ``sel`` (a ``(K,)`` bool tensor, or
        ``None`` for all) says which members move: the others keep their tensors bit for bit.
        ``g`` is not written to.
        """
        import torch

        with torch.no_grad():
            if any(n is not None for n in self.norms) or any(v is not None for v in self.values):
                g = self._clip(g)
            if self.sgd:
                self._sgd(p, state, g, steps, sel)
            else:
                self._adam(p, state, g, steps, sel)

    def _clip(self, g: Any) -> Any:
        """Member ``k``'s gradients clipped as ``Clipped`` clips them: by ``values[k]``, then by ``norms[k]``."""
        import torch

        values, norms = self.values, self.norms
        if any(v is not None for v in values):
            hi = self._number("clip_value", [float("inf") if v is None else v for v in values], g, cache=True)
            g = torch.clamp(g, -hi, hi)
        if any(n is not None for n in norms):
            per = [torch.linalg.vector_norm(g[:, o : o + s], 2.0, dim=1) for _, _, o, s in self.entries]
            total = torch.linalg.vector_norm(torch.stack(per, dim=1), 2.0, dim=1)
            bound = torch.tensor([0.0 if n is None else n for n in norms], dtype=total.dtype)
            coef = torch.clamp(bound / (total + 1e-6), max=1.0)
            on = torch.tensor([n is not None for n in norms])
            coef = torch.where(on, coef, torch.ones_like(coef))
            g = g * coef.view(len(coef), 1).to(g.dtype)
        return g

    def _sgd(self, p: Any, state: dict[str, Any], g: Any, steps: Sequence[int], sel: Any) -> None:
        import torch

        opts = self.opts
        same = self.same and _uniform(steps)
        lrs = (
            [learning_rate_at(opts[0].lr, steps[0])]
            if same
            else [learning_rate_at(o.lr, n) for o, n in zip(opts, steps)]
        )
        lr = self._number("lr", lrs, p, cache=not self.scheduled)
        if self.wd_on:
            wd = self._number("wd", [o.weight_decay for o in opts], p, cache=True)
            g = torch.add(g, p, alpha=wd) if _scalar(wd) else g + wd * p
        if self.momentum:
            b = state["momentum_buffers"]
            mom = self._number("momentum", [o.momentum for o in opts], p, cache=True)
            damp = self._number("dampening", [1 - o.dampening for o in opts], p, cache=True)
            first = [n == 0 for n in steps]
            if all(first):
                new_b = g.detach().clone()
            else:
                new_b = b.mul_(mom) if sel is None and not any(first) else torch.mul(b, mom)
                new_b = new_b.add_(g, alpha=damp) if _scalar(damp) else new_b.add_(damp * g)
                if any(first):
                    new_b = where_members(first, g, new_b)
            if self.nesterov:
                g = torch.add(g, new_b, alpha=mom) if _scalar(mom) else g + mom * new_b
            else:
                g = new_b
            _assign(b, new_b, sel)
        if sel is None:
            p.add_(g, alpha=-lr) if _scalar(lr) else p.add_((-lr) * g)
        else:
            _assign(p, torch.add(p, g, alpha=-lr) if _scalar(lr) else p + (-lr) * g, sel)

    def _adam(self, p: Any, state: dict[str, Any], g: Any, steps: Sequence[int], sel: Any) -> None:
        import torch

        opts = self.opts
        same = self.same and _uniform(steps)
        use = opts[:1] if same else opts
        ns = steps[:1] if same else steps
        lrs = [learning_rate_at(o.lr, n) for o, n in zip(use, ns)]
        ts = [n + 1 for n in ns]
        step_size = [-(lr / (1 - o.betas[0] ** t)) for lr, o, t in zip(lrs, use, ts)]
        bc2 = [(1 - o.betas[1] ** t) ** 0.5 for o, t in zip(use, ts)]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        w1 = self._number("1-beta1", [1 - o.betas[0] for o in opts], p, cache=True)
        b2 = self._number("beta2", [o.betas[1] for o in opts], p, cache=True)
        c2 = self._number("1-beta2", [1 - o.betas[1] for o in opts], p, cache=True)
        eps = self._number("eps", [o.eps for o in opts], p, cache=True)
        nss = self._number("step_size", step_size, p, cache=False)
        bc = self._number("bc2", bc2, p, cache=False)
        if self.wd_on and not self.decoupled:
            wd = self._number("wd", [o.weight_decay for o in opts], p, cache=True)
            g = torch.add(g, p, alpha=wd) if _scalar(wd) else g + wd * p
        inplace = sel is None
        new_m = m.lerp_(g, w1) if inplace else torch.lerp(m, g, w1)
        new_v = v.mul_(b2) if inplace else torch.mul(v, b2)
        new_v = new_v.addcmul_(g, g, value=c2) if _scalar(c2) else new_v.add_((c2 * g) * g)
        if self.amsgrad:
            vmax = state["max_exp_avg_sq"]
            new_vmax = torch.maximum(vmax, new_v)
            denom = new_vmax.sqrt()
            _assign(vmax, new_vmax, sel)
        else:
            denom = new_v.sqrt()
        denom = denom.div_(bc).add_(eps)
        new_p = p
        if self.decoupled and self.wd_on:
            decay = self._number(
                "decay", [1 - lr * o.weight_decay for lr, o in zip(lrs, use)], p, cache=not self.scheduled
            )
            new_p = p.mul_(decay) if inplace else p * decay
        elif not inplace:
            new_p = p.clone()
        if _scalar(nss):
            new_p.addcdiv_(new_m, denom, value=nss)
        else:
            new_p.add_((nss * new_m) / denom)
        if not inplace:
            _assign(m, new_m, sel)
            _assign(v, new_v, sel)
            _assign(p, new_p, sel)


def _assign(old: Any, new: Any, sel: Any) -> None:
    """``old[k] = new[k]`` for the selected members (all where ``sel`` is None), in place."""

    if new is old:
        return
    old.copy_(new if sel is None else where_members(sel, new, old))


def where_members(mask: Any, a: Any, b: Any) -> Any:
    """Member ``k``'s ``a[k]`` where ``mask[k]``, else ``b[k]`` (``mask``: K bools or a ``(K,)`` bool tensor)."""
    import torch

    m = mask if isinstance(mask, torch.Tensor) else torch.tensor(mask, device=a.device)
    return torch.where(m.view(len(m), *([1] * (max(a.dim(), b.dim()) - 1))), a, b)


def _column(values: Sequence[float], like: Any) -> Any:
    import torch

    t = torch.tensor(values, dtype=like.dtype, device=like.device)
    return t.view(len(values), *([1] * (like.dim() - 1)))


def stacked_update(
    opts: Sequence[Any],
    steps: Sequence[int],
    grads: Mapping[str, Any],
    state: Any,
    params: Mapping[str, Any],
) -> tuple[dict[str, Any], Any]:
    """One optimizer step of every member: member ``k`` uses ``opts[k]`` at its update index ``steps[k]``.

    ``grads``, ``params`` and the tensor fields of ``state`` are stacked ``(K, ...)``. Returns
    new tensors; nothing given is written to. (The packed, in-place form is :class:`FlatOptimizer`.)

    >>> import torch, mml
    >>> opts = [mml.optim.sgd(0.1), mml.optim.sgd(1.0)]
    >>> p, _ = stacked_update(opts, [0, 0], {"w": torch.ones(2, 1)}, opts[0].init({"w": torch.zeros(2, 1)}),
    ...                       {"w": torch.zeros(2, 1)})
    >>> p["w"].flatten().tolist()
    [-0.10000000149011612, -1.0]
    """
    keys = list(params)
    lay = FlatLayout([(k, tuple(params[k].shape[1:])) for k in keys])
    flat = lay.pack(params)  # a new tensor: the update writes to it, not to params
    fields = tensor_fields(state)
    packed = {f: lay.pack(getattr(state, f)) for f in fields}
    FlatOptimizer(opts, lay.entries).step(flat, packed, lay.pack(grads), steps, None)
    new_state = attrs.evolve(state, **{f: FrozenDict(lay.views(packed[f])) for f in fields})
    return lay.views(flat), new_state


# -- SequentialMLP over stacked weights --------------------------------------------------


def dropout_masks(
    rates: Sequence[float], sizes: Sequence[int], widths: Sequence[int], gens: Sequence[Any]
) -> list[Any]:
    """Per hidden layer, the ``(K, n, width)`` masks (zero-padded to the largest ``n``).

    Member ``k`` draws its masks from ``gens[k]`` layer by layer, with the shapes of its own
    batch, as its own forward pass does — so they are the same masks, bit for bit. A member
    with rate 0 (or no generator) gets ones and draws nothing.
    """
    import torch

    n = max(sizes)
    out = []
    for width in widths:
        layer = torch.zeros(len(rates), n, width)
        for k, (rate, size, gen) in enumerate(zip(rates, sizes, gens)):
            if rate and gen is not None:
                layer[k, :size] = torch.empty(size, width).bernoulli_(1.0 - rate, generator=gen)
            else:
                layer[k] = 1.0
        out.append(layer)
    return out


def mlp_forward(
    activation: Any, layers: Sequence[tuple[Any, Any]], x: Any, masks: Sequence[Any] | None, scales: Any
) -> Any:
    """Stacked ``SequentialMLP`` forward: ``x`` is ``(K, n, ...)``; ``layers`` hold each layer's
    ``(K, out, in)`` weight and ``(K, 1, out)`` bias; returns ``(K, n, out)``."""
    import torch

    k, n = x.shape[0], x.shape[1]
    h = x.reshape(k, n, -1)
    last = len(layers) - 1
    for i, (w, b) in enumerate(layers):
        h = torch.baddbmm(b, h, w.transpose(1, 2))
        if i < last:
            h = activation(h)
            if masks is not None:
                h = h * masks[i] * scales
    return h


class FlatLayout:
    """Where each named ``(K, *shape)`` tensor sits in one packed ``(K, P)`` tensor (not a value).

    Packing an optimizer's parameters makes its stacked update a handful of operations on one
    tensor, whatever the number of layers.

    >>> import torch
    >>> lay = FlatLayout([("w", (2, 3)), ("b", (2,))])
    >>> flat = lay.pack({"w": torch.ones(4, 2, 3), "b": torch.zeros(4, 2)})
    >>> flat.shape, lay.views(flat)["w"].shape, lay.member(flat, 0)["b"].tolist()
    (torch.Size([4, 8]), torch.Size([4, 2, 3]), [0.0, 0.0])
    """

    def __init__(self, shapes: Sequence[tuple[str, tuple[int, ...]]]) -> None:
        import math

        self.entries: list[tuple[str, tuple[int, ...], int, int]] = []
        offset = 0
        for name, shape in shapes:
            size = math.prod(shape)
            self.entries.append((name, tuple(shape), offset, size))
            offset += size
        self.size = offset

    def pack(self, stacked: Mapping[str, Any]) -> Any:
        """``(K, P)`` from ``{name: (K, *shape)}``."""
        import torch

        return torch.cat([stacked[n].reshape(stacked[n].shape[0], -1) for n, _, _, _ in self.entries], dim=1)

    def views(self, flat: Any) -> dict[str, Any]:
        """``{name: (K, *shape)}`` views into ``flat`` (differentiable)."""
        k = flat.shape[0]
        return {n: flat[:, o : o + s].view(k, *shape) for n, shape, o, s in self.entries}

    def member(self, flat: Any, k: int) -> dict[str, Any]:
        """Member ``k``'s tensors, each its own copy."""
        return {n: flat[k, o : o + s].reshape(shape).clone() for n, shape, o, s in self.entries}

    def pack_member(self, tensors: Mapping[str, Any]) -> Any:
        """One member's ``(P,)`` row from its named tensors."""
        import torch

        return torch.cat([torch.as_tensor(tensors[n]).reshape(-1) for n, _, _, _ in self.entries])


def tensor_fields(rec: Any) -> list[str]:
    """The non-empty tensor-mapping fields of an optimizer state (``max_exp_avg_sq`` is empty without amsgrad)."""
    return [a.name for a in attrs.fields(type(rec)) if isinstance(v := getattr(rec, a.name), Mapping) and v]


def vmapped_forward(spec: Any, rec: Any, params: Any, x: Any, frozen: bool) -> Any:
    """``(K, n, ...)`` outputs of a deterministic torch built-in: its own forward, vmapped over the members."""
    from torch.func import vmap

    from mml.backends import torch_forward

    def one(p: Any, xk: Any) -> Any:
        return torch_forward(spec, attrs.evolve(rec, params=p), xk, training=not frozen)[0]

    return vmap(one)(params, x)


def member_losses(fn: Any, kind: str | None, y: Any, t: Any, mask: Any) -> Any:
    """``(K,)`` losses: ``fn`` on each member's outputs and targets (its padded rows masked out).

    Built-in ``mse`` / ``mae`` on equal batches are the per-member mean of the elementwise loss
    (what ``F.mse_loss`` / ``F.l1_loss`` compute); every other loss runs under ``torch.func.vmap``.
    """
    from torch.func import vmap

    if mask is None and kind is not None:
        t = t.reshape(y.shape) if t.shape != y.shape and t.numel() == y.numel() else t
        d = y - t
        per = d * d if kind == "mse" else d.abs()
        return per.reshape(per.shape[0], -1).mean(dim=1)
    if mask is None:
        return vmap(lambda yk, tk: fn([yk, tk], None, None))(y, t)
    return vmap(lambda yk, tk, mk: fn([yk, tk], None, mk))(y, t, mask)
