"""More of the training step pinned by value (issue 17): heads with different role sets, the dropout
key, explicit CPU placement, hand-made optimizer states, zero gradients of an idle node, batch-norm
statistics, and the counters of a step with no gradient (scikit-learn nodes only).

Every expectation is computed independently: ``torch.optim`` / ``torch.nn.functional`` on the same
batches, the graph's own :func:`mml.graph.forward` with the documented key, or a torch module fed
the same data.
"""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef, forward
from mml.models import SequentialMLP, SklearnModel, TorchModule
from mml.random import fold_in
from mml.training import GRAPH_OPTIMIZER, AppliedLoss, Experiment, InputBinding, TrainPhase, steps

from .conftest import make_featureset

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _linear(label, ref=None, **kw):
    return ModelNode(label, SequentialMLP(hidden=()), ref or FeatureSetRef("toy"), **kw)


def _ref(state, label):
    return {k: torch.nn.Parameter(v.detach().clone().double()) for k, v in state.params(label).params.items()}


def _lin(p, x):
    return x @ p["layers.0.weight"].T + p["layers.0.bias"]


def _assert_params(state, label, ref, **tol):
    for k, v in state.params(label).params.items():
        np.testing.assert_allclose(
            v.detach().double().numpy(), ref[k].detach().numpy(), **(tol or {"rtol": 1e-5, "atol": 1e-6})
        )


def _tagged(n=32):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    fs = mml.FeatureSet.from_dict(
        {"x": x, "y": (x @ np.array([1.0, -1.0, 0.5], np.float32)), "soh": rng.random(n)},
        features="x",
        targets="y",
        tags="soh",
        label="toy",
    )
    return fs.with_split("train", np.arange(n))


def test_heads_with_different_role_sets_each_run_their_own_roles():
    # head a: one role ("default"); head b: a pair sampler ("anchor", "pair")
    g = ModelGraph.of(_linear("a", optimizer=mml.optim.sgd(0.1)), _linear("b", optimizer=mml.optim.sgd(0.1)))
    phase = TrainPhase(
        "fit",
        {
            "a": InputBinding("toy", "train", mml.SimpleSampler(8, shuffle=False)),
            "b": InputBinding(
                "toy", "train", mml.PairedSampler({"soh": mml.samplers.similar(0.2)}, batch_size=8)
            ),
        },
        [
            AppliedLoss("mse", "a"),
            AppliedLoss("mse", "b", inputs=("pair.outputs", "pair.targets"), weight=2.0),
        ],
        n_epochs=1,
    )
    exp = Experiment({"toy": _tagged()}, g, phase)
    state = mml.init(exp, 0)
    ra, rb = _ref(state, "a"), _ref(state, "b")
    oa, ob = torch.optim.SGD(list(ra.values()), lr=0.1), torch.optim.SGD(list(rb.values()), lr=0.1)
    n = 0
    for st, ctx in steps(exp, phase, state):
        if ctx.event != "batch":
            continue
        n += 1
        assert {r: set(v) for r, v in ctx.inputs.items()} == {
            "default": {"a"},
            "anchor": {"b"},
            "pair": {"b"},
        }
        assert {r: set(v) for r, v in ctx.outputs.items()} == {
            "default": {"a"},
            "anchor": {"b"},
            "pair": {"b"},
        }
        xa, ya = ctx.inputs["default"]["a"].features.double(), ctx.inputs["default"]["a"].targets.double()
        xp, yp = ctx.inputs["pair"]["b"].features.double(), ctx.inputs["pair"]["b"].targets.double()
        xan = ctx.inputs["anchor"]["b"].features.double()
        for role, x in (("anchor", xan), ("pair", xp)):
            np.testing.assert_allclose(
                ctx.outputs[role]["b"].detach().double().numpy(),
                _lin(rb, x).detach().numpy(),
                rtol=1e-5,
                atol=1e-6,
            )
        oa.zero_grad(), ob.zero_grad()
        la, lb = F.mse_loss(_lin(ra, xa), ya), F.mse_loss(_lin(rb, xp), yp)
        fa, fb = float(la.detach()), float(lb.detach())
        (la + 2.0 * lb).backward()
        oa.step(), ob.step()
        assert ctx.losses["a.mse"] == pytest.approx(fa, rel=1e-5)
        assert ctx.losses["b.mse"] == pytest.approx(fb, rel=1e-5)
        assert ctx.losses["loss"] == pytest.approx(fa + 2.0 * fb, rel=1e-5)
        _assert_params(st, "a", ra)
        _assert_params(st, "b", rb)
    assert n == 4


