"""Serialization: one cattrs converter, atomic artifacts, safe loading.

>>> import mml
>>> doc = mml.io.unstructure(mml.random.key(1))
>>> doc["words"][3]
1
"""

from mml.io._artifact import (
    FORMAT as FORMAT,
    FORMAT_VERSION as FORMAT_VERSION,
    from_document as from_document,
    load as load,
    read_document as read_document,
    read_manifest as read_manifest,
    roundtrip as roundtrip,
    save as save,
    to_document as to_document,
    try_load as try_load,
)
from mml.io._converter import (
    get_converter as get_converter,
    make_converter as make_converter,
    structure as structure,
    unstructure as unstructure,
)
from mml.io._rundir import verify_run as verify_run, write_run_manifest as write_run_manifest
from mml.io._trust import Trust as Trust, named_paths as named_paths

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "from_document",
    "get_converter",
    "load",
    "make_converter",
    "named_paths",
    "read_document",
    "read_manifest",
    "roundtrip",
    "save",
    "structure",
    "to_document",
    "Trust",
    "try_load",
    "unstructure",
    "verify_run",
    "write_run_manifest",
]

# Shared with mml's other packages, not public API (not in __all__, not documented): the
# modules of a package are private (import-linter's "private_modules" contract), so what
# its neighbours use is named here.
from mml.io._artifact import prepare_save as prepare_save
from mml.io._converter import (
    import_type as import_type,
    structure_checked as structure_checked,
    type_path as type_path,
)
from mml.io._rundir import REPLAYED as REPLAYED
from mml.io._trust import (
    TRUST_ALL as TRUST_ALL,
    as_trust as as_trust,
    import_function as import_function,
    import_path as import_path,
    is_trusted as is_trusted,
    public_class_path as public_class_path,
)
