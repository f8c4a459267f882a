"""LossPlan, further values (issue 17): TensorFlow plans, targets of joining nodes, role weights."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.data import SampleData
from mml.graph import FeatureSetRef, MergeNode, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP
from mml.training import AppliedLoss, Loss
from mml.training._lossplan import LossPlan

torch = pytest.importorskip("torch")

OUT = torch.tensor([[1.0], [3.0], [0.0]])
TGT = torch.tensor([[2.0], [5.0], [4.0]])  # squared errors 1, 4, 16
FEAT = torch.tensor([[0.0, 9.0], [1.0, 9.0], [4.0, 9.0]])


def sq_first(a, b):
    return (a[:, 0] - b[:, 0]) ** 2


def _sd(**kw):
    kw.setdefault("targets", TGT)
    return SampleData(features=FEAT, **kw)


def _one(backend="torch"):
    return ModelGraph.of(ModelNode("m", SequentialMLP(hidden=(), backend=backend), FeatureSetRef("fs")))


def test_a_tensorflow_plan_computes_in_tensorflow():
    tf = pytest.importorskip("tensorflow")
    lp = LossPlan(AppliedLoss("mse", "m"), _one("tensorflow"), ["m"])
    assert (lp.backend, lp.tf) == ("tensorflow", True)
    outs = {"default": {"m": tf.constant([[1.0], [3.0], [0.0]])}}
    sd = SampleData(features=np.zeros((3, 2), np.float32), targets=np.array([[2.0], [5.0], [4.0]], np.float32))
    got = lp.value(outs, {"default": {"m": sd}})
    assert isinstance(got, tf.Tensor) and float(got) == pytest.approx(7.0)
    w = np.array([1.0, 0.0, 3.0], np.float32)
    sdw = SampleData(features=sd.features, targets=sd.targets, weights=w)
    got = lp.value(outs, {"default": {"m": sdw}})
    assert isinstance(got, tf.Tensor) and float(got) == pytest.approx(49 / 4)
    # float64 weights and a mask from numpy become TensorFlow tensors of the loss's dtype
    sd64 = SampleData(
        features=sd.features, targets=sd.targets, weights=w.astype(np.float64), mask=np.array([True, True, False])
    )
    got = lp.value(outs, {"default": {"m": sd64}})
    assert isinstance(got, tf.Tensor) and float(got) == pytest.approx(1.0)
    assert LossPlan(AppliedLoss("mse", "m"), _one(), ["m"]).tf is False


def _merged(targets):
    return ModelGraph.of(
        ModelNode("a", SequentialMLP(hidden=()), FeatureSetRef("fs", targets="u")),
        ModelNode("b", SequentialMLP(hidden=()), FeatureSetRef("fs", targets="v")),
        MergeNode("j", (NodeRef("a"), NodeRef("b")), targets=targets),
    )


def test_targets_of_a_joining_node_follow_its_strategy():
    ta, tb = torch.tensor([[2.0], [5.0], [4.0]]), torch.tensor([[4.0], [1.0], [2.0]])
    data = {"default": {"a": _sd(targets=ta), "b": _sd(targets=tb)}}
    outs = {"default": {"j": OUT}}
    mean = LossPlan(AppliedLoss("mse", "j"), _merged("mean"), ["a", "b"])
    # mean targets 3, 3, 3 against 1, 3, 0: (4 + 0 + 9) / 3
    assert float(mean.value(outs, data)) == pytest.approx(13 / 3)
    last = LossPlan(AppliedLoss("mse", "j"), _merged("last"), ["a", "b"])
    assert float(last.value(outs, data)) == pytest.approx((9 + 4 + 4) / 3)
    with pytest.raises(mml.GraphError) as info:
        mean.value(outs, {"default": {"a": _sd(targets=ta)}})
    assert str(info.value) == (
        "the targets of node 'j' come from head 'b' (FeatureSet 'fs'), but no batch of 'b' was given (heads: 'a'); "
        "bind an input to 'b'"
    )


def test_the_weights_of_a_later_role_count_when_an_earlier_role_has_no_data_for_the_head():
    lp = LossPlan(
        AppliedLoss(Loss(f"{__name__}:sq_first"), "m", inputs=("a.outputs", "b.outputs")), _one(), ["m"]
    )
    assert lp.weight_roles == ("a", "b")
    outs = {"a": {"m": OUT}, "b": {"m": TGT}}
    wb = torch.tensor([1.0, 0.0, 3.0])
    # role 'a' has no batch at all, role 'b' one with weights: (1 * 1 + 3 * 16) / 4
    assert float(lp.value(outs, {"b": {"m": _sd(weights=wb)}})) == pytest.approx(49 / 4)
    # role 'a' has a batch for another head only
    assert float(lp.value(outs, {"a": {"x": _sd()}, "b": {"m": _sd(weights=wb)}})) == pytest.approx(49 / 4)
    mb = torch.tensor([False, True, True])
    assert float(lp.value(outs, {"b": {"m": _sd(mask=mb)}})) == pytest.approx(10.0)
    assert float(lp.value(outs, {})) == pytest.approx(7.0)
