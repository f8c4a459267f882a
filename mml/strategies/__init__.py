"""Execution strategies: cross-validation, sweeps and the executors that run their jobs.

They sit outside the experiment: each builds many independent experiments (one per fold
or per trial), runs them through an executor — in this process by default, in worker
processes or on a Ray cluster — and gathers frozen results.

>>> import mml.strategies as s
>>> s.LocalExecutor()
LocalExecutor()
>>> s.get_path({"a": (1, 2)}, "a.1")
2
"""

from mml.strategies._cv import (
    CVResult as CVResult,
    FoldResult as FoldResult,
    cross_validate as cross_validate,
    fold_featureset as fold_featureset,
    pool_predictions as pool_predictions,
)
from mml.strategies._distributions import (
    AbstractDistribution as AbstractDistribution,
    Choice as Choice,
    IntUniform as IntUniform,
    LogUniform as LogUniform,
    Uniform as Uniform,
)
from mml.strategies._ensemble import EnsembleResult as EnsembleResult, ensemble as ensemble
from mml.strategies._executors import (
    AbstractExecutor as AbstractExecutor,
    LocalExecutor as LocalExecutor,
    ProcessExecutor as ProcessExecutor,
    RayExecutor as RayExecutor,
)
from mml.strategies._jobs import (
    Job as Job,
    RunOutcome as RunOutcome,
    run_job as run_job,
    run_job_bytes as run_job_bytes,
    run_job_path as run_job_path,
)
from mml.strategies._paths import get_path as get_path, set_path as set_path
from mml.strategies._predictions import Predictions as Predictions
from mml.strategies._progress import JobProgress as JobProgress
from mml.strategies._search import (
    MedianPruning as MedianPruning,
    MedianPruningState as MedianPruningState,
    search as search,
    trial_metric_by_epoch as trial_metric_by_epoch,
)
from mml.strategies._sweep import (
    SweepResult as SweepResult,
    Trial as Trial,
    apply_params as apply_params,
    grid_trials as grid_trials,
    load_trial as load_trial,
    random_trials as random_trials,
    save_trial as save_trial,
    sweep as sweep,
)
from mml.strategies._vectorized import (
    NotVectorizedWarning as NotVectorizedWarning,
    VectorizedExecutor as VectorizedExecutor,
)
from mml.strategies._vectorized_check import vectorize_problem as vectorize_problem

__all__ = [
    "AbstractDistribution",
    "AbstractExecutor",
    "CVResult",
    "EnsembleResult",
    "Choice",
    "FoldResult",
    "IntUniform",
    "Job",
    "JobProgress",
    "LocalExecutor",
    "LogUniform",
    "MedianPruning",
    "MedianPruningState",
    "NotVectorizedWarning",
    "Predictions",
    "ProcessExecutor",
    "RayExecutor",
    "RunOutcome",
    "SweepResult",
    "Trial",
    "Uniform",
    "VectorizedExecutor",
    "apply_params",
    "cross_validate",
    "ensemble",
    "fold_featureset",
    "get_path",
    "grid_trials",
    "load_trial",
    "pool_predictions",
    "random_trials",
    "run_job",
    "run_job_bytes",
    "run_job_path",
    "save_trial",
    "search",
    "set_path",
    "sweep",
    "trial_metric_by_epoch",
    "vectorize_problem",
]

# Shared with mml's other packages, not public API (not in __all__, not documented): the
# modules of a package are private (import-linter's "private_modules" contract), so what
# its neighbours use is named here.
from mml.strategies._jobs import (
    failed_outcome as failed_outcome,
    history_metrics as history_metrics,
    pack_value as pack_value,
    prediction_metrics as prediction_metrics,
    run_job_guarded as run_job_guarded,
    unpack_value as unpack_value,
)
from mml.strategies._predictions import regression_metrics as regression_metrics
from mml.strategies._vectorized import run_vectorized as run_vectorized
