from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mml
from mml.samplers import NSampler, PairedSampler, SimilarityCondition, TripletSampler, dissimilar, similar

from .helpers import batches_equal, make_fs

KEY = mml.random.key(0)
conditions = st.builds(
    SimilarityCondition,
    relation=st.sampled_from(["similar", "dissimilar"]),
    tolerance=st.sampled_from([0.0, 0.05, 0.2, 0.5]),
    metric=st.sampled_from(["absolute", "relative"]),
    weight_mode=st.sampled_from(["binary", "linear", "exponential"]),
    min_weight=st.sampled_from([0.1, 0.5]),
    max_weight=st.sampled_from([1.0, 2.0]),
)


def rows_of(fs: mml.FeatureSet, uuids: np.ndarray) -> np.ndarray:
    order = np.argsort(fs.sample_uuids)
    return order[np.searchsorted(fs.sample_uuids, uuids, sorter=order)]


def check_laws(fs: mml.FeatureSet, s: NSampler, batches: list[mml.Batch], *, sized: bool = True) -> None:
    cols = {c: fs.resolve_column_array(c).astype(float) for conds in s.conditions.values() for c in conds}
    for i, b in enumerate(batches):
        assert tuple(b.roles) == s.roles
        assert len(b) == s.batch_size or i == len(batches) - 1 or not sized
        anchor = b.role("anchor")
        a = rows_of(fs, anchor.sample_uuids)
        np.testing.assert_array_equal(anchor.features, fs.to_numpy("features")[a])
        assert anchor.weights is None and anchor.mask is None
        for role, conds in s.conditions.items():
            d = b.role(role)
            p = rows_of(fs, d.sample_uuids)
            np.testing.assert_array_equal(d.features, fs.to_numpy("features")[p])
            assert len(d) == len(anchor)
            assert not (p == a).any()  # never the anchor itself
            assert d.mask.dtype == bool and d.weights.shape == (len(d),)
            holds = np.ones(len(p), bool)
            lo = hi = 1.0
            for column, c in conds.items():
                holds &= c.holds(cols[column][a], cols[column][p])
                lo, hi = lo * c.min_weight, hi * c.max_weight
            assert (holds[d.mask]).all()  # mask True => every condition holds
            assert np.all((d.weights[d.mask] >= lo - 1e-12) & (d.weights[d.mask] <= hi + 1e-12))
            np.testing.assert_allclose(d.weights[~d.mask], lo)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 60),
    bs=st.integers(1, 16),
    cond=conditions,
    second=st.none() | conditions,
    fallback=st.booleans(),
    best=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_laws(n, bs, cond, second, fallback, best, seed) -> None:  # type: ignore[no-untyped-def]
    fs = make_fs(n, seed=seed % 1000)
    conds = {"soh": cond} if second is None else {"soh": cond, "y": second}
    s = PairedSampler(conds, batch_size=bs, allow_fallback=fallback, choose_best_only=best)
    try:
        data = s.prepare(fs.view())
    except mml.SamplerError as exc:
        assert not fallback and "no anchor" in str(exc)
        return
    batches = list(s.batches(data, key=mml.random.key(seed), epoch=2))
    assert len(batches) == s.num_batches(data)
    check_laws(fs, s, batches)
    anchors = np.concatenate([b.role("anchor").sample_uuids for b in batches])
    if fallback:
        assert set(anchors.tolist()) == set(fs.sample_uuids.tolist())
    assert batches_equal(batches, list(s.batches(data, key=mml.random.key(seed), epoch=2)))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(4, 60), m=st.integers(1, 4), groups=st.integers(2, 6), seed=st.integers(0, 1000))
def test_triplets_and_repeats(n: int, m: int, groups: int, seed: int) -> None:
    fs = make_fs(n, n_groups=groups, seed=seed)
    s = TripletSampler(
        {"cell": similar(metric="equal")},
        {"cell": dissimilar(metric="equal")},
        batch_size=5,
        max_samples_per_anchor=m,
    )
    cell = fs.column_array("tags", "cell")
    same = np.array([(cell == c).sum() - 1 for c in cell])
    other = np.array([(cell != c).sum() for c in cell])
    expected = np.minimum(np.minimum(same, other), m)
    if expected.sum() == 0:
        with pytest.raises(mml.SamplerError):
            s.prepare(fs.view())
        return
    data = s.prepare(fs.view())
    batches = list(s.batches(data, key=mml.random.key(seed)))
    check_laws(fs, s, batches)
    anchors = rows_of(fs, np.concatenate([b.role("anchor").sample_uuids for b in batches]))
    np.testing.assert_array_equal(np.bincount(anchors, minlength=n), expected)
    for b in batches:
        assert (b.role("positive").tags["cell"] == b.role("anchor").tags["cell"]).all()
        assert (b.role("negative").tags["cell"] != b.role("anchor").tags["cell"]).all()
        assert b.role("positive").mask.all() and b.role("negative").mask.all()


def test_choose_best_only_takes_nearest() -> None:
    fs = make_fs(80, seed=3)
    soh = fs.column_array("tags", "soh").astype(float)
    s = PairedSampler({"soh": similar(0.5)}, batch_size=80, choose_best_only=True)
    b = next(s.iter(fs.view(), key=KEY))
    a, p = rows_of(fs, b.role("anchor").sample_uuids), rows_of(fs, b.role("pair").sample_uuids)
    dist = np.abs(soh[:, None] - soh[None, :])
    np.fill_diagonal(dist, np.inf)
    np.testing.assert_allclose(np.abs(soh[a] - soh[p]), dist.min(axis=1)[a])


