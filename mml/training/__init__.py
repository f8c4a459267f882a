"""Training as a fold: state records, losses, phases, the loop, results, the experiment.

>>> import mml.training as t
>>> t.Loss("mse").name
'mse'
"""

from mml.training._checkpoints import checkpoint_history, latest_checkpoint
from mml.training._evaluate import evaluate
from mml.training._experiment import Experiment
from mml.training._loop import init, steps
from mml.training._losses import LOSSES, AppliedLoss, Loss, compile_loss
from mml.training._phases import (
    AbstractPhase,
    EvalPhase,
    FitPhase,
    InputBinding,
    PhaseGroup,
    TrainPhase,
)
from mml.training._results import ErrorRecord, EvalResult, History, PhaseResult
from mml.training._run import run, run_phase
from mml.training._state import ExecutionContext, Position, TrainState

__all__ = [
    "LOSSES",
    "AbstractPhase",
    "AppliedLoss",
    "ErrorRecord",
    "EvalPhase",
    "EvalResult",
    "ExecutionContext",
    "Experiment",
    "FitPhase",
    "History",
    "InputBinding",
    "Loss",
    "PhaseGroup",
    "PhaseResult",
    "Position",
    "TrainPhase",
    "TrainState",
    "compile_loss",
    "evaluate",
    "init",
    "checkpoint_history",
    "latest_checkpoint",
    "run",
    "run_phase",
    "steps",
]

# Shared with mml's other packages, not public API (not in __all__, not documented): the
# modules of a package are private (import-linter's "private_modules" contract), so what
# its neighbours use is named here.
from mml.training._dispatch import dispatch as dispatch
from mml.training._fit import fit_nodes as fit_nodes
from mml.training._losses import LOSS_BACKENDS as LOSS_BACKENDS
from mml.training._phases import iter_phases as iter_phases
from mml.training._plan import check_batches as check_batches
from mml.training._run import plan_fingerprint as plan_fingerprint
from mml.training._state import (
    GRAPH_OPTIMIZER as GRAPH_OPTIMIZER,
    Boxed as Boxed,
)
from mml.training._views import head_view as head_view


def __getattr__(name: str) -> object:
    # ``mml.training.summary_rows`` (where 0.2's first builds had it) is ``mml.views.summary_rows``,
    # resolved at first use: the views sit beside training and import nothing of it.
    if name == "summary_rows":
        from mml.views import summary_rows

        return summary_rows
    raise AttributeError(f"module 'mml.training' has no attribute {name!r}")
