from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.samplers import MultiStreamSampler, PairedSampler, SimpleSampler, similar

from .helpers import batches_equal, make_fs

KEY = mml.random.key(0)


def make() -> MultiStreamSampler:
    return MultiStreamSampler(
        {
            "main": SimpleSampler(8, group_by="cell"),
            "pairs": PairedSampler({"soh": similar(0.2)}, batch_size=5),
        }
    )


def test_streams_named_and_independent() -> None:
    fs = make_fs(40)
    s = make()
    data = s.prepare(fs.view())
    assert s.stream_names == ("main", "pairs")
    main = list(s.batches(data, key=KEY, epoch=1, stream="main"))
    pairs = list(s.batches(data, key=KEY, epoch=1, stream="pairs"))
    assert {b.stream for b in main} == {"main"} and {b.stream for b in pairs} == {"pairs"}
    assert len(main) == s.num_batches(data, "main") and len(pairs) == s.num_batches(data, "pairs")
    assert sum(len(b) for b in main) == 40
    assert tuple(pairs[0].roles) == ("anchor", "pair")
    assert batches_equal(pairs, list(s.batches(data, key=KEY, epoch=1, stream="pairs")))
    alone = SimpleSampler(8, group_by="cell")
    solo = list(alone.batches(alone.prepare(fs.view()), key=mml.random.fold_in(KEY, 1), epoch=0))
    assert len(solo) == len(main)


def test_stream_must_be_named() -> None:
    s = make()
    data = s.prepare(make_fs(20).view())
    with pytest.raises(mml.SamplerError, match=r"several streams.*main, pairs"):
        s.batches(data, key=KEY)
    with pytest.raises(mml.SamplerError, match="unknown stream 'x'"):
        s.num_batches(data, "x")


def test_bad_streams() -> None:
    with pytest.raises(mml.SamplerError, match="maps stream name"):
        MultiStreamSampler({})
    with pytest.raises(mml.SamplerError, match="single-stream sampler"):
        MultiStreamSampler({"a": make()})


def test_roundtrip_and_unknown_columns() -> None:
    s = make()
    assert mml.io.roundtrip(s) == s
    bad = MultiStreamSampler({"a": SimpleSampler(2, stratify_by="nope")})
    with pytest.raises(mml.SamplerError, match="stratify_by column 'nope'"):
        bad.prepare(make_fs(5).view())
    assert np.array_equal(s.prepare(make_fs(5).view()).features, make_fs(5).to_numpy("features"))
