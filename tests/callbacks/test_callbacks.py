from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
import pytest

import mml
from mml.callbacks import (
    AbstractCallback,
    CallbackResult,
    Checkpointing,
    EarlyStopping,
    Evaluation,
    LRSchedulerOnPlateau,
    MetricCallback,
)

from ..training.conftest import make_featureset, params_of, same_params, simple_experiment

torch = pytest.importorskip("torch")


@pytest.fixture
def toy():
    return make_featureset()


def test_evaluation_logs_val_loss_and_metrics(toy):
    exp = simple_experiment(toy, n_epochs=3, callbacks=[Evaluation(split="val", metrics=("mae", "r2"))])
    _, h = mml.run(exp, mml.init(exp, 0))
    assert h.status == "completed"
    val = h.epochs().values("val_loss")
    assert len(val) == 3 and np.all(np.isfinite(val))
    assert len(h.values("val_mae")) == 3 and len(h.values("val_r2")) == 3


def test_metric_callback_user_function_by_path(toy):
    cb = MetricCallback(("mae", "tests.callbacks.test_callbacks:max_error"))
    exp = simple_experiment(toy, n_epochs=2, callbacks=[cb])
    _, h = mml.run(exp, mml.init(exp, 0))
    assert len(h.values("val_max_error")) == 2
    assert np.all(h.values("val_max_error") >= h.values("val_mae"))


def max_error(pred: Any, true: Any) -> float:
    return float(np.max(np.abs(pred.reshape(-1) - true.reshape(-1))))


def test_early_stopping_stops_and_restores_best(toy):
    # an absurd learning rate makes val_loss get worse after the first epoch
    es = EarlyStopping("val_loss", patience=1, restore_best=True)
    exp = simple_experiment(toy, n_epochs=20, callbacks=[Evaluation(), es])
    exp = attrs.evolve(
        exp, graph=exp.graph.replace("mlp", attrs.evolve(exp.graph["mlp"], optimizer=mml.optim.sgd(0.5)))
    )
    state, h = mml.run(exp, mml.init(exp, 0))
    assert h.status == "stopped"
    epochs = h.epochs().where(name="val_loss")
    assert len(epochs) < 20
    cb_state = state.callback_state("fit/1")
    assert cb_state.best == pytest.approx(float(epochs.values().min()))
    # restored params are those of the best epoch
    assert same_params(
        params_of(state), {k: v.clone() for k, v in cb_state.best_graph.params["mlp"].params.items()}
    )
    assert int(h.last("best_epoch")) == int(np.argmin(epochs.values()))


def test_reusing_a_callback_value_never_leaks_state(toy):
    es = EarlyStopping("loss", patience=0)
    exp = simple_experiment(toy, n_epochs=4, callbacks=[es])
    s0 = mml.init(exp, 0)
    a, ha = mml.run(exp, s0)
    b, hb = mml.run(exp, s0)
    assert np.array_equal(ha.value, hb.value) and ha.status == hb.status
    assert same_params(params_of(a), params_of(b))
    assert es == EarlyStopping("loss", patience=0)  # the value itself holds nothing


@attrs.frozen
class Boom(AbstractCallback):
    kind: ClassVar[str] = "callback.test_boom"
    at_epoch: int = 1

    def on_epoch_end(self, event: Any, state: Any) -> CallbackResult | None:
        if event.epoch == self.at_epoch:
            raise ValueError("user bug")
        return None


def test_callback_exception_marks_the_run_failed(toy):
    exp = simple_experiment(toy, n_epochs=3, callbacks=[Boom()])
    s0 = mml.init(exp, 0)
    state, h = mml.run(exp, s0)
    assert h.status == "failed"
    assert isinstance(h.error, mml.CallbackError)
    assert "Boom" in str(h.error) and "on_epoch_end" in str(h.error)
    assert all(torch.isfinite(v).all() for v in state.params("mlp").params.values())
    assert state.step == 12  # two full epochs of 6 batches, nothing half-applied


@attrs.frozen
class CountBatches(AbstractCallback):
    kind: ClassVar[str] = "callback.test_count"

    def init(self) -> int:
        return 0

    def on_batch_end(self, event: Any, state: int) -> CallbackResult:
        return CallbackResult(state=state + 1, metrics={"seen": float(state + 1)})


