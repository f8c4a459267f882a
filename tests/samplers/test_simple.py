from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mml
from mml.samplers import SimpleSampler, stratified_batches

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


def class_counts(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.array([(labels == v).sum() for v in values])


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    bs=st.integers(1, 40),
    classes=st.integers(1, 4),
    shuffle=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_stratify_by_keeps_every_class_within_one_of_its_share(
    n: int, bs: int, classes: int, shuffle: bool, seed: int
) -> None:
    fs = make_fs(n, n_classes=classes, seed=seed)
    labels = fs.column_array("tags", "label")
    values, counts = np.unique(labels, return_counts=True)
    s = SimpleSampler(bs, stratify_by="label", shuffle=shuffle)
    data = s.prepare(fs.view())
    batches = list(s.batches(data, key=mml.random.key(seed)))
    assert len(batches) == s.num_batches(data)
    assert sorted(uuids_of(batches).tolist()) == sorted(fs.sample_uuids.tolist())  # each once
    assert all(len(b) == bs for b in batches[:-1])
    for b in batches:
        got = class_counts(b.tags["label"], values)
        assert np.all(np.abs(got - len(b) * counts / n) <= 1 + 1e-9), (got, len(b) * counts / n)


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 60), min_size=1, max_size=7).filter(lambda c: sum(c) > 0),
    bs=st.integers(1, 50),
    seed=st.none() | st.integers(0, 1000),
)
def test_stratified_batches_law(counts: list[int], bs: int, seed: int | None) -> None:
    labels = np.repeat(np.arange(len(counts)), counts)
    labels = np.random.default_rng(7).permutation(labels)
    n = len(labels)
    rng = None if seed is None else np.random.default_rng(seed)
    order, bounds = stratified_batches(labels, bs, rng)
    assert sorted(order.tolist()) == list(range(n))
    assert bounds[0] == 0 and bounds[-1] == n and np.all(np.diff(bounds)[:-1] == bs)
    present = np.unique(labels)
    total = np.bincount(labels)[present]
    for a, b in itertools.pairwise(bounds):
        got = class_counts(labels[order[a:b]], present)
        share = (b - a) * total / n
        assert np.all(np.abs(got - share) <= 1 + 1e-9)
        # below one where the share is not a whole number
        frac = share != np.round(share)
        assert np.all(np.abs(got - share)[frac] < 1)


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(1, 40), min_size=1, max_size=5),
    per_class=st.integers(1, 6),
    seed=st.none() | st.integers(0, 1000),
)
def test_strict_stratification_gives_equal_exact_shares(
    counts: list[int], per_class: int, seed: int | None
) -> None:
    labels = np.random.default_rng(3).permutation(np.repeat(np.arange(len(counts)), counts))
    c = len(counts)
    bs = per_class * c
    rng = None if seed is None else np.random.default_rng(seed)
    order, bounds = stratified_batches(labels, bs, rng, strict=True)
    m = min(counts)
    assert len(order) == m * c and len(set(order.tolist())) == m * c
    assert np.all(np.bincount(labels[order], minlength=c) == m)
    for a, b in itertools.pairwise(bounds):
        got = np.bincount(labels[order[a:b]], minlength=c)
        if b - a == bs:
            assert np.all(got == per_class)  # exact proportions
        else:
            assert np.all(np.abs(got - (b - a) / c) <= 1)


def test_strict_stratification_sampler() -> None:
    labels = np.array(["a"] * 30 + ["b"] * 10 + ["c"] * 14)
    fs = mml.FeatureSet.from_dict(
        {"x": np.arange(54.0), "label": labels}, features="x", tags="label", label="strict"
    )
    s = SimpleSampler(6, stratify_by="label", strict_stratification=True)
    data = s.prepare(fs.view())
    assert s.num_batches(data) == 5
    e0 = list(s.batches(data, key=KEY, epoch=0))
    assert [len(b) for b in e0] == [6] * 5
    for b in e0:
        assert sorted(b.tags["label"].tolist()) == ["a", "a", "b", "b", "c", "c"]
    e1 = list(s.batches(data, key=KEY, epoch=1))
    assert set(uuids_of(e0).tolist()) != set(uuids_of(e1).tolist())  # a new subset of "a" each epoch
    assert mml.io.roundtrip(s) == s
    with pytest.raises(mml.SamplerError, match=r"strict_stratification.*stratify_by"):
        SimpleSampler(6, strict_stratification=True)


def test_stratified_batch_drift_regression() -> None:
    # issue 15.2: three classes at batch 20 drifted up to 1.2 samples off their share
    rng = np.random.default_rng(0)
    labels = rng.choice(3, 600, p=[0.5, 0.3, 0.2])
    fs = mml.FeatureSet.from_dict({"x": np.arange(600.0), "k": labels}, features="x", tags="k", label="d")
    s = SimpleSampler(20, stratify_by="k")
    share = np.bincount(labels) / 600
    worst = 0.0
    for epoch in range(5):
        for b in s.batches(s.prepare(fs.view()), key=KEY, epoch=epoch):
            worst = max(worst, float(np.abs(np.bincount(b.tags["k"], minlength=3) - len(b) * share).max()))
    assert worst < 1


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


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 120),
    bs=st.integers(1, 6),
    groups=st.integers(1, 20),
    strict=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_grouped_stratified_batches(
    n: int, bs: int, groups: int, strict: bool, drop_last: bool, seed: int
) -> None:
    # a group's class is the label of its first sample; shares are of groups
    rng = np.random.default_rng(seed)
    cell = rng.integers(0, groups, n)
    group_label = rng.integers(0, 3, groups)
    fs = mml.FeatureSet.from_dict(
        {"x": np.arange(float(n)), "cell": cell, "k": group_label[cell]},
        features="x",
        tags=["cell", "k"],
        label="g",
    )
    s = SimpleSampler(bs, group_by="cell", stratify_by="k", strict_stratification=strict, drop_last=drop_last)
    data = s.prepare(fs.view())
    batches = list(s.batches(data, key=mml.random.key(seed)))
    assert len(batches) == s.num_batches(data)
    present = np.unique(cell)
    labels_of = group_label[present]
    values, counts = np.unique(labels_of, return_counts=True)
    if strict:
        counts = np.full(len(values), counts.min())
    seen: list[int] = []
    for b in batches:
        cells = np.unique(b.tags["cell"])
        assert not set(cells.tolist()) & set(seen)
        seen += cells.tolist()
        assert len(cells) == bs or (b is batches[-1] and not drop_last)
        got = np.array([(group_label[cells] == v).sum() for v in values])
        assert np.all(np.abs(got - len(cells) * counts / counts.sum()) <= 1 + 1e-9)
        assert np.isin(cell, cells).sum() == len(b)  # whole groups
    if not drop_last:
        assert len(seen) == counts.sum()
