"""The vectorised loop's fast paths give each member's own numbers: the packed optimizer, the batches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mml
from mml.strategies import Job, LocalExecutor, VectorizedExecutor
from mml.strategies._stacked import FlatLayout, FlatOptimizer, stack_mappings
from mml.strategies._vectorized_loop import _gather

from .conftest import make_experiment, make_featureset

torch = pytest.importorskip("torch")

_MAKE = {
    "sgd": lambda lr, wd: mml.optim.sgd(lr, weight_decay=wd),
    "momentum": lambda lr, wd: mml.optim.sgd(lr, momentum=0.9, dampening=0.1, weight_decay=wd),
    "nesterov": lambda lr, wd: mml.optim.sgd(lr, momentum=0.9, nesterov=True, weight_decay=wd),
    "adam": lambda lr, wd: mml.optim.adam(lr, weight_decay=wd),
    "amsgrad": lambda lr, wd: mml.optim.adam(lr, weight_decay=wd, amsgrad=True),
    "adamw": lambda lr, wd: mml.optim.adamw(lr, weight_decay=wd),
}


def _members(opts, steps, seed):
    """Each member's params, grads and a non-trivial state (one own update first), and its own update."""
    gen = torch.Generator().manual_seed(seed)
    params = [{"w": torch.randn(3, 2, generator=gen), "b": torch.randn(2, generator=gen)} for _ in opts]
    grads = [{k: 3 * torch.randn(v.shape, generator=gen) for k, v in p.items()} for p in params]
    states = [o.update(g, o.init(p), p, 0)[1] for o, g, p in zip(opts, grads, params)]
    own = [o.update(g, s, p, n) for o, g, s, p, n in zip(opts, grads, states, params, steps)]
    return params, grads, states, own


def _flat_step(opts, steps, params, grads, states, sel=None):
    lay = FlatLayout([(k, tuple(v.shape)) for k, v in params[0].items()])
    flat = lay.pack(stack_mappings(params))
    fields = [
        f
        for f in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffers")
        if getattr(states[0], f, None)
    ]
    packed = {f: lay.pack(stack_mappings([getattr(s, f) for s in states])) for f in fields}
    FlatOptimizer(opts, lay.entries).step(flat, packed, lay.pack(stack_mappings(grads)), steps, sel)
    return lay, flat, packed


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(sorted(_MAKE)),
    lr=st.floats(1e-4, 1.0),
    wd=st.sampled_from([0.0, 0.05]),
    k=st.integers(1, 4),
    step=st.integers(0, 4),
    seed=st.integers(0, 2**16),
)
def test_members_sharing_their_numbers_get_their_own_update_bit_for_bit(kind, lr, wd, k, step, seed):
    # the same optimizer and step for every member: Python scalars in mml.optim's own operations
    opts = [_MAKE[kind](lr, wd)] * k
    params, grads, states, own = _members(opts, [step] * k, seed)
    lay, flat, packed = _flat_step(opts, [step] * k, params, grads, states)
    for m, (p_m, s_m) in enumerate(own):
        got = lay.member(flat, m)
        for name in p_m:
            assert torch.equal(got[name], p_m[name]), (kind, name)
        for f, t in packed.items():
            back = lay.member(t, m)
            for name, v in getattr(s_m, f).items():
                assert torch.equal(back[name], v), (kind, f, name)


@pytest.mark.parametrize("kind", sorted(_MAKE))
def test_members_left_out_of_a_step_keep_their_tensors_bit_for_bit(kind):
    opts = [_MAKE[kind](0.1, 0.01), _MAKE[kind](0.3, 0.0), _MAKE[kind](0.1, 0.01)]
    steps = [2, 0, 5]
    params, grads, states, own = _members(opts, steps, 7)
    before_p = FlatLayout([(n, tuple(v.shape)) for n, v in params[0].items()]).pack(stack_mappings(params))
    sel = torch.tensor([True, False, True])
    lay, flat, packed = _flat_step(opts, steps, params, grads, states, sel)
    assert torch.equal(flat[1], before_p[1])  # member 1 did not move
    for f, t in packed.items():
        assert torch.equal(t[1], lay.pack_member(getattr(states[1], f)))
    for m in (0, 2):  # the others took their own update (columns: to float tolerance)
        got = lay.member(flat, m)
        for name, v in own[m][0].items():
            torch.testing.assert_close(got[name], v, rtol=1e-6, atol=1e-7)


