"""Batches and SampleData pinned value by value (issue 17): conversions, roles and messages.

Expected tensors are compared with numpy/torch directly (shared memory by data pointer,
dtypes by name), not with mml.
"""

from __future__ import annotations

import numpy as np
import pytest

from mml.data import Batch, SampleData
from mml.data._batch import DEFAULT_ROLE, _to_numpy, to_tf, to_torch, torch_view
from mml.errors import DataError, DeviceError

torch = pytest.importorskip("torch")


def _raises(exc: type[Exception], fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(exc) as err:
        fn(*args, **kwargs)
    return str(err.value)


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.flags.writeable = False
    return a


def _sd() -> SampleData:
    return SampleData(
        features=np.arange(6.0).reshape(3, 2),
        targets=np.array([[1.0], [2.0], [3.0]]),
        tags={"c": np.array([7, 8, 9])},
        sample_uuids=np.array([b"a" * 16, b"b" * 16, b"c" * 16], dtype="S16"),
        weights=np.array([0.5, 1.0, 2.0]),
        mask=np.array([True, False, True]),
    )


# -- tensors ---------------------------------------------------------------------------------


def test_torch_view_shares_memory_of_writable_and_read_only_arrays() -> None:
    w = np.arange(4.0)
    t = torch_view(w)
    assert t.data_ptr() == w.ctypes.data and t.dtype == torch.float64
    r = _ro(np.arange(4.0))
    t = torch_view(r)
    assert t.data_ptr() == r.ctypes.data and t.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_torch_view_shares_broadcast_arrays() -> None:
    b = np.broadcast_to(np.arange(3.0), (2, 3))  # read-only, stride 0: DLPack carries it
    t = torch_view(b)
    assert t.data_ptr() == b.ctypes.data and t.stride() == (0, 1) and t.tolist() == [[0.0, 1.0, 2.0]] * 2


def test_torch_view_copies_what_dlpack_cannot_carry() -> None:
    s = np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")])["a"]  # a stride of 12 bytes
    s.flags.writeable = False
    t = torch_view(s)
    assert t.tolist() == [0.0, 0.0, 0.0] and t.dtype == torch.float64 and t.stride() == (1,)


def test_arrays_with_negative_strides_are_copied_not_a_crash() -> None:
    # Regression: torch.from_dlpack of a read-only a[::-1] aborted the whole process
    # ("Storage size calculation overflowed"), and from_numpy refuses negative strides.
    r = _ro(np.arange(6.0).reshape(2, 3))[:, ::-1]
    t = to_torch(r)
    assert t.tolist() == [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]] and t.dtype == torch.float64
    w = np.arange(4)[::-2]
    assert torch_view(w).tolist() == [3, 1]
    b = _ro(np.array([True, False, False]))[::-1]
    assert Batch.single(SampleData(features=b)).to_torch().features.tolist() == [False, False, True]


def test_to_torch_values_dtypes_and_devices() -> None:
    a = np.array([[1.0, 2.0]], dtype=np.float64)
    t = to_torch(a)
    assert t.dtype == torch.float64 and t.data_ptr() == a.ctypes.data
    t32 = to_torch(a, dtype=torch.float32)
    assert t32.dtype == torch.float32 and t32.tolist() == [[1.0, 2.0]]
    i = to_torch(np.array([1, 2]), dtype=torch.float32)  # integers are not cast
    assert i.dtype == torch.int64 and i.tolist() == [1, 2]
    same = torch.tensor([1.5])
    assert to_torch(same) is same
    assert to_torch(same, device="cpu", dtype=torch.float32) is same
    assert to_torch(same, dtype=torch.float64).dtype == torch.float64
    assert to_torch([1.0, 2.0]).tolist() == [1.0, 2.0]
    s = np.array(["a", "b"])
    assert to_torch(s) is s
    o = np.array([{"x": 1}], dtype=object)
    assert to_torch(o) is o
    b = np.array([b"ab"], dtype="S2")
    assert to_torch(b) is b
    meta = to_torch(np.ones(2), device="meta")
    assert str(meta.device) == "meta" and tuple(meta.shape) == (2,)


