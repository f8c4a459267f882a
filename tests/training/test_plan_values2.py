"""TrainPlan, further values (issue 17): groups, readers, step plans, schedules, devices, dtypes.

Batches are told apart by their first feature, which is the row number (samplers without
shuffling), so every schedule is pinned as the exact sequence of row blocks it feeds.
"""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import ConcatNode, FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP, SklearnModel
from mml.samplers import MultiStreamSampler, PairedSampler, similar
from mml.training import AppliedLoss, Experiment, InputBinding, Loss, TrainPhase
from mml.training._plan import StepPlan, TrainPlan

torch = pytest.importorskip("torch")

SGD = mml.optim.sgd(0.1)


def sq_first(a, b):
    return (a[:, 0] - b[:, 0]) ** 2


def rows(n: int, label: str) -> mml.FeatureSet:
    i = np.arange(n, dtype=np.float64)
    fs = mml.FeatureSet.from_dict(
        {"x0": i, "x1": 2 * i, "y": i / 10, "t": i % 2},
        features=["x0", "x1"],
        targets="y",
        tags="t",
        label=label,
    )
    return fs.with_split("train", np.arange(n))


def mlp(**kw):
    return SequentialMLP(hidden=(2,), **kw)


def graph(**kw) -> ModelGraph:
    return ModelGraph.of(
        ModelNode("a", mlp(output_shape=(1,)), FeatureSetRef("p"), optimizer=SGD, **kw),
        ModelNode("c", mlp(output_shape=(1,)), FeatureSetRef("q"), optimizer=SGD),
        ConcatNode("j", [NodeRef("a"), NodeRef("c")]),
        ModelNode("d", mlp(), NodeRef("j"), optimizer=SGD),
    )


def ordered(n: int = 2):
    return mml.SimpleSampler(n, shuffle=False)


FSS = {"p": rows(6, "p"), "q": rows(4, "q")}
TWO = {"a": InputBinding("p", sampler=ordered()), "c": InputBinding("q", sampler=ordered())}
LOSSES = [AppliedLoss("mse", "a"), AppliedLoss("mse", "c")]


def plan(phase, graph_=None, featuresets=None, **kw) -> TrainPlan:
    exp = Experiment(featuresets or FSS, graph_ or graph(), phase)
    return TrainPlan(exp, phase, mml.init(exp, 0), **kw)


def firsts(batch) -> list[float]:
    return [float(v) for v in np.asarray(batch.roles["default"].features)[:, 0]]


def sequence(p: TrainPlan, epoch: int = 0):
    return [(sp, {h: firsts(b) for h, b in batches.items()}) for sp, batches in p.schedule(epoch)]


def test_two_bindings_make_two_groups_with_their_own_data():
    p = plan(TrainPhase("fit", TWO, LOSSES))
    assert p.heads == ["a", "c"] and p.groups == [("a",), ("c",)]
    assert p.nbatches == {"a": 3, "c": 2}
    assert p.readers == {("a",): (("a", ("a",)),), ("c",): (("c", ("c",)),)}
    assert p.prepared["a"].features.shape == (6, 2) and p.prepared["c"].features.shape == (4, 2)
    assert p.active == frozenset({"a", "c"}) and p.trainable == ("a", "c")
    assert p.backends == {"a": "torch", "c": "torch"} and p.devices == {}
    # one plan for every step under a zip schedule, naming every head, loss and trainable node
    sp = p.step_plans[("a",)]
    assert isinstance(sp, StepPlan) and p.step_plans[("c",)] is sp
    assert sp.heads == ("a", "c") and sp.active == frozenset({"a", "c"})
    assert sp.losses == tuple(p.losses) and [lp.name for lp in sp.losses] == ["a.mse", "c.mse"]
    assert (sp.torch_nodes, sp.tf_nodes, sp.trainable) == (("a", "c"), (), ("a", "c"))
    assert sp.stagewise is True and sp.role_plan is None and sp.streams == ("default",)


def test_zip_schedules_feed_every_head_in_each_step():
    strict = sequence(plan(TrainPhase("fit", TWO, LOSSES)))
    assert [b for _, b in strict] == [{"a": [0, 1], "c": [0, 1]}, {"a": [2, 3], "c": [2, 3]}]
    cycle = sequence(plan(TrainPhase("fit", TWO, LOSSES, batch_schedule="zip_cycle")))
    assert [b for _, b in cycle] == [
        {"a": [0, 1], "c": [0, 1]},
        {"a": [2, 3], "c": [2, 3]},
        {"a": [4, 5], "c": [0, 1]},  # the shorter stream restarts: the same epoch's batches
    ]
    assert len({id(sp) for sp, _ in cycle}) == 1


