from __future__ import annotations

import attrs
import numpy as np
import pytest

import mml
from mml.scalers import ScalerRecord, Standard
from mml.strategies import CVResult, cross_validate, fold_featureset, regression_metrics

from .conftest import make_experiment, make_featureset

torch = pytest.importorskip("torch")


def _params(state) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in state.params("mlp").params.items()}


def _same(s1, s2) -> bool:
    p1, p2 = _params(s1), _params(s2)
    return p1.keys() == p2.keys() and all(np.array_equal(p1[k], p2[k]) for k in p1)


def _cv(exp, **kw) -> CVResult:
    kw.setdefault("splitter", mml.KFoldSplitter(3, seed=1))
    kw.setdefault("key", 0)
    return cross_validate(exp, featureset="toy", **kw)


def test_pooled_predictions_cover_every_sample_once_and_metrics_agree(exp, fs):
    res = _cv(exp)
    assert res.n_folds == 3 and res.status == "completed"
    pooled = res.pooled["val"]
    assert set(res.pooled) == {"val"}  # 'test' evaluates another split and is not pooled
    assert pooled.uuids.tolist() == fs.sample_uuids.tolist()  # every row once, in row order
    for f in res.folds:
        assert sorted(np.concatenate([f.train_rows, f.val_rows]).tolist()) == list(range(len(fs)))
        assert (pooled.fold[f.val_rows] == f.fold).all()
        fold_preds = f.predictions["val"]
        assert np.array_equal(pooled.outputs["mlp"][f.val_rows], fold_preds.outputs["mlp"])
    # pooled targets are raw units (inverse_transform=True in the eval phase)
    assert np.allclose(pooled.targets["mlp"][:, 0], fs.column_array("targets", "y", rep="raw"), atol=1e-5)
    expected = regression_metrics(pooled.targets["mlp"], pooled.outputs["mlp"])
    assert res.pooled_metrics() == {f"val/mlp/{m}": v for m, v in expected.items()}

    table = res.to_pandas()
    assert list(table.columns) == ["fold", "metric", "value"]
    assert set(table["fold"]) == {0, 1, 2}
    assert {"fit/loss", "val/loss", "val/mlp/r2", "test/mlp/mse"} <= set(table["metric"])
    summary = res.summary()
    means = table.groupby("metric")["value"].mean()
    assert np.allclose(summary.loc[means.index, "mean"], means)
    assert summary.loc["val/mlp/mse", "pooled"] == pytest.approx(expected["mse"])
    assert np.isnan(summary.loc["fit/loss", "pooled"]) and (summary["n"] == 3).all()
    # fold-averaged mse weighted by fold size is the pooled mse
    sizes = np.array([len(f.val_rows) for f in res.folds])
    per_fold = table[table.metric == "val/mlp/mse"].sort_values("fold")["value"].to_numpy()
    assert np.average(per_fold, weights=sizes) == pytest.approx(expected["mse"], rel=1e-5)


def test_same_key_same_result_and_the_input_is_unchanged(exp):
    before = mml.io.roundtrip(exp)
    a = _cv(exp, keep_states=True)
    assert exp == before
    b = _cv(exp, keep_states=True)
    assert a == b
    assert all(_same(x.state, y.state) for x, y in zip(a.folds, b.folds))
    c = _cv(exp, key=1)
    assert [f.history for f in c.folds] != [f.history for f in a.folds]
    assert all(f.state is None for f in c.folds)


def test_each_fold_replays_as_a_plain_run(exp, fs):
    key = mml.random.key(5)
    res = _cv(exp, key=key, keep_states=True)
    f = res.folds[1]
    fs_1 = fold_featureset(
        fs, f.train_rows, f.val_rows, key=mml.random.fold_in(mml.random.fold_in(key, "scalers"), 1)
    )
    exp_1 = attrs.evolve(exp, featuresets={"toy": fs_1})
    state, history = mml.run(exp_1, mml.init(exp_1, mml.random.fold_in(key, 1)), progress=False)
    assert state == f.state and history == f.history


def test_scalers_are_refitted_on_the_fold_training_rows(fs):
    train, val = np.arange(0, 30), np.arange(30, 48)
    out = fold_featureset(fs, train, val, key=mml.random.key(0))
    assert np.array_equal(out.split_indices["train"], train) and np.array_equal(out.split_indices["val"], val)
    assert np.array_equal(out.split_indices["test"], fs.split_indices["test"])  # other splits kept
    recs = [r for r in out.records if isinstance(r, ScalerRecord)]
    assert [(r.domain, r.keys, r.fit_on) for r in recs] == [
        ("features", ("x",), "train"),
        ("targets", ("y",), "train"),
    ]
    x = fs.column_array("features", "x", rep="raw")
    assert recs[0].params_of("x") == Standard().fit(x[train])
    assert mml.scalers.undo_all_transforms(out) == mml.scalers.undo_all_transforms(fs).without_splits(
        "train", "val"
    ).with_split("train", train, overlap="allow").with_split("val", val, overlap="allow")
    # refit_scalers=False keeps the recorded params (and their leak)
    kept = fold_featureset(fs, train, val, refit_scalers=False, key=mml.random.key(0))
    assert [r for r in kept.records if isinstance(r, ScalerRecord)] == [
        r for r in fs.records if isinstance(r, ScalerRecord)
    ]