def test_to_torch_device_error_names_the_device() -> None:
    msg = _raises(DeviceError, to_torch, np.ones(2), device="cuda:7")
    assert msg.startswith("cannot move data to device 'cuda:7': ")
    msg = _raises(DeviceError, to_torch, np.ones(2), device="nowhere")
    assert msg.startswith("cannot move data to device 'nowhere': ") and "nowhere" in msg[40:]


def test_to_tf_and_to_numpy() -> None:
    tf = pytest.importorskip("tensorflow")
    x = to_tf(np.array([1.0, 2.0]))
    assert isinstance(x, tf.Tensor) and x.dtype == tf.float64 and x.numpy().tolist() == [1.0, 2.0]
    y = to_tf(torch.tensor([3.0], requires_grad=True))
    assert isinstance(y, tf.Tensor) and y.dtype == tf.float32 and y.numpy().tolist() == [3.0]
    s = np.array(["a"])
    assert to_tf(s) is s
    assert to_tf(["q"]).tolist() == ["q"] and isinstance(to_tf(["q"]), np.ndarray)
    n = _to_numpy(tf.constant([1, 2]))
    assert isinstance(n, np.ndarray) and n.tolist() == [1, 2] and n.dtype == np.int32
    n = _to_numpy(torch.tensor([4.0], requires_grad=True))
    assert isinstance(n, np.ndarray) and n.tolist() == [4.0] and n.dtype == np.float32
    a = np.array([5])
    assert _to_numpy(a) is a
    assert _to_numpy([1, 2]).tolist() == [1, 2]


# -- SampleData ------------------------------------------------------------------------------


def test_sample_data_defaults_len_and_equality() -> None:
    d = SampleData(features=np.zeros((4, 2)))
    assert len(d) == 4
    assert d.targets is None and d.sample_uuids is None and d.weights is None and d.mask is None
    assert dict(d.tags) == {}
    assert d == SampleData(features=np.zeros((4, 2)))
    assert d != SampleData(features=np.zeros((4, 2)), targets=np.zeros(4))
    assert SampleData(features=np.zeros((4, 2)), targets=np.zeros(4)) != d
    assert SampleData(features=np.zeros(2), targets=np.zeros(2)) == SampleData(
        features=np.zeros(2), targets=np.zeros(2)
    )
    assert SampleData(features=np.zeros(2), targets=np.zeros(2)) != SampleData(
        features=np.zeros(2), targets=np.ones(2)
    )
    assert _sd() == _sd()


def test_sample_data_map_touches_numbers_and_tags_only_when_asked() -> None:
    d = _sd()
    m = d.map(lambda x: x * 2)
    assert m.features.tolist() == [[0.0, 2.0], [4.0, 6.0], [8.0, 10.0]]
    assert m.targets.tolist() == [[2.0], [4.0], [6.0]]
    assert m.weights.tolist() == [1.0, 2.0, 4.0]
    assert m.mask.tolist() == [2, 0, 2]
    assert m.tags["c"] is d.tags["c"]
    assert m.sample_uuids is d.sample_uuids
    t = d.map(lambda x: x * 2, tags=True)
    assert t.tags["c"].tolist() == [14, 16, 18] and t.sample_uuids is d.sample_uuids
    bare = SampleData(features=np.ones(2)).map(lambda x: x + 1)
    assert bare.features.tolist() == [2.0, 2.0]
    assert bare.targets is None and bare.weights is None and bare.mask is None


def test_sample_data_conversions() -> None:
    d = _sd()
    t = d.to_torch(dtype=torch.float32)
    assert t.features.dtype == torch.float32 and t.targets.dtype == torch.float32
    assert t.mask.dtype == torch.bool and t.mask.tolist() == [True, False, True]
    assert isinstance(t.tags["c"], np.ndarray)  # tags stay numpy
    assert t.sample_uuids is d.sample_uuids
    t64 = d.to_torch()
    assert t64.features.dtype == torch.float64
    with pytest.raises(DeviceError):
        d.to_torch(device="cuda:3")
    back = t.to_numpy()
    assert isinstance(back.features, np.ndarray) and back.features.dtype == np.float32
    assert back.features.tolist() == d.features.tolist()
    assert back.tags["c"].tolist() == [7, 8, 9]
    tf = pytest.importorskip("tensorflow")
    k = d.to_tf()
    assert isinstance(k.features, tf.Tensor) and k.features.numpy().tolist() == d.features.tolist()
    assert isinstance(k.tags["c"], np.ndarray)


