"""LossPlan (an applied loss resolved for a phase) pinned by value and message (issue 17)."""

from __future__ import annotations

import pytest

import mml
from mml.data import SampleData
from mml.training import AppliedLoss, Loss
from mml.training._lossplan import LossPlan, loss_backend

torch = pytest.importorskip("torch")


def sq_first(outputs, other):
    return (outputs[:, 0] - other[:, 0]) ** 2


def _graph():
    from mml.graph import ConcatNode, FeatureSetRef, ModelGraph, ModelNode, NodeRef
    from mml.models import SequentialMLP

    return ModelGraph.of(
        ModelNode("t1", SequentialMLP(hidden=(2,)), FeatureSetRef("fs")),
        ModelNode("k1", SequentialMLP(hidden=(2,), backend="tensorflow"), FeatureSetRef("fs")),
        ModelNode("k2", SequentialMLP(hidden=(2,), backend="tensorflow"), FeatureSetRef("fs")),
        ConcatNode("mixed", [NodeRef("t1"), NodeRef("k1")]),
        ConcatNode("tfonly", [NodeRef("k1"), NodeRef("k2")]),
    )


def test_loss_backend_of_model_and_joining_nodes():
    g = _graph()
    assert loss_backend(g, "t1") == "torch"
    assert loss_backend(g, "k1") == "tensorflow"
    assert loss_backend(g, "mixed") == "torch"
    assert loss_backend(g, "tfonly") == "tensorflow"


def _one_node():
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import SequentialMLP

    return ModelGraph.of(ModelNode("m", SequentialMLP(hidden=()), FeatureSetRef("fs")))


OUT = torch.tensor([[1.0], [3.0], [0.0]])
TGT = torch.tensor([[2.0], [5.0], [4.0]])  # squared errors 1, 4, 16
FEAT = torch.tensor([[0.0, 9.0], [1.0, 9.0], [4.0, 9.0]])  # (out - feat[:, 0])**2 = 1, 4, 16


def _sd(**kw):
    return SampleData(features=FEAT, targets=TGT, **kw)


def test_attributes():
    lp = LossPlan(AppliedLoss("mse", "m", weight=0.5, label="L"), _one_node(), ["m"])
    assert (lp.name, lp.node, lp.weight, lp.head, lp.backend, lp.tf) == ("L", "m", 0.5, "m", "torch", False)
    assert lp.getters == [("default", "outputs", None), ("default", "targets", None)]
    assert lp.weight_roles == ("default",)
    assert LossPlan(AppliedLoss("mse", "m"), _one_node(), []).head is None


def test_value_honours_weights_and_masks():
    lp = LossPlan(AppliedLoss("mse", "m"), _one_node(), ["m"])
    outs = {"default": {"m": OUT}}
    assert float(lp.value(outs, {"default": {"m": _sd()}})) == pytest.approx(7.0)
    w = torch.tensor([1.0, 0.0, 3.0])
    assert float(lp.value(outs, {"default": {"m": _sd(weights=w)}})) == pytest.approx(49 / 4)
    mask = torch.tensor([True, True, False])
    assert float(lp.value(outs, {"default": {"m": _sd(mask=mask)}})) == pytest.approx(2.5)
    assert float(lp.value(outs, {"default": {"m": _sd(weights=w, mask=mask)}})) == pytest.approx(1.0)
    # a loss not bound to a head of the phase reads no weights
    free = LossPlan(AppliedLoss("mse", "m"), _one_node(), [])
    assert float(free.value(outs, {"default": {"m": _sd(weights=w, mask=mask)}})) == pytest.approx(7.0)


