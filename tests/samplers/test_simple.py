from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mml
from mml.samplers import SimpleSampler, stratified_order

from .helpers import batches_equal, make_fs

KEY = mml.random.key(0)


def uuids_of(batches: list[mml.Batch]) -> np.ndarray:
    return np.concatenate([b.sample_uuids for b in batches]) if batches else np.zeros(0, "S16")


sizes = st.integers(1, 60)
batch_sizes = st.integers(1, 17)


@settings(max_examples=40, deadline=None)
@given(
    n=sizes, bs=batch_sizes, shuffle=st.booleans(), seed=st.integers(0, 2**32 - 1), epoch=st.integers(0, 5)
)
def test_every_sample_once_and_sizes(n: int, bs: int, shuffle: bool, seed: int, epoch: int) -> None:
    fs = make_fs(n)
    s = SimpleSampler(bs, shuffle=shuffle)
    data = s.prepare(fs.view())
    batches = list(s.batches(data, key=mml.random.key(seed), epoch=epoch))
    assert len(batches) == s.num_batches(data) == -(-n // bs)
    assert all(len(b) == bs for b in batches[:-1]) and 1 <= len(batches[-1]) <= bs
    assert sorted(uuids_of(batches).tolist()) == sorted(fs.sample_uuids.tolist())
    for b in batches:  # rows stay together: features/targets/tags belong to the same sample
        rows = np.searchsorted(fs.sample_uuids, b.sample_uuids, sorter=np.argsort(fs.sample_uuids))
        rows = np.argsort(fs.sample_uuids)[rows]
        np.testing.assert_array_equal(b.features, fs.to_numpy("features")[rows])
        np.testing.assert_array_equal(b.targets, fs.to_numpy("targets")[rows])
        np.testing.assert_array_equal(b.tags["cell"], fs.column_array("tags", "cell")[rows])
        assert b.role("default").weights is None and b.role("default").mask is None
    if not shuffle:
        assert uuids_of(batches).tolist() == fs.sample_uuids.tolist()


@settings(max_examples=30, deadline=None)
@given(n=sizes, bs=batch_sizes, seed=st.integers(0, 1000))
def test_drop_last(n: int, bs: int, seed: int) -> None:
    s = SimpleSampler(bs, drop_last=True)
    data = s.prepare(make_fs(n).view())
    batches = list(s.batches(data, key=mml.random.key(seed)))
    assert len(batches) == s.num_batches(data) == n // bs
    assert all(len(b) == bs for b in batches)
    assert len(set(uuids_of(batches).tolist())) == (n // bs) * bs


@settings(max_examples=30, deadline=None)
@given(
    n=sizes, bs=st.integers(1, 6), groups=st.integers(1, 12), shuffle=st.booleans(), seed=st.integers(0, 1000)
)
def test_group_by_keeps_groups_whole(n: int, bs: int, groups: int, shuffle: bool, seed: int) -> None:
    fs = make_fs(n, n_groups=groups, seed=seed)
    s = SimpleSampler(bs, group_by="cell", shuffle=shuffle)
    data = s.prepare(fs.view())
    batches = list(s.batches(data, key=mml.random.key(seed), epoch=1))
    n_groups = len(np.unique(fs.column_array("tags", "cell")))
    assert len(batches) == s.num_batches(data) == -(-n_groups // bs)
    assert sorted(uuids_of(batches).tolist()) == sorted(fs.sample_uuids.tolist())
    seen: set[int] = set()
    for i, b in enumerate(batches):
        cells = set(b.tags["cell"].tolist())
        assert not cells & seen  # a group lives in one batch only
        seen |= cells
        assert len(cells) == bs or (i == len(batches) - 1 and len(cells) <= bs)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(10, 200), bs=st.integers(4, 40), classes=st.integers(1, 4), seed=st.integers(0, 1000))
def test_stratify_by_keeps_proportions(n: int, bs: int, classes: int, seed: int) -> None:
    fs = make_fs(n, n_classes=classes, seed=seed)
    labels = fs.column_array("tags", "label")
    values, counts = np.unique(labels, return_counts=True)
    share = dict(zip(values.tolist(), (counts / n).tolist()))
    s = SimpleSampler(bs, stratify_by="label")
    batches = list(s.batches(s.prepare(fs.view()), key=mml.random.key(seed)))
    assert sorted(uuids_of(batches).tolist()) == sorted(fs.sample_uuids.tolist())
    c = len(values)
    for b in batches:
        got = dict(zip(*np.unique(b.tags["label"], return_counts=True)))
        for v, p in share.items():
            assert abs(got.get(v, 0) - len(b) * p) <= 2 + 2 * c * p


def test_stratified_order_is_a_permutation() -> None:
    labels = np.array([2, 2, 1, 1, 1, 0])
    order = stratified_order(labels, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(6))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), epoch=st.integers(0, 100))
