"""Build-time plan checks (``mml/training/_validate.py``) pinned by full message and by case (issue 17).

Each problem is one sentence of the ``TrainingError`` the Experiment raises; these tests give
the whole text (node, FeatureSet, split, shapes and the fix) and the cases that are *not*
problems (the boundary of each check).
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import pytest

import mml
from mml.callbacks import EarlyStopping, Evaluation, MetricCallback
from mml.callbacks._base import AbstractCallback
from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP, SklearnModel
from mml.training import AppliedLoss, EvalPhase, Experiment, FitPhase, InputBinding, TrainPhase
from mml.training._validate import ELEMENTWISE_LOSSES, plan_problems

from .conftest import make_featureset

torch = pytest.importorskip("torch")

SGD = mml.optim.sgd(0.1)
SHAPE = (
    "phase {phase!r}: loss {loss!r} ({fn}) compares the output of 'a' (per-sample shape {out}) with targets of "
    "per-sample shape {tgt}, element by element; give 'a' output_shape={tgt} (or None: the target shape), or "
    "bind the loss to a node of that shape"
)
SKLEARN = (
    "phase 'fit' is a TrainPhase, but its only nodes ('s') are scikit-learn nodes without partial_fit, which no "
    "training step can update; fit them with a FitPhase('fit', inputs) instead, or add a torch/Keras node (or an "
    "estimator with partial_fit)"
)


def mlp(**kw):
    return SequentialMLP(hidden=(2,), **kw)


def one(model=None, ref=None):
    return ModelGraph.of(ModelNode("a", model if model is not None else mlp(), ref or FeatureSetRef("toy")))


def train(callbacks=(), loss=None, **kw):
    return TrainPhase(
        "fit", {"a": InputBinding("toy")}, loss or AppliedLoss("mse", "a"), optimizer=SGD, callbacks=callbacks, **kw
    )


def err(featuresets, graph, plan) -> str:
    with pytest.raises(mml.TrainingError) as info:
        Experiment(featuresets, graph, plan)
    return str(info.value)


FS = make_featureset(n=40)


def test_elementwise_losses():
    assert ELEMENTWISE_LOSSES == ("mse", "mae", "huber", "bce", "bce_with_logits")


def test_missing_featuresets_one_sentence_each_with_its_readers():
    g = ModelGraph.of(
        ModelNode("a", mlp(), FeatureSetRef("toy")),
        ModelNode("b", mlp(), FeatureSetRef("other")),
        ModelNode("c", mlp(), FeatureSetRef("other")),
        ModelNode("d", mlp(), FeatureSetRef("more")),
    )
    assert err({"toy": FS}, g, train()) == (
        "node(s) 'b', 'c' read FeatureSet 'other', which the Experiment does not have (FeatureSets: 'toy'); pass "
        "it in featuresets= or fix the FeatureSetRef; node(s) 'd' read FeatureSet 'more', which the Experiment "
        "does not have (FeatureSets: 'toy'); pass it in featuresets= or fix the FeatureSetRef"
    )
    assert err({"toy": FS}, one(ref=FeatureSetRef("toys")), train()) == (
        "node(s) 'a' read FeatureSet 'toys' (did you mean 'toy'?), which the Experiment does not have "
        "(FeatureSets: 'toy'); pass it in featuresets= or fix the FeatureSetRef"
    )
    assert err({}, one(), train()) == (
        "phase 'fit': head 'a' is bound to unknown FeatureSet 'toy'; FeatureSets: ; phase 'fit': loss 'a.mse' "
        "reads targets, but the FeatureSet bound to 'a' has no targets; add targets to the FeatureSet or bind the "
        "loss to other inputs; node(s) 'a' read FeatureSet 'toy', which the Experiment does not have "
        "(FeatureSets: none); pass it in featuresets= or fix the FeatureSetRef"
    )


def _order(cb: str, monitor: str, logger: str) -> str:
    return (
        f"phase 'fit': {cb}({monitor!r}) is listed before the {logger} that logs {monitor!r}, so at every epoch "
        f"end it would look for the value before it is computed; list {logger} first in callbacks="
    )


def test_a_monitor_listed_before_the_callback_that_logs_it():
    g = one()
    assert err({"toy": FS}, g, train((EarlyStopping("val_loss"), Evaluation(split="val")))) == _order(
        "EarlyStopping", "val_loss", "Evaluation"
    )
    assert err({"toy": FS}, g, train((EarlyStopping("hold_loss"), Evaluation(split="val", prefix="hold_")))) == (
        _order("EarlyStopping", "hold_loss", "Evaluation")
    )
    assert err({"toy": FS}, g, train((EarlyStopping("val_mae"), MetricCallback(("mae",), split="val")))) == (
        _order("EarlyStopping", "val_mae", "MetricCallback")
    )
    # the first later logger whose prefix matches is named
    cbs = (EarlyStopping("val_loss"), Evaluation(split="val", prefix="x_"), MetricCallback(("mae",), split="val"))
    assert err({"toy": FS}, g, train(cbs)) == _order("EarlyStopping", "val_loss", "MetricCallback")
    # logged by an earlier callback as well: the value exists when it is read
    Experiment({"toy": FS}, g, train((Evaluation(split="val"), EarlyStopping("val_loss"), Evaluation(split="val"))))
    # a prefix that does not match, and the phase's own loss
    Experiment({"toy": FS}, g, train((EarlyStopping("hold_loss"), Evaluation(split="val"))))
    Experiment({"toy": FS}, g, train((EarlyStopping("loss"), Evaluation(split="val"))))


def test_an_evaluation_split_that_a_bound_featureset_lacks():
    assert err({"toy": FS}, one(), train((Evaluation(split="valid"),))) == (
        "phase 'fit': Evaluation(split='valid') evaluates head 'a' on FeatureSet 'toy', which has no split 'valid' "
        "(did you mean 'val'?) (splits: 'train', 'val'); split it first or pick an existing split"
    )
    assert err({"toy": FS}, one(), train((MetricCallback(("mae",), split="test"),))) == (
        "phase 'fit': MetricCallback(split='test') evaluates head 'a' on FeatureSet 'toy', which has no split "
        "'test' (splits: 'train', 'val'); split it first or pick an existing split"
    )
    # two heads bound to the same FeatureSet: one sentence per callback
    g2 = ModelGraph.of(ModelNode("a", mlp(), FeatureSetRef("toy")), ModelNode("b", mlp(), FeatureSetRef("toy")))
    two = TrainPhase(
        "fit",
        {"a": InputBinding("toy"), "b": InputBinding("toy")},
        [AppliedLoss("mse", "a"), AppliedLoss("mse", "b")],
        optimizer=SGD,
        callbacks=(Evaluation(split="test"),),
    )
    assert err({"toy": FS}, g2, two) == (
        "phase 'fit': Evaluation(split='test') evaluates head 'a' on FeatureSet 'toy', which has no split 'test' "
        "(splits: 'train', 'val'); split it first or pick an existing split"
    )
    bare = mml.FeatureSet.from_dict(
        {"a": [1.0, 2.0], "b": [2.0, 3.0], "c": [3.0, 4.0], "y": [0.0, 1.0]},
        features=["a", "b", "c"],
        targets="y",
        label="toy",
    )
    whole = TrainPhase(
        "fit", {"a": InputBinding("toy", None)}, AppliedLoss("mse", "a"), optimizer=SGD, callbacks=(Evaluation(),)
    )
    assert err({"toy": bare}, one(), whole) == (
        "phase 'fit': Evaluation(split='val') evaluates head 'a' on FeatureSet 'toy', which has no split 'val' "
        "(splits: none); split it first or pick an existing split"
    )
    # a callback that is not an evaluation reads no split
    Experiment({"toy": FS}, one(), train((EarlyStopping("loss"),)))


TWO_TARGETS = mml.FeatureSet.from_dict(
    {"a": [1.0, 2.0], "y": [0.0, 1.0], "z": [1.0, 1.0]}, features=["a"], targets=["y", "z"], label="toy"
).with_split("train", [0, 1])


def test_elementwise_loss_shapes_against_the_targets_the_node_reads():
    fs = {"toy": TWO_TARGETS}
    assert err(fs, one(mlp(output_shape=(1,))), train()) == SHAPE.format(
        phase="fit", loss="a.mse", fn="mse", out=(1,), tgt=(2,)
    )
    Experiment(fs, one(mlp(output_shape=(2,))), train())  # both target keys: (2,)
    Experiment(fs, one(mlp(output_shape=(2, 1))), train())  # the same number of elements
    Experiment(fs, one(mlp(output_shape=(1,)), FeatureSetRef("toy", targets="z")), train())  # one key: (1,)
    assert err(fs, one(mlp(output_shape=(3,)), FeatureSetRef("toy", targets="z")), train()) == SHAPE.format(
        phase="fit", loss="a.mse", fn="mse", out=(3,), tgt=(1,)
    )
    # a missing target key is reported by the loss check, not as a shape
    assert err(fs, one(mlp(output_shape=(3,)), FeatureSetRef("toy", targets="q")), train()) == (
        "phase 'fit': loss 'a.mse' reads the targets of 'a', but its input selects target keys that do not exist: "
        "FeatureSet 'toy' has no targets key(s) 'q'; its targets keys are: 'y', 'z'; fix the node's "
        "FeatureSetRef(targets=...)"
    )
    wide = one(mlp(output_shape=(3,)))
    assert err({"toy": FS}, wide, train(loss=AppliedLoss("mae", "a", label="L"))) == SHAPE.format(
        phase="fit", loss="L", fn="mae", out=(3,), tgt=(1,)
    )
    # every phase that binds losses is checked, an EvalPhase too
    assert err({"toy": FS}, wide, EvalPhase("ev", {"a": InputBinding("toy", "val")}, AppliedLoss("huber", "a"))) == (
        SHAPE.format(phase="ev", loss="a.huber", fn="huber", out=(3,), tgt=(1,))
    )
    # inputs other than (outputs, targets) in that order are not compared
    Experiment({"toy": FS}, wide, train(loss=AppliedLoss("mse", "a", inputs=("targets", "outputs"))))
    # no declared output shape: sized from the targets
    Experiment({"toy": FS}, one(mlp()), train())


def test_plan_problems_is_empty_for_a_sound_experiment():
    exp = Experiment({"toy": FS}, one(), train((Evaluation(split="val"), EarlyStopping("val_loss"))))
    assert plan_problems(exp) == []


def _sk(estimator: str, **kw):
    return ModelGraph.of(ModelNode("s", SklearnModel(estimator), FeatureSetRef("toy"), **kw))


def test_a_train_phase_of_scikit_learn_nodes_only():
    phase = TrainPhase("fit", {"s": InputBinding("toy")}, AppliedLoss("mse", "s"))
    assert err({"toy": FS}, _sk("sklearn.linear_model:Ridge"), phase) == SKLEARN
    # partial_fit, but frozen: nothing left to update
    assert err({"toy": FS}, _sk("sklearn.linear_model:SGDRegressor", frozen=True), phase) == SKLEARN
    Experiment({"toy": FS}, _sk("sklearn.linear_model:SGDRegressor"), phase)
    # a FitPhase is the way to fit them
    Experiment({"toy": FS}, _sk("sklearn.linear_model:Ridge"), FitPhase("fit", {"s": InputBinding("toy")}))
    mixed = ModelGraph.of(
        ModelNode("s", SklearnModel("sklearn.linear_model:Ridge"), FeatureSetRef("toy")),
        ModelNode("t", mlp(), NodeRef("s"), optimizer=SGD),
    )
    Experiment({"toy": FS}, mixed, TrainPhase("fit", {"s": InputBinding("toy")}, AppliedLoss("mse", "t")))
    # active_nodes decide which nodes the phase runs (unknown names are reported on their own)
    only_s = TrainPhase("fit", {"s": InputBinding("toy")}, AppliedLoss("mse", "t"), active_nodes=["s", "zz"])
    assert err({"toy": FS}, mixed, only_s) == f"phase 'fit': unknown node 'zz'; {SKLEARN}"


def test_a_logger_between_two_monitors_is_named_for_the_first():
    # the first callback's monitor is logged by the callback right after it (not by the last one)
    cbs = (EarlyStopping("val_loss"), Evaluation(split="val"), EarlyStopping("loss"))
    assert err({"toy": FS}, one(), train(cbs)) == _order("EarlyStopping", "val_loss", "Evaluation")


def test_every_loss_of_a_phase_is_checked_after_one_that_is_not_compared():
    wide = ModelGraph.of(
        ModelNode("a", mlp(output_shape=(3,)), FeatureSetRef("toy")),
        ModelNode("b", mlp(), NodeRef("a")),  # no declared shape: sized from the targets
    )
    first_not_compared = [AppliedLoss("mse", "a", inputs=("targets", "outputs")), AppliedLoss("mae", "a")]
    assert err({"toy": FS}, wide, train(loss=first_not_compared)) == SHAPE.format(
        phase="fit", loss="a.mae", fn="mae", out=(3,), tgt=(1,)
    )
    no_shape_first = [AppliedLoss("mse", "b"), AppliedLoss("huber", "a")]
    assert err({"toy": FS}, wide, train(loss=no_shape_first)) == SHAPE.format(
        phase="fit", loss="a.huber", fn="huber", out=(3,), tgt=(1,)
    )


def test_the_shape_check_goes_on_past_every_kind_of_loss_it_skips():
    from mml.graph import ConcatNode, MergeNode

    want = SHAPE.format(phase="fit", loss="a.huber", fn="huber", out=(3,), tgt=(1,))
    g = ModelGraph.of(
        ModelNode("a", mlp(output_shape=(3,)), FeatureSetRef("toy")),
        ModelNode("b", mlp(output_shape=(1,)), NodeRef("a")),
        ConcatNode("j", [NodeRef("a"), NodeRef("b")]),
    )
    # a loss on a joining node, then one whose shapes agree, then the mismatch
    losses = [AppliedLoss("mse", "j"), AppliedLoss("mse", "b"), AppliedLoss("huber", "a")]
    assert err({"toy": FS}, g, train(loss=losses)) == want
    # a loss whose targets cannot be combined (reported when the graph is built), then the mismatch
    two = mml.FeatureSet.from_dict(
        {"a": [1.0, 2.0], "y": [0.0, 1.0], "z": [1.0, 1.0]}, features=["a"], targets=["y", "z"], label="two"
    )
    merged = ModelGraph.of(
        ModelNode("a", mlp(output_shape=(3,)), FeatureSetRef("toy")),
        ModelNode("b", mlp(output_shape=(1,)), FeatureSetRef("two")),
        MergeNode("m", (NodeRef("a"), NodeRef("b")), targets="mean"),  # mean of (1,) and (2,) targets
        ModelNode("d", mlp(output_shape=(1,)), NodeRef("m")),
    )
    ev = EvalPhase(
        "ev",
        {"a": InputBinding("toy", "val"), "b": InputBinding("two", None)},
        [AppliedLoss("mse", "d"), AppliedLoss("huber", "a")],
    )
    assert err({"toy": FS, "two": two}, merged, ev) == SHAPE.format(
        phase="ev", loss="a.huber", fn="huber", out=(3,), tgt=(1,)
    )
    # a model value without an output_shape attribute is not compared
    Experiment({"toy": FS}, one("spec"), EvalPhase("ev", {"a": InputBinding("toy", "val")}, AppliedLoss("mse", "a")))


def test_missing_featuresets_among_several_and_behind_node_refs():
    g = ModelGraph.of(
        ModelNode("a", mlp(output_shape=(1,)), FeatureSetRef("toy")),
        ModelNode("b", mlp(), NodeRef("a")),
        ModelNode("c", mlp(), FeatureSetRef("gone")),
    )
    other = make_featureset(n=8, label="other")
    assert err({"toy": FS, "other": other}, g, train(loss=AppliedLoss("mse", "b"))) == (
        "node(s) 'c' read FeatureSet 'gone', which the Experiment does not have (FeatureSets: 'toy', 'other'); "
        "pass it in featuresets= or fix the FeatureSetRef"
    )


def test_scikit_learn_only_phases_name_every_node_and_see_every_loss():
    chain = ModelGraph.of(
        ModelNode("s", SklearnModel("sklearn.linear_model:Ridge"), FeatureSetRef("toy")),
        ModelNode("r", SklearnModel("sklearn.linear_model:Ridge"), NodeRef("s")),
    )
    phase = TrainPhase("fit", {"s": InputBinding("toy")}, AppliedLoss("mse", "r"))
    assert err({"toy": FS}, chain, phase) == SKLEARN.replace("('s')", "('s', 'r')")
    # two losses: the nodes of both are active, and one of them has partial_fit
    side = ModelGraph.of(
        ModelNode("g", SklearnModel("sklearn.linear_model:SGDRegressor"), FeatureSetRef("toy")),
        ModelNode("s", SklearnModel("sklearn.linear_model:Ridge"), FeatureSetRef("toy")),
    )
    b = InputBinding("toy")
    Experiment({"toy": FS}, side, TrainPhase("fit", {"g": b, "s": b}, [AppliedLoss("mse", "g"), AppliedLoss("mse", "s")]))


@attrs.frozen
class SplitNamed(AbstractCallback):
    """A user callback with a ``split`` attribute of its own: it logs nothing, so no split is checked."""

    kind: ClassVar[str] = "test.split_named"
    split: str = "nope"


def test_only_callbacks_that_log_have_their_split_checked():
    Experiment({"toy": FS}, one(), train((SplitNamed(),)))
    assert err({"toy": FS}, one(), train((SplitNamed(), Evaluation(split="nope")))) == (
        "phase 'fit': Evaluation(split='nope') evaluates head 'a' on FeatureSet 'toy', which has no split 'nope' "
        "(splits: 'train', 'val'); split it first or pick an existing split"
    )
