"""A config's data errors name their document path; ``python -m mml`` is the ``mml`` command."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

import mml
from mml.config import experiment_from_config, parse_yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
YAML = (ROOT / "examples" / "battery.yaml").read_text()


def _config(old: str, new: str) -> dict:
    assert old in YAML
    return parse_yaml(YAML.replace(old, new, 1))


@pytest.mark.parametrize(
    ("old", "new", "error", "message"),
    [
        (
            "scaler: standard, domain: targets",
            "scaler: standardd, domain: targets",
            mml.ScalerError,
            "$.featuresets.battery.transforms[2]: unknown scaler 'standardd'",
        ),
        (
            "domain: targets",
            "domain: targetz",
            mml.SchemaError,
            "$.featuresets.battery.transforms[2]: unknown domain 'targetz'; use one of features, targets, tags",
        ),
        (
            "group_by: cell_id",
            "group_by: cell",
            mml.SchemaError,
            "$.featuresets.battery.split: RandomSplitter: group_by column 'cell' is not in FeatureSet 'battery'",
        ),
    ],
)
def test_a_data_error_in_a_featureset_entry_names_its_path(old, new, error, message):
    with pytest.raises(error) as info:
        experiment_from_config(_config(old, new))
    assert str(info.value).startswith(message)
    assert str(info.value).count("$.") == 1  # named once


def test_python_dash_m_mml_is_the_mml_command():
    proc = subprocess.run(
        [sys.executable, "-m", "mml", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: mml" in proc.stdout and " run " in proc.stdout.replace("{", " ").replace(",", " ")
