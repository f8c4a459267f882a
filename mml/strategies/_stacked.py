"""Stacked arithmetic for vectorised training: K members' tensors along a new leading axis.

A member's parameters, optimizer moments and batches are stacked into ``(K, ...)`` tensors;
:func:`stacked_update` is the optimizer step of every member at once, with each member's own
hyperparameters (learning rate, weight decay, betas, schedule) and its own step count as
``(K, 1, ...)`` tensors, in the same order of operations as :mod:`mml.optim`'s torch code.
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
from mml.optim import SGD, Adam, AdamW, Clipped, learning_rate_at

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
    "select_members",
    "tensor_fields",
    "vmapped_forward",
]


def stack_mappings(maps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{name: torch.stack([m[name] for m in maps])}`` (names of the first mapping, in order)."""
    import torch

    return {k: torch.stack([torch.as_tensor(m[k]) for m in maps]) for k in maps[0]}


def unstack_mapping(stacked: Mapping[str, Any], k: int) -> dict[str, Any]:
    """Member ``k``'s tensors (views of the stacked ones, which are never written to)."""
    return {name: t[k] for name, t in stacked.items()}


def _tensor_fields(rec: Any) -> list[str]:
    return [a.name for a in attrs.fields(type(rec)) if isinstance(getattr(rec, a.name), Mapping)]


def stack_records(recs: Sequence[Any]) -> Any:
    """Optimizer states (attrs records of tensor mappings, e.g. ``AdamState``) stacked field by field."""
    first = recs[0]
    return attrs.evolve(
        first,
        **{f: FrozenDict(stack_mappings([getattr(r, f) for r in recs])) for f in _tensor_fields(first)},
    )