def test_weight_modes() -> None:
    a, b = np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.05, 1.1])
    assert similar(0.1).weight(a, b).tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(similar(0.1, weight_mode="linear").weight(a, b), [1.0, 0.5, 0.0], atol=1e-9)
    np.testing.assert_allclose(
        similar(0.1, weight_mode="exponential", min_weight=0.01).weight(a, b), [1.0, 0.1, 0.01], rtol=1e-6
    )
    np.testing.assert_allclose(
        dissimilar(0.1, weight_mode="linear").weight(np.array([0.0]), np.array([0.2])), [0.5]
    )
    assert similar(0.1, metric="relative").holds(np.array([10.0]), np.array([10.9])).tolist() == [True]


def test_epochs_differ_and_key_matters() -> None:
    fs = make_fs(60)
    s = PairedSampler({"cell": similar(metric="equal")}, batch_size=8)
    data = s.prepare(fs.view())
    e0 = list(s.batches(data, key=KEY, epoch=0))
    assert not batches_equal(e0, list(s.batches(data, key=KEY, epoch=1)))
    assert not batches_equal(e0, list(s.batches(data, key=mml.random.key(1), epoch=0)))


def test_text_column_and_unknown_column(fs: mml.FeatureSet) -> None:
    ok = PairedSampler({"label": similar(metric="equal")}, batch_size=4)
    for b in ok.iter(fs.view(), key=KEY):
        assert (b.role("pair").tags["label"] == b.role("anchor").tags["label"]).all()
    with pytest.raises(mml.SamplerError, match=r"'label'.*holds text; compare text with metric='equal'"):
        PairedSampler({"label": similar(0.1)}, batch_size=4).prepare(fs.view())
    with pytest.raises(
        mml.SamplerError, match=r"condition \(role 'pair'\) column 'temp'.*tags: cell, label, soh"
    ):
        PairedSampler({"temp": similar(0.1)}, batch_size=4).prepare(fs.view())


def test_no_valid_negatives() -> None:
    fs = mml.FeatureSet.from_dict(
        {"x": np.arange(6.0), "cell": [1] * 6}, features="x", tags="cell", label="one"
    )
    s = TripletSampler({"cell": similar(metric="equal")}, {"cell": dissimilar(metric="equal")}, batch_size=2)
    with pytest.raises(
        mml.SamplerError, match=r"no anchor of 'one' has a valid 'negative'.*allow_fallback=True"
    ):
        s.prepare(fs.view())
    fb = TripletSampler(
        {"cell": similar(metric="equal")},
        {"cell": dissimilar(metric="equal")},
        batch_size=2,
        allow_fallback=True,
    )
    batches = list(fb.iter(fs.view(), key=KEY))
    assert sum(len(b) for b in batches) == 6
    assert all(not b.role("negative").mask.any() and b.role("positive").mask.all() for b in batches)
    assert all((b.role("negative").weights == 0).all() for b in batches)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"conditions": {}, "batch_size": 4}, "maps role"),
        ({"conditions": {"anchor": {"a": similar()}}, "batch_size": 4}, "other than 'anchor'"),
        ({"conditions": {"pair": {}}, "batch_size": 4}, "at least one condition"),
        ({"conditions": {"pair": {"a": 0.1}}, "batch_size": 4}, "must be a SimilarityCondition"),
        ({"conditions": {"pair": {"a": similar()}}, "batch_size": 0}, "batch_size must be a positive int"),
        (
            {
                "conditions": {"pair": {"a": similar()}},
                "batch_size": 4,
                "choose_best_only": True,
                "max_samples_per_anchor": 2,
            },
            "max_samples_per_anchor=1",
        ),
    ],
)
def test_bad_config(kwargs: dict, match: str) -> None:
    with pytest.raises(mml.SamplerError, match=match):
        NSampler(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"relation": "near"}, "relation must be one of"),
        ({"tolerance": -1.0}, "tolerance must be a finite number"),
        ({"metric": "cosine"}, "metric must be one of"),
        ({"weight_mode": "exponential"}, "min_weight must be > 0"),
        ({"min_weight": 2.0}, "above max_weight"),
        ({"metric": "equal", "tolerance": 0.1}, "takes no tolerance"),
    ],
)
def test_bad_condition(kwargs: dict, match: str) -> None:
    with pytest.raises(mml.SamplerError, match=match):
        SimilarityCondition(**kwargs)


def test_roundtrip() -> None:
    s = TripletSampler(
        {"cell": similar(metric="equal"), "soh": similar(0.1, weight_mode="linear")},
        {"cell": dissimilar(metric="equal")},
        batch_size=16,
        allow_fallback=True,
        max_tries=4,
    )
    assert mml.io.roundtrip(s) == s
    assert hash(s) == hash(mml.io.roundtrip(s))


def test_view_not_mutated(fs: mml.FeatureSet) -> None:
    view = fs.with_split("train", np.arange(40))["train"]
    before = view.indices.copy()
    s = PairedSampler({"soh": similar(0.1)}, batch_size=8)
    data = s.prepare(view)
    list(s.batches(data, key=KEY))
    assert np.array_equal(view.indices, before) and fs.table.equals(view.parent.table)
    for b in s.batches(data, key=KEY):
        assert not b.role("pair").weights.flags.writeable and not b.role("pair").features.flags.writeable


def test_vectorised_100k_anchors_in_seconds() -> None:
    n = 100_000
    rng = np.random.default_rng(0)
    fs = mml.FeatureSet.from_dict(
        {"x": rng.random((n, 2)).astype(np.float32), "soh": rng.random(n)},
        features="x",
        tags="soh",
        label="big",
    )
    s = PairedSampler({"soh": similar(0.01)}, batch_size=1024)
    t = time.process_time()  # CPU time: a loaded machine stretches the wall clock, not the work
    n_rows = sum(len(b) for b in s.iter(fs.view(), key=KEY))
    assert n_rows == n and time.process_time() - t < 5.0