def test_alternate_schedules_feed_one_group_per_step():
    p = plan(TrainPhase("fit", TWO, LOSSES, batch_schedule="alternate_strict"))
    sa, sc = p.step_plans[("a",)], p.step_plans[("c",)]
    assert sa.heads == ("a",) and sc.heads == ("c",)
    assert [lp.name for lp in sa.losses] == ["a.mse"] and [lp.name for lp in sc.losses] == ["c.mse"]
    assert sa.active == frozenset({"a"}) and sc.active == frozenset({"c"})
    assert sa.torch_nodes == ("a",) and sc.torch_nodes == ("c",)
    got = sequence(p)
    assert [(sp.heads, b) for sp, b in got] == [
        (("a",), {"a": [0, 1]}),
        (("c",), {"c": [0, 1]}),
        (("a",), {"a": [2, 3]}),
        (("c",), {"c": [2, 3]}),
    ]
    cycle = sequence(plan(TrainPhase("fit", TWO, LOSSES, batch_schedule="alternate_cycle")))
    assert [b for _, b in cycle] == [
        {"a": [0, 1]},
        {"c": [0, 1]},
        {"a": [2, 3]},
        {"c": [2, 3]},
        {"a": [4, 5]},
        {"c": [0, 1]},
    ]


def test_one_group_over_two_heads_shares_each_batch():
    g = ModelGraph.of(
        ModelNode("a", mlp(output_shape=(1,)), FeatureSetRef("p"), optimizer=SGD),
        ModelNode("b", mlp(output_shape=(1,)), FeatureSetRef("p"), optimizer=SGD),
    )
    b = InputBinding("p", sampler=ordered(4))
    p = plan(TrainPhase("fit", {"a": b, "b": b}, [AppliedLoss("mse", "a"), AppliedLoss("mse", "b")]), g)
    assert p.groups == [("a", "b")] and p.readers == {("a", "b"): (("a", ("a", "b")),)}
    got = list(p.schedule(0))
    assert len(got) == 2 and all(bs["a"] is bs["b"] for _, bs in got)
    assert [firsts(bs["a"]) for _, bs in got] == [[0, 1, 2, 3], [4, 5]]


def test_heads_of_one_group_reading_other_columns_get_aligned_batches():
    g = ModelGraph.of(
        ModelNode("a", mlp(output_shape=(1,)), FeatureSetRef("p", features="x0"), optimizer=SGD),
        ModelNode("b", mlp(output_shape=(1,)), FeatureSetRef("p", features="x1"), optimizer=SGD),
    )
    b = InputBinding("p", sampler=mml.SimpleSampler(4))  # shuffled: the two streams share the key
    p = plan(TrainPhase("fit", {"a": b, "b": b}, [AppliedLoss("mse", "a"), AppliedLoss("mse", "b")]), g)
    assert p.groups == [("a", "b")] and p.readers == {("a", "b"): (("a", ("a",)), ("b", ("b",)))}
    for epoch in (0, 1):
        got = list(p.schedule(epoch))
        assert len(got) == 2
        for _, bs in got:
            xa = np.asarray(bs["a"].roles["default"].features)[:, 0]
            xb = np.asarray(bs["b"].roles["default"].features)[:, 0]
            np.testing.assert_array_equal(xb, 2 * xa)  # the same rows, each head its own column
    # the stream of a head is the sampler's, keyed by the phase's sampler key and "<featureset>/<split>"
    key = mml.random.fold_in(mml.random.fold_in(mml.random.fold_in(mml.random.key(0), "fit"), "sampler"), "p/train")
    for epoch in (0, 1):
        want = [firsts(bt) for bt in b.sampler.batches(p.prepared["a"], key=key, epoch=epoch)]
        assert [firsts(bs["a"]) for _, bs in p.schedule(epoch)] == want
    assert [firsts(bs["a"]) for _, bs in p.schedule(0)] != [firsts(bs["a"]) for _, bs in p.schedule(1)]