def test_pure_function_of_key_and_epoch(seed: int, epoch: int) -> None:
    fs = make_fs(40)
    for s in (SimpleSampler(7), SimpleSampler(3, group_by="cell"), SimpleSampler(5, stratify_by="label")):
        data = s.prepare(fs.view())
        a = list(s.batches(data, key=mml.random.key(seed), epoch=epoch))
        b = list(s.batches(data, key=mml.random.key(seed), epoch=epoch))
        c = list(s.iter(fs.view(), key=mml.random.key(seed), epoch=epoch))
        assert batches_equal(a, b) and batches_equal(a, c)
        other = list(s.batches(data, key=mml.random.key(seed), epoch=epoch + 1))
        assert uuids_of(other).tolist() != uuids_of(a).tolist()  # a new epoch reshuffles


def test_view_is_not_mutated_and_batches_are_read_only(fs: mml.FeatureSet) -> None:
    view = fs.with_split("train", np.arange(0, 50, 2))["train"]
    before_table, before_idx = view.parent.table, view.indices.copy()
    s = SimpleSampler(4, group_by="cell")
    for b in s.iter(view, key=KEY):
        for arr in (b.features, b.targets, b.sample_uuids, b.tags["cell"]):
            assert not arr.flags.writeable
            with pytest.raises(ValueError):
                arr[...] = 0
    assert view.parent.table.equals(before_table) and np.array_equal(view.indices, before_idx)
    assert not view.indices.flags.writeable


def test_only_selected_keys_and_view_rows(fs: mml.FeatureSet) -> None:
    view = fs.with_split("val", [3, 1, 4])["val"].select(features="x", targets="y")
    batches = list(SimpleSampler(10, shuffle=False).iter(view, key=KEY))
    assert len(batches) == 1 and dict(batches[0].tags) == {}
    np.testing.assert_array_equal(batches[0].features, fs.to_numpy("features")[[3, 1, 4]])


def test_featureset_accepted_and_empty_view(fs: mml.FeatureSet) -> None:
    assert sum(len(b) for b in SimpleSampler(8).iter(fs, key=KEY)) == len(fs)
    empty = fs.with_split("none", np.zeros(0, np.int64))["none"]
    s = SimpleSampler(8)
    data = s.prepare(empty)
    assert s.num_batches(data) == 0 and list(s.batches(data, key=KEY)) == []


@pytest.mark.parametrize(
    "spec",
    [SimpleSampler(8), SimpleSampler(3, shuffle=False, drop_last=True, group_by="cell", stratify_by="label")],
)
def test_roundtrip(spec: SimpleSampler) -> None:
    assert mml.io.roundtrip(spec) == spec
    assert mml.io.structure(mml.io.unstructure(spec), mml.samplers.AbstractSampler) == spec


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_bad_batch_size(bad: object) -> None:
    with pytest.raises(mml.SamplerError, match="batch_size must be a positive int"):
        SimpleSampler(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["group_by", "stratify_by"])
def test_unknown_column_is_named_with_available(fs: mml.FeatureSet, field: str) -> None:
    s = SimpleSampler(4, **{field: "nope"})
    with pytest.raises(mml.SamplerError, match=rf"{field} column 'nope'.*tags: cell, label, soh"):
        s.prepare(fs.view())


def test_tensor_column_rejected(fs: mml.FeatureSet) -> None:
    with pytest.raises(mml.SamplerError, match="per-sample arrays"):
        SimpleSampler(4, group_by="x").prepare(fs.view())


def test_wrong_prepared_and_stream(fs: mml.FeatureSet) -> None:
    a, b = SimpleSampler(4), SimpleSampler(5)
    with pytest.raises(mml.SamplerError, match="prepared by another sampler"):
        list(b.batches(a.prepare(fs.view()), key=KEY))
    with pytest.raises(mml.SamplerError, match="unknown stream"):
        a.batches(a.prepare(fs.view()), key=KEY, stream="aux")
    with pytest.raises(mml.SamplerError, match=r"takes the result of sampler\.prepare"):
        a.batches(fs.view(), key=KEY)  # type: ignore[arg-type]
    assert a.prepare(fs.view()).sampler == SimpleSampler(4)  # equal specs share prepared data


def test_to_torch() -> None:
    torch = pytest.importorskip("torch")
    b = next(SimpleSampler(4).iter(make_fs(9).view(), key=KEY))
    t = b.to_torch()
    assert isinstance(t.features, torch.Tensor) and t.features.shape == (4, 3)
    assert t.targets.shape == (4, 1)
