"""A training phase whose sampler makes no batch of its split fails, naming head, split and sampler.

It used to end "completed" after zero steps, the model untouched (a batch larger than the split
with ``drop_last=True``). The vectorised path fails the same way.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP
from mml.training import AppliedLoss, Experiment, PhaseGroup, TrainPhase

RNG = np.random.default_rng(0)
FS = mml.FeatureSet.from_dict(
    {"x": RNG.normal(size=(64, 3)), "y": RNG.normal(size=64)}, features="x", targets="y", label="d"
).split(mml.RandomSplitter({"train": 0.75, "val": 0.25}, seed=0))
G = ModelGraph.of(ModelNode("m", SequentialMLP(hidden=(4,)), FeatureSetRef("d"), optimizer=mml.optim.adam()))


def _exp(sampler):
    phase = TrainPhase.simple(
        "t", featureset="d", heads=["m"], losses=AppliedLoss("mse", "m"), n_epochs=2, sampler=sampler
    )
    return Experiment({"d": FS}, G, PhaseGroup("p", [phase]))


MESSAGE = (
    "phase 't': head 'm' gets no batch per epoch: split 'train' of FeatureSet 'd' has 48 sample(s) and "
    "SimpleSampler(batch_size=100, shuffle=True, drop_last=True, group_by=None, stratify_by=None, "
    "strict_stratification=False) makes none of them; lower batch_size, set drop_last=False, or bind a "
    "larger split"
)


def test_no_batch_fails_the_run_by_name_and_keeps_the_initial_state():
    exp = _exp(mml.SimpleSampler(100, drop_last=True))
    s0 = mml.init(exp, 0)
    state, history = mml.run(exp, s0, progress=False)
    assert history.status == "failed" and str(history.error) == MESSAGE
    assert state.step == 0 and state.graph.params["m"] == s0.graph.params["m"]


def test_a_batch_larger_than_the_split_without_drop_last_is_one_batch():
    exp = _exp(mml.SimpleSampler(100))
    state, history = mml.run(exp, mml.init(exp, 0), progress=False)
    assert history.status == "completed" and state.step == 2  # one batch per epoch, 2 epochs


def test_the_vectorised_ensemble_records_the_same_failure_as_its_sequential_run():
    from mml.strategies import LocalExecutor, ensemble

    exp = _exp(mml.SimpleSampler(100, drop_last=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vec = ensemble(exp, 2, key=0, keep_states=False)
        seq = ensemble(exp, 2, key=0, keep_states=False, executor=LocalExecutor())
    assert [o.status for o in vec.members] == ["failed", "failed"]
    assert [str(o.history.error) for o in vec.members] == [MESSAGE, MESSAGE]
    assert [o.history for o in vec.members] == [o.history for o in seq.members]
