"""Gradient clipping composed with an optimizer: ``clipped(adam(1e-3), norm=1.0)``.

Clipping is not a field of every optimizer; it wraps one, as optax's
``chain(clip_by_global_norm(1.0), adam(1e-3))`` does. :class:`Clipped` is itself an optimizer
value (``kind = "optim.clipped"``) holding the optimizer it feeds, so it serializes through the
one converter and reads the same in a YAML config::

    optimizer: {kind: optim.clipped, norm: 1.0, optimizer: {kind: optim.adam, lr: 0.001}}

Its state is the wrapped optimizer's state (clipping keeps none), so a clipped and an unclipped
optimizer of the same kind hold the same state record.

>>> import torch, mml.optim as optim
>>> opt = optim.clipped(optim.sgd(1.0), norm=1.0)
>>> params = {"w": torch.tensor([0.0, 0.0])}
>>> new, _ = opt.update({"w": torch.tensor([3.0, 4.0])}, opt.init(params), params, 0)
>>> new["w"]  # the gradient (3, 4) has norm 5: scaled to norm 1 (less 1e-6), then one SGD step
tensor([-0.6000, -0.8000])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import attrs

from mml.errors import ConfigError
from mml.optim._backend import check_grads, framework_of
from mml.optim._base import AbstractOptimizer
from mml.optim._checks import optional_float, optional_positive
from mml.optim._clip import clip_list
from mml.optim._schedules import AbstractSchedule

__all__ = ["Clipped", "clipped"]


def _is_optimizer(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, AbstractOptimizer):
        raise ConfigError(
            "Clipped.optimizer is the optimizer the clipped gradients feed (e.g. mml.optim.adam(1e-3)), "
            f"got {type(value).__name__} {value!r:.80}"
        )


@attrs.frozen
class Clipped(AbstractOptimizer):
    """``optimizer`` fed clipped gradients: by value first (``value``), then by global norm (``norm``).

    ``value`` clamps every gradient element into ``[-value, value]``
    (``torch.nn.utils.clip_grad_value_``); ``norm`` scales all gradients by
    ``min(norm / (global_norm + 1e-6), 1)`` (``torch.nn.utils.clip_grad_norm_``). At least one
    of them is set. ``lr`` and the learning rate are the wrapped optimizer's.

    >>> import mml.optim as optim
    >>> c = Clipped(optim.adam(1e-2), norm=1.0)
    >>> c.lr, c.learning_rate(0)
    (0.01, 0.01)
    >>> Clipped(optim.adam(1e-2))
    Traceback (most recent call last):
    ...
    mml.errors.ConfigError: Clipped(Adam) clips nothing: pass norm=... (largest global gradient norm) and/or value=... (largest gradient element)
    """

    kind: ClassVar[str] = "optim.clipped"

    optimizer: AbstractOptimizer = attrs.field(validator=_is_optimizer)
    norm: float | None = attrs.field(
        default=None, converter=optional_float, validator=optional_positive, kw_only=True
    )
    value: float | None = attrs.field(
        default=None, converter=optional_float, validator=optional_positive, kw_only=True
    )

    def __attrs_post_init__(self) -> None:
        if self.norm is None and self.value is None:
            raise ConfigError(
                f"Clipped({type(self.optimizer).__name__}) clips nothing: pass norm=... (largest global "
                "gradient norm) and/or value=... (largest gradient element)"
            )

    @property
    def lr(self) -> float | AbstractSchedule:
        """The wrapped optimizer's learning rate (a float or a schedule)."""
        lr: float | AbstractSchedule = self.optimizer.lr  # type: ignore[attr-defined]
        return lr

    def init(self, params: Mapping[str, Any]) -> Any:
        """The wrapped optimizer's initial state (clipping keeps no state)."""
        return self.optimizer.init(params)

    def update(
        self,
        grads: Mapping[str, Any],
        opt_state: Any,
        params: Mapping[str, Any],
        step: int,
        *,
        lr_scale: float = 1.0,
    ) -> tuple[dict[str, Any], Any]:
        """Clip ``grads`` (new tensors; the caller's are not written), then the wrapped update."""
        check_grads(grads, params)
        keys = list(params)
        if keys:
            framework = framework_of(params)
            cut = clip_list([grads[k] for k in keys], framework, self.norm, self.value)
            grads = dict(zip(keys, cut))
        return self.optimizer.update(grads, opt_state, params, step, lr_scale=lr_scale)


def clipped(
    optimizer: AbstractOptimizer, *, norm: float | None = None, value: float | None = None
) -> Clipped:
    """``optimizer`` with its gradients clipped first (a :class:`Clipped` value).

    >>> import mml.optim as optim
    >>> clipped(optim.sgd(0.1), norm=1.0)
    Clipped(optimizer=SGD(lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0, dampening=0.0), norm=1.0, value=None)
    """
    return Clipped(optimizer, norm=norm, value=value)


_O = TypeVar("_O", bound=AbstractOptimizer)


def with_clipping(optimizer: _O, clip_norm: float | None, clip_value: float | None) -> _O | Clipped:
    """What the factories' ``clip_norm=``/``clip_value=`` keywords (the 0.1 spelling) make:
    ``optimizer`` itself, or ``clipped(optimizer, norm=clip_norm, value=clip_value)``.

    >>> import mml.optim as optim
    >>> optim.adam(1e-3, clip_norm=1.0) == clipped(optim.adam(1e-3), norm=1.0)
    True
    """
    if clip_norm is None and clip_value is None:
        return optimizer
    return Clipped(optimizer, norm=clip_norm, value=clip_value)
