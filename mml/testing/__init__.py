"""Hypothesis strategies for mml values, so users can property-test their own components.

Requires ``hypothesis`` (the ``test`` extra).

>>> from hypothesis import given, settings
>>> import mml.testing as mt
>>> @settings(max_examples=5, deadline=None)
... @given(mt.featuresets())
... def check(fs):
...     assert len(fs) >= 1
>>> check()
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mml.data import FeatureSet
from mml.random import Key, key

__all__ = ["keys", "key_names", "schemas", "featuresets", "featuresets_with_splits", "float_arrays"]

_NAME = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True).filter(
    lambda s: (
        s
        not in {
            "features",
            "targets",
            "tags",
            "raw",
            "transformed",
            "outputs",
            "inputs",
            "default",
            "sample_uuids",
        }
    )
)


def keys() -> st.SearchStrategy[Key]:
    """Random :class:`mml.random.Key` values."""
    return st.integers(0, 2**32 - 1).map(key)


def key_names(n_min: int = 1, n_max: int = 4) -> st.SearchStrategy[list[str]]:
    """Distinct valid key names."""
    return st.lists(_NAME, min_size=n_min, max_size=n_max, unique=True)


def float_arrays(
    shape: tuple[int, ...], *, dtype: Any = np.float32, allow_nan: bool = False, bound: float = 1e3
) -> st.SearchStrategy[np.ndarray]:
    """Float arrays of a shape with finite (or NaN-containing) bounded values."""
    return hnp.arrays(
        dtype,
        shape,
        elements=st.floats(
            -bound, bound, allow_nan=allow_nan, allow_infinity=False, width=np.dtype(dtype).itemsize * 8
        ),
    )


@st.composite
def schemas(
    draw: st.DrawFn,
    *,
    max_features: int = 3,
    max_targets: int = 2,
    max_tags: int = 2,
    tensor_keys: bool = True,
) -> dict[str, Any]:
    """A random schema: ``{"features": {key: shape}, "targets": {...}, "tags": {key: kind}}``."""
    names = draw(key_names(1, max_features + max_targets + max_tags))
    n_f = draw(st.integers(1, min(max_features, len(names))))
    rest = names[n_f:]
    n_t = draw(st.integers(0, min(max_targets, len(rest))))
    n_g = min(max_tags, len(rest) - n_t)
    shape_st = st.sampled_from([(), (3,), (2, 4)] if tensor_keys else [()])
    return {
        "features": {k: draw(shape_st) for k in names[:n_f]},
        "targets": {k: draw(st.sampled_from([(), (2,)] if tensor_keys else [()])) for k in rest[:n_t]},
        "tags": {k: draw(st.sampled_from(["int", "str", "float"])) for k in rest[n_t : n_t + n_g]},
    }


@st.composite
def featuresets(
    draw: st.DrawFn,
    *,
    min_samples: int = 1,
    max_samples: int = 30,
    allow_nan: bool = False,
    tensor_keys: bool = True,
    label: str | None = None,
    schema: dict[str, Any] | None = None,
) -> FeatureSet:
    """Random FeatureSets: scalar and tensor-valued features/targets, int/str/float tags."""
    sch = schema if schema is not None else draw(schemas(tensor_keys=tensor_keys))
    n = draw(st.integers(min_samples, max_samples))
    data: dict[str, Any] = {}
    for domain in ("features", "targets"):
        for k, shape in sch[domain].items():
            dtype = draw(st.sampled_from([np.float32, np.float64]))
            data[k] = draw(float_arrays((n, *shape), dtype=dtype, allow_nan=allow_nan))
    for k, kind in sch["tags"].items():
        if kind == "int":
            data[k] = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 5)))
        elif kind == "str":
            data[k] = np.asarray(draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n)))
        else:
            data[k] = draw(float_arrays((n,), dtype=np.float64))
    lab = label or draw(st.sampled_from(["fs", "data", "cells"]))
    return FeatureSet.from_dict(
        data,
        features=list(sch["features"]),
        targets=list(sch["targets"]),
        tags=list(sch["tags"]),
        label=lab,
        key=draw(keys()),
    )


@st.composite
def featuresets_with_splits(draw: st.DrawFn, **kwargs: Any) -> FeatureSet:
    """Random FeatureSets with one to three random (possibly overlapping) index splits."""
    fs = draw(featuresets(**kwargs))
    n = len(fs)
    for name in draw(
        st.lists(st.sampled_from(["train", "val", "test"]), min_size=1, max_size=3, unique=True)
    ):
        idx = draw(st.lists(st.integers(0, n - 1), max_size=n, unique=True))
        fs = fs.with_split(name, np.asarray(sorted(idx), dtype=np.int64), overlap="allow")
    return fs
