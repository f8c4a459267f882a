"""RMSprop, plain, centered and with momentum (``torch.optim.RMSprop``, step for step).

>>> import torch, mml.optim as optim
>>> opt = optim.rmsprop(lr=0.01)
>>> params = {"w": torch.tensor([1.0])}
>>> params, state = opt.update({"w": torch.tensor([2.0])}, opt.init(params), params, 0)
>>> params["w"]  # 1 - 0.01 * 2 / sqrt(0.01 * 4)
tensor([0.9000])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from mml._fields import FrozenDict, frozen_dict
from mml.optim._backend import ordered, zeros_like
from mml.optim._base import AbstractOptimizer, Prepared, prepare
from mml.optim._checks import non_negative, to_float, unit_interval
from mml.optim._clipped import Clipped, with_clipping
from mml.optim._schedules import AbstractSchedule, as_learning_rate

__all__ = ["RMSpropState", "RMSprop", "rmsprop"]


def _optional_map() -> Any:
    return attrs.field(factory=FrozenDict, converter=frozen_dict, hash=False)


@attrs.frozen
class RMSpropState:
    """The state of :class:`RMSprop`: running mean of squared gradients per parameter.

    ``grad_avg`` is empty unless ``centered``; ``momentum_buffer`` is empty unless ``momentum > 0``.

    >>> import torch
    >>> s = RMSprop(centered=True).init({"w": torch.ones(1)})
    >>> sorted(s.grad_avg), sorted(s.momentum_buffer)
    (['w'], [])
    """

    square_avg: Mapping[str, Any] = attrs.field(converter=frozen_dict, hash=False)
    grad_avg: Mapping[str, Any] = _optional_map()
    momentum_buffer: Mapping[str, Any] = _optional_map()


@attrs.frozen
class RMSprop(AbstractOptimizer):
    """RMSprop (``torch.optim.RMSprop``).

    >>> RMSprop().alpha
    0.99
    """

    kind: ClassVar[str] = "optim.rmsprop"

    # a float or an AbstractSchedule (``Any`` so that cattrs passes it to the converter)
    lr: Any = attrs.field(default=1e-2, converter=as_learning_rate)
    alpha: float = attrs.field(default=0.99, converter=to_float, validator=unit_interval)
    eps: float = attrs.field(default=1e-8, converter=to_float, validator=non_negative)
    momentum: float = attrs.field(default=0.0, converter=to_float, validator=non_negative)
    centered: bool = False
    weight_decay: float = attrs.field(default=0.0, converter=to_float, validator=non_negative)

    def init(self, params: Mapping[str, Any]) -> RMSpropState:
        """Zero running averages shaped like ``params``."""
        return RMSpropState(
            square_avg=zeros_like(params),
            grad_avg=zeros_like(params) if self.centered else FrozenDict(),
            momentum_buffer=zeros_like(params) if self.momentum > 0 else FrozenDict(),
        )

    def update(
        self,
        grads: Mapping[str, Any],
        opt_state: RMSpropState,
        params: Mapping[str, Any],
        step: int,
        *,
        lr_scale: float = 1.0,
    ) -> tuple[dict[str, Any], RMSpropState]:
        """One RMSprop step (see :meth:`AbstractOptimizer.update`)."""
        prep = prepare(self, grads, opt_state, params, step, lr_scale, RMSpropState)
        if not prep.keys:
            return dict(params), opt_state
        keys = prep.keys
        sq = ordered(opt_state.square_avg, keys, "square_avg")
        ga = ordered(opt_state.grad_avg, keys, "grad_avg") if self.centered else None
        buf = ordered(opt_state.momentum_buffer, keys, "momentum_buffer") if self.momentum > 0 else None
        run = _rmsprop_torch if prep.framework == "torch" else _rmsprop_tf
        new_p, new_sq, new_ga, new_buf = run(self, prep, sq, ga, buf)
        state = RMSpropState(
            square_avg=FrozenDict(zip(keys, new_sq)),
            grad_avg=FrozenDict(zip(keys, new_ga)) if new_ga is not None else FrozenDict(),
            momentum_buffer=FrozenDict(zip(keys, new_buf)) if new_buf is not None else FrozenDict(),
        )
        return dict(zip(keys, new_p)), state


_Lists = tuple[list[Any], list[Any], list[Any] | None, list[Any] | None]


def _rmsprop_torch(
    opt: RMSprop, prep: Prepared, sq: list[Any], ga: list[Any] | None, buf: list[Any] | None
) -> _Lists:
    import torch

    alpha = opt.alpha
    p: Any = prep.params
    g: Any = prep.grads
    with torch.no_grad():
        if opt.weight_decay != 0:
            g = torch._foreach_add(g, p, alpha=opt.weight_decay)
        new_sq = torch._foreach_mul(sq, alpha)
        torch._foreach_addcmul_(new_sq, g, g, value=1 - alpha)
        new_ga = None
        if ga is not None:
            new_ga = torch._foreach_lerp(ga, g, 1 - alpha)
            avg = torch._foreach_addcmul(new_sq, new_ga, new_ga, value=-1)
            torch._foreach_sqrt_(avg)
        else:
            avg = torch._foreach_sqrt(new_sq)
        torch._foreach_add_(avg, opt.eps)
        new_buf = None
        if buf is not None:
            new_buf = torch._foreach_mul(buf, opt.momentum)
            torch._foreach_addcdiv_(new_buf, g, avg)
            new_p = torch._foreach_add(p, new_buf, alpha=-prep.lr)
        else:
            new_p = torch._foreach_addcdiv(p, g, avg, value=-prep.lr)
    return (
        list(new_p),
        list(new_sq),
        None if new_ga is None else list(new_ga),
        None if new_buf is None else list(new_buf),
    )


def _rmsprop_tf(
    opt: RMSprop, prep: Prepared, sq: list[Any], ga: list[Any] | None, buf: list[Any] | None
) -> _Lists:
    import tensorflow as tf

    alpha = opt.alpha
    new_p, new_sq, new_ga, new_buf = [], [], [], []
    for i, (p, g) in enumerate(zip(prep.params, prep.grads)):
        p = tf.convert_to_tensor(p)
        g = tf.convert_to_tensor(g)
        if opt.weight_decay != 0:
            g = g + opt.weight_decay * p
        s = tf.convert_to_tensor(sq[i], dtype=p.dtype) * alpha + (1 - alpha) * (g * g)
        new_sq.append(s)
        if ga is not None:
            a = tf.convert_to_tensor(ga[i], dtype=p.dtype)
            a = a + (1 - alpha) * (g - a)
            new_ga.append(a)
            avg = tf.sqrt(s - a * a) + opt.eps
        else:
            avg = tf.sqrt(s) + opt.eps
        if buf is not None:
            b = tf.convert_to_tensor(buf[i], dtype=p.dtype) * opt.momentum + g / avg
            new_buf.append(b)
            new_p.append(p - prep.lr * b)
        else:
            new_p.append(p - prep.lr * (g / avg))
    return new_p, new_sq, new_ga if ga is not None else None, new_buf if buf is not None else None


def rmsprop(
    lr: float | AbstractSchedule = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    momentum: float = 0.0,
    centered: bool = False,
    weight_decay: float = 0.0,
    *,
    clip_norm: float | None = None,
    clip_value: float | None = None,
) -> RMSprop | Clipped:
    """An :class:`RMSprop` spec; ``clip_norm``/``clip_value`` wrap it in :func:`clipped` (the 0.1 keywords).

    >>> rmsprop(1e-3, centered=True).centered
    True
    """
    return with_clipping(RMSprop(lr, alpha, eps, momentum, centered, weight_decay), clip_norm, clip_value)