def _perturbed(rows: np.ndarray) -> mml.FeatureSet:
    """The conftest data with the feature values of ``rows`` replaced by large numbers."""
    base = make_featureset(scale=False)
    x = base.column_array("features", "x", rep="raw").copy()
    x[rows] = x[rows] * 100.0 + 50.0
    raw = mml.FeatureSet.from_dict(
        {"x": x, "y": base.column_array("targets", "y"), "g": base.column_array("tags", "g")},
        features="x",
        targets="y",
        tags="g",
        label="toy",
        key=mml.random.key(0),
    )
    raw = raw.split(mml.RandomSplitter({"train": 0.6, "val": 0.2, "test": 0.2}, seed=0))
    raw = mml.scalers.fit_transform(raw, "standard", domain="features", fit_on="train")
    return mml.scalers.fit_transform(raw, "standard", domain="targets", fit_on="train")


@pytest.mark.parametrize("refit", [True, False])
def test_no_statistics_leak_from_the_validation_fold(fs, refit):
    splitter = mml.KFoldSplitter(3, seed=1)
    _, val0 = splitter.folds(fs.view())[0]
    changed = _perturbed(val0)
    a = _cv(make_experiment(fs), splitter=splitter, keep_states=True, refit_scalers=refit)
    b = _cv(make_experiment(changed), splitter=splitter, keep_states=True, refit_scalers=refit)
    same = _same(a.folds[0].state, b.folds[0].state)
    # fold 0's params depend only on fold 0's training rows when scalers are refitted; the
    # recorded scalers were fitted on a 'train' split that overlaps val0, so without refit they leak
    assert same is refit
    # the perturbed rows are training rows of folds 1 and 2: their params must change (the test can fail)
    assert not _same(a.folds[1].state, b.folds[1].state) and not _same(a.folds[2].state, b.folds[2].state)


def test_folding_only_the_train_split_keeps_test_untouched(fs):
    exp = make_experiment(fs)
    res = _cv(exp, on="train", splitter=mml.KFoldSplitter(2, seed=0))
    train = fs.split_indices["train"]
    pooled = res.pooled["val"]
    assert pooled.uuids.tolist() == fs.sample_uuids[train].tolist()
    for f in res.folds:
        assert set(f.train_rows) | set(f.val_rows) == set(train.tolist())
        assert not set(f.val_rows) & set(fs.split_indices["test"].tolist())
        assert len(f.predictions["test"]) == len(fs.split_indices["test"])


def test_group_folds_keep_groups_together(fs):
    res = _cv(make_experiment(fs), splitter=mml.KFoldSplitter(3, seed=0, group_by="g"))
    groups = fs.column_array("tags", "g")
    for f in res.folds:
        assert not set(groups[f.train_rows]) & set(groups[f.val_rows])


def test_cv_result_round_trips_with_states(exp):
    res = _cv(exp, splitter=mml.KFoldSplitter(2), keep_states=True)
    back = mml.io.roundtrip(res)
    assert back == res
    assert back.summary().equals(res.summary())


def test_explicit_pooled_eval_and_errors(exp):
    with pytest.raises(mml.TrainingError, match="outside the folded rows"):
        _cv(exp, on="train", pooled_eval="test")
    with pytest.raises(mml.ConfigError, match="pooled_eval='fit' is not an EvalPhase"):
        _cv(exp, pooled_eval="fit")
    with pytest.raises(mml.ConfigError, match="no FeatureSet 'nope'; FeatureSets: toy"):
        cross_validate(exp, featureset="nope", splitter=mml.KFoldSplitter(2), key=0)
    with pytest.raises(mml.ConfigError, match="splitter=KFoldSplitter"):
        cross_validate(exp, featureset="toy", splitter=mml.RandomSplitter(), key=0)
    with pytest.raises(mml.SplitError, match="must differ"):
        _cv(exp, val_split="train")
    with pytest.raises(mml.SplitError, match="has no split 'nope'"):
        _cv(exp, on="nope")
    with pytest.raises(mml.ConfigError, match="executor= takes"):
        _cv(exp, executor="local")


def test_failed_folds_are_reported(exp):
    from mml.strategies import FoldResult, failed_outcome

    bad = FoldResult(0, np.arange(2), np.arange(2, 3), failed_outcome(mml.TrainingError("nan")))
    res = CVResult("toy", "train", "val", (bad,))
    assert res.status == "failed"
    with pytest.raises(mml.TrainingError, match="fold 0: TrainingError: nan"):
        res.raise_for_status()
    assert _cv(exp, splitter=mml.KFoldSplitter(2)).raise_for_status().status == "completed"
