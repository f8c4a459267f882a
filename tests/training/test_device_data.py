"""Training data kept on the model's device: a phase on an accelerator moves each head's prepared
arrays there once and gathers its batches there. CUDA is not needed to test the path: the
switch is forced for the CPU device, and the run must be bit-identical to the numpy path."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP
from mml.samplers import PairedSampler, similar
from mml.training import AppliedLoss, Experiment, TrainPhase, _loop

from .conftest import params_of, same_params, simple_experiment

torch = pytest.importorskip("torch")


@pytest.fixture
def on_device(monkeypatch: pytest.MonkeyPatch):
    """Force the device-data path for every resolved device, the CPU included."""
    monkeypatch.setattr(_loop, "_device_data_wanted", lambda device: device is not None)


def _run(exp: Experiment, seed: int = 0):
    s0 = mml.init(exp, seed)
    return mml.run(exp, s0)


def test_only_accelerators_take_the_device_path():
    assert not _loop._device_data_wanted(None)
    assert not _loop._device_data_wanted(torch.device("cpu"))
    assert _loop._device_data_wanted(torch.device("cuda"))  # a device value: no CUDA needed
    assert _loop._device_data_wanted(torch.device("cuda", 1))
    assert _loop._device_data_wanted(torch.device("mps"))


def test_on_cpu_the_prepared_data_stay_numpy(toy):
    exp = simple_experiment(toy, device="cpu")
    plan = _loop._TrainPlan(exp, exp.plan, mml.init(exp, 0))
    assert isinstance(plan.prepared["mlp"].features, np.ndarray)


def test_forced_path_prepares_tensors_once(toy, on_device):
    exp = simple_experiment(toy, device="cpu")
    plan = _loop._TrainPlan(exp, exp.plan, mml.init(exp, 0))
    data = plan.prepared["mlp"]
    assert isinstance(data.features, torch.Tensor) and data.features.dtype == torch.float32
    assert isinstance(data.targets, torch.Tensor) and isinstance(data.sample_uuids, np.ndarray)
    first = next(plan.head_batches("mlp", 0))
    assert isinstance(first.features, torch.Tensor)
    # the per-step conversion keeps the gathered tensor as it is: no copy
    sd = _loop._to_torch(first.roles["default"], plan.devices["mlp"])
    assert sd.features is first.features and sd.targets is first.targets


def test_no_device_no_device_data(toy, on_device):
    exp = simple_experiment(toy)  # no device= anywhere: numpy batches, converted per step
    plan = _loop._TrainPlan(exp, exp.plan, mml.init(exp, 0))
    assert isinstance(plan.prepared["mlp"].features, np.ndarray)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_device_path_is_bit_identical_to_numpy_path(toy, monkeypatch, dropout):
    exp = simple_experiment(toy, n_epochs=2, dropout=dropout, device="cpu")
    s_np, h_np = _run(exp)
    monkeypatch.setattr(_loop, "_device_data_wanted", lambda device: device is not None)
    s_dev, h_dev = _run(exp)
    assert h_np.status == h_dev.status == "completed"
    assert same_params(params_of(s_np), params_of(s_dev))
    assert np.array_equal(h_np.value, h_dev.value)
    assert s_np.step == s_dev.step == 2 * 6


def _tagged(n: int = 48) -> mml.FeatureSet:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 3))  # float64 features: cast to float32 once instead of per batch
    fs = mml.FeatureSet.from_dict(
        {"x": x, "g": rng.integers(0, 4, n), "same": rng.integers(0, 2, n).astype(np.float64)},
        features="x",
        tags=["g", "same"],
        label="tagged",
    )
    return fs.with_split("train", np.arange(n))


def test_multi_role_with_tag_loss_is_bit_identical(monkeypatch):
    graph = ModelGraph.of(
        ModelNode(
            "enc",
            SequentialMLP(hidden=(8,), output_shape=(2,)),
            FeatureSetRef("tagged", targets=()),
            optimizer=mml.optim.adam(1e-2),
        )
    )
    loss = AppliedLoss("contrastive", "enc", inputs=("anchor.outputs", "pair.outputs", "pair.tags.same"))
    sampler = PairedSampler({"g": similar(metric="equal")}, batch_size=8, allow_fallback=True)
    phase = TrainPhase.simple(
        "fit", featureset="tagged", heads=["enc"], losses=loss, n_epochs=2, sampler=sampler, device="cpu"
    )
    exp = Experiment({"tagged": _tagged()}, graph, phase)
    s_np, h_np = _run(exp, 3)
    monkeypatch.setattr(_loop, "_device_data_wanted", lambda device: device is not None)
    steps = list(mml.steps(exp, exp.plan, mml.init(exp, 3)))
    ctx = steps[0][1]
    pair = ctx.input("enc", "pair")
    assert isinstance(pair.tags["same"], torch.Tensor) and pair.tags["same"].dtype == torch.float64
    assert isinstance(pair.features, torch.Tensor) and pair.features.dtype == torch.float32
    s_dev, h_dev = _run(exp, 3)
    assert h_np.status == h_dev.status == "completed"
    assert same_params(params_of(s_np, "enc"), params_of(s_dev, "enc"))
    assert np.array_equal(h_np.value, h_dev.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (benchmarks/gpu_check.sh)")
def test_cuda_phase_gathers_batches_on_the_gpu(toy):
    exp = simple_experiment(toy, n_epochs=1, device="cuda")
    s0 = mml.init(exp, 0)
    plan = _loop._TrainPlan(exp, exp.plan, s0)
    assert plan.prepared["mlp"].features.is_cuda and plan.prepared["mlp"].targets.is_cuda
    cpu = simple_experiment(toy, n_epochs=1, device="cpu")
    on_gpu = [ctx for _, ctx in mml.steps(exp, exp.plan, s0) if ctx.event == "batch"]
    on_cpu = [ctx for _, ctx in mml.steps(cpu, cpu.plan, s0) if ctx.event == "batch"]
    assert len(on_gpu) == len(on_cpu) == 6
    for g, c in zip(on_gpu, on_cpu):  # same key: the same rows on both devices
        dg, dc = g.input("mlp"), c.input("mlp")
        assert dg.features.is_cuda
        assert np.array_equal(dg.sample_uuids, dc.sample_uuids)
        assert torch.equal(dg.features.cpu(), dc.features)
