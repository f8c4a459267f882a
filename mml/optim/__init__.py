"""Functional optimizers, learning-rate schedules and gradient clipping.

An optimizer is a frozen spec value with two pure methods, as in optax:
``init(params) -> opt_state`` and ``update(grads, opt_state, params, step) -> (params, opt_state)``.
Parameters are a mapping of names to torch tensors or TensorFlow tensors/variables; nothing is
updated in place. The numbers match ``torch.optim`` step for step.

>>> import torch, mml.optim as optim
>>> opt = optim.get_optimizer("adam", lr=optim.Cosine(1e-2, total_steps=100))
>>> params = {"w": torch.zeros(3)}
>>> state = opt.init(params)
>>> for step in range(3):
...     grads = {"w": params["w"] - torch.tensor([1.0, 2.0, 3.0])}
...     params, state = opt.update(grads, state, params, step)
>>> params["w"]
tensor([0.0300, 0.0300, 0.0300])
"""

from mml.optim._adam import Adam, AdamState, AdamW, adam, adamw
from mml.optim._base import AbstractOptimizer
from mml.optim._clip import clip_by_global_norm, clip_by_value, global_norm
from mml.optim._clipped import Clipped, clipped
from mml.optim._get import OPTIMIZERS, get_optimizer
from mml.optim._rmsprop import RMSprop, RMSpropState, rmsprop
from mml.optim._schedules import (
    AbstractSchedule,
    Constant,
    Cosine,
    Exponential,
    LinearWarmup,
    StepDecay,
    learning_rate_at,
)
from mml.optim._sgd import SGD, SGDState, sgd

__all__ = [
    "AbstractOptimizer",
    "AbstractSchedule",
    "Adam",
    "AdamState",
    "AdamW",
    "Clipped",
    "Constant",
    "Cosine",
    "Exponential",
    "LinearWarmup",
    "OPTIMIZERS",
    "RMSprop",
    "RMSpropState",
    "SGD",
    "SGDState",
    "StepDecay",
    "adam",
    "adamw",
    "clip_by_global_norm",
    "clip_by_value",
    "clipped",
    "get_optimizer",
    "global_norm",
    "learning_rate_at",
    "rmsprop",
    "sgd",
]

from mml.errors import removed_names as _removed_names

#: names 0.2 removed: ``mml.optim.get`` is ``get_optimizer`` (as ``mml.scalers.get_scaler``)
__getattr__ = _removed_names("mml.optim", {"get": "mml.optim.get_optimizer(name, **hyperparameters)"})
