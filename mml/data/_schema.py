"""Column naming: ``domain.key.representation``.

>>> column_name("features", "voltage", "raw")
'features.voltage.raw'
>>> parse_column("targets.soh.transformed")
('targets', 'soh', 'transformed')
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

import pyarrow as pa

from mml.errors import SchemaError

__all__ = [
    "DOMAINS",
    "DATA_DOMAINS",
    "REPS",
    "UUID_COLUMN",
    "column_name",
    "parse_column",
    "validate_key",
    "field_shape",
    "SHAPE_META",
    "column_type_problem",
]

DATA_DOMAINS = ("features", "targets", "tags")
DOMAINS = (*DATA_DOMAINS, "sample_uuids")
REPS = ("raw", "transformed")
UUID_COLUMN = "sample_uuids"
SHAPE_META = b"mml.shape"
_RESERVED = {*DOMAINS, *REPS, "outputs", "inputs", "default"}
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def validate_key(key: str) -> str:
    """Check that a user key can be used in a column name; returns it.

    >>> validate_key("voltage")
    'voltage'
    >>> validate_key("bad key")
    Traceback (most recent call last):
    ...
    mml.errors.SchemaError: key 'bad key' is not allowed: ...
    """
    if not isinstance(key, str):
        raise SchemaError(f"keys are strings, got {type(key).__name__} {key!r}")
    if key in _RESERVED:
        raise SchemaError(f"key {key!r} is a reserved word ({', '.join(sorted(_RESERVED))}); rename it")
    if not _KEY_RE.match(key):
        raise SchemaError(
            f"key {key!r} is not allowed: use letters, digits, '_' or '-', starting with a letter or '_' "
            "(no '.', '/', spaces)"
        )
    return key


def column_name(domain: str, key: str, rep: str = "raw") -> str:
    """The Arrow column name of ``key`` in ``domain`` with representation ``rep``."""
    if domain not in DATA_DOMAINS:
        raise SchemaError(f"unknown domain {domain!r}; use one of {', '.join(DATA_DOMAINS)}")
    if rep not in REPS:
        raise SchemaError(f"unknown representation {rep!r}; use one of {', '.join(REPS)}")
    return f"{domain}.{key}.{rep}"


def parse_column(name: str) -> tuple[str, str, str]:
    """Split a column name into ``(domain, key, rep)``."""
    parts = name.split(".")
    if len(parts) != 3 or parts[0] not in DATA_DOMAINS or parts[2] not in REPS:
        raise SchemaError(f"{name!r} is not an mml column name (domain.key.rep)")
    return parts[0], parts[1], parts[2]


def field_shape(field: pa.Field) -> tuple[int, ...]:
    """Per-sample shape of a column: ``()`` for scalars, from metadata for tensor columns."""
    meta = field.metadata or {}
    if SHAPE_META in meta:
        return tuple(json.loads(meta[SHAPE_META]))
    if pa.types.is_fixed_size_list(field.type):
        return (field.type.list_size,)
    return ()


def shape_metadata(shape: Iterable[int]) -> dict[bytes, bytes]:
    return {SHAPE_META: json.dumps([int(s) for s in shape]).encode()}


def is_numeric_type(t: pa.DataType) -> bool:
    if pa.types.is_fixed_size_list(t):
        t = t.value_type
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t))


def column_type_problem(field: pa.Field, domain: str) -> str | None:
    """What is wrong with the Arrow type of an mml column, or ``None`` when it is valid.

    Features and targets hold numbers (or booleans): one per sample, or a fixed-size list per
    sample whose ``mml.shape`` metadata (if any) multiplies out to the list size. Tags may also
    hold strings. The UUID column holds 16 bytes per sample.

    >>> column_type_problem(pa.field("features.v.raw", pa.list_(pa.float64())), "features")
    "column 'features.v.raw' is a variable-length list (list<item: double>); a tensor key needs a fixed-size list — build with FeatureSet.from_arrow(table), which converts uniform lists"
    >>> column_type_problem(pa.field("tags.cell.raw", pa.string()), "tags") is None
    True
    """
    t = field.type
    name = field.name
    if domain == "sample_uuids":
        if not (pa.types.is_fixed_size_binary(t) and t.byte_width == 16):
            return f"column {name!r} must hold 16-byte UUIDs (fixed_size_binary[16]), got {t}"
        return None
    if pa.types.is_fixed_size_list(t):
        if not is_numeric_type(t):
            return f"column {name!r} is a list of {t.value_type}; tensor keys hold numbers"
        shape = field_shape(field)
        size = 1
        for d in shape:
            size *= d
        if size != t.list_size:
            return (
                f"column {name!r} has shape metadata {list(shape)} ({size} elements) but lists of "
                f"{t.list_size}; fix or drop the {SHAPE_META.decode()!r} field metadata"
            )
        return None
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return (
            f"column {name!r} is a variable-length list ({t}); a tensor key needs a fixed-size list — "
            "build with FeatureSet.from_arrow(table), which converts uniform lists"
        )
    if is_numeric_type(t):
        return None
    if domain == "tags" and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return None
    allowed = "numbers, booleans or strings" if domain == "tags" else "numbers or booleans"
    return f"column {name!r} holds {t}; {domain} hold {allowed}"