def test_floating_data_is_cast_to_float32_for_gradient_heads_only():
    p = plan(TrainPhase("fit", TWO, LOSSES))
    assert p.prepared["a"].features.dtype == np.float32 and p.prepared["a"].targets.dtype == np.float32
    g = ModelGraph.of(
        ModelNode("s", SklearnModel("sklearn.linear_model:SGDRegressor"), FeatureSetRef("p")),
        ModelNode("a", mlp(output_shape=(1,)), FeatureSetRef("q"), optimizer=SGD),
    )
    both = {"s": InputBinding("p", sampler=ordered()), "a": InputBinding("q", sampler=ordered())}
    q = plan(TrainPhase("fit", both, [AppliedLoss("mse", "s"), AppliedLoss("mse", "a")]), g)
    assert q.prepared["s"].features.dtype == np.float64  # scikit-learn keeps the data's dtype
    assert q.prepared["a"].features.dtype == np.float32
    assert q.incremental == ("s",) and q.trainable == ("a",)
    assert list(q.classes) == ["s"]
    only = plan(TrainPhase("fit", both, [AppliedLoss("mse", "s"), AppliedLoss("mse", "a")], trainable=["a"]), g)
    assert only.incremental == () and only.trainable == ("a",)


def test_devices_node_first_then_phase():
    cpu = torch.device("cpu")
    assert plan(TrainPhase("fit", TWO, LOSSES, device="cpu")).devices == {"a": cpu, "c": cpu}
    assert plan(TrainPhase("fit", TWO, LOSSES), graph(device="cpu")).devices == {"a": cpu}
    # with device data on, a head's prepared data move to its device once, as float32 tensors
    moved = plan(TrainPhase("fit", TWO, LOSSES, device="cpu"), device_data=lambda dev: True)
    assert isinstance(moved.prepared["a"].features, torch.Tensor)
    assert moved.prepared["a"].features.dtype == torch.float32
    np.testing.assert_array_equal(moved.prepared["a"].features.numpy()[:, 0], np.arange(6))
    kept = plan(TrainPhase("fit", TWO, LOSSES, device="cpu"), device_data=lambda dev: False)
    assert isinstance(kept.prepared["a"].features, np.ndarray)


def test_a_stagewise_phase_trains_torch_and_keras_nodes_side_by_side():
    pytest.importorskip("tensorflow")
    g = ModelGraph.of(
        ModelNode("a", mlp(output_shape=(1,)), FeatureSetRef("p"), optimizer=SGD),
        ModelNode("k", mlp(output_shape=(1,), backend="tensorflow"), FeatureSetRef("p"), optimizer=SGD),
    )
    b = InputBinding("p", sampler=ordered())
    p = plan(TrainPhase("fit", {"a": b, "k": b}, [AppliedLoss("mse", "a"), AppliedLoss("mse", "k")]), g, FSS)
    assert p.trainable == ("a", "k") and p.tf_nodes == frozenset({"k"})
    sp = p.step_plans[("a", "k")]
    assert (sp.torch_nodes, sp.tf_nodes, sp.trainable) == (("a",), ("k",), ("a", "k"))
    assert p.backends == {"a": "torch", "k": "tensorflow"}


def test_role_plan_of_heads_with_different_roles():
    paired = PairedSampler({"t": similar(0.0)}, batch_size=2)
    inputs = {"a": InputBinding("p", sampler=ordered()), "c": InputBinding("q", sampler=paired)}
    losses = [AppliedLoss("mse", "a"), AppliedLoss(Loss(f"{__name__}:sq_first"), "c", inputs=("anchor.outputs", "pair.outputs"))]
    p = plan(TrainPhase("fit", inputs, losses))
    sp = p.step_plans[("a",)]
    assert sp.role_plan == (
        ("default", ("a",), frozenset({"a"})),
        ("anchor", ("c",), frozenset({"c"})),
        ("pair", ("c",), frozenset({"c"})),
    )
    # a multi-stream sampler: the roles are those of the bound stream
    multi = MultiStreamSampler({"one": ordered(), "two": paired})
    inputs = {"a": InputBinding("p", sampler=ordered()), "c": InputBinding("q", sampler=multi, stream="two")}
    q = plan(TrainPhase("fit", inputs, losses))
    assert q.step_plans[("a",)].role_plan == sp.role_plan
    assert q.step_plans[("a",)].streams == ("default", "two")


