"""Vectorised folds, trials and ensembles equal their sequential runs (to float tolerance)."""

from __future__ import annotations

import warnings

import attrs
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mml
from mml.strategies import (
    Job,
    LocalExecutor,
    NotVectorizedWarning,
    VectorizedExecutor,
    cross_validate,
    ensemble,
    run_job,
    run_vectorized,
    sweep,
    vectorize_problem,
)

from .conftest import make_experiment, make_featureset

torch = pytest.importorskip("torch")

RTOL, ATOL = 2e-5, 1e-6


def _close_history(a, b) -> None:
    assert a.status == b.status
    for col in ("phase", "epoch", "batch", "step", "name"):  # the same rows, bit for bit
        assert np.array_equal(getattr(a, col), getattr(b, col)), col
    np.testing.assert_allclose(a.value, b.value, rtol=RTOL, atol=ATOL)
    assert (a.failure is None) == (b.failure is None)
    if a.failure is not None:
        assert (a.failure.type, a.failure.phase, a.failure.epoch, a.failure.batch) == (
            b.failure.type,
            b.failure.phase,
            b.failure.epoch,
            b.failure.batch,
        )


def _close_outcome(a, b) -> None:
    _close_history(a.history, b.history)
    assert a.predictions.keys() == b.predictions.keys()
    for label in a.predictions:
        pa, pb = a.predictions[label], b.predictions[label]
        assert pa.uuids.tolist() == pb.uuids.tolist()
        for node in pa.outputs:
            np.testing.assert_allclose(pa.outputs[node], pb.outputs[node], rtol=1e-4, atol=1e-5)
            assert np.array_equal(pa.targets[node], pb.targets[node])
    if a.state is not None:
        sa, sb = a.state, b.state
        assert (sa.step, sa.epoch, sa.batch, dict(sa.opt_steps)) == (
            sb.step,
            sb.epoch,
            sb.batch,
            dict(sb.opt_steps),
        )
        for label in sa.graph.params:
            pa, pb = sa.params(label).params, sb.params(label).params
            for k in pa:
                np.testing.assert_allclose(pa[k].numpy(), pb[k].numpy(), rtol=1e-4, atol=1e-5)
        assert mml.io.roundtrip(sb) is not None  # the stacked run's state saves (own tensors)


def _with_dropout(exp, rate: float):
    node = exp.graph["mlp"]
    return attrs.evolve(
        exp, graph=exp.graph.replace("mlp", attrs.evolve(node, model=attrs.evolve(node.model, dropout=rate)))
    )


def test_vectorised_cv_with_unequal_folds_equals_the_sequential_run():
    fs = make_featureset(52)  # 3 folds of 18/17/17 rows: the last batches differ in size
    exp = _with_dropout(make_experiment(fs, n_epochs=2), 0.25)
    kw = dict(featureset="toy", splitter=mml.KFoldSplitter(3, seed=1), key=0, keep_states=True)
    seq = cross_validate(exp, **kw)
    vec = cross_validate(exp, vectorize=True, **kw)
    assert [f.val_rows.tolist() for f in vec.folds] == [f.val_rows.tolist() for f in seq.folds]
    for a, b in zip(seq.folds, vec.folds):
        _close_outcome(a.outcome, b.outcome)
    for m, v in seq.pooled_metrics().items():
        assert vec.pooled_metrics()[m] == pytest.approx(v, rel=1e-4, abs=1e-6)


def test_vectorised_cv_of_a_cnn_runs_its_own_forward_under_vmap():
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import SequentialCNN

    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 2, 8)).astype(np.float32)  # 2 channels of length 8 per sample
    y = x.mean(axis=(1, 2)).astype(np.float32)
    fs = mml.FeatureSet.from_dict(
        {"x": x, "y": y}, features="x", targets="y", label="toy", key=mml.random.key(3)
    )
    fs = fs.split(mml.RandomSplitter({"train": 0.6, "val": 0.2, "test": 0.2}, seed=0))
    base = make_experiment(fs, n_epochs=2, inverse=False)
    cnn = ModelNode(
        "mlp",
        SequentialCNN(channels=(3,), output_shape=(1,)),
        FeatureSetRef("toy"),
        optimizer=mml.optim.adam(1e-2),
    )
    exp = attrs.evolve(base, graph=ModelGraph.of(cnn))
    kw = dict(featureset="toy", splitter=mml.KFoldSplitter(3, seed=0), key=1, keep_states=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotVectorizedWarning)  # it must stack, not fall back
        vec = cross_validate(exp, vectorize=True, **kw)
    for a, b in zip(cross_validate(exp, **kw).folds, vec.folds):
        _close_outcome(a.outcome, b.outcome)
    dropping = mml.strategies.set_path(exp, "graph.nodes.mlp.model.dropout", 0.2)
    assert "dropout in a SequentialCNN is not vectorised" in vectorize_problem(
        [Job(dropping, mml.random.key(0))]
    )