def unstack_record(rec: Any, k: int) -> Any:
    """Member ``k``'s optimizer state from a stacked one."""
    return attrs.evolve(
        rec, **{f: FrozenDict(unstack_mapping(getattr(rec, f), k)) for f in _tensor_fields(rec)}
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


def _clip(
    grads: Mapping[str, Any], norms: Sequence[float | None], values: Sequence[float | None]
) -> dict[str, Any]:
    """Member ``k``'s gradients clipped as ``Clipped`` clips them: by ``values[k]``, then by ``norms[k]``.

    ``None`` leaves a member as it is (the bound is infinite, the scale exactly 1). The global
    norm of a member is over all of its gradients here, as in its own update.
    """
    import torch

    out = dict(grads)
    if any(v is not None for v in values):
        for name, g in out.items():
            hi = _column([float("inf") if v is None else v for v in values], g)
            out[name] = torch.clamp(g, -hi, hi)
    if any(n is not None for n in norms) and out:
        first = next(iter(out.values()))
        per = [torch.linalg.vector_norm(g.reshape(len(g), -1), 2.0, dim=1) for g in out.values()]
        total = torch.linalg.vector_norm(torch.stack(per, dim=1), 2.0, dim=1)
        bound = torch.tensor([0.0 if n is None else n for n in norms], dtype=total.dtype, device=total.device)
        coef = torch.clamp(bound / (total + 1e-6), max=1.0)
        on = torch.tensor([n is not None for n in norms], device=total.device)
        coef = torch.where(on, coef, torch.ones_like(coef))
        out = {name: g * coef.view(len(g), *([1] * (g.dim() - 1))).to(first.dtype) for name, g in out.items()}
    return out


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
    new tensors; nothing given is written to.

    >>> import torch, mml
    >>> opts = [mml.optim.sgd(0.1), mml.optim.sgd(1.0)]
    >>> p, _ = stacked_update(opts, [0, 0], {"w": torch.ones(2, 1)}, opts[0].init({"w": torch.zeros(2, 1)}),
    ...                       {"w": torch.zeros(2, 1)})
    >>> p["w"].flatten().tolist()
    [-0.10000000149011612, -1.0]
    """
    import torch

    keys = list(params)
    opts, norms, values = _unclipped(opts)
    with torch.no_grad():
        grads = _clip(grads, norms, values)
        if isinstance(opts[0], SGD):
            return _sgd(opts, steps, keys, grads, state, params)
        return _adam(opts, steps, keys, grads, state, params, decoupled=isinstance(opts[0], AdamW))


def _sgd(
    opts: Sequence[Any], steps: Sequence[int], keys: list[str], grads: Any, state: Any, params: Any
) -> Any:
    lrs = [learning_rate_at(o.lr, n) for o, n in zip(opts, steps)]
    first = [n == 0 for n in steps]
    momentum = opts[0].momentum != 0
    new_p, new_b = {}, {}
    for name in keys:
        p, g = params[name], grads[name]
        wd = _column([o.weight_decay for o in opts], p)
        g = g + wd * p if any(o.weight_decay for o in opts) else g
        if momentum:
            b_old = state.momentum_buffers[name]
            mom = _column([o.momentum for o in opts], p)
            damp = _column([1 - o.dampening for o in opts], p)
            b = b_old * mom + damp * g
            if any(first):
                b = _where_members(first, g, b)
            new_b[name] = b
            g = g + mom * b if opts[0].nesterov else b
        new_p[name] = p - _column(lrs, p) * g
    new_state = attrs.evolve(state, momentum_buffers=FrozenDict(new_b)) if momentum else state
    return new_p, new_state


def _where_members(mask: Sequence[bool], a: Any, b: Any) -> Any:
    import torch

    m = torch.tensor(mask, device=a.device).view(len(mask), *([1] * (a.dim() - 1)))
    return torch.where(m, a, b)


def _adam(
    opts: Sequence[Any],
    steps: Sequence[int],
    keys: list[str],
    grads: Any,
    state: Any,
    params: Any,
    *,
    decoupled: bool,
) -> Any:
    import torch

    ts = [n + 1 for n in steps]
    lrs = [learning_rate_at(o.lr, n) for o, n in zip(opts, steps)]
    step_size = [lr / (1 - o.betas[0] ** t) for lr, o, t in zip(lrs, opts, ts)]
    bc2 = [(1 - o.betas[1] ** t) ** 0.5 for o, t in zip(opts, ts)]
    any_wd = any(o.weight_decay for o in opts)
    amsgrad = opts[0].amsgrad
    new_p, new_m, new_v, new_vmax = {}, {}, {}, {}
    for name in keys:
        p, g = params[name], grads[name]
        if any_wd and not decoupled:
            g = g + _column([o.weight_decay for o in opts], p) * p
        m = torch.lerp(state.exp_avg[name], g, _column([1 - o.betas[0] for o in opts], p))
        v = state.exp_avg_sq[name] * _column([o.betas[1] for o in opts], p)
        v = v + _column([1 - o.betas[1] for o in opts], p) * g * g
        if amsgrad:
            vmax = torch.maximum(state.max_exp_avg_sq[name], v)
            new_vmax[name] = vmax
            denom = vmax.sqrt()
        else:
            denom = v.sqrt()
        denom = denom / _column(bc2, p) + _column([o.eps for o in opts], p)
        if decoupled and any_wd:
            p = p * _column([1 - lr * o.weight_decay for lr, o in zip(lrs, opts)], p)
        new_p[name] = p - _column(step_size, p) * (m / denom)
        new_m[name], new_v[name] = m, v
    new_state = attrs.evolve(
        state,
        exp_avg=FrozenDict(new_m),
        exp_avg_sq=FrozenDict(new_v),
        max_exp_avg_sq=FrozenDict(new_vmax) if amsgrad else state.max_exp_avg_sq,
    )
    return new_p, new_state


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
    activation: Any,
    n_layers: int,
    params: Mapping[str, Any],
    x: Any,
    masks: Sequence[Any] | None,
    scales: Any,
) -> Any:
    """Stacked ``SequentialMLP`` forward: ``x`` is ``(K, n, ...)``, weights ``(K, out, in)``; ``(K, n, out)``."""
    import torch

    k, n = x.shape[0], x.shape[1]
    h = x.reshape(k, n, -1)
    for i in range(n_layers):
        w, b = params[f"layers.{i}.weight"], params[f"layers.{i}.bias"]
        h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        if i < n_layers - 1:
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
    from collections.abc import Mapping

    return [a.name for a in attrs.fields(type(rec)) if isinstance(v := getattr(rec, a.name), Mapping) and v]


def select_members(sel: Any, new: Any, old: Any) -> Any:
    import torch

    return torch.where(sel.view(len(sel), *([1] * (new.dim() - 1))), new, old)


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
