"""Multi-role batches (paired / triplet samplers) feeding a TrainPhase: role-qualified losses,
per-sample weights and masks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import mml
from mml.backends import to_numpy
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP
from mml.samplers import PairedSampler, TripletSampler, dissimilar, similar
from mml.training import AppliedLoss, Experiment, Loss, TrainPhase

torch = pytest.importorskip("torch")

TRIPLET = ("anchor.outputs", "positive.outputs", "negative.outputs")


@pytest.fixture(scope="module")
def battery() -> mml.FeatureSet:
    from mml.scalers import PerSampleZeroStart

    fs = mml.datasets.load_battery(300, seed=0)
    fs = fs.split(mml.RandomSplitter({"train": 0.8, "test": 0.2}, seed=0))
    fs = mml.scalers.fit_transform(fs, PerSampleZeroStart(), domain="features", fit_on="train")
    return mml.scalers.fit_transform(fs, "standard", domain="features", fit_on="train")


def encoder(backend: str = "torch") -> ModelGraph:
    return ModelGraph.of(
        ModelNode(
            "enc",
            SequentialMLP(hidden=(32,), output_shape=(4,), backend=backend),
            FeatureSetRef("battery", targets=()),
            optimizer=mml.optim.adam(3e-3),
        )
    )


def phase(sampler, losses, n_epochs: int = 1) -> TrainPhase:
    return TrainPhase.simple(
        "fit", featureset="battery", heads=["enc"], losses=losses, n_epochs=n_epochs, sampler=sampler
    )


def first_losses(exp: Experiment, state, name: str, k: int = 4) -> float:
    """The mean loss of the first ``k`` batches, computed with ``state``'s params (before each update)."""
    ctxs = itertools.islice(mml.steps(exp, exp.plan, state), k)
    return float(np.mean([ctx.losses[name] for _, ctx in ctxs]))


def test_triplet_loss_trains_an_embedding_of_similar_soh(battery):
    sampler = TripletSampler({"soh": similar(0.01)}, {"soh": dissimilar(0.05)}, batch_size=32)
    loss = AppliedLoss("triplet_margin", "enc", inputs=TRIPLET)
    exp = Experiment({"battery": battery}, encoder(), phase(sampler, loss, n_epochs=6))
    s0 = mml.init(exp, 0)
    s1, h = mml.run(exp, s0)
    assert h.status == "completed", h.error
    # the same triplets (same key, epoch 0) before and after training
    before, after = first_losses(exp, s0, "loss"), first_losses(exp, s1, "loss")
    assert after < 0.5 * before, (before, after)
    ctx = next(mml.steps(exp, exp.plan, s0))[1]
    assert set(ctx.outputs) == {"anchor", "positive", "negative"}
    assert ctx.output("enc", "anchor").shape == (32, 4)


def test_triplet_loss_value_is_the_torch_formula(battery):
    sampler = TripletSampler({"soh": similar(0.01)}, {"soh": dissimilar(0.05)}, batch_size=16)
    loss = AppliedLoss(Loss("triplet_margin", {"margin": 0.5}), "enc", inputs=TRIPLET)
    exp = Experiment({"battery": battery}, encoder(), phase(sampler, loss))
    _, ctx = next(mml.steps(exp, exp.plan, mml.init(exp, 0)))
    a, p, n = (ctx.output("enc", r).detach() for r in ("anchor", "positive", "negative"))
    want = torch.nn.functional.triplet_margin_loss(a, p, n, margin=0.5)
    assert ctx.losses["enc.triplet_margin"] == pytest.approx(float(want), rel=1e-6)


