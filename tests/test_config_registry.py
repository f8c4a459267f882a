"""Short names for user components in configs, passed or declared — no global registry (issue 11.16)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import mml
from mml.config import experiment_from_config
from mml.scalers import Negate

BASE = {
    "featuresets": {
        "battery": {
            "dataset": "battery",
            "n_samples": 40,
            "split": {"kind": "splitter.random", "ratios": {"train": 0.75, "test": 0.25}},
            "transforms": [{"scaler": "flip", "domain": "targets"}],
        }
    },
    "graph": {
        "nodes": [
            {
                "kind": "node.model",
                "label": "lin",
                "model": {"kind": "model.sklearn", "estimator": "sklearn.linear_model:Ridge"},
                "upstream": {"featureset": "battery"},
            }
        ]
    },
    "plan": {
        "kind": "phase.fit",
        "label": "fit",
        "inputs": {"lin": {"featureset": "battery", "split": "train"}},
    },
}


def _flipped(exp: mml.Experiment) -> bool:
    fs = exp.featuresets["battery"]
    raw, done = fs.to_numpy("targets", rep="raw"), fs.to_numpy("targets", rep="transformed")
    return bool(np.array_equal(done, -raw)) and fs.records[-1].scaler == Negate()


def test_a_registry_passed_where_the_config_is_read() -> None:
    exp, _ = experiment_from_config(BASE, registry={"flip": Negate})
    assert _flipped(exp)
    nested = copy.deepcopy(BASE)
    nested["featuresets"]["battery"]["transforms"] = [{"scaler": {"kind": "flip"}, "domain": "targets"}]
    assert _flipped(experiment_from_config(nested, registry={"flip": "mml.scalers:Negate"})[0])


def test_a_registry_declared_in_the_config_itself() -> None:
    exp, _ = experiment_from_config({"registry": {"flip": "mml.scalers:Negate"}, **BASE})
    assert _flipped(exp)


def test_unknown_and_clashing_names_say_so() -> None:
    with pytest.raises(mml.MMLError, match="unknown scaler 'flip'"):
        experiment_from_config(BASE)  # nothing registers 'flip', and nothing global does either
    with pytest.raises(mml.ConfigError, match="already the kind of a built-in component"):
        experiment_from_config(BASE, registry={"scaler.negate": Negate, "flip": Negate})
    with pytest.raises(mml.ConfigError, match="names it"):
        experiment_from_config(
            {"registry": {"flip": "mml.scalers:Absolute"}, **BASE}, registry={"flip": Negate}
        )
    with pytest.raises(mml.ConfigError, match="not an mml component"):
        experiment_from_config(BASE, registry={"flip": dict})
