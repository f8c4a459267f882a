"""Every phase answers inputs/losses/callbacks/n_epochs/active_nodes/trainable, with its own values."""

import mml
from mml.callbacks import EarlyStopping
from mml.training import AppliedLoss, EvalPhase, FitPhase, InputBinding, PhaseGroup, TrainPhase


def test_phases_without_a_field_answer_empty_and_phases_with_one_their_value():
    loss = AppliedLoss("mse", "m")
    stop = EarlyStopping(patience=1)
    train = TrainPhase(
        "t",
        {"m": InputBinding("fs")},
        [loss],
        n_epochs=3,
        active_nodes=["m"],
        trainable=["m"],
        callbacks=[stop],
    )
    ev = EvalPhase("e", {"m": InputBinding("fs", split="val")}, losses=[loss])
    fit = FitPhase("f", {"m": InputBinding("fs")})
    group = PhaseGroup("g", [train, ev, fit])
    assert (train.n_epochs, train.losses, train.callbacks, train.active_nodes, train.trainable) == (
        3,
        (loss,),
        (stop,),
        ("m",),
        ("m",),
    )
    assert (ev.n_epochs, ev.losses, ev.callbacks, ev.active_nodes, ev.trainable) == (
        None,
        (loss,),
        (),
        None,
        None,
    )
    assert (fit.n_epochs, fit.losses, fit.callbacks) == (None, (), ())
    assert dict(group.inputs) == {} and group.losses == () and group.n_epochs is None
    assert set(fit.inputs) == {"m"} and set(ev.inputs) == {"m"}


def test_the_defaults_are_not_fields_so_documents_are_unchanged():
    fit = FitPhase("f", {"m": InputBinding("fs")})
    doc = mml.io.unstructure(fit)
    assert not {"losses", "callbacks", "n_epochs", "active_nodes", "trainable"} & set(doc)
    assert mml.io.structure(doc, FitPhase) == fit
