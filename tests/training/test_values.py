from __future__ import annotations

import attrs
import pytest

import mml
from mml.callbacks import EarlyStopping, Evaluation
from mml.training import AppliedLoss, EvalPhase, Experiment, InputBinding, Loss, PhaseGroup, TrainPhase

from .conftest import make_featureset, mlp_graph, params_of, same_params, simple_experiment

torch = pytest.importorskip("torch")


@pytest.fixture
def toy():
    return make_featureset()


def test_experiment_roundtrips(toy, tmp_path):
    exp = simple_experiment(toy, callbacks=[Evaluation(metrics=("mae",)), EarlyStopping(patience=2)])
    exp = attrs.evolve(
        exp,
        plan=PhaseGroup(
            "plan", [exp.plan, EvalPhase.simple("test", featureset="toy", heads=["mlp"], split="val")]
        ),
    )
    assert mml.io.roundtrip(exp) == exp
    mml.save(exp, tmp_path / "exp")
    assert mml.load(tmp_path / "exp") == exp


def test_train_state_roundtrips_with_torch_tensors(toy, tmp_path):
    exp = simple_experiment(toy, n_epochs=1, callbacks=[EarlyStopping("loss", restore_best=True)])
    state, _ = mml.run(exp, mml.init(exp, 0))
    back = mml.io.roundtrip(state)
    assert back == state
    assert isinstance(back.params("mlp").params["layers.0.weight"], torch.Tensor)
    mml.save(state, tmp_path / "state")
    loaded = mml.load(tmp_path / "state")
    assert loaded == state
    # resuming from the loaded state gives the same numbers as from the original
    a, _ = mml.run(exp, state)
    b, _ = mml.run(exp, loaded)
    assert same_params(params_of(a), params_of(b))


def test_from_config_builds_the_same_experiment(toy):
    exp = simple_experiment(toy)
    doc = {"graph": mml.io.unstructure(exp.graph), "plan": mml.io.unstructure(exp.plan), "label": "x"}
    built = Experiment.from_config(doc, featuresets={"toy": toy})
    assert built.graph == exp.graph and built.plan == exp.plan and built.label == "x"


def test_loss_bound_to_unknown_node(toy):
    with pytest.raises(mml.TrainingError, match=r"unknown node .mpl.*did you mean .mlp."):
        simple_experiment(toy).__class__(
            {"toy": toy},
            mlp_graph(),
            TrainPhase.simple("fit", featureset="toy", heads=["mlp"], losses=AppliedLoss("mse", "mpl")),
        )


def test_missing_target(toy):
    fs = mml.FeatureSet.from_dict(
        {"a": [1.0, 2.0], "b": [0.0, 1.0], "c": [1.0, 1.0]}, features=["a", "b", "c"], label="toy"
    )
    fs = fs.with_split("train", [0, 1])
    with pytest.raises(mml.TrainingError, match="has no targets"):
        simple_experiment(fs)


def test_loss_reading_a_target_key_the_featureset_lacks(toy):
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import SequentialMLP

    node = ModelNode(
        "mlp", SequentialMLP(hidden=(4,)), FeatureSetRef("toy", targets="z"), optimizer=mml.optim.adam()
    )
    phase = TrainPhase.simple("fit", featureset="toy", heads=["mlp"], losses=AppliedLoss("mse", "mlp"))
    # the real cause (a misspelt target key), not "has no targets": the FeatureSet has 'y'
    with pytest.raises(
        mml.TrainingError, match=r"no targets key\(s\) 'z'; its targets keys are: 'y'"
    ) as info:
        Experiment({"toy": toy}, ModelGraph.of(node), phase)
    assert "has no targets;" not in str(info.value) and "FeatureSetRef(targets=...)" in str(info.value)


def test_sampler_bound_to_missing_split(toy):
    phase = TrainPhase("fit", {"mlp": InputBinding("toy", "tran")}, [AppliedLoss("mse", "mlp")])
    with pytest.raises(mml.TrainingError, match="split 'tran'"):
        Experiment({"toy": toy}, mlp_graph(), phase)


