"""A similarity condition whose metric is a function named by import path (issue 15.4)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mml
from mml.samplers import PairedSampler, SimilarityCondition, TripletSampler, dissimilar, similar

from .helpers import make_fs
from .test_nsampler import check_laws, rows_of

KEY = mml.random.key(0)
SQUARED = "tests.samplers.metrics:squared"


def test_callable_metric_keeps_what_it_says() -> None:
    fs = make_fs(80, seed=1)
    soh = fs.column_array("tags", "soh").astype(float)
    s = PairedSampler({"soh": similar(0.01, metric=SQUARED, weight_mode="linear")}, batch_size=16)
    cond = s.conditions["pair"]["soh"]
    assert cond.metric == "callable" and cond.fn == SQUARED
    batches = list(s.iter(fs.view(), key=KEY))
    check_laws(fs, s, batches)
    for b in batches:
        a, p = rows_of(fs, b.role("anchor").sample_uuids), rows_of(fs, b.role("pair").sample_uuids)
        m = b.role("pair").mask
        assert m.mean() > 0.9  # rejection finds a partner for nearly every anchor
        assert np.all(np.abs(soh[a] - soh[p])[m] <= 0.1 + 1e-12)  # (a - b)^2 <= 0.01
        np.testing.assert_allclose(b.role("pair").weights[m], 1 - (soh[a] - soh[p])[m] ** 2 / 0.01)


def test_callable_beside_a_builtin_primary() -> None:
    fs = make_fs(90, n_groups=3, seed=2)
    s = TripletSampler(
        {"cell": similar(metric="equal"), "soh": similar(0.04, metric=SQUARED)},
        {"cell": dissimilar(metric="equal"), "soh": dissimilar(0.04, metric=SQUARED)},
        batch_size=10,
        max_samples_per_anchor=2,
    )
    batches = list(s.iter(fs.view(), key=KEY))
    check_laws(fs, s, batches)
    for b in batches:
        pos = b.role("positive")
        assert (pos.tags["cell"] == b.role("anchor").tags["cell"]).all()  # the primary holds exactly


def test_serializes_as_an_import_path() -> None:
    s = PairedSampler({"soh": dissimilar(0.2, metric=SQUARED)}, batch_size=4)
    doc = mml.io.unstructure(s)
    assert json.loads(json.dumps(doc))["conditions"]["pair"]["soh"]["fn"] == SQUARED
    assert mml.io.roundtrip(s) == s
    assert SimilarityCondition(metric="callable", fn=SQUARED) == similar(0.0, metric=SQUARED)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"metric": "callable"}, mml.SamplerError, "metric='callable' with fn="),
        ({"fn": SQUARED}, mml.SamplerError, "metric='callable' with fn="),
        ({"metric": "callable", "fn": "squared"}, mml.SamplerError, "import path 'package.module:name'"),
        (
            {"metric": "callable", "fn": "tests.samplers.metrics:nope"},
            mml.ConfigError,
            "has no attribute 'nope'",
        ),
        (
            {"metric": "callable", "fn": "tests.samplers.metrics:NOT_A_FUNCTION"},
            mml.SamplerError,
            "is not a function",
        ),
    ],
)
def test_bad_callable_metrics(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        SimilarityCondition(**kwargs)


def test_broken_metric_is_named() -> None:
    fs = make_fs(20)
    s = PairedSampler({"soh": similar(0.1, metric="tests.samplers.metrics:first_only")}, batch_size=4)
    with pytest.raises(mml.SamplerError, match=r"first_only' returned shape \(1,\).*elementwise"):
        list(s.iter(fs.view(), key=KEY))
    with pytest.raises(mml.SamplerError, match="holds text"):
        PairedSampler({"label": similar(0.1, metric=SQUARED)}, batch_size=4).prepare(fs.view())