def test_weights_and_masks_of_two_roles_combine():
    lp = LossPlan(
        AppliedLoss(Loss(f"{__name__}:sq_first"), "m", inputs=("a.outputs", "b.features")), _one_node(), ["m"]
    )
    assert lp.weight_roles == ("a", "b")
    outs = {"a": {"m": OUT}}
    wa, wb = torch.tensor([1.0, 2.0, 1.0]), torch.tensor([1.0, 1.0, 2.0])
    data = {"a": {"m": _sd(weights=wa)}, "b": {"m": _sd(weights=wb)}}
    assert float(lp.value(outs, data)) == pytest.approx((1 + 8 + 32) / 5)
    ma, mb = torch.tensor([True, True, False]), torch.tensor([False, True, True])
    data = {"a": {"m": _sd(mask=ma)}, "b": {"m": _sd(mask=mb)}}
    assert float(lp.value(outs, data)) == pytest.approx(4.0)
    # a role without data for the head is skipped
    assert float(lp.value(outs, {"a": {"m": _sd(weights=wa)}, "b": {"m": _sd()}})) == pytest.approx(
        (1 + 8 + 16) / 4
    )
    data = {"a": {"m": _sd(weights=wa)}, "b": {"x": _sd()}}
    with pytest.raises(mml.TrainingError):
        lp.value(outs, data)


def test_sources_weights_mask_and_tags():
    w = torch.tensor([1.0, 2.0, 3.0])
    lp = LossPlan(
        AppliedLoss(Loss(f"{__name__}:sq_first"), "m", inputs=("outputs", "tags.t")), _one_node(), ["m"]
    )
    sd = _sd(tags={"t": torch.tensor([[1.0], [1.0], [1.0]])})
    assert float(lp.value({"default": {"m": OUT}}, {"default": {"m": sd}})) == pytest.approx((0 + 4 + 1) / 3)
    wl = LossPlan(
        AppliedLoss(Loss(f"{__name__}:sq_first"), "m", inputs=("outputs", "weights")), _one_node(), ["m"]
    )
    got = wl.value({"default": {"m": OUT}}, {"default": {"m": _sd(weights=w.reshape(3, 1))}})
    assert float(got) == pytest.approx((0 * 1 + 1 * 2 + 9 * 3) / 6)
    with pytest.raises(mml.TrainingError) as info:
        wl.value({"default": {"m": OUT}}, {"default": {"m": _sd()}})
    assert str(info.value) == "loss 'm.sq_first' reads weights but the batch of 'm' has none"


def test_missing_roles_and_targets_in_full():
    hint = "qualify the inputs with a role, e.g. inputs=('anchor.outputs', 'positive.outputs', 'negative.outputs')"
    lp = LossPlan(AppliedLoss("mse", "m", inputs=("anchor.outputs", "anchor.targets")), _one_node(), ["m"])
    with pytest.raises(mml.TrainingError) as info:
        lp.value({"default": {"m": OUT}, "pair": {}}, {"anchor": {"m": _sd()}})
    assert (
        str(info.value) == f"loss 'm.mse' reads role 'anchor' but the batch has roles default, pair; {hint}"
    )
    with pytest.raises(mml.TrainingError) as info:
        lp.value({"anchor": {"m": OUT}}, {"default": {"m": _sd()}})
    assert str(info.value) == f"loss 'm.mse' reads role 'anchor' but the batch has roles default; {hint}"
    with pytest.raises(mml.TrainingError) as info:
        lp.value({"anchor": {"m": OUT}}, {"anchor": {"m": SampleData(features=FEAT)}})
    assert str(info.value) == "loss 'm.mse' reads targets but the batch of 'm' has none"
    fl = LossPlan(
        AppliedLoss(Loss(f"{__name__}:sq_first"), "m", inputs=("outputs", "x.features")), _one_node(), ["m"]
    )
    with pytest.raises(mml.TrainingError) as info:
        fl.value({"default": {"m": OUT}}, {"default": {"m": _sd()}})
    assert str(info.value) == f"loss 'm.sq_first' reads role 'x' but the batch has roles default; {hint}"
    assert float(fl.value({"default": {"m": OUT}}, {"default": {}, "x": {"m": _sd()}})) == pytest.approx(7.0)