def test_backend_mismatch_between_loss_and_node(toy):
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["mlp"],
        losses=AppliedLoss(Loss("keras.losses:MeanSquaredError"), "mlp"),
    )
    with pytest.raises(mml.BackendError, match="tensorflow loss"):
        Experiment({"toy": toy}, mlp_graph(), phase)


def test_loss_rejects_unknown_names_and_bad_arity():
    with pytest.raises(mml.ConfigError, match="did you mean 'mae'"):
        Loss("maee")
    with pytest.raises(mml.ConfigError, match="takes 3 inputs"):
        AppliedLoss("triplet_margin", "enc")


def test_builtin_losses_honour_weights_and_masks():
    from mml.training import compile_loss

    o = torch.tensor([[0.0], [0.0], [0.0]])
    t = torch.tensor([[1.0], [2.0], [3.0]])
    mse = compile_loss(Loss("mse"))
    assert float(mse([o, t], None, None)) == pytest.approx(14 / 3)
    assert float(mse([o, t], torch.tensor([1.0, 0.0, 1.0]), None)) == pytest.approx(5.0)
    assert float(mse([o, t], None, torch.tensor([True, True, False]))) == pytest.approx(2.5)
    huber = compile_loss(Loss("torch.nn:SmoothL1Loss"))
    assert float(huber([o, t], None, None)) == pytest.approx(float(torch.nn.SmoothL1Loss()(o, t)))
    a, p, n = torch.zeros(2, 2), torch.zeros(2, 2), torch.ones(2, 2)
    trip = compile_loss(Loss("triplet_margin", {"margin": 1.0}))
    assert float(trip([a, p, n], None, None)) == pytest.approx(0.0, abs=1e-5)


def test_input_specs_parse_roles():
    al = AppliedLoss(
        "triplet_margin", "enc", inputs=("anchor.outputs", "positive.outputs", "negative.outputs")
    )
    assert al.roles == ("anchor", "positive", "negative")
    with pytest.raises(mml.ConfigError):
        AppliedLoss("mse", "enc", inputs=("anchor.bogus", "targets"))


def test_phase_values_validate():
    with pytest.raises(mml.ConfigError, match="batch_schedule"):
        TrainPhase("t", {}, [AppliedLoss("mse", "m")], batch_schedule="zip")
    with pytest.raises(mml.ConfigError, match="mode"):
        TrainPhase("t", {}, [AppliedLoss("mse", "m")], mode="layerwise")
    with pytest.raises(mml.ConfigError, match="no losses"):
        TrainPhase("t", {}, [])


def test_stagewise_trainable_node_without_loss_is_an_error(toy):
    exp = Experiment(
        {"toy": toy},
        mlp_graph(),
        TrainPhase.simple(
            "fit", featureset="toy", heads=["mlp"], losses=AppliedLoss("mse", "mlp"), trainable=["mlp"]
        ),
    )
    _state, h = mml.run(exp, mml.init(exp, 0))
    assert h.status == "completed"
    frozen = Experiment({"toy": toy}, mlp_graph().freeze("mlp"), exp.plan)
    _, h = mml.run(frozen, mml.init(frozen, 0))
    assert h.status == "failed" and "frozen" in str(h.error)


def test_boxed_refuses_a_type_that_does_not_describe_its_value() -> None:
    # regression: attrs.evolve(box(x), value=y) kept x's type path, so the saved document
    # would have revived y as the wrong class
    from mml.errors import ConfigError
    from mml.training._state import box

    b = box(mml.random.key(1))
    with pytest.raises(ConfigError, match=r"Boxed\.type is 'mml\.random:Key'"):
        attrs.evolve(b, value=box(2.0))
    assert attrs.evolve(b, value=mml.random.key(2)).value == mml.random.key(2)
