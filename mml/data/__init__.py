"""Layer 1, data storage: FeatureSets, views, predicates, batches.

>>> import mml
>>> fs = mml.data.FeatureSet.from_dict({"x": [0.0, 1.0]}, features="x", label="d")
>>> fs.keys()
('x',)
"""

from mml.data._batch import DEFAULT_ROLE as DEFAULT_ROLE
from mml.data._batch import Batch as Batch
from mml.data._batch import SampleData as SampleData
from mml.data._featureset import FeatureSet as FeatureSet
from mml.data._predicates import (
    AbstractPredicate as AbstractPredicate,
)
from mml.data._predicates import (
    And as And,
)
from mml.data._predicates import (
    Between as Between,
)
from mml.data._predicates import (
    Compare as Compare,
)
from mml.data._predicates import (
    IsIn as IsIn,
)
from mml.data._predicates import (
    Not as Not,
)
from mml.data._predicates import (
    Or as Or,
)
from mml.data._predicates import (
    col as col,
)
from mml.data._records import AbstractRecord as AbstractRecord
from mml.data._schema import (
    DATA_DOMAINS as DATA_DOMAINS,
)
from mml.data._schema import (
    DOMAINS as DOMAINS,
)
from mml.data._schema import (
    REPS as REPS,
)
from mml.data._schema import (
    UUID_COLUMN as UUID_COLUMN,
)
from mml.data._schema import (
    column_name as column_name,
)
from mml.data._schema import (
    parse_column as parse_column,
)
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
    "SampleData",
    "col",
    "column_name",
    "parse_column",
]
