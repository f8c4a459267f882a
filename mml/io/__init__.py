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

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "from_document",
    "get_converter",
    "load",
    "make_converter",
    "read_manifest",
    "roundtrip",
    "save",
    "structure",
    "to_document",
    "try_load",
    "unstructure",
]
