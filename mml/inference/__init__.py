"""Inference: a trained pipeline as one frozen value, from new raw data to raw-unit predictions.

``mml.export(experiment, state)`` keeps what prediction needs — the input schema, the fitted
scaler params, the sub-graph the outputs need and its weights — and never the training rows;
``Predictor.predict`` maps new raw data (DataFrame, dict of arrays, Arrow table, Parquet path or
FeatureSet) to outputs in raw target units. ``transform_like`` applies a FeatureSet's fitted
transforms to new data. See ``docs/inference.md``.

>>> import mml
>>> mml.export is mml.inference.export
True
"""

from mml.inference._export import export as export
from mml.inference._predictor import (
    TASKS as TASKS,
    OutputSpec as OutputSpec,
    PredictionBatch as PredictionBatch,
    Predictor as Predictor,
)
from mml.inference._transform import (
    schema_of as schema_of,
    transform_like as transform_like,
)

__all__ = [
    "TASKS",
    "OutputSpec",
    "PredictionBatch",
    "Predictor",
    "export",
    "schema_of",
    "transform_like",
]

# Shared with mml's other packages, not public API (not in __all__, not documented): the
# modules of a package are private (import-linter's "private_modules" contract), so what
# its neighbours use is named here.
from mml.inference._files import predict_file as predict_file
from mml.inference._inputs import (
    check_array as check_array,
    read_chunks as read_chunks,
)
from mml.inference._transform import transform_arrays as transform_arrays
