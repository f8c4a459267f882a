"""Device placement pinned without an accelerator: torch's ``meta`` device.

Every torch build has the ``meta`` device (tensors with a shape and a dtype but no data), so
the "move it to the node's device" lines of ``mml.backends`` can be checked on a CPU-only
machine: a tensor that should have moved is on ``meta``, one that should not is still on the
CPU. The CUDA/MPS choices of :func:`mml.backends.resolve_device` are pinned with the
availability probes patched (nothing is allocated on a device that is not there).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fresh_memos import _fresh_memos  # noqa: F401, E402  (autouse: each test builds with the code under test)

import mml  # noqa: E402
from mml import backends as B  # noqa: E402
from mml.data import SampleData  # noqa: E402
from mml.errors import DeviceError  # noqa: E402
from mml.models import SequentialMLP, TorchModule  # noqa: E402

META = torch.device("meta")
CPU = torch.device("cpu")


def _devices(m) -> dict[str, str]:
    return {k: v.device.type for k, v in m.items()}


# -- batches and parameter records (mml.backends._feed) ---------------------------------------


def test_feed_data_moves_every_numeric_field_to_the_device() -> None:
    sd = SampleData(
        features=np.ones((2, 3)),  # float64: cast to float32, then moved
        targets=np.zeros(2, np.float32),
        weights=torch.ones(2),  # already a tensor: moved as it is
        mask=np.array([True, False]),
    )
    out = B.feed_data(sd, "torch", device=META)
    for name in ("features", "targets", "weights", "mask"):
        assert getattr(out, name).device == META, name
    assert out.features.dtype == torch.float32 and tuple(out.features.shape) == (2, 3)
    assert out.mask.dtype == torch.bool
    # without a device nothing moves, and a tensor already on the device is kept as it is
    assert B.feed_data(sd, "torch").features.device == CPU
    t = torch.empty(2, 3, device=META)
    assert B.feed_data(SampleData(features=t), "torch", device=META).features is t


def test_move_params_moves_params_and_buffers_and_params_device_reads_it() -> None:
    p = B.TorchParams(
        params={"w": np.zeros((2, 3), np.float32), "b": torch.ones(2)},
        buffers={"running_mean": np.ones(2, np.float32)},
        input_shape=(3,),
        output_shape=(2,),
    )
    q = B.move_params(p, META)
    assert _devices(q.params) == {"w": "meta", "b": "meta"}
    assert _devices(q.buffers) == {"running_mean": "meta"}
    assert [tuple(v.shape) for v in q.params.values()] == [(2, 3), (2,)]
    assert q.input_shape == (3,) and q.output_shape == (2,)
    assert B.params_device(q) == META
    assert B.move_params(q, META) is q  # already there
    # the caller's record is untouched
    assert isinstance(p.params["w"], np.ndarray) and p.params["b"].device == CPU
    # on the CPU: tensors, values kept
    c = B.move_params(p, CPU)
    assert _devices(c.params) == {"w": "cpu", "b": "cpu"}
    assert c.params["b"].tolist() == [1.0, 1.0] and c.buffers["running_mean"].tolist() == [1.0, 1.0]


def test_to_backend_places_torch_tensors_on_the_device() -> None:
    t = B.to_backend(np.arange(3.0), "torch", device="meta")
    assert t.device == META and t.dtype == torch.float64 and tuple(t.shape) == (3,)
    assert B.to_backend(np.arange(3.0), "torch", device=META).device == META
    assert B.to_backend(np.arange(3.0), "torch").device == CPU
    assert B.to_backend(torch.ones(2), "torch", device="meta").device == META


def test_as_loss_input_copies_an_array_with_negative_strides() -> None:
    a = np.arange(4.0)[::-1]  # torch has no negative strides: as_tensor/from_numpy refuse it
    t = B.as_loss_input(a, "torch")
    assert t.tolist() == [3.0, 2.0, 1.0, 0.0] and t.dtype == torch.float64
    b = np.arange(6, dtype=np.int64).reshape(2, 3)[:, ::-1]
    assert B.as_loss_input(b, "torch").tolist() == [[2, 1, 0], [5, 4, 3]]


# -- the torch backend ----------------------------------------------------------------------


def test_torch_init_builds_on_the_device() -> None:
    spec = SequentialMLP(hidden=(4,), output_shape=(2,))
    p = B.init_params(spec, (3,), key=mml.random.key(0), device="meta")
    assert set(_devices(p.params).values()) == {"meta"}
    c = B.init_params(spec, (3,), key=mml.random.key(0))
    assert set(_devices(c.params).values()) == {"cpu"}
    assert {k: tuple(v.shape) for k, v in p.params.items()} == {
        k: tuple(v.shape) for k, v in c.params.items()
    }
    # a user module too, buffers included
    um = TorchModule(factory="torch.nn:BatchNorm1d", kwargs={"num_features": 3}, output_shape=(3,))
    q = B.init_params(um, (3,), key=mml.random.key(0), device="meta")
    assert set(_devices(q.params).values()) == {"meta"} and set(_devices(q.buffers).values()) == {"meta"}


@pytest.mark.parametrize("numpy_params", [False, True])
def test_torch_apply_moves_params_and_input_to_the_device(numpy_params: bool) -> None:
    spec = SequentialMLP(hidden=(4,), output_shape=(2,))
    p = B.init_params(spec, (3,), key=mml.random.key(0))
    if numpy_params:  # a loaded state holds numpy arrays
        p = B.TorchParams({k: v.numpy() for k, v in p.params.items()}, {}, (3,), (2,))
    y, q = B.apply(spec, p, np.ones((5, 3), np.float32), device="meta")
    assert y.device == META and tuple(y.shape) == (5, 2) and y.dtype == torch.float32
    assert set(_devices(q.params).values()) == {"meta"}
    # the caller's record stays where it was
    assert all(not isinstance(v, torch.Tensor) or v.device == CPU for v in p.params.values())
    # without a device, CPU tensors stay (and the record is the same value)
    y2, q2 = B.apply(spec, q, torch.ones(5, 3, device=META))
    assert y2.device == META and q2 is q


def test_torch_forward_places_on_the_device_and_draws_dropout_from_the_key() -> None:
    spec = SequentialMLP(hidden=(4,), output_shape=(2,), dropout=0.5)
    p = B.init_params(spec, (3,), key=mml.random.key(0))
    y, q = B.torch_forward(spec, p, np.ones((5, 3), np.float32), training=False, device="meta")
    assert y.device == META and tuple(y.shape) == (5, 2) and set(_devices(q.params).values()) == {"meta"}
    x = torch.ones(64, 3)
    a, _ = B.torch_forward(spec, p, x, training=True, key=mml.random.key(7))
    b, _ = B.torch_forward(spec, p, x, training=True, key=mml.random.key(7))
    c, _ = B.torch_forward(spec, p, x, training=True, key=mml.random.key(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(mml.ConfigError, match="uses dropout: training=True needs a key"):
        B.torch_forward(spec, p, x, training=True)


def test_torch_user_module_apply_moves_buffers_to_the_device() -> None:
    um = TorchModule(factory="torch.nn:BatchNorm1d", kwargs={"num_features": 3}, output_shape=(3,))
    p = B.init_params(um, (3,), key=mml.random.key(0))
    y, q = B.apply(um, p, np.ones((4, 3), np.float32), device="meta")
    assert y.device == META and tuple(y.shape) == (4, 3)
    assert set(_devices(q.params).values()) == {"meta"} and set(_devices(q.buffers).values()) == {"meta"}
    assert set(_devices(p.buffers).values()) == {"cpu"}


# -- resolve_device's choices, with the probes patched -------------------------------------


def test_resolve_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    mps = torch.backends.mps
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(mps, "is_available", lambda: False)
    assert B.resolve_device("auto") == CPU
    monkeypatch.setattr(mps, "is_available", lambda: True)
    assert B.resolve_device("auto") == torch.device("mps")
    assert B.resolve_device("mps") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert B.resolve_device("auto") == torch.device("cuda")


def test_resolve_device_cuda_checks_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert B.resolve_device("cuda") == torch.device("cuda")
    assert B.resolve_device("cuda:1") == torch.device("cuda", 1)
    assert B.resolve_device(torch.device("cuda", 0)) == torch.device("cuda", 0)
    with pytest.raises(DeviceError) as e:
        B.resolve_device("cuda:2")
    assert str(e.value) == "device 'cuda:2' does not exist: this machine has 2 CUDA device(s)"


def test_resolve_device_unavailable_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(DeviceError) as e:
        B.resolve_device("cuda:0")
    assert str(e.value) == (
        f"device 'cuda:0' was requested but CUDA is not available (torch {torch.__version__}); "
        "use device='cpu' or device='auto'"
    )
    with pytest.raises(DeviceError) as e:
        B.resolve_device("mps")
    assert str(e.value) == "device 'mps' was requested but MPS is not available; use 'cpu' or 'auto'"
    with pytest.raises(DeviceError) as e:
        B.resolve_device("tpu9")
    assert str(e.value) == "unknown device 'tpu9'; use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'"
    assert B.resolve_device(None) == CPU and B.resolve_device("cpu") == CPU
    assert B.resolve_device("meta") == META


def test_torch_and_numpy_leaves_compare_in_torch_also_when_a_tensor_requires_grad() -> None:
    from mml.backends._params import leaves_equal

    # a leaf that requires grad cannot become a numpy array: the torch side compares (KerasParams'
    # and the records' leaf equality)
    w = torch.ones(2, requires_grad=True)
    for left, right in ((w, np.ones(2, np.float32)), (np.ones(2, np.float32), w)):
        assert leaves_equal((left,), (right,)) and leaves_equal({"w": left}, {"w": right})
        assert not leaves_equal((left,), (np.zeros(2, np.float32),))
        assert not leaves_equal((np.zeros(2, np.float32),), (right,))
    # same values, another dtype: not equal
    assert not leaves_equal((w,), (np.ones(2, np.float64),))
