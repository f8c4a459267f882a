import pytest

import mml

from .conftest import simple_experiment

pytest.importorskip("torch")


def test_experiment_mermaid_shows_data_graph_samplers_losses_and_shapes(toy):
    exp = simple_experiment(toy)
    text = exp.to_mermaid(mml.init(exp, 0))
    assert text.startswith("flowchart LR")
    assert ":::featureset" in text and ":::sampler" in text and ":::loss" in text
    assert "SimpleSampler" in text and "mse" in text
    assert "out: (1,)" in text  # shapes from the built state
    assert exp.to_mermaid().count(":::sampler") == text.count(":::sampler")
