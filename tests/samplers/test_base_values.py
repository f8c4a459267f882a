"""The sampler interface, SimpleSampler and MultiStreamSampler by value: batch rows against numpy
gathers, the key derivation against ``mml.random`` directly, chunking, and every message in full
(issue 17: mutation testing of ``mml/samplers/_base.py``, ``_simple.py``, ``_streams.py``)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import mml
import mml.samplers._base as base
from mml.random import fold_in, numpy_rng
from mml.samplers import MultiStreamSampler, PairedSampler, SimpleSampler, similar
from mml.samplers._base import RoleRows, emit_batches
from mml.samplers._prepared import materialize

from .helpers import make_fs

KEY = mml.random.key(3)


def msg(fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(mml.SamplerError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def small() -> mml.FeatureSet:
    return mml.FeatureSet.from_dict(
        {
            "x": np.arange(10.0).reshape(5, 2),
            "y": np.arange(5.0) * 10,
            "t": [1, 2, 3, 4, 5],
            "s": list("abcde"),
        },
        features="x",
        targets="y",
        tags=["t", "s"],
        label="b",
    )


def test_emit_batches_slices_the_role_rows() -> None:
    data = materialize(small().view(), None, ())
    rows = np.array([4, 0, 3, 1, 2])
    w = np.array([0.5, 1.0, 1.5, 2.0, 2.5])
    m = np.array([True, False, True, False, True])
    out = list(
        emit_batches(
            data, [RoleRows("a", rows), RoleRows("b", rows[::-1].copy(), w, m)], np.array([0, 2, 5]), "st"
        )
    )
    assert len(out) == 2 and [b.stream for b in out] == ["st", "st"]
    b0, b1 = out
    assert list(b0.roles) == ["a", "b"]
    assert b0.role("a").features.tolist() == [[8.0, 9.0], [0.0, 1.0]]
    assert b0.role("a").targets.tolist() == [[40.0], [0.0]]
    assert b0.role("a").tags["t"].tolist() == [5, 1] and b0.role("a").tags["s"].tolist() == ["e", "a"]
    np.testing.assert_array_equal(b0.role("a").sample_uuids, data.sample_uuids[[4, 0]])
    assert b0.role("a").weights is None and b0.role("a").mask is None
    assert b1.role("b").features.tolist() == [[6.0, 7.0], [0.0, 1.0], [8.0, 9.0]]
    assert b1.role("b").weights.tolist() == [1.5, 2.0, 2.5] and b1.role("b").mask.tolist() == [
        True,
        False,
        True,
    ]
    for b in out:
        for d in b.roles.values():
            for a in (d.features, d.targets, d.sample_uuids, *d.tags.values()):
                assert not a.flags.writeable
    assert list(emit_batches(data, [RoleRows("a", rows)], np.array([0]), "st")) == []
    assert list(emit_batches(data, [RoleRows("a", rows)], np.array([], np.int64), "st")) == []
    # one batch only
    (only,) = emit_batches(data, [RoleRows("a", rows)], np.array([1, 3]), "st")
    assert only.role("a").tags["t"].tolist() == [1, 4]


def test_emit_batches_without_targets_and_tags() -> None:
    data = materialize(small().view().select(features="x"), None, ())
    (b,) = emit_batches(data, [RoleRows("r", np.array([2, 1]))], np.array([0, 2]), "s")
    d = b.role("r")
    assert d.targets is None and dict(d.tags) == {} and d.features.tolist() == [[4.0, 5.0], [2.0, 3.0]]


@pytest.mark.parametrize("budget", [1, 40, 100, 1 << 20])
def test_chunking_does_not_change_the_batches(monkeypatch: pytest.MonkeyPatch, budget: int) -> None:
    monkeypatch.setattr(base, "_CHUNK_BYTES", budget)
    fs = make_fs(23)
    data = materialize(fs.view(), None, ())
    rows = np.random.default_rng(0).permutation(23)
    bounds = np.array([0, 3, 4, 10, 11, 20, 23])
    out = list(emit_batches(data, [RoleRows("r", rows)], bounds, "s"))
    assert len(out) == 6
    x, y = fs.to_numpy("features"), fs.to_numpy("targets")
    for b, (s, e) in zip(out, itertools.pairwise(bounds)):
        np.testing.assert_array_equal(b.features, x[rows[s:e]])
        np.testing.assert_array_equal(b.targets, y[rows[s:e]])
        np.testing.assert_array_equal(b.tags["cell"], fs.column_array("tags", "cell")[rows[s:e]])


def test_device_gather_without_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from mml.samplers._prepared import to_device

    data = to_device(materialize(small().view().select(features="x", tags=["t", "s"]), None, ()), "cpu")
    rows = np.array([3, 1, 4])
    (b,) = emit_batches(data, [RoleRows("r", rows, np.ones(3), np.ones(3, bool))], np.array([0, 3]), "s")
    d = b.role("r")
    assert d.targets is None and isinstance(d.features, torch.Tensor)
    assert d.features.tolist() == [[6.0, 7.0], [2.0, 3.0], [8.0, 9.0]] and d.tags["t"].tolist() == [4, 2, 5]
    assert d.tags["s"].tolist() == ["d", "b", "e"] and not d.tags["s"].flags.writeable
    assert d.weights.tolist() == [1.0, 1.0, 1.0] and d.mask.tolist() == [True, True, True]
    monkeypatch.setattr(base, "_DEVICE_CHUNK_BYTES", 1)
    ro = np.array([4, 0, 2])
    ro.flags.writeable = False  # read-only rows are copied before torch wraps them
    out = list(emit_batches(data, [RoleRows("r", ro)], np.array([0, 1, 3]), "s"))
    assert [o.role("r").tags["t"].tolist() for o in out] == [[5], [1, 3]]


def test_simple_sampler_orders_by_the_derived_key() -> None:
    fs = make_fs(11)
    s = SimpleSampler(4)
    data = s.prepare(fs.view())
    for epoch in (0, 2):
        got = np.concatenate([b.sample_uuids for b in s.batches(data, key=KEY, epoch=epoch)])
        want = numpy_rng(fold_in(fold_in(KEY, epoch), "simple.order")).permutation(11)
        np.testing.assert_array_equal(got, fs.sample_uuids[want])
    rows, bounds = s.epoch_order(data, fold_in(KEY, 1))
    assert rows.tolist() == numpy_rng(fold_in(fold_in(KEY, 1), "simple.order")).permutation(11).tolist()
    assert bounds.tolist() == [0, 4, 8, 11]
    same = list(s.iter(fs.view(), key=KEY, epoch=2))
    np.testing.assert_array_equal(
        np.concatenate([b.sample_uuids for b in same]),
        fs.sample_uuids[numpy_rng(fold_in(fold_in(KEY, 2), "simple.order")).permutation(11)],
    )
    fixed = SimpleSampler(4, shuffle=False)
    rows, bounds = fixed.epoch_order(fixed.prepare(fs.view()), KEY)
    assert rows.tolist() == list(range(11)) and bounds.tolist() == [0, 4, 8, 11]


def test_simple_sampler_counts() -> None:
    fs = make_fs(10, n_groups=4, seed=1)
    cells = fs.column_array("tags", "cell")
    n_groups = len(np.unique(cells))
    for kw, want in (
        ({}, 3),
        ({"drop_last": True}, 2),
        ({"group_by": "cell"}, -(-n_groups // 4)),
        ({"group_by": "cell", "drop_last": True}, n_groups // 4),
    ):
        s = SimpleSampler(4, **kw)
        assert s.num_batches(s.prepare(fs.view())) == want, kw
    s = SimpleSampler(3, stratify_by="label", strict_stratification=True)
    labels = fs.column_array("tags", "label")
    m = min(np.unique(labels, return_counts=True)[1])
    units = m * len(np.unique(labels))
    data = s.prepare(fs.view())
    assert data.aux["units"] == units and s.num_batches(data) == -(-units // 3)
    assert sum(len(b) for b in s.batches(data, key=KEY)) == units
    assert SimpleSampler(2).precompute(data) == {}
    assert SimpleSampler(4, group_by="cell", stratify_by="label").required_columns() == ("cell", "label")
    assert SimpleSampler(4, stratify_by="label").required_columns() == ("label",)
    assert SimpleSampler(4).required_columns() == ()


def test_simple_sampler_grouped_and_stratified_rows() -> None:
    fs = mml.FeatureSet.from_dict(
        {"x": np.arange(6.0), "g": [5, 3, 5, 1, 3, 9], "c": ["a", "a", "b", "b", "a", "b"]},
        features="x",
        tags=["g", "c"],
        label="gs",
    )
    s = SimpleSampler(2, group_by="g", shuffle=False)
    data = s.prepare(fs.view())
    assert data.aux["group_id"].tolist() == [0, 1, 0, 2, 1, 3] and data.aux["units"] == 4
    assert [b.features.ravel().tolist() for b in s.batches(data, key=KEY)] == [
        [0.0, 2.0, 1.0, 4.0],
        [3.0, 5.0],
    ]
    st = SimpleSampler(2, stratify_by="c", shuffle=False)
    assert [sorted(b.tags["c"].tolist()) for b in st.iter(fs.view(), key=KEY)] == [["a", "b"]] * 3


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: SimpleSampler(True),
            "SimpleSampler.batch_size must be a positive int, got True; use e.g. batch_size=32",
        ),
        (
            lambda: SimpleSampler(2.0),
            "SimpleSampler.batch_size must be a positive int, got 2.0; use e.g. batch_size=32",
        ),
        (
            lambda: SimpleSampler(0),
            "SimpleSampler.batch_size must be a positive int, got 0; use e.g. batch_size=32",
        ),
        (
            lambda: SimpleSampler(-1),
            "SimpleSampler.batch_size must be a positive int, got -1; use e.g. batch_size=32",
        ),
        (
            lambda: SimpleSampler(2, group_by=""),
            "SimpleSampler.group_by takes a column name (str) or None, got ''",
        ),
        (
            lambda: SimpleSampler(2, stratify_by=3),
            "SimpleSampler.stratify_by takes a column name (str) or None, got 3",
        ),
        (
            lambda: SimpleSampler(2, strict_stratification=True),
            "SimpleSampler(strict_stratification=True) trims the classes of stratify_by; name the class column "
            "with stratify_by=... or drop strict_stratification",
        ),
        (lambda: MultiStreamSampler({3: SimpleSampler(2)}), "stream names are non-empty strings, got 3"),
        (lambda: MultiStreamSampler({"": SimpleSampler(2)}), "stream names are non-empty strings, got ''"),
        (
            lambda: MultiStreamSampler([1]),
            "MultiStreamSampler.streams maps stream name → sampler, e.g. {'main': SimpleSampler(32)}",
        ),
        (
            lambda: MultiStreamSampler({}),
            "MultiStreamSampler.streams maps stream name → sampler, e.g. {'main': SimpleSampler(32)}",
        ),
        (
            lambda: MultiStreamSampler({"a": 3}),
            "stream 'a' must be a single-stream sampler (SimpleSampler, NSampler, ...), got int",
        ),
        (
            lambda: MultiStreamSampler({"a": MultiStreamSampler({"b": SimpleSampler(2)})}),
            "stream 'a' must be a single-stream sampler (SimpleSampler, NSampler, ...), got MultiStreamSampler",
        ),
    ],
)
def test_construction_messages(make, message: str) -> None:  # type: ignore[no-untyped-def]
    assert msg(make) == message


def test_valid_sizes_and_columns() -> None:
    assert SimpleSampler(np.int64(3)).batch_size == 3 and SimpleSampler(1).batch_size == 1
    assert SimpleSampler(2, group_by="a", stratify_by="b").group_by == "a"
    assert SimpleSampler(2, stratify_by="b", strict_stratification=True).strict_stratification


def test_interface_messages() -> None:
    fs = small()
    s = SimpleSampler(2)
    data = s.prepare(fs.view())
    k = mml.random.key(0)
    assert msg(s.prepare, np.zeros(2)) == (
        "a sampler reads a FeatureSetView (e.g. fs['train']) or a FeatureSet, got ndarray"
    )
    assert msg(s.batches, data, key=0) == "batches() takes key=mml.random.key(seed), got int"
    assert msg(s.batches, np.zeros(1), key=k) == (
        "batches() takes the result of sampler.prepare(view), got ndarray; use sampler.iter(view, key=...) to do both"
    )
    assert msg(s.num_batches, np.zeros(1)) == (
        "batches() takes the result of sampler.prepare(view), got ndarray; use sampler.iter(view, key=...) to do both"
    )
    other = PairedSampler({"t": similar(1.0)}, batch_size=2).prepare(fs.view())
    assert msg(s.batches, other, key=k) == (
        "these arrays were prepared by another sampler (NSampler); call prepare(view) on the sampler that yields "
        "the batches"
    )
    assert msg(s.num_batches, SimpleSampler(3).prepare(fs.view())) == (
        "these arrays were prepared by another sampler (SimpleSampler); call prepare(view) on the sampler that "
        "yields the batches"
    )
    # an equal spec (not the same object) may use the arrays
    assert SimpleSampler(2).num_batches(data) == 3
    assert msg(s.batches, data, key=k, stream="x") == "unknown stream 'x'; this sampler emits default"
    assert msg(s.batch_roles, "x") == "unknown stream 'x'; this sampler emits default"
    assert s.batch_roles() == ("default",) and s.batch_roles("default") == ("default",)
    assert s.stream_names == ("default",)
    assert len(list(s.batches(data, key=k, stream="default"))) == 3
    # prepare takes a FeatureSet as its whole view
    assert len(s.prepare(fs)) == 5 and s.prepare(fs).sampler is s


def test_streams() -> None:
    fs = make_fs(30)
    a, p = SimpleSampler(4, group_by="cell"), PairedSampler({"soh": similar(0.2)}, batch_size=5)
    s = MultiStreamSampler({"a": a, "p": p})
    assert s.stream_names == ("a", "p") and s.required_columns() == ("cell", "soh")
    assert MultiStreamSampler(
        {"x": a, "y": SimpleSampler(2, group_by="cell", stratify_by="label")}
    ).required_columns() == (
        "cell",
        "label",
    )
    data = s.prepare(fs.view())
    assert set(data.aux) == {"a", "p"}
    assert s.batch_roles("a") == ("default",) and s.batch_roles("p") == ("anchor", "pair")
    expected = (
        "MultiStreamSampler emits several streams (a, p); name one: sampler.batches(prepared, key=..., epoch=..., "
        "stream=...)"
    )
    assert msg(s.batch_roles) == expected and msg(s.batches, data, key=KEY) == expected
    assert msg(s.batch_roles, "q") == "unknown stream 'q'; this sampler emits a, p"
    # stream s of epoch e is the stream's own sampler with key fold_in(fold_in(key, e), s)
    alone = a.prepare(fs.view())
    for epoch in (0, 3):
        got = [b.sample_uuids.tolist() for b in s.batches(data, key=KEY, epoch=epoch, stream="a")]
        want = [
            b.sample_uuids.tolist() for b in a.epoch_batches(alone, fold_in(fold_in(KEY, epoch), "a"), "a")
        ]
        assert got == want
        it = [b.sample_uuids.tolist() for b in s.iter(fs.view(), key=KEY, epoch=epoch, stream="a")]
        assert it == want
    assert s.num_batches(data, "a") == a.num_batches(alone) and s.num_batches(data, "p") == 6
    assert all(b.stream == "p" for b in s.batches(data, key=KEY, stream="p"))
    one = MultiStreamSampler({"only": SimpleSampler(4)})
    d1 = one.prepare(fs.view())
    assert one.batch_roles() == ("default",) and one.num_batches(d1) == 8
    assert {b.stream for b in one.batches(d1, key=KEY)} == {"only"}


def test_stream_checks_every_sampler() -> None:
    s = MultiStreamSampler({"a": SimpleSampler(2), "b": SimpleSampler(2, group_by="nope")})
    assert msg(s.prepare, make_fs(5).view()).startswith("group_by column 'nope' is not in FeatureSet 'toy'.")


def test_grouped_batches_without_shuffle_keep_view_order_inside_groups() -> None:
    cells = np.random.default_rng(0).integers(0, 4, 1000)
    fs = mml.FeatureSet.from_dict(
        {"x": np.arange(1000.0), "cell": cells}, features="x", tags="cell", label="g"
    )
    s = SimpleSampler(1, group_by="cell", shuffle=False)
    batches = list(s.iter(fs.view(), key=KEY))
    first = [int(c) for c in dict.fromkeys(cells.tolist())]  # groups by first appearance
    assert [int(b.tags["cell"][0]) for b in batches] == first
    for b, c in zip(batches, first, strict=True):
        np.testing.assert_array_equal(b.features.ravel(), np.flatnonzero(cells == c).astype(float))