def test_a_scheduled_learning_rate_follows_each_members_step():
    sched = mml.optim.Exponential(0.1, 0.5)
    opts = [mml.optim.adam(sched), mml.optim.adam(sched)]
    steps = [0, 3]  # two steps of one schedule: the learning rates differ
    params, grads, states, own = _members(opts, steps, 3)
    lay, flat, _ = _flat_step(opts, steps, params, grads, states)
    for m in range(2):
        got = lay.member(flat, m)
        for name, v in own[m][0].items():
            torch.testing.assert_close(got[name], v, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(flat[0] - lay.pack_member(params[0]), flat[1] - lay.pack_member(params[1]))


def _phase_of(jobs):
    from mml.strategies._vectorized import _Member
    from mml.strategies._vectorized_check import plan_leaves
    from mml.strategies._vectorized_loop import StackedPhase

    members = [_Member(j, mml.training.init(j.experiment, j.key)) for j in jobs]
    ph = StackedPhase(members, [plan_leaves(j.experiment.plan)[0] for j in jobs])
    ph._prepare()
    return ph


def test_each_members_stacked_batches_are_its_own_samplers_batches():
    # three members over different rows (folds of unequal size) and one sharing member 0's rows
    fs = make_featureset(52)
    exp = make_experiment(fs)
    folds = mml.KFoldSplitter(3, seed=1).folds(fs.view())
    exps = [
        mml.training.Experiment(
            {"toy": mml.strategies.fold_featureset(fs, tr, va, key=0)}, exp.graph, exp.plan
        )
        for tr, va in folds
    ]
    jobs = [Job(e, mml.random.fold_in(mml.random.key(0), i)) for i, e in enumerate([*exps, exps[0]])]
    ph = _phase_of(jobs)
    assert ph.x_src[3] is ph.x_src[0] and ph.t_src[3] is ph.t_src[0]  # member 3 reads member 0's rows
    assert len({id(s) for s in ph.x_src}) == 3
    for epoch in (0, 1):
        orders = {
            k: ph.bindings[k].sampler.epoch_order(
                ph.prepared[k], mml.random.fold_in(ph.stream_keys[k], epoch)
            )
            for k in range(4)
        }
        idx, sizes = ph._epoch_index(orders)
        xs, ts = _gather(ph.x_src, idx), _gather(ph.t_src, idx)
        for k in range(4):
            own = list(ph.bindings[k].sampler.batches(ph.prepared[k], key=ph.stream_keys[k], epoch=epoch))
            assert [s[k] for s in sizes[: len(own)]] == [len(b) for b in own]
            assert all(s[k] == 0 for s in sizes[len(own) :])
            for s, b in enumerate(own):
                n = len(b)
                got = xs[k, s].numpy()
                assert np.array_equal(got[:n], np.asarray(b.features, np.float32))
                assert not got[n:].any()  # the padding: the zero row
                assert np.array_equal(ts[k, s, :n].numpy(), np.asarray(b.targets, np.float32))


def test_a_member_that_fails_mid_epoch_leaves_the_others_as_their_own_runs():
    # member 1's learning rate overflows its loss after a few steps of the first epoch
    exp = make_experiment(make_featureset(96), n_epochs=2)
    big = mml.strategies.set_path(exp, "graph.nodes.mlp.optimizer.lr", 1e30)
    jobs = [Job(e, mml.random.key(i), keep_state=True) for i, e in enumerate([exp, big, exp])]
    seq = LocalExecutor().map(jobs)
    vec = VectorizedExecutor().map(jobs)
    assert [o.status for o in vec] == [o.status for o in seq] == ["completed", "failed", "completed"]
    for a, b in zip(seq, vec):
        for col in ("phase", "epoch", "batch", "step", "name"):
            assert np.array_equal(getattr(a.history, col), getattr(b.history, col)), col
        np.testing.assert_allclose(a.history.value, b.history.value, rtol=2e-5, atol=1e-6)
        assert (a.state.step, a.state.epoch, a.state.batch) == (b.state.step, b.state.epoch, b.state.batch)
    fa, fb = seq[1].history.failure, vec[1].history.failure
    assert (fa.epoch, fa.batch, fa.message) == (fb.epoch, fb.batch, fb.message)
    assert 0 < fa.batch < 3  # mid-epoch: the epoch has batches after it (4 of 16 rows)


def test_pooling_by_the_folds_rows_equals_pooling_by_uuid():
    from mml.strategies._cv import _pool_at, pool_predictions

    fs = make_featureset(52)
    exp = make_experiment(fs)
    cv = mml.strategies.cross_validate(
        exp, featureset="toy", splitter=mml.KFoldSplitter(3, seed=1), on="train", key=0, vectorize=True
    )
    view = fs["train"]
    uuids = fs.sample_uuids[np.asarray(view.indices)]
    where = {int(r): i for i, r in enumerate(view.indices)}
    positions = [np.array([where[int(r)] for r in f.val_rows], np.int64) for f in cv.folds]
    per_fold = [f.predictions["val"] for f in cv.folds]
    fast, slow = _pool_at("val", per_fold, uuids, positions), pool_predictions("val", per_fold, uuids)
    assert fast == slow and cv.pooled["val"] == slow
    assert fast.fold.tolist() == slow.fold.tolist() and len(set(fast.fold.tolist())) == 3
    # rows that are not the fold's own (here: another order) leave it to the UUID matching
    assert _pool_at("val", per_fold, uuids, [positions[0][::-1], *positions[1:]]) is None
    assert _pool_at("val", per_fold[:2], uuids, positions[:2]) is None  # a row no fold predicted


def _two_node_experiment(mode: str, freeze: bool, dropout: float):
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
    from mml.models import SequentialMLP
    from mml.training import AppliedLoss, Experiment, TrainPhase

    graph = ModelGraph.of(
        ModelNode(
            "enc",
            SequentialMLP(hidden=(8,), output_shape=(1,), dropout=dropout),
            FeatureSetRef("toy"),
            optimizer=mml.optim.adam(1e-2),
        ),
        ModelNode(
            "head", SequentialMLP(hidden=(4,)), NodeRef("enc"), optimizer=mml.optim.sgd(0.05, momentum=0.9)
        ),
        optimizer=mml.optim.adamw(1e-2, weight_decay=0.01),
    )
    if freeze:
        graph = graph.freeze("enc")
    losses = (
        [AppliedLoss("mse", "head")]
        if freeze
        else [AppliedLoss("mse", "enc"), AppliedLoss("mse", "head", weight=0.5)]
    )
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["enc"],
        losses=losses,
        n_epochs=2,
        sampler=mml.SimpleSampler(16),
        mode=mode,
    )
    return Experiment({"toy": make_featureset(60)}, graph, phase)


