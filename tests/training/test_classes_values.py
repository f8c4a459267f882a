"""Class inference and the class-id check pinned by value (issue 17, mutation testing):
which nodes get a width and which are left alone, and every message of the check in full."""

from __future__ import annotations

from types import SimpleNamespace

import attrs
import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP
from mml.training import AppliedLoss, Experiment, FitPhase, InputBinding, PhaseGroup, TrainPhase
from mml.training._class_ids import check_class_ids, class_id_problem
from mml.training._classes import _n_classes, class_widths, with_class_widths

pytest.importorskip("torch")


def fs_of(targets, label="d", n=None, **extra):
    n = len(next(iter(targets.values()))) if n is None else n
    x = np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32)
    cols = {"x": x, **targets, **extra}
    return mml.FeatureSet.from_dict(cols, features="x", targets=list(targets), label=label).with_split(
        "train", np.arange(n)
    )


def train(label, losses, featureset="d", heads=("clf",)):
    return TrainPhase.simple(
        label,
        featureset=featureset,
        heads=list(heads),
        losses=losses,
        n_epochs=1,
        sampler=mml.SimpleSampler(8),
    )


def mlp(**kw):
    return SequentialMLP(hidden=(4,), **kw)


def test_widths_are_max_id_plus_one_over_the_non_negative_ids():
    for ids, width in [
        ([0, 0, 0], 1),
        ([-1, 0, -5], 1),
        ([0, 4, 2], 5),
        ([1.0, 2.0, 0.0], 3),
        ([True, False], 2),
    ]:
        fs = fs_of({"c": np.asarray(ids)})
        assert _n_classes(fs, "c") == width, ids
    for ids in ([-1, -2], [0.0, 2.5], [0.0, np.inf], [np.nan, 1.0]):
        fs = fs_of({"c": np.asarray(ids)})
        assert _n_classes(fs, "c") is None, ids


def test_widths_read_the_raw_ids_not_a_transformed_representation():
    fs = fs_of({"c": np.array([0.0, 1.0, 2.0, 1.0])})
    scaled = mml.scalers.fit_transform(fs, mml.scalers.MinMax(), domain="targets")
    assert scaled.column_array("targets", "c").tolist() == [0.0, 0.5, 1.0, 0.5]
    assert _n_classes(scaled, "c") == 3
    g = ModelGraph.of(ModelNode("clf", mlp(), FeatureSetRef("d"), optimizer=mml.optim.sgd(0.1)))
    exp = Experiment({"d": scaled}, g, train("fit", AppliedLoss("cross_entropy", "clf")))
    assert class_widths(exp) == {"clf": (3,)}


def test_only_cross_entropy_nodes_with_a_width_left_to_the_data_get_one():
    fs = fs_of({"c": np.array([0, 2, 1, 2])})
    g = ModelGraph.of(
        ModelNode("reg", mlp(), FeatureSetRef("d"), optimizer=mml.optim.sgd(0.1)),
        ModelNode("clf", mlp(), FeatureSetRef("d"), optimizer=mml.optim.sgd(0.1)),
        ModelNode("fixed", mlp(output_shape=(7,)), FeatureSetRef("d"), optimizer=mml.optim.sgd(0.1)),
    )
    plan = PhaseGroup(
        "plan",
        [
            train(
                "a", [AppliedLoss("mse", "reg"), AppliedLoss("cross_entropy", "clf")], heads=("reg", "clf")
            ),
            train(
                "b",
                [AppliedLoss("cross_entropy", "fixed"), AppliedLoss("cross_entropy", "clf")],
                heads=("fixed", "clf"),
            ),
        ],
    )
    exp = Experiment({"d": fs}, g, plan)
    assert class_widths(exp) == {"clf": (3,)}
    out = with_class_widths(exp)
    assert out["clf"].model.output_shape == (3,)
    assert out["reg"].model.output_shape is None and out["fixed"].model.output_shape == (7,)
    assert out["clf"].model == attrs.evolve(g["clf"].model, output_shape=(3,))


def test_a_node_downstream_of_another_reads_the_ids_of_its_source():
    fs = fs_of({"c": np.array([0, 3, 1, 2])})
    g = ModelGraph.of(
        ModelNode("enc", mlp(output_shape=(2,)), FeatureSetRef("d"), optimizer=mml.optim.sgd(0.1)),
        ModelNode("clf", mlp(), NodeRef("enc"), optimizer=mml.optim.sgd(0.1)),
    )
    duck = SimpleNamespace(
        graph=g, featuresets={"d": fs}, plan=train("y", AppliedLoss("cross_entropy", "clf"), heads=("enc",))
    )
    assert class_widths(duck) == {"clf": (4,)}


