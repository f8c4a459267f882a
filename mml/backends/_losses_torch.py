"""The built-in losses in PyTorch ops, for torch nodes (and scikit-learn outputs).

The loss *specs* (:class:`mml.training.Loss`, :class:`mml.training.AppliedLoss`) live in
training; this module holds their torch implementations, and :mod:`mml.backends._losses_tf`
their TensorFlow twins (the two agree to float32 precision). The reduction is a mean over
samples that honours per-sample ``weights`` (``sum(w * l) / sum(w)``) and a boolean ``mask``
(masked-out samples weigh 0). torch is imported only when a loss is built.

>>> import torch
>>> fn = builtin_torch("mse", {})
>>> float(fn([torch.ones(4, 1), torch.zeros(4, 1)], None, None))
1.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mml.errors import ConfigError

__all__ = ["builtin_torch", "reduce_torch"]

LossFn = Callable[[Sequence[Any], Any, Any], Any]


def reduce_torch(per: Any, weights: Any, mask: Any) -> Any:
    """Mean of per-sample (or per-element) losses honouring sample weights and a validity mask.

    >>> import torch
    >>> float(reduce_torch(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 0.0]), None))
    1.0
    """
    if weights is None and mask is None:
        return per.mean()
    n = per.shape[0]
    per = per.reshape(n, -1).mean(dim=1) if per.dim() > 1 else per
    w = per.new_ones(n) if weights is None else weights.reshape(n).to(per.dtype)
    if mask is not None:
        w = w * mask.reshape(n).to(per.dtype)
    return (per * w).sum() / w.sum().clamp_min(1e-12)


def _same_shape(o: Any, t: Any) -> Any:
    if t.shape != o.shape and t.numel() == o.numel():
        return t.reshape(o.shape)
    return t


def builtin_torch(name: str, kwargs: Mapping[str, Any]) -> LossFn:
    """The PyTorch implementation of built-in loss ``name``: ``fn(inputs, weights, mask)``.

    >>> import torch
    >>> fn = builtin_torch("huber", {"delta": 0.5})
    >>> round(float(fn([torch.tensor([[2.0]]), torch.tensor([[0.0]])], None, None)), 4)
    0.875
    """
    import torch
    import torch.nn.functional as F

    kw = dict(kwargs)

    if name == "mse":

        def mse(args: Sequence[Any], w: Any, m: Any) -> Any:
            o, t = args
            t = _same_shape(o, t)
            if w is None and m is None:
                return F.mse_loss(o, t)
            return reduce_torch((o - t) ** 2, w, m)

        return mse
    if name == "mae":

        def mae(args: Sequence[Any], w: Any, m: Any) -> Any:
            o, t = args
            t = _same_shape(o, t)
            if w is None and m is None:
                return F.l1_loss(o, t)
            return reduce_torch((o - t).abs(), w, m)

        return mae
    if name == "huber":
        delta = float(kw.get("delta", 1.0))

        def huber(args: Sequence[Any], w: Any, m: Any) -> Any:
            o, t = args
            return reduce_torch(F.huber_loss(o, _same_shape(o, t), reduction="none", delta=delta), w, m)

        return huber
    if name == "bce":

        def bce(args: Sequence[Any], w: Any, m: Any) -> Any:
            o, t = args
            return reduce_torch(
                F.binary_cross_entropy(o, _same_shape(o, t).to(o.dtype), reduction="none"), w, m
            )

        return bce
    if name == "bce_with_logits":

        def bce_logits(args: Sequence[Any], w: Any, m: Any) -> Any:
            o, t = args
            return reduce_torch(
                F.binary_cross_entropy_with_logits(o, _same_shape(o, t).to(o.dtype), reduction="none"), w, m
            )

        return bce_logits
    if name == "cross_entropy":
        smoothing = float(kw.get("label_smoothing", 0.0))

        def cross_entropy(args: Sequence[Any], w: Any, m: Any) -> Any:
            o, t = args
            if t.is_floating_point() and t.shape == o.shape:
                per = F.cross_entropy(o, t, reduction="none", label_smoothing=smoothing)
            else:
                per = F.cross_entropy(
                    o, t.reshape(o.shape[0]).long(), reduction="none", label_smoothing=smoothing
                )
            return reduce_torch(per, w, m)

        return cross_entropy
    if name == "triplet_margin":
        margin = float(kw.get("margin", 1.0))
        p = float(kw.get("p", 2.0))

        def triplet(args: Sequence[Any], w: Any, m: Any) -> Any:
            a, pos, neg = (x.reshape(x.shape[0], -1) for x in args)
            return reduce_torch(
                F.triplet_margin_loss(a, pos, neg, margin=margin, p=p, reduction="none"), w, m
            )

        return triplet
    if name == "contrastive":
        margin = float(kw.get("margin", 1.0))
        fixed = kw.get("similar")

        def contrastive(args: Sequence[Any], w: Any, m: Any) -> Any:
            a = args[0].reshape(args[0].shape[0], -1)
            b = args[1].reshape(args[1].shape[0], -1)
            sq = ((a - b) ** 2).sum(dim=1)
            d = sq.clamp_min(1e-12).sqrt()
            if fixed is None:
                y = args[2].reshape(a.shape[0]).to(d.dtype)
            else:
                y = torch.full_like(d, 1.0 if fixed else 0.0)
            per = y * sq + (1 - y) * torch.clamp(margin - d, min=0) ** 2
            return reduce_torch(per, w, m)

        return contrastive
    raise ConfigError(f"unknown loss {name!r}")  # pragma: no cover - validated by Loss
