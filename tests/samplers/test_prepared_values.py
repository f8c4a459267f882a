"""PreparedData by value: what ``materialize``, ``check_columns``, ``to_device`` and ``cast_floats``
give and say (issue 17: mutation testing of ``mml/samplers/_prepared.py``)."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.errors import DeviceError, SamplerError
from mml.samplers import SimpleSampler
from mml.samplers._prepared import (
    PreparedData,
    cast_floats,
    check_columns,
    column_is_text,
    materialize,
    to_device,
)

AVAILABLE = (
    "Available columns — features: x; targets: y; tags: g, v, n, i, f. Use a key name, "
    "'domain.key' or 'domain.key.rep'."
)


def make() -> mml.FeatureSet:
    return mml.FeatureSet.from_dict(
        {
            "x": np.arange(6.0).reshape(3, 2),
            "y": [1.0, 2.0, 3.0],
            "g": ["b", "a", "b"],
            "v": np.zeros((3, 2)),
            "n": [1.0, np.nan, 2.0],
            "i": [3, 1, 2],
            "f": [True, False, True],
        },
        features="x",
        targets="y",
        tags=["g", "v", "n", "i", "f"],
        label="p",
    )


def message(fn, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SamplerError) as info:
        fn(*args)
    return str(info.value)


def test_check_columns_names_every_problem() -> None:
    v = make().view()
    check_columns(v, [("group_by", "g"), ("a", "tags.g"), ("b", "tags.i.0"), ("c", "y"), ("d", "targets.y")])
    check_columns(v, [])
    assert message(check_columns, v, [("group_by", "nope")]) == (
        "group_by column 'nope' is not in FeatureSet 'p'. " + AVAILABLE
    )
    assert message(check_columns, v, [("group_by", "nope"), ("stratify_by", "tags.v"), ("w", "g")]) == (
        "group_by column 'nope' is not in FeatureSet 'p'; stratify_by column 'tags.v' holds per-sample "
        "arrays of shape (2,); samplers compare scalar columns (add a scalar tag, e.g. a cell id or a "
        "binned value). " + AVAILABLE
    )
    for bad in ("tags.zz", "a.b.c.d", "foo.g", "tags", "tags.g.0.1", "targets.g"):
        assert (
            message(check_columns, v, [("a", bad)])
            == f"a column {bad!r} is not in FeatureSet 'p'. " + AVAILABLE
        )
    assert message(check_columns, v, [("a", "x")]).startswith(
        "a column 'x' holds per-sample arrays of shape (2,); "
    )


def test_empty_domains_are_shown_as_a_dash() -> None:
    fs = mml.FeatureSet.from_dict({"x": [1.0]}, features="x", label="q")
    assert message(SimpleSampler(2, group_by="z").prepare, fs.view()) == (
        "group_by column 'z' is not in FeatureSet 'q'. Available columns — features: x; targets: -; "
        "tags: -. Use a key name, 'domain.key' or 'domain.key.rep'."
    )


def test_column_values_and_text() -> None:
    fs = make()
    s = SimpleSampler(2, group_by="g", stratify_by="tags.i")
    data = s.prepare(fs.view())
    assert list(data.columns) == ["g", "tags.i"]
    for name, want in (("g", [1.0, 0.0, 1.0]), ("tags.i", [3.0, 1.0, 2.0])):
        col = data.columns[name]
        assert col.dtype == np.float64 and col.tolist() == want and not col.flags.writeable
    f = SimpleSampler(2, group_by="f").prepare(fs.view()).columns["f"]
    assert f.dtype == np.float64 and f.tolist() == [1.0, 0.0, 1.0]
    v = fs.view()
    assert column_is_text(v, "g") and column_is_text(v, "tags.g")
    assert not column_is_text(v, "i") and not column_is_text(v, "y") and not column_is_text(v, "tags.f")
    assert message(SimpleSampler(2, group_by="n").prepare, v) == (
        "column 'n' of 'p' has NaN values; a sampler cannot compare them — filter those rows out first "
        "(view.filter(mml.col(...) == ...)) or fill them"
    )
    # the same column named twice is read once
    twice = SimpleSampler(2, group_by="i", stratify_by="i").prepare(v)
    assert list(twice.columns) == ["i"]


def test_materialize_reads_contiguous_read_only_arrays() -> None:
    fs = make()
    view = fs.with_split("s", np.array([2, 0]))["s"]
    d = materialize(view, "spec", ["i"])
    assert d.sampler == "spec" and d.label == "p" and len(d) == 2
    assert d.features.tolist() == [[4.0, 5.0], [0.0, 1.0]]
    assert d.targets.tolist() == [[3.0], [1.0]]
    assert d.tags["g"].tolist() == ["b", "b"] and d.tags["i"].tolist() == [2, 3]
    assert list(d.tags) == ["g", "v", "n", "i", "f"]
    np.testing.assert_array_equal(d.sample_uuids, fs.sample_uuids[[2, 0]])
    assert d.columns["i"].tolist() == [2.0, 3.0]
    for a in (d.features, d.targets, d.sample_uuids, *d.tags.values()):
        assert a.flags.c_contiguous and not a.flags.writeable
    assert dict(d.aux) == {}
    no_targets = materialize(view.select(features="x", tags="g"), None, ())
    assert no_targets.targets is None and list(no_targets.tags) == ["g"]
    assert message(materialize, fs.view().select(tags="g"), None, ()) == (
        "the view of 'p' has no feature keys selected; select some with view.select(features=...)"
    )


def test_row_bytes() -> None:
    d = materialize(make().view(), None, ())
    assert d.row_bytes == 16 + 8 + 16 + 8 * 5
    assert materialize(make().view().select(features="x"), None, ()).row_bytes == 16 + 16
    empty = PreparedData(
        sampler=None, features=np.zeros((0, 3)), sample_uuids=np.zeros(0, "S16"), targets=np.zeros((0, 1))
    )
    assert empty.row_bytes == 16 and len(empty) == 0
    tagged = PreparedData(
        sampler=None, features=np.zeros((0, 3)), sample_uuids=np.zeros(0, "S16"), tags={"a": np.zeros(0)}
    )
    assert tagged.row_bytes == 24


def test_cast_floats() -> None:
    fs = mml.FeatureSet.from_dict(
        {"x": np.arange(4.0).reshape(2, 2), "y": [0, 1], "t": [0.5, 1.5]},
        features="x",
        targets="y",
        tags="t",
        label="c",
    )
    d = materialize(fs.view(), None, ())
    c = cast_floats(d, np.float32)
    assert c.features.dtype == np.float32 and c.features.tolist() == [[0.0, 1.0], [2.0, 3.0]]
    assert not c.features.flags.writeable
    assert c.targets is d.targets and c.tags["t"].dtype == np.float64
    assert cast_floats(d, np.float64) is d
    assert cast_floats(c, np.float32) is c
    fy = materialize(
        mml.FeatureSet.from_dict({"x": [1, 2], "y": [0.5, 1.0]}, features="x", targets="y", label="i").view(),
        None,
        (),
    )
    cy = cast_floats(fy, np.float32)
    assert (
        cy.features is fy.features
        and cy.targets.dtype == np.float32
        and cy.targets.tolist() == [[0.5], [1.0]]
    )


def test_to_device_converts_numbers_only() -> None:
    torch = pytest.importorskip("torch")
    d = materialize(make().view(), None, ["i"])
    t = to_device(d, "cpu")
    assert isinstance(t.features, torch.Tensor) and t.features.dtype == torch.float64
    assert t.features.tolist() == d.features.tolist() and t.targets.tolist() == d.targets.tolist()
    assert t.tags["f"].dtype == torch.bool and t.tags["i"].dtype == torch.int64
    assert t.tags["n"].dtype == torch.float64 and isinstance(t.tags["g"], np.ndarray)
    assert t.sample_uuids is d.sample_uuids and t.columns is d.columns
    f32 = to_device(d, "cpu", float_dtype=np.float32)
    assert f32.features.dtype == torch.float32 and f32.targets.dtype == torch.float32
    assert f32.tags["n"].dtype == torch.float64  # tags keep their dtype
    no_t = to_device(materialize(make().view().select(features="x"), None, ()), "cpu")
    assert no_t.targets is None
    with pytest.raises(DeviceError) as info:
        to_device(d, "nope")
    assert str(info.value).startswith("cannot move the prepared data of (3, 2) rows to device 'nope': ")
    assert isinstance(info.value.__cause__, RuntimeError)
    assert message(to_device, np.zeros(3), "cpu") == (
        "to_device() takes the result of sampler.prepare(view), got ndarray"
    )
