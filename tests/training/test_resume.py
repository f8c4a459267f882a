"""Resume exactly: a run continued from any checkpoint equals the uninterrupted run, bit for bit.

Equality is ``==`` on the TrainState (params and optimizer moments compared tensor by tensor
with ``torch.equal``, callback states, step, epoch, key) and on the History (every row).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import attrs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import mml
from mml.callbacks import Checkpointing, EarlyStopping, Evaluation
from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP
from mml.training import AppliedLoss, EvalPhase, Experiment, PhaseGroup, TrainPhase, latest_checkpoint

from .conftest import make_featureset, mlp_graph

torch = pytest.importorskip("torch")


def plan_experiment() -> Experiment:
    """Two training phases (dropout, shuffling, early stopping, an LR schedule) and an evaluation."""
    fs = make_featureset(64)
    graph = mlp_graph(dropout=0.2, lr=mml.optim.StepDecay(1e-2, step_size=5, gamma=0.5))
    fit = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["mlp"],
        losses=AppliedLoss("mse", "mlp"),
        n_epochs=4,
        sampler=mml.SimpleSampler(16, shuffle=True),
        callbacks=[Evaluation(split="val"), EarlyStopping(patience=1, restore_best=True)],
    )
    more = TrainPhase.simple(
        "more",
        featureset="toy",
        heads=["mlp"],
        losses=AppliedLoss("mae", "mlp"),
        n_epochs=2,
        sampler=mml.SimpleSampler(24, shuffle=True),
    )
    test = EvalPhase.simple(
        "test", featureset="toy", heads=["mlp"], losses=[AppliedLoss("mse", "mlp")], split="val"
    )
    return Experiment({"toy": fs}, graph, PhaseGroup("plan", [fit, more, test]))


def checkpointed_run(exp: Experiment, directory: Path, every: int = 1):
    policy = Checkpointing(every_steps=every, keep=10_000, mode="disk", directory=str(directory))
    state, history = mml.run(exp, mml.init(exp, 0), checkpoint=policy)
    names = json.loads((directory / "checkpoints.json").read_text())
    return state, history, [directory / n for n in names]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    exp = plan_experiment()
    return (exp, *checkpointed_run(exp, tmp_path_factory.mktemp("ckpt")))


def test_checkpointing_does_not_change_the_run(reference):
    exp, state, history, _ = reference
    plain_state, plain_history = mml.run(exp, mml.init(exp, 0))
    assert plain_state == state and plain_history == history
    assert history.status == "completed" and state.position.stage == "done"


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(k=st.integers(min_value=0, max_value=10_000))
def test_continuing_any_checkpoint_equals_the_uninterrupted_run(reference, k):
    exp, state, history, paths = reference
    path = paths[k % len(paths)]
    ckpt = mml.load(path)
    assert ckpt.position is not None and ckpt.position.history is not None
    resumed, resumed_history = mml.run(exp, ckpt)
    assert resumed == state, path.name
    assert resumed_history == history, path.name
    assert resumed_history.status == history.status


def test_every_step_and_phase_end_is_checkpointed_and_names_match_contents(reference):
    _, state, _, paths = reference
    steps = [int(p.name.rsplit("-", 1)[1]) for p in paths]
    assert sorted(set(steps)) == list(range(1, state.step + 1))  # one per step, plus phase ends
    for p in paths:
        ckpt = mml.load(p)
        assert ckpt.step == int(p.name.rsplit("-", 1)[1])
        assert p.name.startswith(ckpt.position.phase.replace("/", "."))
        assert ("-end-" in p.name) == (ckpt.position.stage == "ended")
    assert {p.name.split("-")[0] for p in paths} == {"plan.fit", "plan.more", "plan.test"}


def test_epoch_checkpoints_of_the_callback_hold_that_epoch(tmp_path):
    exp = plan_experiment()
    fit = exp.plan.phases[0]
    cb = Checkpointing(keep=10, mode="disk", directory=str(tmp_path))
    exp = Experiment(
        exp.featuresets, exp.graph, PhaseGroup("plan", [attrs.evolve(fit, callbacks=(*fit.callbacks, cb))])
    )
    state, history = mml.run(exp, mml.init(exp, 0))
    saved = sorted(tmp_path.iterdir())
    assert [p.name for p in saved] == [f"fit-epoch-{n}" for n in range(1, len(saved) + 1)]
    for p in saved:
        ckpt = mml.load(p)
        assert ckpt.epoch == int(p.name.rsplit("-", 1)[1]) == ckpt.position.epoch
        assert mml.run(exp, ckpt) == (state, history)


def test_a_finished_state_is_at_the_end_and_another_plan_starts_from_its_weights(reference):
    exp, state, _, paths = reference
    assert state.position.stage == "done"
    again, h = mml.run(exp, state)  # nothing is left of this plan
    assert again == state and h.status == "completed" and len(h) == 0
    more, h = mml.run(exp, state.without_position())  # the plan again, from the trained weights
    assert h.status == "completed" and more.step == 2 * state.step
    other = Experiment(exp.featuresets, exp.graph, exp.plan.phases[1])
    ckpt = mml.load(paths[3])
    s1, h1 = mml.run(other, ckpt)  # positioned in another plan: a starting point for this one
    s2, h2 = mml.run(other, ckpt.without_position())
    assert h1.status == "completed" and (s1, h1) == (s2, h2) and s1.step == ckpt.step + 4


def _two_node_experiment(mode: str) -> Experiment:
    fs = make_featureset(48)
    own = mode == "stagewise"  # stage-wise: an optimizer and a loss per node; graph-wise: one of each
    g = ModelGraph.of(
        ModelNode(
            "enc",
            SequentialMLP(hidden=(6,), output_shape=(1,), dropout=0.1),
            FeatureSetRef("toy"),
            optimizer=mml.optim.adam(1e-2) if own else None,
        ),
        ModelNode(
            "head",
            SequentialMLP(hidden=(4,), output_shape=(1,)),
            NodeRef("enc"),
            optimizer=mml.optim.sgd(1e-2) if own else None,
        ),
        optimizer=None if own else mml.optim.adam(1e-2),
    )
    losses = [AppliedLoss("mse", "head"), AppliedLoss("mae", "enc")] if own else [AppliedLoss("mse", "head")]
    phase = TrainPhase(
        "fit",
        {"enc": mml.training.InputBinding("toy", "train", mml.SimpleSampler(12, shuffle=True))},
        losses=losses,
        n_epochs=2,
        mode=mode,
    )
    return Experiment({"toy": fs}, g, phase)


@pytest.mark.parametrize("mode", ["stagewise", "graphwise"])
def test_two_node_training_resumes_exactly(tmp_path, mode):
    exp = _two_node_experiment(mode)
    state, history, paths = checkpointed_run(exp, tmp_path, every=2)
    for p in paths:
        assert mml.run(exp, mml.load(p)) == (state, history), p.name


def test_keras_node_resumes_exactly(tmp_path):
    pytest.importorskip("tensorflow")
    fs = make_featureset(40)
    g = ModelGraph.of(
        ModelNode(
            "mlp",
            SequentialMLP(hidden=(5,), backend="tensorflow", dropout=0.2),
            FeatureSetRef("toy"),
            optimizer=mml.optim.adam(1e-2),
        )
    )
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["mlp"],
        losses=AppliedLoss("mse", "mlp"),
        n_epochs=2,
        sampler=mml.SimpleSampler(10, shuffle=True),
        callbacks=[Evaluation(split="val")],
    )
    exp = Experiment({"toy": fs}, g, phase)
    state, history, paths = checkpointed_run(exp, tmp_path, every=2)
    for p in paths:
        resumed, h = mml.run(exp, mml.load(p))
        assert h == history, p.name
        for a, b in zip(resumed.params("mlp").trainable, state.params("mlp").trainable):
            assert np.array_equal(np.asarray(a), np.asarray(b)), p.name
        assert resumed.step == state.step and resumed.callback_states == state.callback_states


# -- killed processes -----------------------------------------------------------------------

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import mml
    from training.test_resume import plan_experiment
    from mml.callbacks import Checkpointing
    from mml.observers import AbstractObserver

    directory, die_at, where = sys.argv[1], int(sys.argv[2]), sys.argv[3]

    class Killer(AbstractObserver):  # an observer of the shell: SIGKILLs this process at a chosen point
        def phase_start(self, phase):
            if where == "between" and phase.label == "more":
                os.kill(os.getpid(), signal.SIGKILL)
        def observe(self, state, ctx):
            if where == ctx.event and state.step >= die_at:
                os.kill(os.getpid(), signal.SIGKILL)

    exp = plan_experiment()
    policy = Checkpointing(every_steps=3, keep=2, mode="disk", directory=directory)
    mml.run(exp, mml.init(exp, 0), checkpoint=policy, observers=[Killer()])
    """
)