def test_batch_hooks_state_lives_in_train_state(toy):
    exp = simple_experiment(toy, n_epochs=2, callbacks=[CountBatches()])
    s0 = mml.init(exp, 0)
    state, h = mml.run(exp, s0)
    assert state.callback_state("fit/0") == 12
    assert s0.callback_state("fit/0") is None
    assert h.values("seen")[-1] == 12.0


def test_lr_on_plateau_scales_the_learning_rate(toy):
    cb = LRSchedulerOnPlateau(monitor="loss", patience=0, factor=0.5, min_delta=1e9)
    exp = simple_experiment(toy, n_epochs=3, callbacks=[cb])
    state, h = mml.run(exp, mml.init(exp, 0))
    assert h.values("lr_scale").tolist() == [1.0, 0.5, 0.25]
    assert state.callback_state("fit/0").scale == 0.25
    plain = simple_experiment(toy, n_epochs=3)
    other, _ = mml.run(plain, mml.init(plain, 0))
    assert not same_params(params_of(state), params_of(other))  # the scale reached the optimizer


def test_checkpointing_memory_and_disk(toy, tmp_path):
    exp = simple_experiment(
        toy,
        n_epochs=3,
        callbacks=[Checkpointing(keep=2), Checkpointing(keep=1, mode="disk", directory=str(tmp_path))],
    )
    state, _h = mml.run(exp, mml.init(exp, 0))
    mem = state.callback_state("fit/0").memory
    assert [c.epoch for c in mem] == [1, 2]
    paths = state.callback_state("fit/1").paths
    assert len(paths) == 1 and len(list(tmp_path.iterdir())) == 1
    loaded = mml.load(paths[0])
    assert same_params(params_of(loaded), params_of(state))


def test_experiment_level_hooks(toy):
    @attrs.frozen
    class Phases(AbstractCallback):
        kind: ClassVar[str] = "callback.test_phases"

        def init(self) -> tuple:
            return ()

        def on_phase_end(self, event: Any, state: tuple) -> CallbackResult:
            return CallbackResult(state=(*state, event.phase), metrics={"phases_done": float(len(state) + 1)})

    exp = attrs.evolve(simple_experiment(toy, n_epochs=1), callbacks=(Phases(),))
    state, h = mml.run(exp, mml.init(exp, 0))
    assert state.callback_state("experiment/0") == ("fit",)
    assert h.last("phases_done") == 1.0


def test_evolved_evaluation_logs_under_its_new_split(toy):
    # regression: the prefix was filled in at construction, so evolve(split="test") kept "val_"
    toy = toy.with_split("test", np.arange(10), overlap="allow")
    cb = attrs.evolve(Evaluation(split="val"), split="test")
    assert cb.log_prefix == "test_" and cb.prefix is None
    assert mml.io.roundtrip(cb) == cb and mml.io.roundtrip(cb).log_prefix == "test_"
    exp = simple_experiment(toy, n_epochs=1, callbacks=[cb])
    _, h = mml.run(exp, mml.init(exp, 0))
    assert h.status == "completed"
    assert len(h.values("test_loss")) == 1 and len(h.values("val_loss")) == 0


def test_evaluation_calls_the_evaluate_the_loop_hands_in() -> None:
    # issue 12: callbacks import nothing of training; the fold's evaluate comes with the Event
    from mml.callbacks import Evaluation, Event

    @attrs.frozen
    class Res:
        losses: dict[str, float]
        outputs: dict[str, Any] = attrs.field(factory=dict)
        targets: dict[str, Any] = attrs.field(factory=dict)

    @attrs.frozen
    class Phase:
        inputs: dict[str, Any]
        losses: tuple[str, ...]

    calls: list[tuple[Any, ...]] = []

    def fake_evaluate(experiment: Any, state: Any, inputs: Any, **kw: Any) -> Res:
        calls.append((experiment, state, inputs, kw))
        return Res({"loss": 0.25, "mse": 0.25})

    phase = Phase({"m": "binding"}, ("L",))
    ev = Event("on_epoch_end", epoch=0, state="S", experiment="E", phase_value=phase, evaluate=fake_evaluate)
    res = Evaluation(split="val").on_epoch_end(ev, None)
    assert res is not None and dict(res.metrics) == {"val_loss": 0.25, "val_mse": 0.25}
    assert calls == [("E", "S", {"m": "binding"}, {"losses": ("L",), "split": "val", "nodes": None})]
    with pytest.raises(mml.TrainingError, match="evaluation callbacks run inside a training phase"):
        Evaluation(split="val").on_epoch_end(attrs.evolve(ev, evaluate=None), None)