def test_alternate_schedule_messages_in_full():
    with pytest.raises(mml.TrainingError) as info:
        plan(TrainPhase("fit", TWO, [*LOSSES, AppliedLoss("mse", "d")], batch_schedule="alternate_strict"))
    assert str(info.value) == (
        "phase 'fit' (batch_schedule='alternate_strict'): loss 'd.mse' needs head(s) 'a', 'c', which are fed by "
        "different bindings; an alternate schedule feeds one binding per step — use a 'zip_*' schedule or bind "
        "those heads to the same data"
    )
    g = ModelGraph.of(
        ModelNode("a", mlp(output_shape=(1,)), FeatureSetRef("p"), optimizer=SGD),
        ModelNode("c", mlp(output_shape=(1,)), FeatureSetRef("q"), optimizer=SGD),
        ModelNode("e", mlp(output_shape=(1,)), FeatureSetRef("q"), optimizer=SGD),
    )
    three = {**TWO, "e": InputBinding("q", sampler=ordered(3))}
    with pytest.raises(mml.TrainingError) as info:
        plan(TrainPhase("fit", three, [AppliedLoss("mse", "a")], batch_schedule="alternate_cycle", active_nodes=["a", "c", "e"]), g)
    assert str(info.value) == (
        "phase 'fit' (batch_schedule='alternate_cycle'): the binding of head(s) 'c', 'e' feeds no loss; bind a "
        "loss to a node below them or drop the binding"
    )
    # the same losses under a zip schedule: one plan, every head per step
    zipped = plan(TrainPhase("fit", TWO, [*LOSSES, AppliedLoss("mse", "d")], batch_schedule="zip_strict"))
    assert zipped.step_plans[("a",)].heads == ("a", "c") and zipped.trainable == ("a", "c", "d")
    assert zipped.active == frozenset({"a", "c", "j", "d"})


class _States:
    """A stand-in for a TrainState: the callback states by slot."""

    def __init__(self, states):
        self.states = states

    def callback_state(self, slot):
        return self.states.get(slot)


def test_lr_scale_is_the_product_of_the_callbacks_factors():
    from mml.callbacks import EarlyStopping, LRSchedulerOnPlateau
    from mml.callbacks._monitor import PlateauState

    cbs = [LRSchedulerOnPlateau("loss", factor=0.5), EarlyStopping("loss"), LRSchedulerOnPlateau("loss", factor=0.5)]
    p = plan(TrainPhase("fit", TWO, LOSSES, callbacks=cbs))
    assert p.slots == ("fit/0", "fit/1", "fit/2") and p.callbacks == tuple(cbs)
    assert p.lr_callbacks == [(cbs[0], "fit/0"), (cbs[2], "fit/2")]
    assert p.batch_callbacks is False
    states = {"fit/0": PlateauState(1.0, 0, 0, 0.5), "fit/2": PlateauState(1.0, 0, 0, 0.25)}
    assert p.lr_scale(_States(states)) == 0.125
    assert p.lr_scale(_States({})) == 1.0  # before the callbacks first ran


def test_a_scikit_learn_head_keeps_its_numpy_data_when_torch_heads_move_to_the_device():
    # Regression (issue 17): the move to the device tested only that a head is *fed* torch
    # batches, which scikit-learn heads are too; their partial_fit then got float32 tensors on
    # the accelerator instead of the sampler's numpy batches in the data's own dtype.
    g = ModelGraph.of(
        ModelNode("s", SklearnModel("sklearn.linear_model:SGDRegressor"), FeatureSetRef("p")),
        ModelNode("a", mlp(output_shape=(1,)), FeatureSetRef("q"), optimizer=SGD),
    )
    both = {"s": InputBinding("p", sampler=ordered()), "a": InputBinding("q", sampler=ordered())}
    phase = TrainPhase("fit", both, [AppliedLoss("mse", "s"), AppliedLoss("mse", "a")], device="cpu")
    p = plan(phase, g, device_data=lambda dev: True)
    assert p.devices == {"s": torch.device("cpu"), "a": torch.device("cpu")}
    assert isinstance(p.prepared["s"].features, np.ndarray) and p.prepared["s"].features.dtype == np.float64
    assert isinstance(p.prepared["a"].features, torch.Tensor) and p.prepared["a"].features.dtype == torch.float32
    batch = next(iter(p.head_batches("s", 0)))
    assert isinstance(batch.roles["default"].features, np.ndarray)
    np.testing.assert_array_equal(batch.roles["default"].features[:, 0], [0.0, 1.0])


