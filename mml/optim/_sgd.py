"""SGD with momentum, dampening, Nesterov and L2 weight decay (``torch.optim.SGD``, step for step).

>>> import torch, mml.optim as optim
>>> opt = optim.sgd(lr=0.1, momentum=0.9)
>>> params = {"w": torch.tensor([1.0])}
>>> state = opt.init(params)
>>> for step in range(2):
...     params, state = opt.update({"w": torch.tensor([1.0])}, state, params, step)
>>> params["w"]  # 1 - 0.1 * 1 - 0.1 * (0.9 * 1 + 1)
tensor([0.7100])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from mml._fields import FrozenDict, frozen_dict
from mml.errors import ConfigError
from mml.optim._backend import ordered, zeros_like
from mml.optim._base import AbstractOptimizer, Prepared, prepare
from mml.optim._checks import non_negative, to_float
from mml.optim._clipped import Clipped, with_clipping
from mml.optim._schedules import AbstractSchedule, as_learning_rate

__all__ = ["SGDState", "SGD", "sgd"]


@attrs.frozen
class SGDState:
    """The state of :class:`SGD`: one momentum buffer per parameter (empty without momentum).

    At step 0 the buffer is set to the gradient (as ``torch.optim.SGD`` does), so the zeros
    made by ``init`` are never mixed in.

    >>> import torch
    >>> SGD(0.1, momentum=0.9).init({"w": torch.ones(1)}).momentum_buffers["w"]
    tensor([0.])
    >>> SGD(0.1).init({"w": torch.ones(1)})
    SGDState(momentum_buffers=FrozenDict({}))
    """

    momentum_buffers: Mapping[str, Any] = attrs.field(factory=FrozenDict, converter=frozen_dict, hash=False)


@attrs.frozen
class SGD(AbstractOptimizer):
    """Stochastic gradient descent (``torch.optim.SGD``).

    >>> SGD(0.1, momentum=0.9, nesterov=True).nesterov
    True
    >>> SGD(0.1, nesterov=True)
    Traceback (most recent call last):
    ...
    mml.errors.ConfigError: SGD(nesterov=True) needs momentum > 0 and dampening == 0, got momentum=0.0, dampening=0.0
    """

    kind: ClassVar[str] = "optim.sgd"

    # a float or an AbstractSchedule (``Any`` so that cattrs passes it to the converter)
    lr: Any = attrs.field(converter=as_learning_rate)
    momentum: float = attrs.field(default=0.0, converter=to_float, validator=non_negative)
    nesterov: bool = False
    weight_decay: float = attrs.field(default=0.0, converter=to_float, validator=non_negative)
    dampening: float = attrs.field(default=0.0, converter=to_float, validator=non_negative)

    def __attrs_post_init__(self) -> None:
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ConfigError(
                "SGD(nesterov=True) needs momentum > 0 and dampening == 0, "
                f"got momentum={self.momentum}, dampening={self.dampening}"
            )

    def init(self, params: Mapping[str, Any]) -> SGDState:
        """Zero momentum buffers (none when ``momentum == 0``)."""
        return SGDState(zeros_like(params) if self.momentum != 0 else FrozenDict())

    def update(
        self,
        grads: Mapping[str, Any],
        opt_state: SGDState,
        params: Mapping[str, Any],
        step: int,
        *,
        lr_scale: float = 1.0,
    ) -> tuple[dict[str, Any], SGDState]:
        """One SGD step (see :meth:`AbstractOptimizer.update`)."""
        prep = prepare(self, grads, opt_state, params, step, lr_scale, SGDState)
        if not prep.keys:
            return dict(params), opt_state
        bufs = (
            ordered(opt_state.momentum_buffers, prep.keys, "momentum buffer") if self.momentum != 0 else None
        )
        run = _sgd_torch if prep.framework == "torch" else _sgd_tf
        new_p, new_bufs = run(self, prep, bufs, step == 0)
        state = SGDState(FrozenDict(zip(prep.keys, new_bufs)) if new_bufs is not None else FrozenDict())
        return dict(zip(prep.keys, new_p)), state


def _sgd_torch(
    opt: SGD, prep: Prepared, bufs: list[Any] | None, first: bool
) -> tuple[list[Any], list[Any] | None]:
    import torch

    p: Any = prep.params
    g: Any = prep.grads
    with torch.no_grad():
        if opt.weight_decay != 0:
            g = torch._foreach_add(g, p, alpha=opt.weight_decay)
        new_bufs: Any = None
        if bufs is not None:
            if first:
                # a copy: the state must not alias the caller's gradient tensors
                new_bufs = [t.detach().clone() for t in g]
            else:
                new_bufs = torch._foreach_mul(bufs, opt.momentum)
                torch._foreach_add_(new_bufs, g, alpha=1 - opt.dampening)
            g = torch._foreach_add(g, new_bufs, alpha=opt.momentum) if opt.nesterov else new_bufs
        new_p = torch._foreach_add(p, g, alpha=-prep.lr)
    return list(new_p), None if new_bufs is None else list(new_bufs)


def _sgd_tf(
    opt: SGD, prep: Prepared, bufs: list[Any] | None, first: bool
) -> tuple[list[Any], list[Any] | None]:
    import tensorflow as tf

    new_p, new_bufs = [], []
    for i, (p, g) in enumerate(zip(prep.params, prep.grads)):
        p = tf.convert_to_tensor(p)
        g = tf.convert_to_tensor(g)
        if opt.weight_decay != 0:
            g = g + opt.weight_decay * p
        if bufs is not None:
            b = (
                tf.identity(g)
                if first
                else tf.convert_to_tensor(bufs[i], dtype=p.dtype) * opt.momentum + (1 - opt.dampening) * g
            )
            new_bufs.append(b)
            g = g + opt.momentum * b if opt.nesterov else b
        new_p.append(p - prep.lr * g)
    return new_p, new_bufs if bufs is not None else None


def sgd(
    lr: float | AbstractSchedule,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    dampening: float = 0.0,
    *,
    clip_norm: float | None = None,
    clip_value: float | None = None,
) -> SGD | Clipped:
    """An :class:`SGD` spec; ``clip_norm``/``clip_value`` wrap it in :func:`clipped` (the 0.1 keywords).

    >>> sgd(0.1, momentum=0.9)
    SGD(lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0, dampening=0.0)
    """
    return with_clipping(SGD(lr, momentum, nesterov, weight_decay, dampening), clip_norm, clip_value)
