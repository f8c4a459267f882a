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
    "save",
    "structure",
    "to_document",
    "try_load",
    "unstructure",
]


def roundtrip(obj: object) -> object:
    """Document round-trip in memory (what ``save`` then ``load`` does, without files).

    >>> import mml
    >>> roundtrip(mml.random.key(2)) == mml.random.key(2)
    True
    """
    doc, arrays, tables = to_document(obj)
    import json

    doc = json.loads(json.dumps(doc))
    return from_document(doc, arrays, tables, type(obj))


__all__.append("roundtrip")
