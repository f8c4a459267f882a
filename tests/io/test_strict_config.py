"""Strict documents: configs and --set overrides, every key checked, errors that say why."""

import copy

import pytest

import mml
from mml.config import apply_overrides, experiment_from_config, parse_yaml

CONFIG = parse_yaml(
    """
label: toy
seed: 0
featuresets:
  battery:
    dataset: battery
    n_samples: 40
    split: {kind: splitter.random, ratios: {train: 0.5, val: 0.25, test: 0.25}, seed: 0}
graph:
  nodes:
    - kind: node.model
      label: mlp
      model: {kind: model.mlp, hidden: [4]}
      upstream: {featureset: battery}
      optimizer: {kind: optim.adam, lr: 1e-2}
plan:
  kind: phase.group
  label: plan
  phases:
    - kind: phase.train
      label: train
      inputs:
        mlp: {featureset: battery, split: train, sampler: {kind: sampler.simple, batch_size: 8}}
      losses: [{loss: mse, node: mlp}]
      n_epochs: 1
      callbacks:
        - {kind: callback.evaluation, split: val}
        - {kind: callback.early_stopping, monitor: val_loss, patience: 5}
"""
)


def _build(cfg):
    return experiment_from_config(cfg)[0]


def _edited(edit):
    cfg = copy.deepcopy(CONFIG)
    edit(cfg)
    return cfg


def _train(cfg):
    return cfg["plan"]["phases"][0]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: _train(c).update(n_epoch=_train(c).pop("n_epochs")),
            "$.plan.phases[0].n_epoch: unknown key; did you mean 'n_epochs'?",
        ),
        (
            lambda c: _train(c)["callbacks"][1].update(patiense=_train(c)["callbacks"][1].pop("patience")),
            "$.plan.phases[0].callbacks[1].patiense: unknown key; did you mean 'patience'?",
        ),
        (
            lambda c: c["graph"]["nodes"][0].update(optimiser=c["graph"]["nodes"][0].pop("optimizer")),
            "$.graph.nodes[0].optimiser: unknown key; did you mean 'optimizer'?",
        ),
        (
            lambda c: c["featuresets"]["battery"].update(
                n_sample=c["featuresets"]["battery"].pop("n_samples")
            ),
            "$.featuresets.battery.n_sample: unknown key; did you mean 'n_samples'?",
        ),
        (
            lambda c: c.update(lable="x"),
            "$.lable: unknown key; did you mean 'label'?",
        ),
        (
            lambda c: _train(c)["inputs"]["mlp"]["sampler"].update(batch_size=-4),
            "$.plan.phases[0].inputs.mlp.sampler: SimpleSampler.batch_size must be a positive int, got -4",
        ),
        (
            lambda c: c["graph"]["nodes"][0]["model"].update(hidden="64"),
            "$.graph.nodes[0].model.hidden: expected a list, got str",
        ),
        (
            lambda c: c["graph"]["nodes"][0]["model"].update(kind="model.mpl"),
            "$.graph.nodes[0].model: unknown kind 'model.mpl' (did you mean model.mlp",
        ),
    ],
    ids=[
        "n_epoch",
        "patiense",
        "optimiser",
        "n_sample",
        "top-level",
        "batch_size",
        "string-as-tuple",
        "kind",
    ],
)
def test_config_typos_name_the_path_and_the_closest_key(edit, message):
    with pytest.raises(mml.ConfigError) as info:
        _build(_edited(edit))
    assert message in str(info.value)


def test_the_valid_config_builds():
    exp = _build(CONFIG)
    assert exp.plan.phases[0].n_epochs == 1


def test_numbers_like_1e_3_are_numbers():
    assert parse_yaml("lr: 1e-3\nb: 1E5\nc: .5\nd: -2.5e+2\ne: '1e-3'\nf: 3") == {
        "lr": 0.001,
        "b": 100000.0,
        "c": 0.5,
        "d": -250.0,
        "e": "1e-3",
        "f": 3,
    }
    cfg = apply_overrides(CONFIG, ["graph.nodes.mlp.optimizer.lr=1e-3"])
    assert cfg["graph"]["nodes"][0]["optimizer"]["lr"] == 0.001
    exp = _build(cfg)
    assert exp.graph["mlp"].optimizer.lr == 0.001


def test_set_accepts_labels_and_rejects_typos():
    cfg = apply_overrides(CONFIG, ["plan.phases.train.n_epochs=2"])
    assert _build(cfg).plan.phases[0].n_epochs == 2
    with pytest.raises(
        mml.ConfigError, match=r"\$\.plan\.phases\[0\]\.n_epoch: unknown key; did you mean 'n_epochs'\?"
    ):
        _build(apply_overrides(CONFIG, ["plan.phases.0.n_epoch=7"]))
    with pytest.raises(mml.ConfigError, match=r"neither an index .* nor the label .*train"):
        apply_overrides(CONFIG, ["plan.phases.trian.n_epochs=2"])


def test_cli_set_typo_is_reported(tmp_path, capsys):
    import json

    from mml.cli import main

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(CONFIG))
    assert (
        main(["run", str(cfg), "--quiet", "--out", str(tmp_path / "r"), "--set", "plan.phases.0.n_epoch=7"])
        == 2
    )
    assert "did you mean 'n_epochs'?" in capsys.readouterr().err