def test_vectorised_sweep_over_shape_preserving_values_equals_the_sequential_run(fs):
    from mml.callbacks import EarlyStopping, Evaluation

    exp = make_experiment(fs, n_epochs=6)
    exp = mml.strategies.set_path(
        exp,
        "plan.phases.fit.callbacks",
        (Evaluation(split="val"), EarlyStopping(patience=0, restore_best=True)),
    )
    exp = mml.strategies.set_path(exp, "graph.nodes.mlp.optimizer", mml.optim.adamw(1e-2, weight_decay=0.1))
    grid = {  # (per-member weight decay and betas: test_stacked_update_is_each_members_own_update)
        "graph.nodes.mlp.optimizer.lr": [1e-3, 3e-1, 1e30],  # the last trial's loss overflows: it fails alone
        "graph.nodes.mlp.model.dropout": [0.0, 0.5],
        "plan.phases.fit.losses.0.weight": [1.0, 0.5],
    }
    seq = sweep(exp, grid, key=2, keep_states=True)
    vec = sweep(exp, grid, key=2, keep_states=True, vectorize=True)
    assert {t.status for t in seq.trials} == {"completed", "stopped", "failed"}  # every path is exercised
    for a, b in zip(seq.trials, vec.trials):
        assert a.params == b.params and a.status == b.status
        _close_outcome(a.outcome, b.outcome)


def test_vectorised_sweep_of_clipped_optimizers_equals_the_sequential_run(fs):
    # issue 12: clipping composes with the optimizer and is vectorised per member
    exp = make_experiment(fs, n_epochs=3)
    clipped = mml.optim.clipped(mml.optim.adam(1e-2), norm=1.0)
    exp = mml.strategies.set_path(exp, "graph.nodes.mlp.optimizer", clipped)
    grid = {
        "graph.nodes.mlp.optimizer.norm": [1e-3, 1e3],  # bites hard / never bites
        "graph.nodes.mlp.optimizer.value": [None, 1e-2],
        "graph.nodes.mlp.optimizer.optimizer.lr": [1e-2, 3e-2],
    }
    seq = sweep(exp, grid, key=4, keep_states=True)
    vec = sweep(exp, grid, key=4, keep_states=True, vectorize=True)
    assert len(vec.trials) == 8
    for a, b in zip(seq.trials, vec.trials):
        assert a.params == b.params and a.status == b.status == "completed"
        _close_outcome(a.outcome, b.outcome)
    loose, tight = (
        t
        for t in seq.trials
        if t.params["graph.nodes.mlp.optimizer.value"] is None
        and t.params["graph.nodes.mlp.optimizer.optimizer.lr"] == 1e-2
    )
    assert loose.outcome.history != tight.outcome.history  # the clip changes the run


def test_ensemble_members_are_plain_runs_from_their_keys(exp):
    res = ensemble(exp, 3, key=7)
    assert res.n_members == 3 and res.status == "completed"
    for i, member in enumerate(res.members):
        _close_outcome(run_job(Job(exp, mml.random.fold_in(mml.random.key(7), i), keep_state=True)), member)
    mean = res.predictions("test")
    stacked = np.stack([m.predictions["test"].outputs["mlp"] for m in res.members])
    np.testing.assert_allclose(mean.outputs["mlp"], stacked.mean(0), rtol=1e-6)
    assert not np.allclose(stacked[0], stacked[1])  # members differ: their own keys
    assert set(res.metrics("test")) == {"test/mlp/mse", "test/mlp/mae", "test/mlp/r2"}
    assert mml.io.roundtrip(res) == res
    with pytest.raises(mml.ConfigError, match="n_members must be an int >= 1"):
        ensemble(exp, 0, key=0)


