"""Callbacks: values with pure hooks; their state lives in the ``TrainState``.

>>> import mml.callbacks as cb
>>> cb.EarlyStopping(patience=3).patience
3
"""

from mml.callbacks._base import AbstractCallback, CallbackResult, Event
from mml.callbacks._checkpointing import Checkpointing, CheckpointState, MemoryCheckpoint
from mml.callbacks._evaluation import METRICS, Evaluation, MetricCallback, regression_metrics
from mml.callbacks._metrics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    classification_metrics,
    compute_metrics,
)
from mml.callbacks._monitor import EarlyStopping, EarlyStoppingState, LRSchedulerOnPlateau, PlateauState

__all__ = [
    "METRICS",
    "AbstractCallback",
    "CallbackResult",
    "regression_metrics",
    "CheckpointState",
    "Checkpointing",
    "EarlyStopping",
    "EarlyStoppingState",
    "Evaluation",
    "Event",
    "LRSchedulerOnPlateau",
    "MemoryCheckpoint",
    "MetricCallback",
    "PlateauState",
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "classification_metrics",
    "compute_metrics",
]

# Shared with mml's other packages, not public API (not in __all__, not documented): the
# modules of a package are private (import-linter's "private_modules" contract), so what
# its neighbours use is named here.
from mml.callbacks._base import (
    BATCH_HOOKS as BATCH_HOOKS,
    HOOKS as HOOKS,
)
from mml.callbacks._evaluation import compute_metric as compute_metric
from mml.callbacks._metrics import class_probabilities as class_probabilities