def contrastive_setup(battery, backend="torch"):
    # a tight tolerance with fallback partners: fallbacks have mask False and weight min_weight = 0
    sampler = PairedSampler(
        {"soh": similar(0.002, weight_mode="linear", min_weight=0.0)},
        batch_size=64,
        allow_fallback=True,
        max_tries=1,
    )
    loss = AppliedLoss(
        Loss("contrastive", {"similar": True, "margin": 1.0}),
        "enc",
        inputs=("anchor.outputs", "pair.outputs"),
    )
    return Experiment({"battery": battery}, encoder(backend), phase(sampler, loss))


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_batch_weights_and_mask_are_honoured(battery, backend):
    if backend == "tensorflow":
        pytest.importorskip("tensorflow")
    exp = contrastive_setup(battery, backend)
    checked = 0
    for _, ctx in itertools.islice(mml.steps(exp, exp.plan, mml.init(exp, 0)), 3):
        pair = ctx.input("enc", "pair")
        w, m = to_numpy(pair.weights).astype(np.float64), to_numpy(pair.mask).astype(bool)
        assert w.min() == 0.0 and not m.all() and m.any()  # the batch has weights and masked samples
        a = to_numpy(ctx.output("enc", "anchor")).astype(np.float64)
        b = to_numpy(ctx.output("enc", "pair")).astype(np.float64)
        per = np.sum((a - b) ** 2, axis=1)
        eff = w * m
        want = float(np.sum(eff * per) / np.sum(eff))
        assert ctx.losses["loss"] == pytest.approx(want, rel=1e-5)
        assert ctx.losses["loss"] != pytest.approx(float(per.mean()), rel=1e-3)  # not the plain mean
        checked += 1
    assert checked == 3


def test_masked_out_samples_do_not_move_the_params(battery):
    """A step whose only valid samples are masked out (weight 0 everywhere) changes nothing learned."""
    sampler = PairedSampler(
        {"soh": similar(1e-9, weight_mode="linear", min_weight=0.0)},
        batch_size=64,
        allow_fallback=True,
        max_tries=1,
    )
    loss = AppliedLoss(
        Loss("contrastive", {"similar": True}), "enc", inputs=("anchor.outputs", "pair.outputs")
    )
    exp = Experiment({"battery": battery}, encoder(), phase(sampler, loss))
    s0 = mml.init(exp, 0)
    s1, ctx = next(mml.steps(exp, exp.plan, s0))
    pair = ctx.input("enc", "pair")
    assert not to_numpy(pair.mask).any()  # no sample meets a 1e-9 tolerance: every pair is a fallback
    assert ctx.losses["loss"] == 0.0
    for k, v in s0.params("enc").params.items():
        assert torch.equal(v, s1.params("enc").params[k])


def test_unqualified_loss_on_a_multi_role_sampler_is_an_error_at_construction(battery):
    sampler = PairedSampler({"soh": similar(0.01)}, batch_size=32)
    with pytest.raises(mml.TrainingError, match=r"role\(s\) 'default'.*'anchor', 'pair'"):
        Experiment(
            {"battery": battery},
            encoder(),
            phase(
                sampler,
                AppliedLoss(Loss("contrastive", {"similar": True}), "enc", inputs=("outputs", "outputs")),
            ),
        )
    with pytest.raises(
        mml.TrainingError, match=r"role\(s\) 'positive', 'negative'.*'anchor.outputs', 'pair.outputs'"
    ):
        Experiment(
            {"battery": battery},
            encoder(),
            phase(sampler, AppliedLoss("triplet_margin", "enc", inputs=TRIPLET)),
        )


def test_contrastive_inputs_are_checked():
    with pytest.raises(mml.ConfigError, match="takes 3 inputs"):
        AppliedLoss("contrastive", "enc", inputs=("anchor.outputs", "pair.outputs"))
    with pytest.raises(mml.ConfigError, match="takes 2 inputs"):
        AppliedLoss(Loss("contrastive", {"similar": False}), "enc", inputs=TRIPLET)
    spec = AppliedLoss("contrastive", "enc", inputs=("anchor.outputs", "pair.outputs", "pair.tags.same"))
    assert spec.roles == ("anchor", "pair")
    assert mml.io.roundtrip(spec) == spec