def test_one_hot_or_several_target_keys_are_left_to_the_target_shape():
    one_hot = np.eye(3, dtype=np.float32)[[0, 1, 2, 1]]
    g = ModelGraph.of(ModelNode("clf", mlp(), FeatureSetRef("d"), optimizer=mml.optim.sgd(0.1)))
    exp = Experiment({"d": fs_of({"c": one_hot})}, g, train("fit", AppliedLoss("cross_entropy", "clf")))
    assert class_widths(exp) == {}
    two = fs_of({"c": np.array([0, 1, 2, 3]), "e": np.array([0, 1, 0, 1])})
    exp2 = Experiment({"d": two}, g, train("fit", AppliedLoss("cross_entropy", "clf")))
    assert class_widths(exp2) == {}


def test_phases_without_losses_and_unknown_nodes_are_skipped():
    fs = fs_of({"c": np.array([0, 1, 1, 4])})
    g = ModelGraph.of(ModelNode("clf", mlp(), FeatureSetRef("d"), optimizer=mml.optim.sgd(0.1)))
    fit = FitPhase("pre", {"clf": InputBinding("d")})
    ce = AppliedLoss("cross_entropy", "clf")
    duck = SimpleNamespace(
        graph=g,
        featuresets={"d": fs},
        plan=PhaseGroup(
            "plan",
            [fit, train("x", [AppliedLoss("cross_entropy", "ghost")]), train("y", ce), train("z", ce)],
        ),
    )
    assert class_widths(duck) == {"clf": (5,)}
    elsewhere = SimpleNamespace(graph=g, featuresets={"other": fs}, plan=train("y", ce))
    assert class_widths(elsewhere) == {}  # the node's FeatureSet is not in this experiment


@pytest.mark.parametrize("first", ["mse", "declared"])
def test_a_skipped_loss_does_not_end_the_phases_losses(first):
    fs = fs_of({"c": np.array([0, 2, 1, 2])})
    g = ModelGraph.of(
        ModelNode("other", mlp(output_shape=(7,)), FeatureSetRef("d"), optimizer=mml.optim.sgd(0.1)),
        ModelNode("clf", mlp(), FeatureSetRef("d"), optimizer=mml.optim.sgd(0.1)),
    )
    skipped = AppliedLoss("mse" if first == "mse" else "cross_entropy", "other")
    phase = train("a", [skipped, AppliedLoss("cross_entropy", "clf")], heads=("other", "clf"))
    assert class_widths(SimpleNamespace(graph=g, featuresets={"d": fs}, plan=phase)) == {"clf": (3,)}


def test_a_join_node_is_not_given_a_width():
    from mml.graph import ConcatNode

    fs = fs_of({"c": np.array([0, 2, 1, 2])})
    g = ModelGraph.of(
        ModelNode("a", mlp(output_shape=(2,)), FeatureSetRef("d"), optimizer=mml.optim.sgd(0.1)),
        ModelNode("b", mlp(output_shape=(2,)), FeatureSetRef("d"), optimizer=mml.optim.sgd(0.1)),
        ConcatNode("cat", (NodeRef("a"), NodeRef("b"))),
        ModelNode("clf", mlp(), NodeRef("cat"), optimizer=mml.optim.sgd(0.1)),
    )
    ce = [AppliedLoss("cross_entropy", "cat"), AppliedLoss("cross_entropy", "clf")]
    duck = SimpleNamespace(graph=g, featuresets={"d": fs}, plan=train("y", ce, heads=("a", "b")))
    assert class_widths(duck) == {"clf": (3,)}


def test_a_model_without_an_output_shape_field_is_left_alone():
    @attrs.frozen
    class Bare:
        hidden: tuple = ()

    fs = fs_of({"c": np.array([0, 1, 2])})
    g = ModelGraph.of(ModelNode("clf", mlp(), FeatureSetRef("d"), optimizer=mml.optim.sgd(0.1)))
    object.__setattr__(g["clf"], "model", Bare())
    duck = SimpleNamespace(
        graph=g, featuresets={"d": fs}, plan=train("y", AppliedLoss("cross_entropy", "clf"))
    )
    assert class_widths(duck) == {}


# -- class_id_problem / check_class_ids ----------------------------------------------------


def msg(values, count, size, n, hint=""):
    return (
        f"loss 'l' on node 'n': class ids must be integers in [0, {n}) (the node outputs {n} logits) but the "
        f"targets hold {values} ({count} of {size} values); {hint}re-encode the labels as 0..{n - 1} "
        "(mask samples out with a mask, not with an id)"
    )


def test_a_bad_id_below_the_width_gets_no_width_hint():
    assert class_id_problem("l", "n", np.array([-1, 3, 0]), 4) == msg("-1", 1, 3, 4)
    assert class_id_problem("l", "n", np.array([0.5, 3.0]), 4) == msg("0.5", 1, 2, 4)


