"""The ownership law: a frozen value owns its arrays.

Whatever array a caller passes in — writable, or a read-only view of a writable array —
writing into it afterwards never changes the value. Already-immutable arrays (read-only all
the way down, or Arrow memory) are kept without a copy.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, strategies as st

import mml
from mml._fields import freeze_new, readonly_array
from mml.data import FeatureSet, FeatureSetView
from mml.samplers._prepared import materialize
from mml.scalers import MinMaxParams, RobustParams, StandardParams

floats = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=6)


def _handed(a: np.ndarray, as_view: bool) -> np.ndarray:
    """What the caller hands over: its array itself, or a read-only view of it."""
    if not as_view:
        return a
    v = a.view()
    v.flags.writeable = False
    return v


@given(floats, st.booleans())
def test_params_do_not_share_the_callers_buffer(values: list[float], as_view: bool) -> None:
    a = np.array(values)
    for cls, names in (
        (MinMaxParams, ("min_", "scale_")),
        (StandardParams, ("mean_", "scale_")),
        (RobustParams, ("center_", "scale_")),
    ):
        p = cls(**{n: _handed(a, as_view) for n in names})
        before = {n: np.array(getattr(p, n)) for n in names}
        a[...] = 99.0
        for n in names:
            assert getattr(p, n).tolist() == before[n].tolist(), (cls.__name__, n)
            assert not getattr(p, n).flags.writeable
        a[...] = np.array(values)


def test_minmax_params_reported_case() -> None:
    scale = np.array([0.5])
    p = MinMaxParams(min_=np.array([0.0]), scale_=scale)
    scale[0] = 99.0
    assert p.scale_.tolist() == [0.5]


@given(st.lists(st.integers(0, 9), min_size=1, max_size=10), st.booleans())
def test_split_and_view_indices_do_not_share_the_callers_buffer(rows: list[int], as_view: bool) -> None:
    fs = FeatureSet.from_dict({"x": np.arange(10.0)}, features="x", label="own")
    idx = np.array(rows, dtype=np.int64)
    with_split = fs.with_split("train", _handed(idx, as_view))
    view = FeatureSetView(fs, _handed(idx, as_view))
    idx[...] = 0
    assert with_split.split_indices["train"].tolist() == rows
    assert view.indices.tolist() == rows
    assert with_split["train"].to_numpy().ravel().tolist() == [float(r) for r in rows]


@given(floats)
def test_prepared_data_does_not_share_the_callers_buffer(values: list[float]) -> None:
    fs = FeatureSet.from_dict({"x": np.array(values)}, features="x", label="own")
    prepared = materialize(fs.view(), None, ())
    # a caller that reaches the table's buffer cannot write it: Arrow memory is immutable
    assert not prepared.features.flags.writeable
    assert prepared.features.ravel().tolist() == values


def test_immutable_inputs_are_not_copied() -> None:
    owned = freeze_new(np.arange(4.0))
    assert readonly_array(owned) is owned
    arrow = pa.array(np.arange(4.0)).to_numpy(zero_copy_only=True)
    assert readonly_array(arrow) is arrow
    fs = FeatureSet.from_dict({"x": np.arange(4.0)}, features="x", label="own")
    col = fs.column_array("features", "x")
    assert readonly_array(col) is col


def test_read_only_view_of_a_writable_array_is_copied() -> None:
    a = np.arange(3.0)
    v = a.view()
    v.flags.writeable = False
    out = readonly_array(v)
    assert out is not v and not np.shares_memory(out, a)
    a[0] = 7.0
    assert out.tolist() == [0.0, 1.0, 2.0]


def test_to_numpy_results_are_read_only() -> None:
    fs = mml.FeatureSet.from_dict({"a": [1.0, 2.0], "b": [3.0, 4.0]}, features=["a", "b"], label="ro")
    for arr in (fs.to_numpy(), fs.view().to_numpy(), fs.view().take([1, 0]).sample_uuids):
        assert not arr.flags.writeable
