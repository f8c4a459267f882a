"""Model specs: what a model is, as a frozen value (weights live in :mod:`mml.backends`).

>>> import mml.models as mm
>>> mm.SequentialMLP(hidden=(32,), output_shape=(1,)).backend
'torch'
"""

from mml.models._base import (
    ACTIVATIONS as ACTIVATIONS,
    BACKENDS as BACKENDS,
    AbstractModel as AbstractModel,
)
from mml.models._builtin import (
    SequentialCNN as SequentialCNN,
    SequentialMLP as SequentialMLP,
    TemporalCNN as TemporalCNN,
)
from mml.models._wrappers import (
    SKLEARN_METHODS as SKLEARN_METHODS,
    KerasModel as KerasModel,
    SklearnModel as SklearnModel,
    TorchModule as TorchModule,
)

__all__ = [
    "ACTIVATIONS",
    "BACKENDS",
    "SKLEARN_METHODS",
    "AbstractModel",
    "KerasModel",
    "SequentialCNN",
    "SequentialMLP",
    "SklearnModel",
    "TemporalCNN",
    "TorchModule",
]