@pytest.mark.parametrize(
    ("mode", "freeze", "dropout"),
    [("graphwise", False, 0.2), ("stagewise", False, 0.0), ("graphwise", True, 0.3)],
)
def test_two_node_graphs_equal_their_sequential_runs(mode, freeze, dropout):
    # one packed optimizer over both nodes (graphwise), one per node (stagewise), a frozen upstream
    exp = _two_node_experiment(mode, freeze, dropout)
    jobs = [Job(exp, mml.random.fold_in(mml.random.key(5), i), keep_state=True) for i in range(3)]
    seq, vec = LocalExecutor().map(jobs), VectorizedExecutor().map(jobs)
    for a, b in zip(seq, vec):
        assert a.status == b.status == "completed"
        for col in ("phase", "epoch", "batch", "step", "name"):
            assert np.array_equal(getattr(a.history, col), getattr(b.history, col)), col
        np.testing.assert_allclose(a.history.value, b.history.value, rtol=2e-5, atol=1e-6)
        assert dict(a.state.opt_steps) == dict(b.state.opt_steps)
        for label in ("enc", "head"):
            pa, pb = a.state.params(label).params, b.state.params(label).params
            for k in pa:
                np.testing.assert_allclose(pa[k].numpy(), pb[k].numpy(), rtol=1e-4, atol=1e-6)
    if freeze:  # the frozen node's params are its initial ones, bit for bit
        s0 = mml.training.init(exp, jobs[0].key)
        for k, v in s0.params("enc").params.items():
            assert torch.equal(vec[0].state.params("enc").params[k], v)