@pytest.mark.parametrize(
    ("die_at", "where"),
    [(4, "batch"), (7, "batch"), (11, "batch"), (8, "epoch_end"), (0, "between"), (14, "batch")],
    ids=["mid-epoch-4", "mid-epoch-7", "mid-epoch-11", "epoch-end-evaluation", "between-phases", "phase-2"],
)
def test_a_sigkilled_run_resumes_to_the_uninterrupted_result(reference, tmp_path, die_at, where):
    exp, state, history, _ = reference
    script = tmp_path / "killer.py"
    script.write_text(KILLER.format(tests=str(Path(__file__).parents[1])))
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")]),
    )
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "ckpt"), str(die_at), where], env=env)
    assert proc.returncode == -signal.SIGKILL
    ckpt_path = latest_checkpoint(tmp_path / "ckpt")
    # A checkpoint is written while the next steps run (at most one write in flight): a kill can
    # cut the newest one, never an earlier one. Every 3 steps, killed at step >= 7, the one of
    # step 3 is on disk whatever was in flight; killed at step 4 there may be none yet.
    if die_at >= 7 or where == "between":
        assert ckpt_path is not None
    ckpt = mml.load(ckpt_path) if ckpt_path is not None else mml.init(exp, 0)
    if where == "between":  # killed as the second phase started: at most the first one's end
        assert ckpt.position.phase == "plan/fit"
    else:
        assert ckpt.step <= die_at + 3  # at most the step it was killed at (an epoch end is >= die_at)
    resumed, resumed_history = mml.run(exp, ckpt)
    assert resumed == state and resumed_history == history
    # keep=2, plus at most the one a kill cut between its publication and the index (the next
    # run that checkpoints here removes it: test_checkpoint_writer's strays test)
    assert len(list((tmp_path / "ckpt").glob("plan.*"))) <= 3


