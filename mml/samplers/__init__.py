"""Samplers: turn views into streams of :class:`~mml.data.Batch` values.

``sampler.prepare(view)`` reads the view once (per phase); ``sampler.batches(prepared,
key=..., epoch=...)`` yields one epoch of read-only numpy batches, a pure function of its
arguments; ``sampler.iter(view, key=...)`` does both.

>>> import mml, numpy as np
>>> fs = mml.FeatureSet.from_dict({"x": np.arange(4.0), "y": np.zeros(4)}, features="x",
...                               targets="y", label="s")
>>> sampler = mml.SimpleSampler(batch_size=2)
>>> data = sampler.prepare(fs.view())
>>> [b.features.shape for b in sampler.batches(data, key=mml.random.key(0), epoch=0)]
[(2, 1), (2, 1)]
"""

from mml.samplers._base import DEFAULT_STREAM as DEFAULT_STREAM, AbstractSampler as AbstractSampler
from mml.samplers._batching import stratified_batches as stratified_batches
from mml.samplers._conditions import (
    SimilarityCondition as SimilarityCondition,
    dissimilar as dissimilar,
    similar as similar,
)
from mml.samplers._nsampler import (
    ANCHOR_ROLE as ANCHOR_ROLE,
    NSampler as NSampler,
    PairedSampler as PairedSampler,
    TripletSampler as TripletSampler,
)
from mml.samplers._prepared import PreparedData as PreparedData, to_device as to_device
from mml.samplers._simple import SimpleSampler as SimpleSampler
from mml.samplers._streams import MultiStreamSampler as MultiStreamSampler

__all__ = [
    "ANCHOR_ROLE",
    "DEFAULT_STREAM",
    "AbstractSampler",
    "MultiStreamSampler",
    "NSampler",
    "PairedSampler",
    "PreparedData",
    "SimilarityCondition",
    "SimpleSampler",
    "TripletSampler",
    "dissimilar",
    "similar",
    "stratified_batches",
    "to_device",
]

# Shared with mml's other packages, not public API (not in __all__, not documented): the
# modules of a package are private (import-linter's "private_modules" contract), so what
# its neighbours use is named here.
from mml.samplers._prepared import cast_floats as cast_floats
