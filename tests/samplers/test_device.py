"""Prepared data as torch tensors: batches gathered with ``torch.index_select`` on the data's
device hold the same rows and values as the numpy batches (tested on the CPU device)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mml
from mml.errors import SamplerError
from mml.samplers import MultiStreamSampler, NSampler, SimpleSampler, dissimilar, similar
from mml.samplers._prepared import to_device

from .helpers import batches_equal, make_fs

torch = pytest.importorskip("torch")

CPU = torch.device("cpu")
KEY = mml.random.key(7)


def _host(batches: list[mml.Batch]) -> list[mml.Batch]:
    return [b.to_numpy() for b in batches]


def _same_stream(sampler, fs, *, key=KEY, epoch=0, stream=None, float_dtype=None):
    data = sampler.prepare(fs.view())
    dev = to_device(data, CPU, float_dtype=float_dtype)
    host = list(sampler.batches(data, key=key, epoch=epoch, stream=stream))
    on_dev = list(sampler.batches(dev, key=key, epoch=epoch, stream=stream))
    return host, on_dev


SAMPLERS = [
    SimpleSampler(7),
    SimpleSampler(4, shuffle=False, drop_last=True),
    SimpleSampler(3, group_by="cell"),
    SimpleSampler(5, stratify_by="label"),
    NSampler(
        {"positive": {"cell": similar(metric="equal")}, "negative": {"cell": dissimilar(metric="equal")}}, 6
    ),
]


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda s: type(s).__name__)
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), epoch=st.integers(0, 3))
def test_same_key_same_rows_as_numpy(sampler, seed, epoch):
    fs = make_fs(40)
    host, dev = _same_stream(sampler, fs, key=mml.random.key(seed), epoch=epoch)
    assert host and batches_equal(host, _host(dev))
    for b in dev:
        for d in b.roles.values():
            assert isinstance(d.features, torch.Tensor) and isinstance(d.targets, torch.Tensor)
            assert d.features.dtype == torch.float32 and d.targets.dtype == torch.float64  # dtypes kept
            assert isinstance(d.tags["cell"], torch.Tensor) and d.tags["cell"].dtype == torch.int64
            assert isinstance(d.tags["soh"], torch.Tensor)
            assert isinstance(d.tags["label"], np.ndarray)  # text stays numpy
            assert isinstance(d.sample_uuids, np.ndarray) and d.sample_uuids.dtype == np.dtype("S16")
            assert not d.sample_uuids.flags.writeable


def test_weights_and_mask_are_those_of_the_numpy_path():
    s = SAMPLERS[-1]
    host, dev = _same_stream(s, make_fs(30))
    assert any(b.role("positive").weights is not None for b in dev)
    assert batches_equal(host, _host(dev))


def test_streams_sampler_on_device():
    s = MultiStreamSampler({"main": SimpleSampler(8, group_by="cell"), "aux": SimpleSampler(5)})
    fs = make_fs(40)
    for name in s.stream_names:
        host, dev = _same_stream(s, fs, stream=name)
        assert batches_equal(host, _host(dev)) and all(b.stream == name for b in dev)


def test_float_dtype_casts_features_and_targets_only():
    host, dev = _same_stream(SimpleSampler(9), make_fs(25), float_dtype=np.float32)
    for h, d in zip(host, dev):
        assert d.targets.dtype == torch.float32
        assert np.array_equal(d.targets.numpy(), h.targets.astype(np.float32))
        assert d.tags["soh"].dtype == torch.float64  # tags keep their dtype
        assert np.array_equal(d.features.numpy(), h.features)


def test_many_chunks_on_device(monkeypatch):
    # a tiny chunk budget: every batch is its own chunk, rows still those of the numpy path
    import mml.samplers._base as base

    monkeypatch.setattr(base, "_DEVICE_CHUNK_BYTES", 1)
    host, dev = _same_stream(SimpleSampler(4), make_fs(30))
    assert len(dev) == 8 and batches_equal(host, _host(dev))


def test_prepared_data_is_not_changed_and_batches_do_not_alias_it():
    s = SimpleSampler(5, shuffle=False)
    data = s.prepare(make_fs(20).view())
    dev = to_device(data, CPU)
    before = dev.features.clone()
    assert isinstance(data.features, np.ndarray) and not data.features.flags.writeable  # input kept
    b = next(iter(s.batches(dev, key=KEY)))
    b.features.add_(1.0)  # a user writing into a batch tensor
    assert torch.equal(dev.features, before)
    assert dev.columns is data.columns and dev.aux is data.aux and dev.sample_uuids is data.sample_uuids


def test_to_device_is_idempotent_and_checks_its_input():
    s = SimpleSampler(5)
    dev = to_device(s.prepare(make_fs(10).view()), CPU)
    again = to_device(dev, CPU)
    assert again.features is dev.features and again.targets is dev.targets
    with pytest.raises(SamplerError, match="prepare"):
        to_device(np.zeros(3), CPU)  # type: ignore[arg-type]


def test_empty_epoch_on_device():
    s = SimpleSampler(50, drop_last=True)
    dev = to_device(s.prepare(make_fs(10).view()), CPU)
    assert list(s.batches(dev, key=KEY)) == [] and s.num_batches(dev) == 0