def test_the_dropout_key_is_the_phase_key_folded_with_the_step():
    g = ModelGraph.of(
        ModelNode(
            "mlp",
            SequentialMLP(hidden=(16,), dropout=0.5),
            FeatureSetRef("toy"),
            optimizer=mml.optim.sgd(0.1),
        )
    )
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["mlp"],
        losses=AppliedLoss("mse", "mlp"),
        n_epochs=1,
        sampler=mml.SimpleSampler(16),
    )
    exp = Experiment({"toy": make_featureset(n=40)}, g, phase)
    state = mml.init(exp, 4)
    before = state
    seen = []
    for st, ctx in steps(exp, phase, state):
        if ctx.event != "batch":
            continue
        data = ctx.inputs["default"]
        k = fold_in(fold_in(state.key, "fit"), ctx.step)
        want = forward(g, before.graph, data, training=True, key=k).outputs["mlp"]
        got = ctx.output("mlp")
        assert torch.equal(got.detach(), want.detach())
        plain = forward(g, before.graph, data, training=False).outputs["mlp"]
        assert not torch.allclose(got.detach(), plain.detach())  # dropout was on
        seen.append(got.detach())
        before = st
    assert len(seen) == 2


def test_nodes_placed_on_the_cpu_train_bit_for_bit_like_unplaced_ones():
    def run(device):
        g = ModelGraph.of(_linear("lin", optimizer=mml.optim.adam(0.05), device=device))
        phase = TrainPhase.simple(
            "fit",
            featureset="toy",
            heads=["lin"],
            losses=AppliedLoss("mse", "lin"),
            n_epochs=1,
            sampler=mml.SimpleSampler(16),
        )
        exp = Experiment({"toy": make_featureset(n=40)}, g, phase)
        return list(steps(exp, phase, mml.init(exp, 0)))[-1][0]

    placed, plain = run("cpu"), run(None)
    assert placed.step == plain.step == 2
    for k, v in plain.params("lin").params.items():
        assert torch.equal(placed.params("lin").params[k], v)
        assert placed.params("lin").params[k].device.type == "cpu"


@pytest.mark.parametrize("mode", ["stagewise", "graphwise"])
def test_an_optimizer_state_made_by_hand_without_a_count_starts_at_update_zero(mode):
    from mml.backends import trainable_dict

    opt = mml.optim.adam(0.05)
    g = ModelGraph.of(_linear("lin", optimizer=opt if mode == "stagewise" else None))
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["lin"],
        losses=AppliedLoss("mse", "lin"),
        n_epochs=1,
        sampler=mml.SimpleSampler(16),
        mode=mode,
        optimizer=opt if mode == "graphwise" else None,
    )
    exp = Experiment({"toy": make_featureset(n=40)}, g, phase)
    state = mml.init(exp, 0)
    params = trainable_dict(state.params("lin"))
    if mode == "stagewise":
        label, init = "lin", opt.init(params)
    else:
        label, init = GRAPH_OPTIMIZER, opt.init({f"lin/{k}": v for k, v in params.items()})
    state = state.with_opt_state(label, init)
    assert label not in state.opt_steps
    rp = _ref(state, "lin")
    ref = torch.optim.Adam(list(rp.values()), lr=0.05)
    for st, ctx in steps(exp, phase, state):
        if ctx.event != "batch":
            continue
        sd = ctx.input("lin")
        ref.zero_grad()
        F.mse_loss(_lin(rp, sd.features.double()), sd.targets.double()).backward()
        ref.step()
        _assert_params(st, "lin", rp)
        assert st.opt_steps == {label: ctx.batch + 1}


