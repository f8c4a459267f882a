"""Observers: the shell's effects, fed every event of a run (they never change the numbers).

``mml.run(experiment, state, observers=[...])`` hands each observer the phase starts and ends
and every ``(state, context)`` pair the fold yields — batch steps, epoch ends and phase ends —
for every phase of the plan. Observers write files, draw progress, talk to tracking servers;
the core never reads anything back from them, so adding or removing one never changes a
trained weight (a test proves it).

Shipped: :class:`JSONLLogger` and :class:`CSVLogger` (batch- and epoch-level rows),
:class:`TensorBoardLogger` (``tensorboardX``, no TensorFlow needed) and :class:`MLflowLogger`
(``mlflow-skinny``, a local file store by default), plus :class:`ProgressDisplay`, the live
terminal line of ``mml run``. Write your own by subclassing :class:`AbstractObserver`.

>>> import mml
>>> obs = mml.observers.JSONLLogger("/tmp/mml-doc-observers.jsonl")
>>> obs.close()
"""

from mml.observers._base import AbstractObserver as AbstractObserver
from mml.observers._files import CSVLogger as CSVLogger, JSONLLogger as JSONLLogger
from mml.observers._mlflow import MLflowLogger as MLflowLogger
from mml.observers._progress import ProgressDisplay as ProgressDisplay
from mml.observers._tensorboard import TensorBoardLogger as TensorBoardLogger

__all__ = [
    "AbstractObserver",
    "CSVLogger",
    "JSONLLogger",
    "MLflowLogger",
    "ProgressDisplay",
    "TensorBoardLogger",
]

# Shared with mml's other packages, not public API (not in __all__, not documented): the
# modules of a package are private (import-linter's "private_modules" contract), so what
# its neighbours use is named here.
from mml.observers._base import rows_of as rows_of
from mml.observers._progress import (
    progress_line as progress_line,
    should_show_progress as should_show_progress,
)
