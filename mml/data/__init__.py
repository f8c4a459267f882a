"""Layer 1, data storage: FeatureSets, views, predicates, batches.

>>> import mml
>>> fs = mml.data.FeatureSet.from_dict({"x": [0.0, 1.0]}, features="x", label="d")
>>> fs.keys()
('x',)
"""

from mml.data._batch import DEFAULT_ROLE as DEFAULT_ROLE, Batch as Batch, SampleData as SampleData
from mml.data._featureset import FeatureSet as FeatureSet
from mml.data._predicates import (
    AbstractPredicate as AbstractPredicate,
    And as And,
    Between as Between,
    Compare as Compare,
    IsIn as IsIn,
    Not as Not,
    Or as Or,
    col as col,
)
from mml.data._protocols import Splitter as Splitter
from mml.data._records import AbstractRecord as AbstractRecord
from mml.data._schema import (
    DATA_DOMAINS as DATA_DOMAINS,
    DOMAINS as DOMAINS,
    REPS as REPS,
    UUID_COLUMN as UUID_COLUMN,
    column_name as column_name,
    parse_column as parse_column,
)
from mml.data._splits import OverlappingSplitsWarning as OverlappingSplitsWarning
from mml.data._view import FeatureSetView as FeatureSetView

__all__ = [
    "DATA_DOMAINS",
    "DEFAULT_ROLE",
    "DOMAINS",
    "REPS",
    "UUID_COLUMN",
    "AbstractPredicate",
    "AbstractRecord",
    "And",
    "Batch",
    "Between",
    "Compare",
    "FeatureSet",
    "FeatureSetView",
    "IsIn",
    "Not",
    "Or",
    "OverlappingSplitsWarning",
    "SampleData",
    "Splitter",
    "col",
    "column_name",
    "parse_column",
]

# Shared with mml's other packages, not public API (not in __all__, not documented): the
# modules of a package are private (import-linter's "private_modules" contract), so what
# its neighbours use is named here.
from mml.data._batch import torch_view as torch_view
from mml.data._build import column_to_numpy as column_to_numpy, to_arrow_column as to_arrow_column
from mml.data._html import featureset_html as featureset_html
from mml.data._schema import shape_metadata as shape_metadata
from mml.data._splits import OVERLAP_MODES as OVERLAP_MODES