def test_sample_data_get_and_its_messages() -> None:
    d = _sd()
    assert d.get("features") is d.features
    assert d.get("targets") is d.targets
    assert d.get("weights") is d.weights
    assert d.get("mask") is d.mask
    assert d.get("sample_uuids") is d.sample_uuids
    assert d.get("tags.c") is d.tags["c"]
    assert _raises(DataError, d.get, "tags.x") == "the batch has no tag 'x'; tags: c"
    bare = SampleData(features=np.ones(2))
    assert _raises(DataError, bare.get, "tags.x") == "the batch has no tag 'x'; tags: (none)"
    two = SampleData(features=np.ones(2), tags={"a": np.ones(2), "b": np.ones(2)})
    assert _raises(DataError, two.get, "tags.z") == "the batch has no tag 'z'; tags: a, b"
    assert _raises(DataError, d.get, "tagsx") == (
        "unknown batch field 'tagsx'; use features, targets, weights, mask or tags.<key>"
    )
    assert _raises(DataError, d.get, "tags") == (
        "unknown batch field 'tags'; use features, targets, weights, mask or tags.<key>"
    )
    for field in ("targets", "weights", "mask", "sample_uuids"):
        assert _raises(DataError, bare.get, field) == (
            f"the batch has no {field}; bind a FeatureSet with {field} to this input"
        )


# -- Batch -----------------------------------------------------------------------------------


def test_batch_single_roles_and_properties() -> None:
    d = _sd()
    b = Batch.single(d)
    assert DEFAULT_ROLE == "default"
    assert list(b.roles) == ["default"] and b.stream == "default" and len(b) == 3
    assert Batch.single(d, "val").stream == "val"
    assert Batch({"x": d}).stream == "default"
    assert b.role("default") is d
    assert b.features is d.features and b.targets is d.targets
    assert b.tags is d.tags and b.sample_uuids is d.sample_uuids


def test_batch_messages() -> None:
    d = _sd()
    assert _raises(DataError, Batch, {}) == "a Batch needs at least one role"
    other = SampleData(features=np.zeros((5, 2)))
    assert _raises(DataError, Batch, {"a": d, "b": other}) == (
        "roles of a batch must be aligned (same size), got sizes [3, 5]"
    )
    two = Batch({"anchor": d, "positive": d})
    assert len(two) == 3
    assert _raises(DataError, two.role, "neg") == "the batch has no role 'neg'; roles: anchor, positive"
    only = "this batch has roles anchor, positive; name one: batch.role('anchor').features"
    for prop in ("features", "targets", "tags", "sample_uuids"):
        with pytest.raises(DataError) as err:
            getattr(two, prop)
        assert str(err.value) == only


def test_batch_map_and_conversions_keep_roles_and_stream() -> None:
    d = _sd()
    b = Batch({"a": d, "b": d.map(lambda x: x + 1)}, "s")
    m = b.map(lambda s: s.map(lambda x: x * 10))
    assert list(m.roles) == ["a", "b"] and m.stream == "s"
    assert m.role("b").features.tolist() == [[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]]
    t = b.to_torch(dtype=torch.float32)
    assert t.stream == "s" and t.role("a").features.dtype == torch.float32
    assert t.role("b").features.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert isinstance(t.role("a").tags["c"], np.ndarray)
    with pytest.raises(DeviceError):
        b.to_torch(device="cuda:1")
    back = t.to_numpy()
    assert back.stream == "s" and isinstance(back.role("a").features, np.ndarray)
    assert back.role("a").features.dtype == np.float32
    tf = pytest.importorskip("tensorflow")
    k = b.to_tf()
    assert k.stream == "s" and isinstance(k.role("b").features, tf.Tensor)
    assert k.role("b").features.numpy().tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
