"""The notebook view of a FeatureSet: keys, shapes, splits and records as tables."""

from __future__ import annotations

from typing import Any

from mml._html import table, view
from mml.data._schema import DATA_DOMAINS

__all__ = ["featureset_html"]


def featureset_html(fs: Any) -> str:
    """A FeatureSet's keys (domain, shape, dtype, representations), splits and records."""
    rows = []
    for domain in DATA_DOMAINS:
        for k in fs.keys(domain):
            shape = fs.key_shape(domain, k)
            rows.append(
                [domain, k, str(tuple(shape)), fs.key_dtype(domain, k, "raw"), "+".join(fs.reps(domain, k))]
            )
    parts = [
        table(
            ["domain", "key", "shape", "dtype", "reps"], rows, f"FeatureSet {fs.label!r}: {len(fs)} samples"
        )
    ]
    if fs.split_indices:
        parts.append(table(["split", "samples"], [[n, len(i)] for n, i in fs.split_indices.items()]))
    if fs.records:
        parts.append(table(["#", "record"], [[i, r.describe()] for i, r in enumerate(fs.records)]))
    return view(*parts)
