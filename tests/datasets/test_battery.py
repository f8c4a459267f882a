"""Laws of the bundled battery pulse generator."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mml
from mml.datasets import BATTERY_PULSE_S, battery_pulses


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 60), n_points=st.integers(2, 40), seed=st.integers(0, 2**32 - 1))
def test_shapes_dtypes_and_ranges(n: int, n_points: int, seed: int) -> None:
    d = battery_pulses(n, n_points=n_points, seed=seed)
    assert d["voltage"].shape == (n, n_points) and d["voltage"].dtype == np.float32
    for name in ("soh", "cell_id", "group_id", "pulse_type", "soc", "temperature"):
        assert d[name].shape == (n,), name
    assert d["soh"].dtype == np.float32
    assert d["cell_id"].dtype == np.int64 and d["group_id"].dtype == np.int64
    assert set(d["pulse_type"].tolist()) <= {"charge", "discharge"}
    assert np.all((d["soh"] >= 0.7) & (d["soh"] <= 1.0))
    assert np.all((d["soc"] >= 0.1) & (d["soc"] <= 0.9))
    assert np.all(np.isfinite(d["voltage"]))
    assert np.all((d["voltage"] > 2.5) & (d["voltage"] < 4.5))
    # cells are nested in groups: one group per cell
    for c in np.unique(d["cell_id"]):
        assert np.unique(d["group_id"][d["cell_id"] == c]).size == 1


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 50), seed=st.integers(0, 1000))
def test_same_seed_same_data_different_seed_different_data(n: int, seed: int) -> None:
    a = battery_pulses(n, n_points=21, seed=seed)
    b = battery_pulses(n, n_points=21, seed=seed)
    c = battery_pulses(n, n_points=21, seed=seed + 1)
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["voltage"], c["voltage"])


def test_pulse_direction_follows_pulse_type() -> None:
    d = battery_pulses(200, seed=3)
    t = np.linspace(0, 30, 101)
    rest = d["voltage"][:, t < BATTERY_PULSE_S[0]].mean(axis=1)
    during = d["voltage"][:, (t > BATTERY_PULSE_S[0]) & (t < BATTERY_PULSE_S[1])].mean(axis=1)
    discharge = d["pulse_type"] == "discharge"
    assert discharge.any() and (~discharge).any()
    assert np.all(during[discharge] < rest[discharge])
    assert np.all(during[~discharge] > rest[~discharge])


def test_older_cells_drop_more() -> None:
    """Resistance growth: the ohmic step grows as SOH falls (the target is in the curve)."""
    d = battery_pulses(2000, seed=0)
    t = np.linspace(0, 30, 101)
    before = d["voltage"][:, np.searchsorted(t, BATTERY_PULSE_S[0]) - 1]
    after = d["voltage"][:, np.searchsorted(t, BATTERY_PULSE_S[0])]
    sel = d["pulse_type"] == "discharge"
    step = (before - after)[sel]
    r = np.corrcoef(step, d["soh"][sel])[0, 1]
    assert r < -0.8


def test_soh_is_learnable_from_the_curve() -> None:
    """A simple model on the curve beats the mean clearly on held-out data."""
    from sklearn.linear_model import Ridge

    d = battery_pulses(1500, seed=7)
    x = d["voltage"].astype(np.float64)
    # direction-normalised response relative to the rest voltage: a linear model then suffices
    sign = np.where(d["pulse_type"] == "discharge", 1.0, -2.0)[:, None]
    feats = (x - x[:, :1]) / sign
    model = Ridge(alpha=1e-3).fit(feats[:1000], d["soh"][:1000])
    assert model.score(feats[1000:], d["soh"][1000:]) > 0.5


def test_fast() -> None:
    battery_pulses(1000)
    t0 = time.process_time()  # CPU time: a loaded machine stretches the wall clock, not the work
    battery_pulses(1000)
    assert time.process_time() - t0 < 0.25


@pytest.mark.parametrize(
    "kwargs",
    [{"n_samples": 0}, {"n_samples": 2.5}, {"n_samples": True}, {"n_points": 1}, {"seed": -1}],
)
def test_bad_arguments_raise_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(mml.ConfigError):
        battery_pulses(**kwargs)  # type: ignore[arg-type]


def test_outputs_are_fresh_arrays() -> None:
    a = battery_pulses(5, seed=0)
    a["voltage"][:] = 0
    assert not np.all(battery_pulses(5, seed=0)["voltage"] == 0)


def test_load_battery_featureset() -> None:
    from mml.datasets import load_battery

    fs = load_battery(60, seed=2, label="cells")
    assert fs.label == "cells" and len(fs) == 60
    assert fs.keys("features") == ("voltage",) and fs.keys("targets") == ("soh",)
    assert set(fs.keys("tags")) == {"cell_id", "group_id", "pulse_type", "soc", "temperature"}
    assert fs.to_numpy("features").shape == (60, 101)
    raw = battery_pulses(60, seed=2)
    assert np.array_equal(fs.column_array("features", "voltage"), raw["voltage"])
    assert np.array_equal(fs.column_array("targets", "soh"), raw["soh"])
    assert fs.column_array("tags", "pulse_type").tolist() == raw["pulse_type"].tolist()
    # deterministic, UUIDs included; a different seed gives other data and other UUIDs
    assert load_battery(60, seed=2, label="cells") == fs
    other = load_battery(60, seed=3, label="cells")
    assert other != fs and not np.array_equal(other.sample_uuids, fs.sample_uuids)
    assert mml.io.roundtrip(fs) == fs


def test_load_battery_splits_by_cell() -> None:
    from mml.datasets import load_battery

    fs = load_battery(300, seed=0).split(mml.RandomSplitter(seed=0, group_by="cell_id"))
    cells = fs.column_array("tags", "cell_id")
    train, test = set(cells[fs.split_indices["train"]]), set(cells[fs.split_indices["test"]])
    assert not train & test
