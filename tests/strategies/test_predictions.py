from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import mml
from mml.strategies import Predictions, pool_predictions, regression_metrics

# Magnitudes a regression target has: sub-1e-6 values make r2's denominator underflow-sized and
# scikit-learn itself overflows (and warns) there, so the comparison is meaningless.
_reals = st.floats(-1e3, 1e3).filter(lambda v: v == 0 or abs(v) > 1e-6)
values = hnp.arrays(np.float64, st.tuples(st.integers(2, 20), st.integers(1, 3)), elements=_reals)


@settings(max_examples=40)
@given(values, st.data())
def test_metrics_match_scikit_learn(y, data):
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    p = data.draw(hnp.arrays(np.float64, y.shape, elements=_reals))
    m = regression_metrics(y, p)
    assert m["mse"] == pytest.approx(mean_squared_error(y, p), rel=1e-9, abs=1e-9)
    assert m["mae"] == pytest.approx(mean_absolute_error(y, p), rel=1e-9, abs=1e-9)
    assert m["r2"] == pytest.approx(r2_score(y, p), rel=1e-6, abs=1e-6)


def _uuids(n: int, offset: int = 0) -> np.ndarray:
    return np.array([i.to_bytes(16, "big") for i in range(offset, offset + n)], dtype="S16")


def _preds(uuids: np.ndarray, rng: np.random.Generator) -> Predictions:
    n = len(uuids)
    return Predictions("val", {"m": rng.normal(size=(n, 2))}, {"m": rng.normal(size=(n, 2))}, uuids)


def test_predictions_round_trip_and_keep_uuids():
    rng = np.random.default_rng(0)
    p = _preds(_uuids(5), rng)
    assert mml.io.roundtrip(p) == p
    assert p.uuids.dtype == np.dtype("S16") and p.uuids.tolist() == _uuids(5).tolist()
    assert not p.outputs["m"].flags.writeable and not p.sample_uuids.flags.writeable
    df = p.to_pandas()
    assert list(df.columns) == ["uuid", "target_0", "target_1", "output_0", "output_1"]


@settings(max_examples=30)
@given(st.integers(2, 30), st.integers(2, 5), st.integers(0, 2**32 - 1))
def test_pooling_puts_each_sample_in_its_row_whatever_the_fold_order(n, k, seed):
    k = min(k, n)
    rng = np.random.default_rng(seed)
    uuids = _uuids(n)
    labels = np.arange(n) % k
    rng.shuffle(labels)
    per_fold = []
    for f in range(k):
        rows = np.flatnonzero(labels == f)
        rng.shuffle(rows)  # a fold may predict its rows in any order
        per_fold.append(_preds(uuids[rows], rng))
    pooled = pool_predictions("val", per_fold, uuids)
    assert pooled.uuids.tolist() == uuids.tolist() and pooled.fold.tolist() == labels.tolist()
    for pf in per_fold:
        pos = [int.from_bytes(u, "big") for u in pf.uuids]
        assert np.array_equal(pooled.outputs["m"][pos], pf.outputs["m"])
        assert np.array_equal(pooled.targets["m"][pos], pf.targets["m"])
    assert mml.io.roundtrip(pooled) == pooled


def test_pooling_rejects_missing_duplicate_and_foreign_samples():
    rng = np.random.default_rng(0)
    uuids = _uuids(4)
    with pytest.raises(mml.TrainingError, match="miss 1 of 4 samples"):
        pool_predictions("val", [_preds(uuids[:2], rng), _preds(uuids[2:3], rng)], uuids)
    with pytest.raises(mml.TrainingError, match="more than one fold"):
        pool_predictions("val", [_preds(uuids[:3], rng), _preds(uuids[2:], rng)], uuids)
    with pytest.raises(mml.TrainingError, match="outside the folded rows"):
        pool_predictions("val", [_preds(uuids, rng), _preds(_uuids(1, 99), rng)], uuids)


def test_metrics_need_a_node_when_there_are_several():
    rng = np.random.default_rng(0)
    u = _uuids(3)
    p = Predictions("val", {"a": rng.normal(size=(3, 1)), "b": rng.normal(size=(3, 1))},
                    {"a": np.ones((3, 1)), "b": np.ones((3, 1))}, u)  # fmt: skip
    with pytest.raises(mml.ConfigError, match="pass node= to choose one"):
        p.metrics()
    assert set(p.metrics("b")) == {"mse", "mae", "r2"}
    with pytest.raises(mml.ConfigError, match="no outputs and targets for node 'c'"):
        p.metrics("c")
