"""One training step and the fold's counters pinned against a hand-written torch loop (issue 17).

A linear node (``SequentialMLP(hidden=())``) trained on two weighted losses: after every step
the parameters equal ``torch.optim`` run on the same batches, the logged losses equal
``torch.nn.functional`` on them, and step / epoch / batch / position counters are exact.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
import pytest

import mml
from mml.training import GRAPH_OPTIMIZER, AppliedLoss, Experiment, Loss, TrainPhase, steps

from .conftest import make_featureset

torch = pytest.importorskip("torch")
F = torch.nn.functional


def nan_loss(outputs, targets):
    return (outputs - targets).abs().mean() * float("nan")


def _f(t) -> float:
    return float(t.detach())


def _experiment(mode: str, optimizer, n_epochs: int = 2, losses=None):
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import SequentialMLP

    fs = make_featureset(n=40)
    node_opt = optimizer if mode == "stagewise" else None
    g = ModelGraph.of(ModelNode("lin", SequentialMLP(hidden=()), FeatureSetRef("toy"), optimizer=node_opt))
    losses = losses or [AppliedLoss("mse", "lin"), AppliedLoss("mae", "lin", weight=0.5)]
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["lin"],
        losses=losses,
        n_epochs=n_epochs,
        sampler=mml.SimpleSampler(16),
        mode=mode,
        optimizer=optimizer if mode == "graphwise" else None,
    )
    return Experiment({"toy": fs}, g, phase), phase


def _ref_params(state):
    p = state.params("lin").params
    return {k: torch.nn.Parameter(v.detach().clone().double()) for k, v in p.items()}


@pytest.mark.parametrize("mode", ["stagewise", "graphwise"])
@pytest.mark.parametrize(
    ("opt", "ref"),
    [
        (lambda: mml.optim.sgd(0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
        (lambda: mml.optim.adam(0.05), lambda ps: torch.optim.Adam(ps, lr=0.05)),
    ],
    ids=["sgd", "adam"],
)
def test_every_step_equals_torch_optim_on_the_same_batches(mode, opt, ref):
    exp, phase = _experiment(mode, opt())
    state = mml.init(exp, 0)
    rp = _ref_params(state)
    ref_opt = ref(list(rp.values()))
    key = GRAPH_OPTIMIZER if mode == "graphwise" else "lin"
    before = state
    batch_losses: list[dict] = []
    events = []
    for st, ctx in steps(exp, phase, state):
        events.append((ctx.event, ctx.epoch, ctx.batch, ctx.step, st.step, st.epoch, st.batch))
        if ctx.event == "batch":
            sd = ctx.input("lin")
            x, y = sd.features.double(), sd.targets.double()
            ref_opt.zero_grad()
            out = x @ rp["layers.0.weight"].T + rp["layers.0.bias"]
            mse, mae = F.mse_loss(out, y), F.l1_loss(out, y)
            # the context holds the step's forward outputs (with the parameters before the update)
            np.testing.assert_allclose(
                ctx.output("lin").detach().double().numpy(), out.detach().numpy(), rtol=1e-5, atol=1e-6
            )
            (mse + 0.5 * mae).backward()
            ref_opt.step()
            assert ctx.losses.keys() == {"lin.mse", "lin.mae", "loss"}
            assert ctx.losses["lin.mse"] == pytest.approx(_f(mse), rel=1e-5)
            assert ctx.losses["lin.mae"] == pytest.approx(_f(mae), rel=1e-5)
            assert ctx.losses["loss"] == ctx.losses["lin.mse"] + 0.5 * ctx.losses["lin.mae"]
            for k, v in st.params("lin").params.items():
                np.testing.assert_allclose(
                    v.detach().double().numpy(), rp[k].detach().numpy(), rtol=1e-5, atol=1e-6
                )
            assert st.opt_steps == {key: before.step + 1} and st.opt_states.keys() == {key}
            assert ctx.step == before.step and st.step == before.step + 1
            assert st.batch == ctx.batch + 1 and st.epoch == ctx.epoch
            assert ctx.phase == "fit" and ctx.stream == "default" and ctx.streams == ("default",)
            batch_losses.append(dict(ctx.losses))
            pos = st.position
            assert (pos.stage, pos.epoch, pos.batch, pos.n_steps) == (
                "running",
                ctx.epoch,
                ctx.batch + 1,
                st.step,
            )
            n_in_epoch = ctx.batch + 1
            mine = batch_losses[-n_in_epoch:]
            assert pos.sums == tuple(
                (k, sum(b[k] for b in mine), n_in_epoch) for k in ("lin.mse", "lin.mae", "loss")
            )
        elif ctx.event == "epoch_end":
            mine = batch_losses[-2:]
            assert dict(ctx.losses) == {k: sum(b[k] for b in mine) / 2 for k in mine[0]}
            assert st.position.epoch == ctx.epoch + 1 and st.position.batch == 0 and st.position.sums == ()
        before = st
    assert events == [
        ("batch", 0, 0, 0, 1, 0, 1),
        ("batch", 0, 1, 1, 2, 0, 2),
        ("epoch_end", 0, -1, 2, 2, 1, 2),
        ("batch", 1, 0, 2, 3, 1, 1),
        ("batch", 1, 1, 3, 4, 1, 2),
        ("epoch_end", 1, -1, 4, 4, 2, 2),
        ("phase_end", 2, -1, 4, 4, 2, 2),
    ]
    end = before.position
    assert (end.stage, end.epoch, end.batch, end.n_steps, end.phase) == ("ended", 2, 0, 4, "fit")
    assert state.step == 0 and state.opt_states == {}  # the input state is unchanged


def test_a_second_phase_continues_the_optimizer_count():
    exp, phase = _experiment("stagewise", mml.optim.adam(0.05), n_epochs=1)
    first = [st for st, _ in steps(exp, phase, mml.init(exp, 0))][-1]
    assert first.opt_steps == {"lin": 2} and first.step == 2
    second = [st for st, _ in steps(exp, phase, first)][-1]
    assert second.opt_steps == {"lin": 4} and second.step == 4 and second.epoch == 1


def test_a_non_finite_loss_names_phase_epoch_batch_step_and_the_bad_losses():
    exp, phase = _experiment(
        "stagewise",
        mml.optim.sgd(0.1),
        losses=[AppliedLoss("mse", "lin"), AppliedLoss(Loss(f"{__name__}:nan_loss"), "lin", label="bad")],
    )
    state = mml.init(exp, 0)
    with pytest.raises(mml.TrainingError) as info:
        for _ in steps(exp, phase, state):
            pass
    msg = str(info.value)
    assert msg.startswith("non-finite loss in phase 'fit', epoch 0, batch 0 (step 0): bad=nan, loss=nan; ")
    assert msg.endswith(
        "the state of the last good step is kept — lower the learning rate, check the inputs for NaN/inf, "
        "or scale the data"
    )
    assert "lin.mse" not in msg
    kept = info.value.state
    assert kept.step == 0 and kept.opt_steps == {"lin": 0}
    assert all(torch.equal(kept.params("lin").params[k], v) for k, v in state.params("lin").params.items())
    assert not math.isfinite(float("nan"))


def test_a_callback_lr_scale_reaches_the_optimizer():
    from mml.callbacks import LRSchedulerOnPlateau

    exp, phase = _experiment("stagewise", mml.optim.sgd(0.1), n_epochs=3)
    # mode="max" on a falling loss: epoch 1 does not improve on epoch 0, so epoch 2 trains at half the rate
    cb = LRSchedulerOnPlateau(monitor="loss", mode="max", factor=0.5, patience=0)
    phase = attrs.evolve(phase, callbacks=(cb,))
    exp = attrs.evolve(exp, plan=phase)
    state = mml.init(exp, 0)
    rp = _ref_params(state)
    ref = torch.optim.SGD(list(rp.values()), lr=0.1)
    last = state
    for st, ctx in steps(exp, phase, state):
        last = st
        if ctx.event != "batch":
            continue
        for group in ref.param_groups:
            group["lr"] = 0.1 * (0.5 if ctx.epoch == 2 else 1.0)
        sd = ctx.input("lin")
        x, y = sd.features.double(), sd.targets.double()
        ref.zero_grad()
        out = x @ rp["layers.0.weight"].T + rp["layers.0.bias"]
        (F.mse_loss(out, y) + 0.5 * F.l1_loss(out, y)).backward()
        ref.step()
    for k, v in last.params("lin").params.items():
        np.testing.assert_allclose(v.detach().double().numpy(), rp[k].detach().numpy(), rtol=1e-5, atol=1e-6)
