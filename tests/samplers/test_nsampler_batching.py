"""NSampler: distinct partners per anchor (issue 15.5) and grouped / stratified anchors (15.3)."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mml
from mml.samplers import NSampler, PairedSampler, TripletSampler, dissimilar, similar

from .helpers import make_fs
from .test_nsampler import check_laws, rows_of

KEY = mml.random.key(0)


def partners_by_anchor(fs: mml.FeatureSet, batches: list[mml.Batch], role: str) -> dict[int, list[int]]:
    out: dict[int, list[int]] = collections.defaultdict(list)
    for b in batches:
        a = rows_of(fs, b.role("anchor").sample_uuids)
        p = rows_of(fs, b.role(role).sample_uuids)
        for i, j in zip(a.tolist(), p.tolist()):
            out[i].append(j)
    return out


def test_two_candidates_two_per_anchor_are_distinct() -> None:
    # issue 15.5: with two candidates and max_samples_per_anchor=2 an anchor got one partner twice
    fs = mml.FeatureSet.from_dict(
        {"x": np.arange(9.0), "t": np.repeat([0, 1, 2], 3)}, features="x", tags="t", label="three"
    )
    s = PairedSampler({"t": similar(metric="equal")}, batch_size=4, max_samples_per_anchor=2)
    data = s.prepare(fs.view())
    for epoch in range(20):
        got = partners_by_anchor(fs, list(s.batches(data, key=KEY, epoch=epoch)), "pair")
        assert all(len(v) == 2 and len(set(v)) == 2 for v in got.values()), got


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(4, 80),
    groups=st.integers(1, 8),
    k=st.integers(2, 5),
    second=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_partners_of_an_anchor_are_distinct(n: int, groups: int, k: int, second: bool, seed: int) -> None:
    fs = make_fs(n, n_groups=groups, seed=seed)
    pos = {"cell": similar(metric="equal")}
    if second:
        pos["soh"] = similar(0.3)
    s = TripletSampler(pos, {"cell": dissimilar(metric="equal")}, batch_size=7, max_samples_per_anchor=k)
    try:
        data = s.prepare(fs.view())
    except mml.SamplerError:
        return
    batches = list(s.batches(data, key=mml.random.key(seed)))
    check_laws(fs, s, batches)
    for role in ("positive", "negative"):
        for a, ps in partners_by_anchor(fs, batches, role).items():
            assert len(set(ps)) == len(ps), (role, a, ps)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(4, 60), groups=st.integers(1, 10), k=st.integers(1, 5), seed=st.integers(0, 1000))
def test_repeat_partners_opt_in(n: int, groups: int, k: int, seed: int) -> None:
    fs = make_fs(n, n_groups=groups, seed=seed)
    cell = fs.column_array("tags", "cell")
    cands = np.array([(cell == c).sum() - 1 for c in cell])
    s = PairedSampler(
        {"cell": similar(metric="equal")}, batch_size=5, max_samples_per_anchor=k, repeat_partners=True
    )
    if not (cands > 0).any():
        with pytest.raises(mml.SamplerError):
            s.prepare(fs.view())
        return
    batches = list(s.iter(fs.view(), key=mml.random.key(seed)))
    got = partners_by_anchor(fs, batches, "pair")
    for a in range(n):
        ps = got.get(a, [])
        if cands[a] == 0:
            assert ps == []
        else:  # always k tuples; min(k, candidates) different partners, the rest repeated
            assert len(ps) == k and len(set(ps)) == min(k, cands[a])
            assert all(cell[p] == cell[a] for p in ps)


def test_distinct_draws_are_uniform() -> None:
    # 40 groups of 5: every anchor has 4 candidates, 2 partners each; all 12 ordered pairs of
    # relative positions should be about equally likely (2000 draws, ~167 each)
    cells = np.repeat(np.arange(40), 5)
    fs = mml.FeatureSet.from_dict({"x": np.arange(200.0), "c": cells}, features="x", tags="c", label="u")
    s = PairedSampler({"c": similar(metric="equal")}, batch_size=50, max_samples_per_anchor=2)
    data = s.prepare(fs.view())
    counts: collections.Counter[tuple[int, int]] = collections.Counter()
    for epoch in range(10):
        anchors, partners, _ = s.epoch_tuples(data, mml.random.fold_in(KEY, epoch))
        rows = partners["pair"][0]
        by: dict[int, list[int]] = collections.defaultdict(list)
        for a, p in zip(anchors.tolist(), rows.tolist()):
            by[a].append((p - a) % 5)
        counts.update(tuple(v) for v in by.values())
    assert len(counts) == 12 and all(0.7 * 2000 / 12 < v < 1.3 * 2000 / 12 for v in counts.values()), counts


@settings(max_examples=30, deadline=None)
@given(n=st.integers(4, 80), bs=st.integers(1, 5), groups=st.integers(1, 10), seed=st.integers(0, 1000))
def test_group_by_keeps_anchor_groups_whole(n: int, bs: int, groups: int, seed: int) -> None:
    fs = make_fs(n, n_groups=groups, seed=seed)
    s = PairedSampler({"soh": similar(0.2)}, batch_size=bs, group_by="cell", allow_fallback=True)
    data = s.prepare(fs.view())
    batches = list(s.batches(data, key=mml.random.key(seed)))
    n_groups = len(np.unique(fs.column_array("tags", "cell")))
    assert len(batches) == s.num_batches(data) == -(-n_groups // bs)
    check_laws(fs, s, batches, sized=False)
    seen: set[int] = set()
    for b in batches:
        cells = set(b.role("anchor").tags["cell"].tolist())
        assert not cells & seen and len(cells) <= bs
        seen |= cells
    assert sum(len(b) for b in batches) == len(data.aux["anchors"])


@settings(max_examples=30, deadline=None)
@given(n=st.integers(4, 120), bs=st.integers(1, 20), classes=st.integers(1, 4), seed=st.integers(0, 1000))
def test_stratify_by_balances_anchor_classes(n: int, bs: int, classes: int, seed: int) -> None:
    fs = make_fs(n, n_classes=classes, seed=seed)
    s = PairedSampler({"soh": similar(0.2)}, batch_size=bs, stratify_by="label", allow_fallback=True)
    data = s.prepare(fs.view())
    batches = list(s.batches(data, key=mml.random.key(seed)))
    assert len(batches) == s.num_batches(data)
    check_laws(fs, s, batches)
    labels = fs.column_array("tags", "label")[data.aux["anchors"]]
    values, counts = np.unique(labels, return_counts=True)
    total = counts.sum()
    for b in batches:
        got = np.array([(b.role("anchor").tags["label"] == v).sum() for v in values])
        assert np.all(np.abs(got - len(b) * counts / total) <= 1 + 1e-9)


def test_strict_stratification_and_config() -> None:
    labels = np.array(["a"] * 20 + ["b"] * 8)
    fs = mml.FeatureSet.from_dict(
        {"x": np.arange(28.0), "label": labels, "soh": np.linspace(0, 1, 28)},
        features="x",
        tags=["label", "soh"],
        label="st",
    )
    s = PairedSampler(
        {"soh": similar(0.5)}, batch_size=4, stratify_by="label", strict_stratification=True, shuffle=False
    )
    batches = list(s.iter(fs.view(), key=KEY))
    assert [len(b) for b in batches] == [4] * 4
    assert all(sorted(b.role("anchor").tags["label"].tolist()) == ["a", "a", "b", "b"] for b in batches)
    assert mml.io.roundtrip(s) == s
    grouped = NSampler({"pair": {"soh": similar(0.5)}}, 2, group_by="label", repeat_partners=True)
    assert mml.io.roundtrip(grouped) == grouped
    with pytest.raises(mml.SamplerError, match=r"strict_stratification.*stratify_by"):
        PairedSampler({"soh": similar(0.5)}, batch_size=4, strict_stratification=True)
    with pytest.raises(mml.SamplerError, match=r"group_by column 'nope'.*tags: label, soh"):
        PairedSampler({"soh": similar(0.5)}, batch_size=4, group_by="nope").prepare(fs.view())