def test_graph_wise_a_node_not_run_in_an_alternate_step_gets_a_zero_gradient():
    g = ModelGraph.of(_linear("a"), _linear("b", FeatureSetRef("other")), optimizer=mml.optim.sgd(0.1))
    phase = TrainPhase(
        "fit",
        {
            "a": InputBinding("toy", "train", mml.SimpleSampler(16, shuffle=False)),
            "b": InputBinding("other", "train", mml.SimpleSampler(16, shuffle=False)),
        },
        [AppliedLoss("mse", "a"), AppliedLoss("mse", "b")],
        n_epochs=1,
        batch_schedule="alternate_strict",
        mode="graphwise",
    )
    exp = Experiment(
        {"toy": make_featureset(n=40), "other": make_featureset(n=40, seed=1, label="other")}, g, phase
    )
    state = mml.init(exp, 0)
    refs = {n: _ref(state, n) for n in ("a", "b")}
    opt = torch.optim.SGD([p for r in refs.values() for p in r.values()], lr=0.1)
    order = []
    for st, ctx in steps(exp, phase, state):
        if ctx.event != "batch":
            continue
        (head,) = ctx.inputs["default"]
        order.append(head)
        idle = "b" if head == "a" else "a"
        before = {k: v.detach().clone() for k, v in refs[idle].items()}
        sd = ctx.input(head)
        opt.zero_grad()
        F.mse_loss(_lin(refs[head], sd.features.double()), sd.targets.double()).backward()
        opt.step()
        _assert_params(st, head, refs[head])
        _assert_params(st, idle, before)
        assert st.opt_steps == {GRAPH_OPTIMIZER: len(order)}
    assert order == ["a", "b", "a", "b"]


def test_batch_norm_statistics_of_the_step_are_kept_in_the_new_state():
    spec = TorchModule("tests.backends.backend_factories:bn_net", {"hidden": 4, "p": 0.0}, output_shape=(1,))
    g = ModelGraph.of(ModelNode("bn", spec, FeatureSetRef("toy"), optimizer=mml.optim.sgd(0.1)))
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["bn"],
        losses=AppliedLoss("mse", "bn"),
        n_epochs=1,
        sampler=mml.SimpleSampler(16),
    )
    exp = Experiment({"toy": make_featureset(n=40)}, g, phase)
    state = mml.init(exp, 0)
    from tests.backends.backend_factories import bn_net

    net = bn_net((3,), (1,), hidden=4, p=0.0)
    rec = state.params("bn")
    net.load_state_dict({**rec.params, **rec.buffers})
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for st, ctx in steps(exp, phase, state):
        if ctx.event != "batch":
            continue
        sd = ctx.input("bn")
        opt.zero_grad()
        F.mse_loss(net(sd.features), sd.targets).backward()
        opt.step()
        new = st.params("bn")
        for k, v in net.state_dict().items():
            got = new.buffers[k] if k in new.buffers else new.params[k]
            np.testing.assert_allclose(
                got.detach().numpy(), v.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=k
            )
        assert int(new.buffers["1.num_batches_tracked"]) == ctx.batch + 1
    assert int(state.params("bn").buffers["1.num_batches_tracked"]) == 0  # the input state is unchanged


def test_a_step_with_no_gradient_advances_the_counters():
    g = ModelGraph.of(
        ModelNode("sgd", SklearnModel("sklearn.linear_model:SGDRegressor"), FeatureSetRef("toy"))
    )
    phase = TrainPhase(
        "fit",
        {"sgd": InputBinding("toy", "train", mml.SimpleSampler(10, shuffle=False))},
        AppliedLoss("mse", "sgd"),
        n_epochs=2,
    )
    exp = Experiment({"toy": make_featureset(n=40)}, g, phase)
    got = [
        (c.epoch, c.batch, c.step, s.epoch, s.batch, s.step)
        for s, c in steps(exp, phase, mml.init(exp, 0))
        if c.event == "batch"
    ]
    assert got == [(e, b, 3 * e + b, e, b + 1, 3 * e + b + 1) for e in (0, 1) for b in range(3)]