def test_a_stream_shared_with_a_scikit_learn_head_moves_as_float32_tensors():
    # one prepared view (same FeatureSet, split, sampler, columns) read by a scikit-learn head
    # and a torch head on two streams: not cast once for both, so the move casts the torch stream
    g = ModelGraph.of(
        ModelNode("s", SklearnModel("sklearn.linear_model:SGDRegressor"), FeatureSetRef("p")),
        ModelNode("a", mlp(output_shape=(1,)), FeatureSetRef("p"), optimizer=SGD),
    )
    multi = MultiStreamSampler({"one": ordered(), "two": ordered(3)})
    both = {"s": InputBinding("p", sampler=multi, stream="one"), "a": InputBinding("p", sampler=multi, stream="two")}
    phase = TrainPhase("fit", both, [AppliedLoss("mse", "s"), AppliedLoss("mse", "a")], device="cpu")
    p = plan(phase, g, device_data=lambda dev: True)
    assert p.groups == [("s",), ("a",)] and p.nbatches == {"s": 3, "a": 2}
    assert p.prepared["s"].features.dtype == np.float64
    assert isinstance(p.prepared["a"].features, torch.Tensor) and p.prepared["a"].features.dtype == torch.float32
    assert p.prepared["a"].targets.dtype == torch.float32


def test_a_joining_head_reading_featuresets_directly():
    g = ModelGraph.of(
        ConcatNode("j", [FeatureSetRef("p"), FeatureSetRef("q")]),
        ModelNode("d", mlp(), NodeRef("j"), optimizer=SGD),
    )
    p = plan(TrainPhase("fit", {"j": InputBinding("p", sampler=ordered())}, AppliedLoss("mse", "d")), g)
    assert p.heads == ["j"] and p.trainable == ("d",) and p.backends == {"j": "torch"}
    assert p.nbatches == {"j": 3} and p.devices == {}


def test_trainable_nodes_that_gradients_cannot_train_are_all_named():
    with pytest.raises(mml.TrainingError) as info:
        plan(TrainPhase("fit", TWO, LOSSES, trainable=["j", "d"]))
    assert str(info.value) == (
        "phase 'fit': node(s) 'j', 'd' cannot be trained by gradients here (inactive, joining or scikit-learn "
        "nodes); fit scikit-learn nodes with a FitPhase"
    )


CLASSES = mml.FeatureSet.from_dict(
    {"x0": np.arange(6.0), "x1": np.arange(6.0), "y": np.array([0, 1, 2, 0, 1, 2])},
    features=["x0", "x1"],
    targets="y",
    label="p",
).with_split("train", np.arange(6))


def test_class_ids_are_checked_against_the_built_logits():
    def graph_(n):
        return ModelGraph.of(ModelNode("a", mlp(output_shape=(n,)), FeatureSetRef("p"), optimizer=SGD))

    phase = TrainPhase("fit", {"a": InputBinding("p", sampler=ordered())}, AppliedLoss("cross_entropy", "a"))
    with pytest.raises(mml.TrainingError) as info:
        plan(phase, graph_(2), {"p": CLASSES})
    assert str(info.value) == (
        "loss 'a.cross_entropy' on node 'a': class ids must be integers in [0, 2) (the node outputs 2 logits) but "
        "the targets hold 2 (2 of 6 values); give the node output_shape=(3,) if there are 3 classes, or re-encode "
        "the labels as 0..1 (mask samples out with a mask, not with an id)"
    )
    assert plan(phase, graph_(3), {"p": CLASSES}).nbatches == {"a": 3}


def test_a_partial_fit_classifier_gets_the_classes_of_its_targets():
    g = ModelGraph.of(ModelNode("s", SklearnModel("sklearn.linear_model:SGDClassifier"), FeatureSetRef("p")))
    p = plan(TrainPhase("fit", {"s": InputBinding("p", sampler=ordered())}, AppliedLoss("mse", "s")), g, {"p": CLASSES})
    assert p.incremental == ("s",) and list(p.classes) == ["s"]
    np.testing.assert_array_equal(p.classes["s"], [0, 1, 2])
