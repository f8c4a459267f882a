"""Adam and AdamW (``torch.optim.Adam`` / ``torch.optim.AdamW``, step for step).

>>> import torch, mml.optim as optim
>>> opt = optim.adam(lr=0.1)
>>> params = {"w": torch.tensor([1.0, -1.0])}
>>> state = opt.init(params)
>>> params, state = opt.update({"w": torch.tensor([0.5, -2.0])}, state, params, 0)
>>> params["w"]
tensor([ 0.9000, -0.9000])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from mml._fields import FrozenDict, frozen_dict
from mml.optim._backend import ordered, zeros_like
from mml.optim._base import AbstractOptimizer, Prepared, prepare
from mml.optim._checks import float_pair, fraction_pair, non_negative, to_float
from mml.optim._clipped import Clipped, with_clipping
from mml.optim._schedules import AbstractSchedule, as_learning_rate

__all__ = ["AdamState", "Adam", "AdamW", "adam", "adamw"]


def _tensor_map() -> Any:
    return attrs.field(converter=frozen_dict, hash=False)


@attrs.frozen
class AdamState:
    """The state of :class:`Adam` and :class:`AdamW`: the moment estimates per parameter.

    ``max_exp_avg_sq`` is empty unless ``amsgrad`` is on. The step count is not stored: the
    caller passes ``step`` to ``update``.

    >>> import torch, mml
    >>> s = adam().init({"w": torch.ones(2)})
    >>> s.exp_avg["w"]
    tensor([0., 0.])
    >>> mml.io.roundtrip(s) == s
    True
    """

    exp_avg: Mapping[str, Any] = _tensor_map()
    exp_avg_sq: Mapping[str, Any] = _tensor_map()
    max_exp_avg_sq: Mapping[str, Any] = attrs.field(factory=FrozenDict, converter=frozen_dict, hash=False)


def _init(params: Mapping[str, Any], amsgrad: bool) -> AdamState:
    # separate tensors for each moment, so that no two state entries alias each other
    return AdamState(
        exp_avg=zeros_like(params),
        exp_avg_sq=zeros_like(params),
        max_exp_avg_sq=zeros_like(params) if amsgrad else FrozenDict(),
    )


def _adam_update(
    opt: _AbstractAdam,
    grads: Mapping[str, Any],
    state: AdamState,
    params: Mapping[str, Any],
    step: int,
    lr_scale: float,
    decoupled: bool,
) -> tuple[dict[str, Any], AdamState]:
    prep = prepare(opt, grads, state, params, step, lr_scale, AdamState)
    if not prep.keys:
        return dict(params), state
    keys = prep.keys
    m = ordered(state.exp_avg, keys, "exp_avg")
    v = ordered(state.exp_avg_sq, keys, "exp_avg_sq")
    vmax = ordered(state.max_exp_avg_sq, keys, "max_exp_avg_sq") if opt.amsgrad else None
    run = _adam_torch if prep.framework == "torch" else _adam_tf
    new_p, new_m, new_v, new_vmax = run(opt, prep, m, v, vmax, step + 1, decoupled)
    new_state = AdamState(
        exp_avg=FrozenDict(zip(keys, new_m)),
        exp_avg_sq=FrozenDict(zip(keys, new_v)),
        max_exp_avg_sq=FrozenDict(zip(keys, new_vmax)) if new_vmax is not None else FrozenDict(),
    )
    return dict(zip(keys, new_p)), new_state


def _adam_torch(
    opt: _AbstractAdam,
    prep: Prepared,
    m: list[Any],
    v: list[Any],
    vmax: list[Any] | None,
    t: int,
    decoupled: bool,
) -> tuple[list[Any], list[Any], list[Any], list[Any] | None]:
    import torch

    beta1, beta2 = opt.betas
    lr, wd = prep.lr, opt.weight_decay
    p: Any = prep.params
    g: Any = prep.grads
    with torch.no_grad():
        if wd != 0 and not decoupled:
            g = torch._foreach_add(g, p, alpha=wd)
        # the same operations, in the same order, as torch.optim.Adam, but out of place
        new_m = torch._foreach_lerp(m, g, 1 - beta1)
        new_v = torch._foreach_mul(v, beta2)
        torch._foreach_addcmul_(new_v, g, g, value=1 - beta2)
        step_size = lr / (1 - beta1**t)
        bias_correction2_sqrt = (1 - beta2**t) ** 0.5
        new_vmax = None
        if vmax is not None:
            new_vmax = torch._foreach_maximum(vmax, new_v)
            denom = torch._foreach_sqrt(new_vmax)
        else:
            denom = torch._foreach_sqrt(new_v)
        torch._foreach_div_(denom, bias_correction2_sqrt)
        torch._foreach_add_(denom, opt.eps)
        if decoupled and wd != 0:
            new_p = torch._foreach_mul(p, 1 - lr * wd)
            torch._foreach_addcdiv_(new_p, new_m, denom, value=-step_size)
        else:
            new_p = torch._foreach_addcdiv(p, new_m, denom, value=-step_size)
    return list(new_p), list(new_m), list(new_v), None if new_vmax is None else list(new_vmax)


def _adam_tf(
    opt: _AbstractAdam,
    prep: Prepared,
    m: list[Any],
    v: list[Any],
    vmax: list[Any] | None,
    t: int,
    decoupled: bool,
) -> tuple[list[Any], list[Any], list[Any], list[Any] | None]:
    import tensorflow as tf

    beta1, beta2 = opt.betas
    lr, wd = prep.lr, opt.weight_decay
    step_size = lr / (1 - beta1**t)
    bias_correction2_sqrt = (1 - beta2**t) ** 0.5
    new_p, new_m, new_v, new_vmax = [], [], [], []
    for i, (p, g) in enumerate(zip(prep.params, prep.grads)):
        p = tf.convert_to_tensor(p)
        g = tf.convert_to_tensor(g)
        mi = tf.convert_to_tensor(m[i], dtype=p.dtype)
        vi = tf.convert_to_tensor(v[i], dtype=p.dtype)
        if wd != 0 and not decoupled:
            g = g + wd * p
        mi = mi + (1 - beta1) * (g - mi)
        vi = vi * beta2 + (1 - beta2) * (g * g)
        if vmax is not None:
            vmi = tf.maximum(tf.convert_to_tensor(vmax[i], dtype=p.dtype), vi)
            new_vmax.append(vmi)
            denom = tf.sqrt(vmi) / bias_correction2_sqrt + opt.eps
        else:
            denom = tf.sqrt(vi) / bias_correction2_sqrt + opt.eps
        if decoupled and wd != 0:
            p = p * (1 - lr * wd)
        new_p.append(p - step_size * (mi / denom))
        new_m.append(mi)
        new_v.append(vi)
    return new_p, new_m, new_v, new_vmax if vmax is not None else None


class _AbstractAdam(AbstractOptimizer):
    """The update :class:`Adam` and :class:`AdamW` share; ``decoupled`` says where weight decay goes."""

    decoupled: ClassVar[bool]
    lr: Any
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    amsgrad: bool

    def init(self, params: Mapping[str, Any]) -> AdamState:
        """Zero moments shaped like ``params``."""
        return _init(params, self.amsgrad)

    def update(
        self,
        grads: Mapping[str, Any],
        opt_state: AdamState,
        params: Mapping[str, Any],
        step: int,
        *,
        lr_scale: float = 1.0,
    ) -> tuple[dict[str, Any], AdamState]:
        """One Adam(W) step (see :meth:`AbstractOptimizer.update`)."""
        return _adam_update(self, grads, opt_state, params, step, lr_scale, decoupled=self.decoupled)


@attrs.frozen
class Adam(_AbstractAdam):
    """Adam (``torch.optim.Adam``): L2 ``weight_decay`` is added to the gradient.

    >>> Adam(lr=0.01) == adam(lr=0.01)
    True
    """

    kind: ClassVar[str] = "optim.adam"
    decoupled: ClassVar[bool] = False

    # a float or an AbstractSchedule (``Any`` so that cattrs passes it to the converter)
    lr: Any = attrs.field(default=1e-3, converter=as_learning_rate)
    betas: tuple[float, float] = attrs.field(
        default=(0.9, 0.999), converter=float_pair, validator=fraction_pair
    )
    eps: float = attrs.field(default=1e-8, converter=to_float, validator=non_negative)
    weight_decay: float = attrs.field(default=0.0, converter=to_float, validator=non_negative)
    amsgrad: bool = False


@attrs.frozen
class AdamW(_AbstractAdam):
    """AdamW (``torch.optim.AdamW``): decoupled weight decay, ``p *= 1 - lr * weight_decay``.

    >>> AdamW().weight_decay
    0.01
    """

    kind: ClassVar[str] = "optim.adamw"
    decoupled: ClassVar[bool] = True

    # a float or an AbstractSchedule (``Any`` so that cattrs passes it to the converter)
    lr: Any = attrs.field(default=1e-3, converter=as_learning_rate)
    betas: tuple[float, float] = attrs.field(
        default=(0.9, 0.999), converter=float_pair, validator=fraction_pair
    )
    eps: float = attrs.field(default=1e-8, converter=to_float, validator=non_negative)
    weight_decay: float = attrs.field(default=1e-2, converter=to_float, validator=non_negative)
    amsgrad: bool = False


def adam(
    lr: float | AbstractSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    *,
    clip_norm: float | None = None,
    clip_value: float | None = None,
) -> Adam | Clipped:
    """An :class:`Adam` spec; ``clip_norm``/``clip_value`` wrap it in :func:`clipped` (the 0.1 keywords).

    >>> adam(1e-2)
    Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, amsgrad=False)
    """
    return with_clipping(Adam(lr, betas, eps, weight_decay, amsgrad), clip_norm, clip_value)


def adamw(
    lr: float | AbstractSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    *,
    clip_norm: float | None = None,
    clip_value: float | None = None,
) -> AdamW | Clipped:
    """An :class:`AdamW` spec; ``clip_norm``/``clip_value`` wrap it in :func:`clipped` (the 0.1 keywords).

    >>> adamw(1e-2, weight_decay=0.1).weight_decay
    0.1
    """
    return with_clipping(AdamW(lr, betas, eps, weight_decay, amsgrad), clip_norm, clip_value)