def test_the_context_names_the_stream_that_fed_the_step():
    from mml.samplers import MultiStreamSampler

    g = ModelGraph.of(_linear("lin", optimizer=mml.optim.sgd(0.1)))
    sampler = MultiStreamSampler({"main": mml.SimpleSampler(16)})
    phase = TrainPhase(
        "fit", {"lin": InputBinding("toy", "train", sampler, "main")}, AppliedLoss("mse", "lin"), n_epochs=1
    )
    exp = Experiment({"toy": make_featureset(n=40)}, g, phase)
    got = [c for _, c in steps(exp, phase, mml.init(exp, 0)) if c.event == "batch"]
    assert [(c.stream, c.streams) for c in got] == [("main", ("main",))] * 2


def test_stage_wise_each_node_learns_from_its_own_losses_only():
    # a -> b, a loss on each: stage-wise, b's loss does not reach a (the forward pass detaches)
    g = ModelGraph.of(
        ModelNode(
            "a",
            SequentialMLP(hidden=(), output_shape=(2,)),
            FeatureSetRef("toy", targets="y"),
            optimizer=mml.optim.sgd(0.1),
        ),
        ModelNode("b", SequentialMLP(hidden=()), NodeRef("a"), optimizer=mml.optim.sgd(0.1)),
    )
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["a"],
        losses=[
            AppliedLoss("mse", "b"),
            AppliedLoss(mml.training.Loss(f"{__name__}:mean_out"), "a", label="m"),
        ],
        n_epochs=1,
        sampler=mml.SimpleSampler(16),
    )
    exp = Experiment({"toy": make_featureset(n=40)}, g, phase)
    state = mml.init(exp, 0)
    ra, rb = _ref(state, "a"), _ref(state, "b")
    oa, ob = torch.optim.SGD(list(ra.values()), lr=0.1), torch.optim.SGD(list(rb.values()), lr=0.1)
    for st, ctx in steps(exp, phase, state):
        if ctx.event != "batch":
            continue
        sd = ctx.input("a")
        x, y = sd.features.double(), sd.targets.double()
        oa.zero_grad(), ob.zero_grad()
        ha = _lin(ra, x)
        mean_out(ha, y).backward()
        F.mse_loss(_lin(rb, ha.detach()), y).backward()
        oa.step(), ob.step()
        _assert_params(st, "a", ra)
        _assert_params(st, "b", rb)


def mean_out(outputs, targets):
    """A loss of node a's own: the mean of its outputs squared (targets unused)."""
    return (outputs**2).mean()


def test_batch_norm_statistics_of_a_node_that_is_not_updated_evolve_too():
    # enc: no optimizer, not frozen (runs in training mode, its statistics move); head: trained
    spec = TorchModule("tests.backends.backend_factories:bn_net", {"hidden": 4, "p": 0.0}, output_shape=(2,))
    g = ModelGraph.of(
        ModelNode("enc", spec, FeatureSetRef("toy")),
        ModelNode("head", SequentialMLP(hidden=()), NodeRef("enc"), optimizer=mml.optim.sgd(0.1)),
    )
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["enc"],
        losses=AppliedLoss("mse", "head"),
        n_epochs=1,
        sampler=mml.SimpleSampler(16),
    )
    exp = Experiment({"toy": make_featureset(n=40)}, g, phase)
    state = mml.init(exp, 0)
    from tests.backends.backend_factories import bn_net

    net = bn_net((3,), (2,), hidden=4, p=0.0)
    rec = state.params("enc")
    net.load_state_dict({**rec.params, **rec.buffers})
    net.train()
    for st, ctx in steps(exp, phase, state):
        if ctx.event != "batch":
            continue
        with torch.no_grad():
            net(ctx.input("enc").features)
        new = st.params("enc")
        for k, v in net.state_dict().items():
            got = new.buffers[k] if k in new.buffers else new.params[k]
            np.testing.assert_allclose(got.detach().numpy(), v.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
        assert st.opt_steps == {"head": ctx.batch + 1}