CONFIG = """
label: resume-demo
seed: 0
featuresets:
  battery:
    dataset: battery
    n_samples: 120
    seed: 0
    split: {kind: splitter.random, ratios: {train: 0.7, val: 0.3}, seed: 0}
    transforms:
      - {scaler: standard, domain: features}
      - {scaler: standard, domain: targets}
graph:
  nodes:
    - kind: node.model
      label: mlp
      model: {kind: model.mlp, hidden: [8], activation: relu, dropout: 0.1}
      upstream: {featureset: battery}
      optimizer: {kind: optim.adam, lr: 0.003}
plan:
  kind: phase.group
  label: plan
  phases:
    - kind: phase.train
      label: train
      inputs:
        mlp: {featureset: battery, split: train, sampler: {kind: sampler.simple, batch_size: 8}}
      losses: [{loss: mse, node: mlp}]
      n_epochs: 40
      callbacks:
        - {kind: callback.evaluation, split: val}
        - {kind: callback.early_stopping, monitor: val_loss, patience: 50}
    - kind: phase.eval
      label: test
      inputs:
        mlp: {featureset: battery, split: val}
      losses: [{loss: mse, node: mlp}]
"""


def test_mml_run_resume_after_sigkill_writes_what_an_uninterrupted_run_writes(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG)
    cmd = [
        sys.executable,
        "-c",
        "from mml.cli import main; raise SystemExit(main())",
        "run",
        str(cfg),
        "--quiet",
    ]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    subprocess.run(
        [*cmd, "--out", str(whole), "--checkpoint-every", "5"], env=env, check=True, capture_output=True
    )
    proc = subprocess.Popen(
        [*cmd, "--out", str(cut), "--checkpoint-every", "5"], env=env, stdout=subprocess.DEVNULL
    )
    index = cut / "checkpoints" / "checkpoints.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if index.exists() and len(json.loads(index.read_text() or "[]")) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (cut / "final_state").exists()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mml.cli import main; raise SystemExit(main())",
            "run",
            "--resume",
            str(cut),
            "--quiet",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "resuming" in out and "step" in out
    assert mml.load(cut / "final_state") == mml.load(whole / "final_state")
    assert (cut / "history.csv").read_text() == (whole / "history.csv").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only failure")
def test_eval_phase_device_is_read(reference):
    exp, state, _, _ = reference
    graph = exp.graph
    for device, status in (("cuda", "failed"), ("cpu", "completed")):
        test = EvalPhase.simple(
            "test",
            featureset="toy",
            heads=["mlp"],
            losses=[AppliedLoss("mse", "mlp")],
            split="val",
            device=device,
        )
        _, h = mml.run(Experiment(exp.featuresets, graph, test), state.without_position())
        assert h.status == status, device
        if status == "failed":
            assert "EvalPhase 'test'" in str(h.error) and "cuda" in str(h.error).lower()
