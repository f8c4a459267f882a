"""Callbacks: values with pure hooks; their state lives in the ``TrainState``.

>>> import mml.callbacks as cb
>>> cb.EarlyStopping(patience=3).patience
3
"""

from mml.callbacks._base import BATCH_HOOKS, HOOKS, AbstractCallback, CallbackResult, Event
from mml.callbacks._checkpointing import Checkpointing, CheckpointState, MemoryCheckpoint
from mml.callbacks._evaluation import METRICS, Evaluation, MetricCallback, compute_metric, regression_metrics
from mml.callbacks._metrics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    class_probabilities,
    classification_metrics,
    compute_metrics,
)
from mml.callbacks._monitor import EarlyStopping, EarlyStoppingState, LRSchedulerOnPlateau, PlateauState

__all__ = [
    "BATCH_HOOKS",
    "HOOKS",
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
    "compute_metric",
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "class_probabilities",
    "classification_metrics",
    "compute_metrics",
]
