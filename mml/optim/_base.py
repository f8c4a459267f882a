"""The optimizer interface: a frozen spec with pure ``init`` and ``update``.

An optimizer never changes a tensor it is given. ``update`` returns new parameter tensors and
a new state record; the caller's parameters, gradients and old state are left as they were, so
an old ``(params, opt_state)`` pair can be replayed and gives bit-identical results.

>>> import torch, mml.optim as optim
>>> opt = optim.sgd(lr=0.1)
>>> params = {"w": torch.tensor([1.0, 2.0])}
>>> state = opt.init(params)
>>> new_params, state = opt.update({"w": torch.tensor([1.0, 1.0])}, state, params, 0)
>>> new_params["w"], params["w"]
(tensor([0.9000, 1.9000]), tensor([1., 2.]))
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from mml.errors import ConfigError, TrainingError
from mml.optim._backend import check_grads, framework_of
from mml.optim._schedules import AbstractSchedule, learning_rate_at

__all__ = ["AbstractOptimizer", "Prepared", "prepare"]


class AbstractOptimizer(abc.ABC):
    """A functional optimizer: ``init(params) -> state``, ``update(...) -> (params, state)``.

    Every concrete optimizer has an ``lr`` (a float or an :class:`~mml.optim.AbstractSchedule`).
    Gradient clipping is not a field of each: it composes, ``clipped(adam(1e-3), norm=1.0)``
    (:class:`~mml.optim.Clipped`, like optax's ``chain(clip_by_global_norm(1.0), adam(1e-3))``).

    Parameters are a mapping of name to tensor: torch tensors, or TensorFlow tensors and
    variables (also Keras 3 variables on TensorFlow). The returned parameters are new tensors
    of the same library (plain tensors, not variables; torch results do not require grad), in
    a new ``dict`` (a plain dict, so that ``torch.func.grad`` and ``tf.GradientTape`` accept it).

    >>> import mml.optim as optim
    >>> isinstance(optim.adam(), AbstractOptimizer)
    True
    >>> optim.adam(lr=optim.Exponential(1.0, 0.5)).learning_rate(2, lr_scale=0.1)
    0.025
    """

    _mml_union = True
    #: keys of old documents that are errors now, with the new spelling (the converter says it)
    _removed_keys: ClassVar[Mapping[str, str]] = {
        "clip_norm": "clipping composes with an optimizer: {kind: optim.clipped, optimizer: {kind: ...}, "
        "norm: 1.0} (in Python mml.optim.clipped(mml.optim.adam(1e-3), norm=1.0))",
        "clip_value": "clipping composes with an optimizer: {kind: optim.clipped, optimizer: {kind: ...}, "
        "value: 0.5} (in Python mml.optim.clipped(mml.optim.adam(1e-3), value=0.5))",
    }

    @abc.abstractmethod
    def init(self, params: Mapping[str, Any]) -> Any:
        """The initial optimizer state for ``params`` (zeros shaped like the parameters)."""

    @abc.abstractmethod
    def update(
        self,
        grads: Mapping[str, Any],
        opt_state: Any,
        params: Mapping[str, Any],
        step: int,
        *,
        lr_scale: float = 1.0,
    ) -> tuple[dict[str, Any], Any]:
        """One optimizer step: ``(new_params, new_opt_state)``.

        ``step`` is the 0-based index of this update (it drives the schedule and bias
        corrections); ``lr_scale`` multiplies the scheduled learning rate (for callbacks
        such as reduce-on-plateau).
        """

    def learning_rate(self, step: int, *, lr_scale: float = 1.0) -> float:
        """The learning rate used by the update with 0-based index ``step``."""
        lr: float | AbstractSchedule = self.lr  # type: ignore[attr-defined]
        return learning_rate_at(lr, step) * lr_scale


@attrs.frozen
class Prepared:
    """What every ``update`` needs first: the library, names in order, tensors, lr.

    Built by :func:`prepare` (clipping, when wanted, happened before: :class:`~mml.optim.Clipped`).
    """

    framework: str
    keys: list[str]
    params: list[Any]
    grads: list[Any]
    lr: float


def prepare(
    opt: Any,
    grads: Mapping[str, Any],
    opt_state: Any,
    params: Mapping[str, Any],
    step: int,
    lr_scale: float,
    state_type: type,
) -> Prepared:
    """Check the arguments of ``update`` and gather the tensors in parameter order."""
    if not isinstance(opt_state, state_type):
        raise TrainingError(
            f"{type(opt).__name__}.update got a {type(opt_state).__name__} as its state, expected a "
            f"{state_type.__name__}; pass the state made by this optimizer's init(params)"
        )
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ConfigError(f"step is the 0-based index of the update, an int >= 0; got {step!r}")
    check_grads(grads, params)
    keys = list(params)
    framework = framework_of(params) if keys else "torch"
    return Prepared(
        framework=framework,
        keys=keys,
        params=[params[k] for k in keys],
        grads=[grads[k] for k in keys],
        lr=learning_rate_at(opt.lr, step) * lr_scale,
    )
