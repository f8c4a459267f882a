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
