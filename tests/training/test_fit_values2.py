"""More of FitPhase pinned by value (issue 17): a scikit-learn node fitted on the eval-mode output
of a torch node with dropout (against scikit-learn on the same inputs), what a fit context holds,
and the message naming every node that is not fed.
"""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import ConcatNode, FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP, SklearnModel, TorchModule
from mml.training import Experiment, FitPhase, InputBinding, evaluate, steps

from .conftest import make_featureset

torch = pytest.importorskip("torch")
sklearn_lm = pytest.importorskip("sklearn.linear_model")


# a built-in MLP with dropout, and a user torch module (batch norm + dropout: torch's own train/eval modes)
ENCODERS = {
    "mlp": SequentialMLP(hidden=(16,), dropout=0.5, output_shape=(4,)),
    "module": TorchModule(
        "tests.backends.backend_factories:bn_net", {"hidden": 8, "p": 0.5}, output_shape=(4,)
    ),
}


def _exp(plan, enc="mlp"):
    g = ModelGraph.of(
        ModelNode("enc", ENCODERS[enc], FeatureSetRef("toy"), optimizer=mml.optim.sgd(0.1)),
        ModelNode("ridge", SklearnModel("sklearn.linear_model:Ridge", {"alpha": 0.5}), NodeRef("enc")),
        ModelNode("mlp", SequentialMLP(hidden=()), FeatureSetRef("toy"), optimizer=mml.optim.sgd(0.1)),
        ModelNode("mlp2", SequentialMLP(hidden=()), FeatureSetRef("toy"), optimizer=mml.optim.sgd(0.1)),
        # a joining node below the encoder: fed by the inputs, no model, never fitted
        ConcatNode("cat", (NodeRef("enc"), NodeRef("ridge"))),
    )
    return Experiment({"toy": make_featureset(n=40)}, g, plan)


BIND = {"enc": InputBinding("toy", "train")}


@pytest.mark.parametrize("enc", list(ENCODERS))
def test_a_node_below_a_torch_node_is_fitted_on_its_eval_mode_output(enc):
    exp = _exp(FitPhase("fit", BIND), enc)
    state = mml.init(exp, 0)
    got = list(steps(exp, exp.plan, state))
    assert len(got) == 1
    final, ctx = got[0]
    assert (ctx.phase, ctx.epoch, ctx.batch, ctx.step, ctx.event) == ("fit", 0, 1, 0, "fit")
    assert dict(ctx.inputs) == {} and dict(ctx.outputs) == {} and dict(ctx.losses) == {}
    assert final.fitted == ("ridge",)
    # the encoder's output without dropout (training=False), whole train split in one batch
    x = evaluate(exp, state, BIND, nodes=["enc"]).outputs["enc"].astype(np.float64)
    fs = exp.featuresets["toy"]
    y = fs.to_numpy("targets")[fs.rows("train")]
    ref = sklearn_lm.Ridge(alpha=0.5).fit(x, y)
    attrs_ = final.params("ridge").fitted.attributes
    np.testing.assert_allclose(np.ravel(attrs_["coef_"]), np.ravel(ref.coef_), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.ravel(attrs_["intercept_"]), np.ravel(ref.intercept_), rtol=1e-4, atol=1e-6)
    # the torch encoder is untouched by the fit
    for k, v in state.params("enc").params.items():
        assert torch.equal(final.params("enc").params[k], v)


def test_every_node_that_is_not_fed_is_named():
    exp = _exp(FitPhase("fit", BIND, nodes=["mlp2", "ridge", "mlp"]))
    with pytest.raises(mml.TrainingError) as info:
        list(steps(exp, exp.plan, mml.init(exp, 0)))
    assert str(info.value) == "phase 'fit': node(s) 'mlp2', 'mlp' are not fed by its inputs"
