"""How sampler streams feed a TrainPhase: mixed role sets under zip (issue 15.1), one read of the
view per phase (15.6), every stream in the step context (15.7), float32 cast once (16.5)."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP
from mml.samplers import (
    AbstractSampler,
    MultiStreamSampler,
    PairedSampler,
    SimpleSampler,
    TripletSampler,
    dissimilar,
    similar,
)
from mml.training import AppliedLoss, Experiment, InputBinding, Loss, TrainPhase
from mml.training._plan import TrainPlan

torch = pytest.importorskip("torch")

PAIR = ("anchor.outputs", "pair.outputs")
TRIPLET = ("anchor.outputs", "positive.outputs", "negative.outputs")
SAMPLERS = {
    "simple": (SimpleSampler(16), None),
    "pair": (PairedSampler({"soh": similar(0.1)}, batch_size=16), PAIR),
    "triplet": (TripletSampler({"soh": similar(0.1)}, {"soh": dissimilar(0.3)}, batch_size=16), TRIPLET),
}


def toy(n: int = 64, dtype: type = np.float32) -> mml.FeatureSet:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(dtype)
    fs = mml.FeatureSet.from_dict(
        {"x": x, "y": x.sum(axis=1).astype(dtype), "soh": rng.random(n)},
        features="x",
        targets="y",
        tags="soh",
        label="toy",
    )
    return fs.with_split("train", np.arange(n))


def towers(*, backend: str = "torch") -> ModelGraph:
    return ModelGraph.of(
        *(
            ModelNode(
                h,
                SequentialMLP(hidden=(4,), output_shape=(1,), backend=backend),
                FeatureSetRef("toy"),
                optimizer=mml.optim.adam(1e-2),
            )
            for h in ("a", "b")
        )
    )


def loss_for(head: str, kind: str) -> AppliedLoss:
    inputs = SAMPLERS[kind][1]
    if inputs is None:
        return AppliedLoss("mse", head)
    if kind == "pair":
        return AppliedLoss(Loss("contrastive", {"similar": True}), head, inputs=inputs)
    return AppliedLoss("triplet_margin", head, inputs=inputs)


@pytest.mark.parametrize(
    "a_kind, b_kind", [("simple", "pair"), ("pair", "triplet"), ("triplet", "pair"), ("pair", "simple")]
)
@pytest.mark.parametrize("schedule", ["zip_strict", "zip_cycle"])
def test_zip_over_bindings_with_different_role_sets(a_kind: str, b_kind: str, schedule: str) -> None:
    # before: a raw KeyError ('default', 'pair', 'positive') from the step
    fs = toy()
    phase = TrainPhase(
        "fit",
        {
            "a": InputBinding("toy", "train", SAMPLERS[a_kind][0]),
            "b": InputBinding("toy", "train", SAMPLERS[b_kind][0]),
        },
        [loss_for("a", a_kind), loss_for("b", b_kind)],
        batch_schedule=schedule,
    )
    exp = Experiment({"toy": fs}, towers(), phase)
    s0 = mml.init(exp, 0)
    state, history = mml.run(exp, s0)
    assert history.status == "completed", history.error
    assert state.step == 4
    _, ctx = next(mml.steps(exp, phase, s0))
    a_roles = SAMPLERS[a_kind][0].batch_roles()
    b_roles = SAMPLERS[b_kind][0].batch_roles()
    for r in a_roles:  # each head read its own roles, and only those
        assert ("a" in ctx.inputs[r]) and ("a" in ctx.outputs[r])
    for r in b_roles:
        assert ("b" in ctx.inputs[r]) and ("b" in ctx.outputs[r])
    for r in set(a_roles) - set(b_roles):
        assert "b" not in ctx.inputs[r] and "b" not in ctx.outputs[r]
    # both towers moved
    for node in ("a", "b"):
        before, after = s0.params(node).params, state.params(node).params
        assert any(not torch.equal(before[k], after[k]) for k in before)


def test_a_loss_across_role_sets_is_refused_when_the_experiment_is_built() -> None:
    from mml.graph import ConcatNode, NodeRef

    g = ModelGraph.of(
        *towers().nodes,
        ConcatNode("ab", (NodeRef("a"), NodeRef("b"))),
        ModelNode(
            "top", SequentialMLP(hidden=(2,), output_shape=(1,)), NodeRef("ab"), optimizer=mml.optim.adam()
        ),
    )
    phase = TrainPhase(
        "fit",
        {
            "a": InputBinding("toy", "train", SimpleSampler(16)),
            "b": InputBinding("toy", "train", SAMPLERS["pair"][0]),
        },
        [
            AppliedLoss(
                Loss("contrastive", {"similar": True}), "top", inputs=("anchor.outputs", "pair.outputs")
            )
        ],
    )
    with pytest.raises(
        mml.TrainingError, match=r"reads role\(s\) 'anchor', 'pair' but the sampler bound to 'a'"
    ):
        Experiment({"toy": toy()}, g, phase)


@attrs.frozen
class CountingSampler(AbstractSampler):
    """A MultiStreamSampler that records every view it reads (a spy: the real sampler does the work)."""

    kind = "test.counting"
    inner: MultiStreamSampler
    reads: list = attrs.field(factory=list, eq=False, hash=False, repr=False)

    @property
    def stream_names(self) -> tuple[str, ...]:
        return self.inner.stream_names

    def batch_roles(self, stream=None):  # type: ignore[no-untyped-def]
        return self.inner.batch_roles(stream)

    def required_columns(self):  # type: ignore[no-untyped-def]
        return self.inner.required_columns()

    def check_view(self, view):  # type: ignore[no-untyped-def]
        self.reads.append(len(view))
        self.inner.check_view(view)

    def precompute(self, data):  # type: ignore[no-untyped-def]
        return self.inner.precompute(data)

    def count_batches(self, data, stream="default"):  # type: ignore[no-untyped-def]
        return self.inner.count_batches(attrs.evolve(data, sampler=self.inner), stream)

    def epoch_batches(self, data, key, stream):  # type: ignore[no-untyped-def]
        return self.inner.epoch_batches(attrs.evolve(data, sampler=self.inner), key, stream)


def test_view_is_read_once_for_two_streams_and_for_shared_bindings() -> None:
    multi = CountingSampler(
        MultiStreamSampler(
            {"main": SimpleSampler(16), "pairs": PairedSampler({"soh": similar(0.1)}, batch_size=16)}
        )
    )
    phase = TrainPhase(
        "fit",
        {"a": InputBinding("toy", "train", multi, "main"), "b": InputBinding("toy", "train", multi, "pairs")},
        [loss_for("a", "simple"), loss_for("b", "pair")],
    )
    exp = Experiment({"toy": toy()}, towers(), phase)
    s0 = mml.init(exp, 0)
    multi.reads.clear()
    _, history = mml.run(exp, s0)
    assert history.status == "completed", history.error
    assert multi.reads == [64]  # before: [64, 64] (one read per head)
    # 15.7: the step context names both streams that fed it
    _, ctx = next(mml.steps(exp, phase, s0))
    assert ctx.streams == ("main", "pairs") and ctx.stream == "main"

    shared = CountingSampler(MultiStreamSampler({"main": SimpleSampler(16)}))
    both = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["a", "b"],
        losses=[loss_for("a", "simple"), loss_for("b", "simple")],
        sampler=shared,
    )
    exp2 = Experiment({"toy": toy()}, towers(), both)
    s2 = mml.init(exp2, 0)
    shared.reads.clear()
    assert mml.run(exp2, s2)[1].status == "completed"
    assert shared.reads == [64]
    assert next(mml.steps(exp2, both, s2))[1].streams == ("main",)


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_float64_data_is_cast_to_float32_once_per_phase(backend: str) -> None:
    if backend == "tensorflow":
        pytest.importorskip("tensorflow")
    fs = toy(dtype=np.float64)
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["a"],
        losses=AppliedLoss("mse", "a"),
        sampler=SimpleSampler(16),
    )
    g = ModelGraph.of(
        ModelNode(
            "a",
            SequentialMLP(hidden=(4,), output_shape=(1,), backend=backend),
            FeatureSetRef("toy"),
            optimizer=mml.optim.adam(1e-2),
        )
    )
    exp = Experiment({"toy": fs}, g, phase)
    s0 = mml.init(exp, 0)
    plan = TrainPlan(exp, phase, s0)
    prepared = plan.prepared["a"]
    assert prepared.features.dtype == np.float32 and prepared.targets.dtype == np.float32  # before: float64
    np.testing.assert_array_equal(prepared.features, fs.to_numpy("features").astype(np.float32))
    _, batches = next(plan.schedule(0))
    assert batches["a"].features.dtype == np.float32  # the sampler's batches need no conversion
    _, ctx = next(mml.steps(exp, phase, s0))
    assert "float32" in str(ctx.input("a").features.dtype)
    assert mml.run(exp, s0)[1].status == "completed"
