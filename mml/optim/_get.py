"""Look an optimizer up by name: ``get_optimizer("adam", lr=1e-2)``.

>>> get_optimizer("adam", lr=1e-2) == Adam(lr=0.01)
True
>>> get_optimizer("nadam")
Traceback (most recent call last):
...
mml.errors.ConfigError: unknown optimizer 'nadam'; valid names: 'adam', 'adamw', 'rmsprop', 'sgd'
"""

from __future__ import annotations

from typing import Any

import attrs

from mml.errors import ConfigError
from mml.optim._adam import Adam, AdamW
from mml.optim._base import AbstractOptimizer
from mml.optim._rmsprop import RMSprop
from mml.optim._sgd import SGD

__all__ = ["OPTIMIZERS", "get_optimizer"]

#: The built-in optimizers by name (a read-only view; user optimizers are passed as values).
OPTIMIZERS: dict[str, type[AbstractOptimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
}


def get_optimizer(optimizer: str | AbstractOptimizer, /, **hyperparameters: Any) -> AbstractOptimizer:
    """An optimizer spec from a name (case-insensitive) and hyperparameters, or a spec as is.

    >>> get_optimizer("SGD", lr=0.1, momentum=0.9).momentum
    0.9
    >>> opt = Adam()
    >>> get_optimizer(opt) is opt
    True
    >>> get_optimizer("adam", learning_rate=0.1)
    Traceback (most recent call last):
    ...
    mml.errors.ConfigError: Adam has no hyperparameter 'learning_rate'; valid: lr, betas, eps, weight_decay, amsgrad
    """
    if isinstance(optimizer, AbstractOptimizer):
        if hyperparameters:
            raise ConfigError(
                f"get_optimizer() got an optimizer value ({type(optimizer).__name__}) and hyperparameters "
                f"{sorted(hyperparameters)}; pass a name with hyperparameters, or use "
                "attrs.evolve(optimizer, ...) to change a value"
            )
        return optimizer
    if not isinstance(optimizer, str):
        raise ConfigError(
            f"an optimizer is a name ({', '.join(map(repr, sorted(OPTIMIZERS)))}) or an optimizer value "
            f"such as mml.optim.adam(); got {type(optimizer).__name__} {optimizer!r:.80}"
        )
    cls = OPTIMIZERS.get(optimizer.lower())
    if cls is None:
        raise ConfigError(
            f"unknown optimizer {optimizer!r}; valid names: {', '.join(map(repr, sorted(OPTIMIZERS)))}"
        )
    fields = list(attrs.fields_dict(cls))  # type: ignore[arg-type]
    unknown = [k for k in hyperparameters if k not in fields]
    removed = [k for k in unknown if k in cls._removed_keys]
    if removed:
        raise ConfigError(
            f"{cls.__name__} has no hyperparameter {removed[0]!r}: {cls._removed_keys[removed[0]]}"
        )
    if unknown:
        raise ConfigError(
            f"{cls.__name__} has no hyperparameter {', '.join(map(repr, unknown))}; valid: {', '.join(fields)}"
        )
    try:
        return cls(**hyperparameters)
    except TypeError as exc:  # a required hyperparameter is missing
        raise ConfigError(
            f"{cls.__name__} needs more hyperparameters ({exc}); e.g. get_optimizer({optimizer!r}, lr=0.01)"
        ) from exc
