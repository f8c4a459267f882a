"""NSampler by value: candidate intervals worked out by hand, tuple counts, partners where the
conditions leave one choice, the uniform draw against ``mml.random`` directly, fallbacks and
their weights, and every message in full (issue 17: mutation testing of
``mml/samplers/_nsampler.py``)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import mml
import mml.samplers._nsampler as nsampler_module
from mml.random import fold_in, numpy_rng
from mml.samplers import NSampler, PairedSampler, TripletSampler, dissimilar, similar

from .helpers import make_fs

KEY = mml.random.key(5)
SQUARED = "tests.samplers.metrics:squared"


def msg(fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(mml.SamplerError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def fs_of(label: str = "r", **tags: list) -> mml.FeatureSet:
    n = len(next(iter(tags.values())))
    return mml.FeatureSet.from_dict(
        {"x": np.arange(float(n)), **tags}, features="x", tags=list(tags), label=label
    )


def tuples(s: NSampler, fs: mml.FeatureSet, key: mml.random.Key = KEY, epoch: int = 0):  # type: ignore[no-untyped-def]
    data = s.prepare(fs.view())
    return s.epoch_tuples(data, fold_in(key, epoch))


def test_role_index_by_hand() -> None:
    fs = fs_of(v=[0.75, 0.25, 0.5, 1.25])
    ix = PairedSampler({"v": similar(0.25)}, batch_size=2).prepare(fs.view()).aux["index"]["pair"]
    # sorted values 0.25, 0.5, 0.75, 1.25; intervals [0.5, 1], [0, 0.5], [0.25, 0.75], [1, 1.5]
    assert ix.order.tolist() == [1, 2, 0, 3] and ix.pos_self.tolist() == [2, 0, 1, 3]
    assert ix.lo.tolist() == [1, 0, 0, 3] and ix.hi.tolist() == [3, 2, 3, 4]
    assert ix.count.tolist() == [1, 1, 2, 0] and ix.similar and ix.exact and ix.primary[0] == "v"
    assert ix.lo.dtype == np.int64 and ix.hi.dtype == np.int64
    dx = PairedSampler({"v": dissimilar(0.25)}, batch_size=2).prepare(fs.view()).aux["index"]["pair"]
    assert dx.lo.tolist() == [1, 0, 0, 3] and dx.hi.tolist() == [3, 2, 3, 4]
    assert dx.count.tolist() == [2, 2, 1, 3] and not dx.similar and dx.exact


def test_primary_condition_and_exactness() -> None:
    fs = fs_of(v=[0.75, 0.25, 0.5, 1.25], w=[1.0, 2.0, 3.0, 4.0])
    both = PairedSampler({"v": dissimilar(0.1), "w": similar(1.0)}, batch_size=2)
    ix = both.prepare(fs.view()).aux["index"]["pair"]
    assert ix.primary[0] == "w" and ix.similar and not ix.exact  # a similar condition is preferred
    assert [c for c, _ in ix.conditions] == ["v", "w"]
    two_dis = PairedSampler({"v": dissimilar(0.1), "w": dissimilar(0.5)}, batch_size=2)
    assert two_dis.prepare(fs.view()).aux["index"]["pair"].primary[0] == "v"  # else the first
    mixed = PairedSampler({"v": similar(0.1, metric=SQUARED), "w": dissimilar(0.5)}, batch_size=2)
    assert mixed.prepare(fs.view()).aux["index"]["pair"].primary[0] == "w"  # a callable is never primary
    only = PairedSampler({"v": similar(0.1, metric=SQUARED)}, batch_size=2)
    ox = only.prepare(fs.view()).aux["index"]["pair"]
    assert ox.primary is None and not ox.exact and ox.similar
    assert ox.order.tolist() == [0, 1, 2, 3] and ox.pos_self.tolist() == [0, 1, 2, 3]
    assert (
        ox.lo.tolist() == [0, 0, 0, 0]
        and ox.hi.tolist() == [4, 4, 4, 4]
        and ox.count.tolist() == [3, 3, 3, 3]
    )
    assert ox.order.dtype == np.int64 and ox.count.dtype == np.int64 and ox.lo.dtype == np.int64


@pytest.mark.parametrize(
    "kw, anchors, repeat, n_batches",
    [
        ({}, [0, 0, 1, 1, 2, 2, 3, 4], [0, 1, 0, 1, 0, 1, 0, 0], 2),
        ({"repeat_partners": True}, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4], [0, 1, 0, 1, 0, 1, 0, 1, 0, 1], 3),
        ({"allow_fallback": True}, [0, 0, 1, 1, 2, 2, 3, 4, 5], [0, 1, 0, 1, 0, 1, 0, 0, 0], 3),
        (
            {"repeat_partners": True, "allow_fallback": True},
            [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5],
            [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0],
            3,
        ),
        ({"drop_last": True}, [0, 0, 1, 1, 2, 2, 3, 4], [0, 1, 0, 1, 0, 1, 0, 0], 2),
        (
            {"allow_fallback": True, "drop_last": True},
            [0, 0, 1, 1, 2, 2, 3, 4, 5],
            [0, 1, 0, 1, 0, 1, 0, 0, 0],
            2,
        ),
    ],
)
def test_tuples_per_anchor(kw: dict, anchors: list[int], repeat: list[int], n_batches: int) -> None:
    # candidates per anchor: 2, 2, 2, 1, 1, 0; two tuples per anchor at most
    fs = fs_of(c=[0, 0, 0, 1, 1, 2])
    s = PairedSampler({"c": similar(metric="equal")}, batch_size=4, max_samples_per_anchor=2, **kw)
    data = s.prepare(fs.view())
    assert data.aux["anchors"].tolist() == anchors and data.aux["repeat"].tolist() == repeat
    assert data.aux["anchors"].dtype == np.int64 and dict(data.aux["batching"]) == {}
    assert s.num_batches(data) == n_batches
    assert len(list(s.batches(data, key=KEY))) == n_batches


def test_fewest_candidates_over_roles() -> None:
    fs = fs_of(c=[0, 0, 0, 1, 1, 2], d=[0, 1, 2, 3, 4, 5])
    s = TripletSampler(
        {"c": similar(metric="equal")}, {"d": similar(1.0)}, batch_size=4, max_samples_per_anchor=3
    )
    data = s.prepare(fs.view())
    # positive candidates 2, 2, 2, 1, 1, 0; negative (|d - d'| <= 1) 1, 2, 2, 2, 2, 1
    assert data.aux["anchors"].tolist() == [0, 1, 1, 2, 2, 3, 4]


def test_no_candidates_messages() -> None:
    two = fs_of("two", a=[0.0, 0.0, 5.0, 10.0], b=[0.0, 10.0, 20.0, 20.0])
    s = NSampler({"p": {"a": similar(0.5)}, "q": {"b": similar(0.5)}}, 2)
    assert msg(s.prepare, two.view()) == (
        "no anchor of 'two' has valid candidates for all roles (p, q) at once; loosen a condition or set "
        "allow_fallback=True"
    )
    fb = NSampler({"p": {"a": similar(0.5)}, "q": {"b": similar(0.5)}}, 2, allow_fallback=True)
    assert fb.prepare(two.view()).aux["anchors"].tolist() == [0, 1, 2, 3]
    one = fs_of("one", c=[1, 1, 1])
    t = TripletSampler({"c": similar(metric="equal")}, {"c": dissimilar(0.5)}, batch_size=2)
    assert msg(t.prepare, one.view()) == (
        "no anchor of 'one' has a valid 'negative' candidate: no sample is dissimilar on 'c' (tolerance 0.5, "
        "metric 'absolute') to any other; loosen the tolerance, check the column has the values you expect, or "
        "set allow_fallback=True"
    )
    # a role without a primary condition always has candidates (every other sample)
    cb = PairedSampler({"c": dissimilar(0.5, metric=SQUARED)}, batch_size=2)
    assert cb.prepare(one.view()).aux["anchors"].tolist() == [0, 1, 2]
    small = fs_of("small", c=[1.0, 2.0])
    assert msg(
        PairedSampler({"c": similar(5.0)}, batch_size=2).prepare, small.view().filter(mml.col("x") < 1)
    ) == ("an NSampler needs at least 2 samples to pair, the view of 'small' has 1")
    assert len(PairedSampler({"c": similar(5.0)}, batch_size=2).prepare(small.view())) == 2


def test_check_view_messages() -> None:
    fs = fs_of("t", s=["a", "b", "a"], v=[1.0, 2.0, 3.0])
    assert msg(PairedSampler({"s": similar(0.5)}, batch_size=2).prepare, fs.view()) == (
        "column 's' (role 'pair') holds text; compare text with metric='equal', not 'absolute'"
    )
    assert msg(
        NSampler({"neg": {"v": similar(0.5), "s": dissimilar(0.5, metric="relative")}}, 2).prepare, fs.view()
    ) == ("column 's' (role 'neg') holds text; compare text with metric='equal', not 'relative'")
    assert msg(
        PairedSampler({"zz": similar(0.5)}, batch_size=2, group_by="gg", stratify_by="ss").prepare, fs.view()
    ) == (
        "condition (role 'pair') column 'zz' is not in FeatureSet 't'; group_by column 'gg' is not in FeatureSet "
        "'t'; stratify_by column 'ss' is not in FeatureSet 't'. Available columns — features: x; targets: -; "
        "tags: s, v. Use a key name, 'domain.key' or 'domain.key.rep'."
    )
    ok = PairedSampler({"s": similar(metric="equal")}, batch_size=2).prepare(fs.view())
    assert ok.aux["anchors"].tolist() == [0, 2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"conditions": {}},
            "NSampler.conditions maps role → {column: SimilarityCondition}, e.g. {'pair': {'soh': "
            "mml.samplers.similar(0.05)}}; got {}",
        ),
        (
            {"conditions": [1]},
            "NSampler.conditions maps role → {column: SimilarityCondition}, e.g. {'pair': {'soh': "
            "mml.samplers.similar(0.05)}}; got [1]",
        ),
        (
            {"conditions": {"anchor": {"a": similar()}}},
            "role names are non-empty strings other than 'anchor' (the anchors' own role), got 'anchor'",
        ),
        (
            {"conditions": {"": {"a": similar()}}},
            "role names are non-empty strings other than 'anchor' (the anchors' own role), got ''",
        ),
        (
            {"conditions": {3: {"a": similar()}}},
            "role names are non-empty strings other than 'anchor' (the anchors' own role), got 3",
        ),
        (
            {"conditions": {"p": {}}},
            "role 'p' needs at least one condition: {column: SimilarityCondition}, got {}",
        ),
        (
            {"conditions": {"p": [1]}},
            "role 'p' needs at least one condition: {column: SimilarityCondition}, got [1]",
        ),
        ({"conditions": {"p": {"": similar()}}}, "condition columns of role 'p' are column names, got ''"),
        ({"conditions": {"p": {3: similar()}}}, "condition columns of role 'p' are column names, got 3"),
        (
            {"conditions": {"p": {"a": 0.1}}},
            "condition on 'a' of role 'p' must be a SimilarityCondition (mml.samplers.similar(...) / "
            "dissimilar(...)), got float",
        ),
        (
            {"conditions": {"p": {"a": similar()}}, "max_samples_per_anchor": 0},
            "NSampler.max_samples_per_anchor must be a positive int, got 0; use e.g. max_samples_per_anchor=32",
        ),
        (
            {"conditions": {"p": {"a": similar()}}, "max_tries": True},
            "NSampler.max_tries must be a positive int, got True; use e.g. max_tries=32",
        ),
        (
            {"conditions": {"p": {"a": similar()}}, "batch_size": 0},
            "NSampler.batch_size must be a positive int, got 0; use e.g. batch_size=32",
        ),
        (
            {"conditions": {"p": {"a": similar()}}, "group_by": ""},
            "NSampler.group_by takes a column name (str) or None, got ''",
        ),
        (
            {"conditions": {"p": {"a": similar()}}, "stratify_by": 1},
            "NSampler.stratify_by takes a column name (str) or None, got 1",
        ),
        (
            {"conditions": {"p": {"a": similar()}}, "strict_stratification": True},
            "NSampler(strict_stratification=True) trims the anchor classes of stratify_by; name the class column "
            "with stratify_by=... or drop strict_stratification",
        ),
        (
            {"conditions": {"p": {"a": similar()}}, "choose_best_only": True, "max_samples_per_anchor": 3},
            "choose_best_only picks one best partner per anchor; set max_samples_per_anchor=1 (got 3) or "
            "choose_best_only=False",
        ),
    ],
)
def test_construction_messages(kwargs: dict, message: str) -> None:
    kwargs.setdefault("batch_size", 2)
    assert msg(NSampler, **kwargs) == message


def test_spec_defaults_and_helpers() -> None:
    s = NSampler({"p": {"a": similar()}}, 2)
    assert (s.shuffle, s.drop_last, s.allow_fallback, s.max_samples_per_anchor, s.choose_best_only) == (
        True,
        False,
        False,
        1,
        False,
    )
    assert (s.max_tries, s.repeat_partners, s.group_by, s.stratify_by, s.strict_stratification) == (
        16,
        False,
        None,
        None,
        False,
    )
    assert NSampler({"p": {"a": similar()}}, 2, choose_best_only=True).choose_best_only
    assert NSampler(
        {"p": {"a": similar()}}, 2, stratify_by="c", strict_stratification=True
    ).strict_stratification
    assert s.roles == ("anchor", "p") and s.batch_roles() == ("anchor", "p")
    assert msg(s.batch_roles, "x") == "unknown stream 'x'; this sampler emits default"
    t = NSampler(
        {"q": {"a": similar(), "b": similar()}, "r": {"b": dissimilar(), "c": similar()}},
        2,
        group_by="g",
        stratify_by="a",
    )
    assert t.required_columns() == ("a", "b", "c", "g")
    assert NSampler({"q": {"a": similar()}}, 2, stratify_by="s").required_columns() == ("a", "s")
    p = PairedSampler({"a": similar(0.5)}, batch_size=3, shuffle=False, max_tries=2)
    assert p == NSampler({"pair": {"a": similar(0.5)}}, 3, shuffle=False, max_tries=2)
    tr = TripletSampler({"a": similar()}, {"a": dissimilar()}, batch_size=4, drop_last=True)
    assert tr == NSampler({"positive": {"a": similar()}, "negative": {"a": dissimilar()}}, 4, drop_last=True)


def test_forced_partners_weights_and_masks() -> None:
    # pairs (0, 1), (2, 3), (4, 5): each anchor's only partner is the other of its pair
    fs = fs_of(c=[0, 0, 1, 1, 2, 2], v=[0.0, 0.5, 1.0, 1.25, 2.0, 2.0])
    s = PairedSampler(
        {
            "c": similar(metric="equal", weight_mode="linear", min_weight=0.5),
            "v": similar(1.0, weight_mode="linear", min_weight=0.25),
        },
        batch_size=4,
        shuffle=False,
    )
    anchors, partners, bounds = tuples(s, fs)
    rows, w, m = partners["pair"]
    assert anchors.tolist() == [0, 1, 2, 3, 4, 5] and rows.tolist() == [1, 0, 3, 2, 5, 4]
    assert bounds.tolist() == [0, 4, 6] and m.all()
    # equal metric scores 1 (tolerance 0); v's linear weight 0.25 + 0.75 * (1 - |dv|)
    np.testing.assert_allclose(w, [0.625, 0.625, 0.8125, 0.8125, 1.0, 1.0], rtol=0, atol=1e-15)
    for x in (rows, w, m):
        assert not x.flags.writeable
    batches = list(s.batches(s.prepare(fs.view()), key=KEY))
    assert [b.role("pair").weights.tolist() for b in batches] == [[0.625, 0.625, 0.8125, 0.8125], [1.0, 1.0]]
    assert batches[0].role("anchor").weights is None and batches[0].role("anchor").mask is None


def test_a_failed_secondary_condition_gives_the_fallback_weight() -> None:
    # anchor 0's only primary candidate (1) fails v; every other anchor's partner passes
    fs = fs_of(c=[0, 0, 1, 1], v=[0.0, 5.0, 1.0, 1.0])
    s = PairedSampler(
        {
            "c": similar(metric="equal", min_weight=0.5),
            "v": similar(1.0, weight_mode="linear", min_weight=0.25),
        },
        batch_size=4,
        shuffle=False,
        max_tries=3,
    )
    anchors, partners, _ = tuples(s, fs)
    rows, w, m = partners["pair"]
    assert anchors.tolist() == [0, 1, 2, 3] and rows.tolist() == [1, 0, 3, 2]
    assert m.tolist() == [False, False, True, True]
    assert w.tolist() == [0.125, 0.125, 1.0, 1.0]  # fallback: product of the min_weights


def test_the_fallback_is_the_draw_meeting_most_conditions() -> None:
    # anchor 0 has primary candidates 1 and 2; 1 meets w, 2 meets neither w nor z
    fs = fs_of(c=[0, 0, 0, 1, 1], w=[0.0, 0.0, 9.0, 3.0, 3.0], z=[0.0, 7.0, 8.0, 5.0, 5.0])
    s = PairedSampler(
        {"c": similar(metric="equal"), "w": similar(0.5), "z": similar(0.5)}, batch_size=5, shuffle=False
    )
    for epoch in range(5):
        anchors, partners, _ = tuples(s, fs, epoch=epoch)
        rows, w, m = partners["pair"]
        assert anchors.tolist() == [0, 1, 2, 3, 4]
        assert rows[0] == 1 and rows[1] == 0 and rows[3] == 4 and rows[4] == 3
        assert m.tolist() == [False, False, False, True, True]
        assert w.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_fallback_without_primary_candidates_draws_among_the_others() -> None:
    fs = fs_of(c=[0, 1, 2, 3, 4, 5, 6])
    s = PairedSampler(
        {"c": similar(metric="equal", min_weight=0.5)}, batch_size=7, shuffle=False, allow_fallback=True
    )
    seen = set()
    for epoch in range(6):
        anchors, partners, _ = tuples(s, fs, epoch=epoch)
        rows, w, m = partners["pair"]
        assert anchors.tolist() == list(range(7)) and not m.any() and w.tolist() == [0.5] * 7
        assert (rows != anchors).all() and ((rows >= 0) & (rows < 7)).all()
        seen |= set(zip(anchors.tolist(), rows.tolist()))
    assert len({p for a, p in seen if a == 0}) >= 3  # not always the same other sample
    assert any(p == 6 for a, p in seen)  # the last sample can be drawn


def test_uniform_draw_is_the_rth_candidate() -> None:
    # distinct values 0..5, similar(2): anchor i's candidates are i-2..i+2 without i, in order;
    # the partner is candidate floor(u * count), u the role's first uniform draw for that anchor
    fs = fs_of(v=[0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    s = PairedSampler({"v": similar(2.0)}, batch_size=6, shuffle=False)
    data = s.prepare(fs.view())
    for epoch in range(4):
        k = fold_in(KEY, epoch)
        anchors, partners, _ = s.epoch_tuples(data, k)
        u = numpy_rng(fold_in(fold_in(k, "n.partners"), "pair")).random((6, 1))[:, 0]
        want = []
        for i in range(6):
            cands = [j for j in range(max(0, i - 2), min(6, i + 3)) if j != i]
            want.append(cands[int(u[i] * len(cands))])
        assert partners["pair"][0].tolist() == want, epoch
        assert anchors.tolist() == list(range(6))
    # the same with the dissimilar complement: candidates outside [i - 2, i + 2]
    d = PairedSampler({"v": dissimilar(2.0)}, batch_size=6, shuffle=False)
    dd = d.prepare(fs.view())
    k = fold_in(KEY, 0)
    _, partners, _ = d.epoch_tuples(dd, k)
    u = numpy_rng(fold_in(fold_in(k, "n.partners"), "pair")).random((6, 1))[:, 0]
    want = []
    for i in range(6):
        cands = [j for j in range(6) if abs(j - i) > 2]
        want.append(cands[int(u[i] * len(cands))])
    assert partners["pair"][0].tolist() == want


def test_shuffled_tuple_order_is_the_derived_permutation() -> None:
    fs = fs_of(c=[0, 0, 1, 1, 2, 2])
    s = PairedSampler({"c": similar(metric="equal")}, batch_size=4)
    data = s.prepare(fs.view())
    for epoch in (0, 1):
        k = fold_in(KEY, epoch)
        anchors, partners, bounds = s.epoch_tuples(data, k)
        perm = numpy_rng(fold_in(k, "n.order")).permutation(6)
        assert anchors.tolist() == perm.tolist() and bounds.tolist() == [0, 4, 6]
        assert partners["pair"][0].tolist() == [[1, 0, 3, 2, 5, 4][a] for a in perm]
        got = [b.role("anchor").features.ravel().tolist() for b in s.batches(data, key=KEY, epoch=epoch)]
        assert got == [perm[:4].astype(float).tolist(), perm[4:].astype(float).tolist()]


def test_grouped_tuples_without_shuffle_come_by_group() -> None:
    fs = fs_of(c=[0, 1, 0, 1, 2, 2], g=[7, 3, 3, 7, 1, 1])
    s = PairedSampler({"c": similar(metric="equal")}, batch_size=1, shuffle=False, group_by="g")
    anchors, partners, bounds = tuples(s, fs)
    # groups in order of first appearance: 7 (rows 0, 3), 3 (rows 1, 2), 1 (rows 4, 5)
    assert anchors.tolist() == [0, 3, 1, 2, 4, 5] and bounds.tolist() == [0, 2, 4, 6]
    assert partners["pair"][0].tolist() == [2, 1, 3, 0, 5, 4]
    st = PairedSampler({"c": similar(metric="equal")}, batch_size=3, shuffle=False, stratify_by="g")
    a2, _, b2 = tuples(st, fs)
    assert sorted(a2.tolist()) == [0, 1, 2, 3, 4, 5] and b2.tolist() == [0, 3, 6]
    assert [sorted(fs.column_array("tags", "g")[a2[x:y]].tolist()) for x, y in itertools.pairwise(b2)] == [
        [1, 3, 7]
    ] * 2


def test_choose_best_only_farthest_for_dissimilar() -> None:
    fs = fs_of(v=[0.0, 1.0, 3.0, 6.0, 10.0])
    s = PairedSampler({"v": dissimilar(0.5)}, batch_size=5, shuffle=False, choose_best_only=True)
    for epoch in range(3):
        _, partners, _ = tuples(s, fs, epoch=epoch)
        rows, w, m = partners["pair"]
        assert rows.tolist() == [4, 4, 4, 0, 0] and m.all() and w.tolist() == [1.0] * 5
    near = PairedSampler({"v": similar(20.0)}, batch_size=5, shuffle=False, choose_best_only=True)
    _, partners, _ = tuples(near, fs)
    assert partners["pair"][0].tolist() == [1, 0, 1, 2, 3]  # the nearest


def test_choose_best_only_with_a_secondary_condition() -> None:
    fs = fs_of(c=[0, 0, 0, 0], v=[0.0, 0.1, 0.4, 0.5])
    s = PairedSampler(
        {"c": similar(metric="equal"), "v": similar(0.5, weight_mode="linear")},
        batch_size=4,
        shuffle=False,
        choose_best_only=True,
    )
    _, partners, _ = tuples(s, fs)
    rows, w, m = partners["pair"]
    assert rows.tolist() == [1, 0, 3, 2] and m.all()
    np.testing.assert_allclose(w, [0.8, 0.8, 0.8, 0.8], rtol=1e-12)


def test_chunks_of_anchors_give_the_same_tuples(monkeypatch: pytest.MonkeyPatch) -> None:
    fs = make_fs(40, n_groups=4, seed=2)
    singles = PairedSampler({"soh": similar(0.2), "cell": dissimilar(metric="equal")}, batch_size=8)
    multi = TripletSampler(
        {"cell": similar(metric="equal")},
        {"cell": dissimilar(metric="equal")},
        batch_size=8,
        max_samples_per_anchor=3,
    )
    for s in (singles, multi):
        data = s.prepare(fs.view())
        whole = s.epoch_tuples(data, KEY)
        monkeypatch.setattr(nsampler_module, "_ANCHOR_CHUNK", 3)
        parts = s.epoch_tuples(data, KEY)
        monkeypatch.setattr(nsampler_module, "_ANCHOR_CHUNK", 8192)
        np.testing.assert_array_equal(whole[0], parts[0])
        np.testing.assert_array_equal(whole[2], parts[2])
        for role in whole[1]:
            for x, y in zip(whole[1][role], parts[1][role]):
                np.testing.assert_array_equal(x, y)


def test_distinct_partners_when_candidates_run_out() -> None:
    # anchor 0 has 4 candidates (all others), max 3 per anchor: 3 distinct partners every epoch
    fs = fs_of(c=[0, 0, 0, 0, 0])
    s = PairedSampler({"c": similar(metric="equal")}, batch_size=5, max_samples_per_anchor=3, shuffle=False)
    data = s.prepare(fs.view())
    assert data.aux["repeat"].tolist() == [0, 1, 2] * 5
    for epoch in range(8):
        anchors, partners, _ = s.epoch_tuples(data, fold_in(KEY, epoch))
        rows = partners["pair"][0]
        for a in range(5):
            ps = rows[anchors == a].tolist()
            assert len(ps) == 3 and len(set(ps)) == 3 and a not in ps
    r = PairedSampler(
        {"c": similar(metric="equal")},
        batch_size=5,
        max_samples_per_anchor=6,
        repeat_partners=True,
        shuffle=False,
    )
    rd = r.prepare(fs.view())
    anchors, partners, _ = r.epoch_tuples(rd, KEY)
    for a in range(5):
        ps = partners["pair"][0][anchors == a].tolist()
        assert len(ps) == 6 and set(ps) == set(range(5)) - {a}  # the first 4 distinct, then repeats


def test_a_callable_only_role_that_never_holds() -> None:
    # (a - b)^2 <= 0.5 never holds for values 1 apart: every anchor keeps a fallback partner
    fs = fs_of(c=[1.0, 2.0, 3.0])
    s = PairedSampler(
        {"c": similar(0.5, metric=SQUARED, min_weight=0.25)}, batch_size=2, shuffle=False, max_tries=4
    )
    data = s.prepare(fs.view())
    anchors, partners, bounds = s.epoch_tuples(data, KEY)
    rows, w, m = partners["pair"]
    assert anchors.tolist() == [0, 1, 2] and bounds.tolist() == [0, 2, 3] and s.num_batches(data) == 2
    assert (rows != anchors).all() and not m.any() and w.tolist() == [0.25, 0.25, 0.25]


def test_precomputed_arrays_are_read_only() -> None:
    # regression: epoch_tuples returned PreparedData.aux["anchors"] itself (no shuffle, no
    # batching) as a writable array, so writing into the result changed every later epoch
    fs = fs_of(c=[0, 0, 1, 1, 2, 2], g=[1, 1, 2, 2, 3, 3])
    s = PairedSampler({"c": similar(metric="equal")}, batch_size=4, shuffle=False)
    data = s.prepare(fs.view())
    anchors, _, _ = s.epoch_tuples(data, KEY)
    assert anchors is data.aux["anchors"] and not anchors.flags.writeable
    with pytest.raises(ValueError):
        anchors[0] = 5
    assert not data.aux["repeat"].flags.writeable
    ix = data.aux["index"]["pair"]
    assert not any(a.flags.writeable for a in (ix.order, ix.pos_self, ix.lo, ix.hi, ix.count))
    only = (
        PairedSampler({"c": similar(0.5, metric=SQUARED)}, batch_size=2)
        .prepare(fs.view())
        .aux["index"]["pair"]
    )
    assert not any(a.flags.writeable for a in (only.order, only.pos_self, only.lo, only.hi, only.count))
    g = PairedSampler({"c": similar(metric="equal")}, batch_size=2, group_by="g", stratify_by="c").prepare(
        fs.view()
    )
    assert not any(v.flags.writeable for v in g.aux["batching"].values() if isinstance(v, np.ndarray))


def test_choose_best_only_reaches_both_ends_with_one_draw() -> None:
    # one draw per anchor: the farthest candidates come from the sorted column's two ends
    fs = fs_of(v=[0.0, 1.0, 3.0, 6.0, 10.0])
    s = PairedSampler({"v": dissimilar(0.5)}, batch_size=5, shuffle=False, choose_best_only=True, max_tries=1)
    for epoch in range(12):
        _, partners, _ = tuples(s, fs, epoch=epoch)
        assert partners["pair"][0].tolist() == [4, 4, 4, 0, 0], epoch
    near = PairedSampler(
        {"v": similar(20.0)}, batch_size=5, shuffle=False, choose_best_only=True, max_tries=1
    )
    for epoch in range(12):
        _, partners, _ = tuples(near, fs, epoch=epoch)
        assert partners["pair"][0].tolist() == [1, 0, 1, 2, 3], epoch


def test_one_tuple_in_an_epoch() -> None:
    # relative tolerance is not symmetric: 1 is within 70 % of 3, 3 is not within 70 % of 1
    fs = fs_of("one", v=[1.0, 3.0])
    s = PairedSampler({"v": similar(0.7, metric="relative")}, batch_size=2, shuffle=False)
    data = s.prepare(fs.view())
    anchors, partners, bounds = s.epoch_tuples(data, KEY)
    assert anchors.tolist() == [1] and bounds.tolist() == [0, 1]
    rows, w, m = partners["pair"]
    assert rows.tolist() == [0] and w.tolist() == [1.0] and m.tolist() == [True]
    (b,) = s.batches(data, key=KEY)
    assert b.role("anchor").features.tolist() == [[1.0]] and b.role("pair").features.tolist() == [[0.0]]
