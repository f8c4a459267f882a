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

# Shared with mml's other packages, not public API (not in __all__, not documented): the
# modules of a package are private (import-linter's "private_modules" contract), so what
# its neighbours use is named here.
from mml.models._base import numel as numel
from mml.models._builtin import image_shape as image_shape, signal_shape as signal_shape
from mml.models._wrappers import (
    call_factory as call_factory,
    import_object as import_object,
    plain_data as plain_data,
)