def test_a_bad_id_above_the_width_hints_the_width():
    hint = "give the node output_shape=(6,) if there are 6 classes, or "
    assert class_id_problem("l", "n", np.array([[0], [5], [5]]), 4) == msg("5", 2, 3, 4, hint)
    assert class_id_problem("l", "n", np.array([0.0, np.nan, np.inf, 5.0]), 4) == msg(
        "5, inf, nan", 3, 4, 4, hint
    )


def test_eight_bad_ids_are_all_shown_and_nine_are_cut():
    eight = np.arange(4, 12)
    hint = "give the node output_shape=(12,) if there are 12 classes, or "
    assert class_id_problem("l", "n", eight, 4) == msg("4, 5, 6, 7, 8, 9, 10, 11", 8, 8, 4, hint)
    nine = np.arange(4, 13)
    hint = "give the node output_shape=(13,) if there are 13 classes, or "
    assert class_id_problem("l", "n", nine, 4) == msg("4, 5, 6, 7, 8, 9, 10, 11 and 1 more", 9, 9, 4, hint)


def test_good_ids_empty_ids_and_other_dtypes():
    assert class_id_problem("l", "n", np.array([0, 3, 3], np.uint8), 4) is None
    assert class_id_problem("l", "n", np.array([True, False]), 2) is None
    assert class_id_problem("l", "n", np.zeros(0), 2) is None
    assert class_id_problem("l", "n", np.array(["a"]), 2) == (
        "loss 'l' on node 'n' reads class ids but got <U1 values; use integer class ids"
    )


def _lp(source, key=None, fn="cross_entropy", head="h", node="n", name="l"):
    return SimpleNamespace(
        applied=SimpleNamespace(loss=SimpleNamespace(fn=fn)),
        head=head,
        node=node,
        name=name,
        getters=[("outputs", "outputs", None), ("data", source, key)],
    )


def test_check_class_ids_reads_targets_features_or_a_tag_and_joins_the_problems():
    data = {
        "h": SimpleNamespace(targets=np.array([0, 9]), features=np.array([0, 1]), tags={"t": np.array([7])})
    }
    shapes = {"n": SimpleNamespace(output_shape=(4,))}
    check_class_ids([_lp("features")], data, shapes)
    hint9 = "give the node output_shape=(10,) if there are 10 classes, or "
    with pytest.raises(mml.TrainingError) as info:
        check_class_ids([_lp("targets"), _lp("tags", "t", name="m")], data, shapes)
    hint7 = "give the node output_shape=(8,) if there are 8 classes, or "
    assert str(info.value) == msg("9", 1, 2, 4, hint9) + "; " + msg("7", 1, 1, 4, hint7).replace(
        "loss 'l'", "loss 'm'"
    )
    # not cross-entropy, a head without data, a loss reading outputs, a node without a width, a missing
    # source: each is skipped, and the losses after it are still checked
    data["h"].outputs = np.array([9])
    for skipped in (
        _lp("targets", fn="mse"),
        _lp("targets", head="other"),
        _lp("outputs"),
        _lp("targets", node="unknown"),
        _lp("weights"),
        _lp("tags", "missing"),
    ):
        check_class_ids([skipped], data, shapes)
        with pytest.raises(mml.TrainingError) as info:
            check_class_ids([skipped, _lp("targets")], data, shapes)
        assert str(info.value) == msg("9", 1, 2, 4, hint9)
    few = _lp("targets")
    few.getters = few.getters[:1]
    check_class_ids([few], data, shapes)
    with pytest.raises(mml.TrainingError, match=r"targets hold 9 \(1 of 2 values\)"):
        check_class_ids([few, _lp("targets")], data, shapes)


def test_class_probabilities_shaped_like_the_logits_are_not_ids():
    probs = np.full((2, 4), 0.25, np.float32)
    shapes = {"n": SimpleNamespace(output_shape=(4,))}
    check_class_ids([_lp("targets")], {"h": SimpleNamespace(targets=probs)}, shapes)
    wrong = np.full((2, 3), 0.5, np.float32)  # not the logits' shape: read as (bad) ids
    with pytest.raises(mml.TrainingError, match=r"targets hold 0\.5 \(6 of 6 values\)"):
        check_class_ids([_lp("targets")], {"h": SimpleNamespace(targets=wrong)}, shapes)


def test_torch_targets_are_checked_on_the_cpu():
    import torch

    shapes = {"n": SimpleNamespace(output_shape=(2,))}
    with pytest.raises(mml.TrainingError, match=r"targets hold 2 \(1 of 2 values\)"):
        check_class_ids([_lp("targets")], {"h": SimpleNamespace(targets=torch.tensor([1, 2]))}, shapes)