def test_what_cannot_be_stacked_falls_back_with_a_message(exp):
    grid = {"graph.nodes.mlp.model.hidden": [(2,), (3,)]}
    with pytest.warns(NotVectorizedWarning, match="shape-changing values run one by one"):
        vec = sweep(exp, grid, key=0, vectorize=True)
    assert vec == sweep(exp, grid, key=0)  # the fallback is the sequential run, bit for bit
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import SklearnModel

    sk = attrs.evolve(
        exp,
        graph=ModelGraph.of(
            ModelNode("mlp", SklearnModel("sklearn.linear_model:SGDRegressor"), FeatureSetRef("toy"))
        ),
    )
    assert "only torch SequentialMLP, SequentialCNN" in vectorize_problem([Job(sk, mml.random.key(0))])
    keras_mlp = mml.strategies.set_path(exp, "graph.nodes.mlp.model.backend", "tensorflow")
    assert "SequentialMLP (tensorflow)" in vectorize_problem([Job(keras_mlp, mml.random.key(0))])
    twice = mml.optim.clipped(mml.optim.clipped(mml.optim.sgd(0.1), norm=1.0), value=0.5)
    sgd = mml.strategies.set_path(exp, "graph.nodes.mlp.optimizer", twice)
    assert "clipped optimizer inside a clipped optimizer" in vectorize_problem([Job(sgd, mml.random.key(0))])
    with pytest.raises(mml.ConfigError, match=r"run_vectorized: .*clipped optimizer inside"):
        run_vectorized([Job(sgd, mml.random.key(0))])
    once = mml.strategies.set_path(
        exp, "graph.nodes.mlp.optimizer", mml.optim.clipped(mml.optim.sgd(0.1), norm=1.0)
    )
    assert vectorize_problem([Job(once, mml.random.key(0))]) is None  # issue 12: clipping is vectorised
    assert mml.io.roundtrip(VectorizedExecutor(LocalExecutor())) == VectorizedExecutor()


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(["sgd", "sgd_momentum", "adam", "adamw"]),
    lrs=st.lists(st.floats(1e-4, 1.0), min_size=1, max_size=4),
    clips=st.lists(
        st.tuples(st.none() | st.floats(0.1, 5.0), st.none() | st.floats(0.05, 2.0)), min_size=4, max_size=4
    ),
    wd=st.floats(0.0, 0.5),
    steps=st.lists(st.integers(0, 5), min_size=4, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_stacked_update_is_each_members_own_update(kind, lrs, wd, clips, steps, seed):
    from mml.strategies._stacked import stack_mappings, stack_records, stacked_update, unstack_record

    make = {
        "sgd": lambda lr: mml.optim.sgd(lr, weight_decay=wd),
        "sgd_momentum": lambda lr: mml.optim.sgd(lr, momentum=0.9, weight_decay=wd),
        "adam": lambda lr: mml.optim.adam(lr, weight_decay=wd),
        "adamw": lambda lr: mml.optim.adamw(lr, weight_decay=wd),
    }[kind]
    # each member clipped its own way (norm, value) or not at all (issue 12)
    opts = [
        make(lr) if norm is None and value is None else mml.optim.clipped(make(lr), norm=norm, value=value)
        for lr, (norm, value) in zip(lrs, clips)
    ]
    gen = torch.Generator().manual_seed(seed)
    params = [{"w": torch.randn(3, 2, generator=gen), "b": torch.randn(2, generator=gen)} for _ in opts]
    grads = [{k: 3 * torch.randn(v.shape, generator=gen) for k, v in p.items()} for p in params]  # clips bite
    states = [o.init(p) for o, p in zip(opts, params)]
    # a non-trivial state: one update of each member first
    states = [o.update(g, s, p, 0)[1] for o, g, s, p in zip(opts, grads, states, params)]
    steps = steps[: len(opts)]
    own = [o.update(g, s, p, n) for o, g, s, p, n in zip(opts, grads, states, params, steps)]
    new_p, new_s = stacked_update(
        opts, steps, stack_mappings(grads), stack_records(states), stack_mappings(params)
    )
    for k, (p_k, s_k) in enumerate(own):
        for name in p_k:
            torch.testing.assert_close(new_p[name][k], p_k[name], rtol=1e-5, atol=1e-6)
        back = unstack_record(new_s, k)
        for f in attrs.fields(type(s_k)):
            for name, v in getattr(s_k, f.name).items():
                torch.testing.assert_close(getattr(back, f.name)[name], v, rtol=1e-5, atol=1e-6)
