"""What the training fold hands a backend, pinned: batches as tensors, parameter records
placed and updated, gradient tapes, and scikit-learn's classification metrics.

Everything goes through ``mml.backends``' public names; the references are numpy, torch,
TensorFlow and ``sklearn.metrics`` themselves.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")

from fresh_memos import _fresh_memos  # noqa: F401, E402  (autouse: each test builds with the code under test)
from sklearn import metrics as skm  # noqa: E402

import mml  # noqa: E402
from mml import backends as B  # noqa: E402
from mml.data import SampleData  # noqa: E402


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.flags.writeable = False
    return a


# -- replace_fields ----------------------------------------------------------------------


def test_replace_fields_changes_the_named_fields_and_keeps_the_others() -> None:
    p = B.TorchParams(
        params={"w": np.zeros(1)}, buffers={"b": np.ones(2)}, input_shape=(3,), output_shape=(1,)
    )
    q = B.replace_fields(p, input_shape=(4, 5))
    assert type(q) is B.TorchParams and q is not p
    assert q.input_shape == (4, 5) and q.output_shape == (1,)
    assert q.params is p.params and q.buffers is p.buffers
    assert p.input_shape == (3,)
    # no converter runs: a list stays a list
    r = B.replace_fields(p, output_shape=[7])
    assert r.output_shape == [7]
    assert B.replace_fields(p) == p


# -- feed_data -------------------------------------------------------------------------------


def test_feed_data_torch_floats_become_float32_sharing_integers_and_bools_kept() -> None:
    feats = _ro(np.arange(6, dtype=np.float32).reshape(3, 2))
    sd = SampleData(
        features=feats,
        targets=np.array([1.0, 2.0, 3.0], np.float64),
        tags={"t": np.array(["a", "b", "c"])},
        weights=np.array([1, 2, 3], np.int64),
        mask=np.array([True, False, True]),
    )
    out = B.feed_data(sd, "torch")
    assert isinstance(out.features, torch.Tensor) and out.features.dtype == torch.float32
    assert out.features.data_ptr() == feats.__array_interface__["data"][0]  # no copy
    assert out.targets.dtype == torch.float32 and out.targets.tolist() == [1.0, 2.0, 3.0]
    assert out.weights.dtype == torch.int64 and out.weights.tolist() == [1, 2, 3]
    assert out.mask.dtype == torch.bool and out.mask.tolist() == [True, False, True]
    assert out.tags is sd.tags and out.sample_uuids is None
    # unsigned integers are tensors too; text stays as it is
    u = B.feed_data(
        SampleData(features=np.array([[1], [2]], np.uint8), targets=np.array(["x", "y"])), "torch"
    )
    assert u.features.dtype == torch.uint8 and u.features.ravel().tolist() == [1, 2]
    assert isinstance(u.targets, np.ndarray) and u.targets.tolist() == ["x", "y"]
    # a tensor is kept as it is (no copy)
    t = torch.ones(2, 2, dtype=torch.float64)
    assert B.feed_data(SampleData(features=t), "torch").features is t
    # device: the tensors move there (the CPU here: the same tensor)
    on = B.feed_data(SampleData(features=t, targets=np.zeros(2)), "torch", torch.device("cpu"))
    assert on.features is t and on.targets.device.type == "cpu"


def test_feed_data_tensorflow() -> None:
    sd = SampleData(
        features=np.arange(4, dtype=np.float64).reshape(2, 2),
        targets=np.array([0, 1], np.int64),
        weights=np.array([0.5, 1.5]),
        mask=np.array([True, False]),
    )
    out = B.feed_data(sd, "tensorflow")
    assert isinstance(out.features, tf.Tensor) and out.features.dtype == tf.float32
    assert out.features.numpy().tolist() == [[0.0, 1.0], [2.0, 3.0]]
    assert out.targets.dtype == tf.int64 and out.targets.numpy().tolist() == [0, 1]
    assert out.weights.dtype == tf.float32 and out.weights.numpy().tolist() == [0.5, 1.5]
    assert out.mask.dtype == tf.bool and out.mask.numpy().tolist() == [True, False]
    # text (and anything without a numeric dtype) is left alone
    txt = np.array(["a", "b"])
    lst = [1.0, 2.0]
    out2 = B.feed_data(SampleData(features=txt, targets=lst), "tensorflow")
    assert out2.features is txt and out2.targets is lst and out2.weights is None
    # torch tensors cross into TensorFlow
    out3 = B.feed_data(SampleData(features=torch.ones(2, 1)), "tensorflow")
    assert isinstance(out3.features, tf.Tensor) and out3.features.numpy().tolist() == [[1.0], [1.0]]


def test_as_loss_input() -> None:
    a = np.arange(3.0)
    t = B.as_loss_input(a, "torch")
    assert t.dtype == torch.float64 and t.tolist() == [0.0, 1.0, 2.0]
    assert t.data_ptr() == a.__array_interface__["data"][0]
    ro = _ro(np.arange(4, dtype=np.float32))  # read-only batch memory: shared, no copy, no warning
    t_ro = B.as_loss_input(ro, "torch")
    assert t_ro.tolist() == [0.0, 1.0, 2.0, 3.0] and t_ro.data_ptr() == ro.__array_interface__["data"][0]
    leaf = torch.ones(2, requires_grad=True)
    assert B.as_loss_input(leaf, "torch") is leaf
    # a TensorFlow tensor crossing into torch
    got = B.as_loss_input(tf.constant([1, 2], tf.int32), "torch")
    assert isinstance(got, torch.Tensor) and got.dtype == torch.int32 and got.tolist() == [1, 2]
    # bools and lists
    assert B.as_loss_input([True, False], "torch").dtype == torch.bool
    assert B.as_loss_input([[1, 2]], "torch").tolist() == [[1, 2]]
    # object arrays go through torch.as_tensor (which refuses them)
    with pytest.raises(TypeError):
        B.as_loss_input(np.array([object()]), "torch")
    # TensorFlow: floats become float32, a torch tensor is detached
    f = B.as_loss_input(np.array([1.5, 2.5]), "tensorflow")
    assert isinstance(f, tf.Tensor) and f.dtype == tf.float32 and f.numpy().tolist() == [1.5, 2.5]
    g = B.as_loss_input(leaf * 2, "tensorflow")
    assert isinstance(g, tf.Tensor) and g.numpy().tolist() == [2.0, 2.0]
    i = B.as_loss_input(np.array([3], np.int64), "tensorflow")
    assert i.dtype == tf.int64
    same = tf.constant([1.0], tf.float64)
    assert B.as_loss_input(same, "tensorflow") is same


def test_detach_zeros_like_no_grad_is_accelerator() -> None:
    leaf = torch.ones(2, requires_grad=True)
    y = leaf * 3
    d = B.detach(y)
    assert not d.requires_grad and d.tolist() == [3.0, 3.0]
    arr = np.ones(2)
    assert B.detach(arr) is arr and B.detach(1.5) == 1.5
    z = B.zeros_like(torch.ones(2, 3, dtype=torch.float64))
    assert isinstance(z, torch.Tensor) and z.dtype == torch.float64 and z.shape == (2, 3) and not z.any()
    zt = B.zeros_like(tf.ones((2,), tf.int32))
    assert isinstance(zt, tf.Tensor) and zt.dtype == tf.int32 and zt.numpy().tolist() == [0, 0]
    with B.no_grad():
        assert not torch.is_grad_enabled()
        assert not (leaf * 2).requires_grad
    assert torch.is_grad_enabled()
    assert B.is_accelerator(None) is False
    assert B.is_accelerator(torch.device("cpu")) is False
    assert B.is_accelerator(torch.device("meta")) is True
    assert B.is_accelerator("cpu") is False  # no .type: read as the CPU


# -- parameter records -------------------------------------------------------------------------


def test_trainable_dict_and_with_trainable() -> None:
    k = B.KerasParams(trainable=(np.zeros(1), np.ones(2)), non_trainable=(np.full(1, 5.0),), input_shape=(2,))
    d = B.trainable_dict(k)
    assert list(d) == ["0", "1"] and d["1"].tolist() == [1.0, 1.0]
    k2 = B.with_trainable(k, {"1": np.full(2, 7.0), "0": np.full(1, 3.0)})
    assert type(k2) is B.KerasParams
    assert [v.tolist() for v in k2.trainable] == [[3.0], [7.0, 7.0]]
    assert k2.non_trainable is k.non_trainable and k2.input_shape == (2,)
    t = B.TorchParams(params={"a": np.zeros(1), "b": np.ones(1)}, buffers={"r": np.ones(1)})
    assert B.trainable_dict(t) is t.params
    new = {"a": np.full(1, 2.0), "b": np.full(1, 4.0)}
    t2 = B.with_trainable(t, new)
    assert type(t2.params).__name__ == "FrozenDict" and dict(t2.params) == new
    assert t2.buffers is t.buffers


def test_with_evolved() -> None:
    k = B.KerasParams(trainable=(np.zeros(1),), non_trainable=(np.zeros(1),))
    evolved = B.KerasParams(trainable=(np.ones(1),), non_trainable=(np.full(1, 9.0),))
    got = B.with_evolved(k, evolved)
    assert got.trainable is k.trainable and got.non_trainable is evolved.non_trainable
    t = B.TorchParams(params={"w": np.zeros(1)}, buffers={"m": np.zeros(1)})
    tn = B.TorchParams(params={"w": np.ones(1)}, buffers={"m": np.full(1, 2.0)})
    got_t = B.with_evolved(t, tn)
    assert got_t.params is t.params and got_t.buffers["m"].tolist() == [2.0]
    assert type(got_t.buffers).__name__ == "FrozenDict"
    # no buffers evolved, or another record: the record as it was
    assert B.with_evolved(t, B.TorchParams(params={"w": np.ones(1)})) is t
    assert B.with_evolved(t, None) is t


def test_params_device_move_params_tensor_params() -> None:
    assert B.params_device(None) is None
    assert B.params_device(B.TorchParams(params={})) is None
    assert B.params_device(B.TorchParams(params={"w": np.zeros(1)})) == "cpu"  # numpy 2's array.device
    assert B.params_device(B.TorchParams(params={"w": [0.0]})) is None  # no device attribute
    assert B.params_device(B.TorchParams(params={"w": torch.zeros(1)})) == torch.device("cpu")
    assert B.params_device(B.KerasParams(trainable=(torch.zeros(1),))) is None
    cpu = torch.device("cpu")
    rec = B.TorchParams(
        params={"w": np.array([1.0, 2.0], np.float32)},
        buffers={"r": np.array([3], np.int64)},
        input_shape=(2,),
    )
    moved = B.move_params(rec, cpu)
    assert isinstance(moved.params["w"], torch.Tensor) and moved.params["w"].tolist() == [1.0, 2.0]
    assert moved.params["w"].dtype == torch.float32
    assert isinstance(moved.buffers["r"], torch.Tensor) and moved.buffers["r"].tolist() == [3]
    assert moved.input_shape == (2,)
    assert B.move_params(moved, cpu) is moved  # already there
    assert B.move_params(rec, None) is rec
    # tensors already there but numpy buffers: parameters decide (they are checked)
    empty = B.TorchParams(params={})
    assert B.move_params(empty, cpu) is empty
    keras = B.KerasParams(trainable=(np.zeros(1),))
    assert B.move_params(keras, cpu) is keras
    # only parameters, no buffers: the buffers stay empty
    only = B.move_params(B.TorchParams(params={"w": np.zeros(1, np.float32)}), cpu)
    assert dict(only.buffers) == {}
    mixed = B.TorchParams(params={"w": torch.zeros(1), "v": np.ones(1)})
    assert isinstance(B.move_params(mixed, cpu).params["v"], torch.Tensor)
    # Keras records: numpy leaves become TensorFlow tensors, tensors are kept
    kp = B.KerasParams(trainable=(np.array([1.0], np.float32),), non_trainable=(np.array([2.0]),))
    tp = B.tensor_params(kp)
    assert all(isinstance(v, tf.Tensor) for v in (*tp.trainable, *tp.non_trainable))
    assert tp.trainable[0].numpy().tolist() == [1.0] and tp.non_trainable[0].numpy().tolist() == [2.0]
    assert B.tensor_params(tp) is tp
    part = B.KerasParams(trainable=(tf.constant([1.0]),), non_trainable=(np.array([2.0]),))
    assert isinstance(B.tensor_params(part).non_trainable[0], tf.Tensor)
    assert B.tensor_params(rec) is rec


# -- tapes ---------------------------------------------------------------------------------------


def _torch_records() -> dict[str, B.TorchParams]:
    return {
        "a": B.TorchParams(params={"w": torch.tensor([1.0, 2.0]), "u": torch.tensor([5.0])}),
        "b": B.TorchParams(params={"v": torch.tensor([3.0])}),
    }


def test_torch_tape_gradients_by_hand() -> None:
    from mml.backends._tape import open_tape

    recs = _torch_records()
    tape = open_tape("torch", recs)
    with torch.no_grad():
        with tape:
            assert torch.is_grad_enabled()
            w, v = tape.records["a"].params["w"], tape.records["b"].params["v"]
            assert w.requires_grad and v.requires_grad and not recs["a"].params["w"].requires_grad
            t1 = (w**2).sum()  # d/dw = 2w
            t2 = 3 * v.sum() * w[0]  # d/dv = 3 w0, d/dw0 = 3 v
        assert not torch.is_grad_enabled()
    with torch.no_grad():  # the terms' sum is recorded also when the gradient is asked under no_grad
        g = tape.gradient([("a", t1), ("b", t2), ("c", 1.5)])
    assert list(g) == ["a", "b"] and list(g["a"]) == ["w", "u"]
    assert g["a"]["w"].tolist() == [2.0 + 9.0, 4.0]
    assert g["a"]["u"].tolist() == [0.0]  # unused: zeros
    assert g["b"]["v"].tolist() == [3.0]
    # no tensor term, a term without a graph, or nothing watched: no gradients
    tape2 = open_tape("torch", _torch_records())
    with tape2:
        pass
    assert tape2.gradient([("a", 2.0)]) == {}
    assert tape2.gradient([("a", torch.tensor(1.0))]) == {}
    tape3 = open_tape("torch", {})
    with tape3:
        x = torch.ones(1, requires_grad=True) * 2
    assert tape3.gradient([("a", x.sum())]) == {}


def _keras_records() -> dict[str, B.KerasParams]:
    return {
        "a": B.KerasParams(trainable=(tf.constant([1.0, 2.0]), tf.constant([5.0]))),
        "b": B.KerasParams(trainable=(tf.constant([3.0]),)),
        "c": B.KerasParams(trainable=(tf.constant([4.0]),)),
    }


@pytest.mark.parametrize("per_node", [False, True])
def test_keras_tape_gradients_by_hand(per_node: bool) -> None:
    from mml.backends._tape import open_tape

    recs = _keras_records()
    tape = open_tape("tensorflow", recs, per_node=per_node)
    assert tape.records == {}
    with tape:
        (w, _), (v,) = recs["a"].trainable, recs["b"].trainable
        t_a = tf.reduce_sum(w**2)  # bound to a: d/dw = 2w
        t_b = 3.0 * tf.reduce_sum(v) * w[0]  # bound to b: d/dv = 3 w0, d/dw0 = 3 v
        t_b2 = 2.0 * tf.reduce_sum(v)  # bound to b too
    g = tape.gradient([("a", t_a), ("b", t_b), ("b", t_b2), ("x", torch.tensor(1.0)), ("d", 2.0)])
    assert list(g) == ["a", "b", "c"] and list(g["a"]) == ["0", "1"] and list(g["b"]) == ["0"]
    if per_node:
        assert g["a"]["0"].numpy().tolist() == [2.0, 4.0]  # only a's own term
        assert g["b"]["0"].numpy().tolist() == [5.0]
    else:
        assert g["a"]["0"].numpy().tolist() == [11.0, 4.0]  # the sum of every term
        assert g["b"]["0"].numpy().tolist() == [5.0]
    assert g["a"]["1"].numpy().tolist() == [0.0]
    assert g["c"]["0"].numpy().tolist() == [0.0]


def test_two_tensorflow_loss_terms_train_through_graph_value_and_grad() -> None:
    # regression: the tape summed the terms after its block had ended, off the tape, so two
    # TensorFlow loss terms gave all-zero gradients (one term gave the right ones)
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import SequentialMLP

    fs = mml.FeatureSet.from_dict(
        {"x": np.ones((4, 3), np.float32), "y": np.zeros(4, np.float32)},
        features="x",
        targets="y",
        label="fs",
    )
    g = ModelGraph.of(ModelNode("k", SequentialMLP(hidden=(), backend="tensorflow"), FeatureSetRef("fs")))
    state = mml.graph.build(g, {"fs": fs}, key=0)

    def two(st):  # type: ignore[no-untyped-def]
        w, b = st.params["k"].trainable
        return [("k", tf.reduce_sum(w)), ("k", 2.0 * tf.reduce_sum(w) + tf.reduce_sum(b))], None

    for per_node in (False, True):
        _, grads = mml.graph.value_and_grad(g, state, two, ["k"], per_node=per_node)
        assert grads["k"]["0"].numpy().ravel().tolist() == [3.0, 3.0, 3.0]
        assert grads["k"]["1"].numpy().tolist() == [1.0]


@pytest.mark.parametrize("per_node", [False, True])
def test_keras_tape_without_terms_gives_zeros(per_node: bool) -> None:
    from mml.backends._tape import open_tape

    recs = _keras_records()
    tape = open_tape("tensorflow", recs, per_node=per_node)
    with tape:
        pass
    g = tape.gradient([("a", 1.0)])
    assert {k: [t.numpy().tolist() for t in v.values()] for k, v in g.items()} == {
        "a": [[0.0, 0.0], [0.0]],
        "b": [[0.0]],
        "c": [[0.0]],
    }


def test_keras_tape_per_node_on_one_record_and_on_many() -> None:
    from mml.backends._tape import open_tape

    one = {"a": B.KerasParams(trainable=(tf.constant([2.0]),))}
    tape = open_tape("tensorflow", one, per_node=True)
    with tape:
        t = tf.reduce_sum(one["a"].trainable[0] ** 3)
    assert tape.gradient([("a", t)])["a"]["0"].numpy().tolist() == [12.0]
    # several records, per node: one tape answers each node in turn (a persistent tape)
    recs = _keras_records()
    tape = open_tape("tensorflow", recs, per_node=True)
    with tape:
        ta = tf.reduce_sum(recs["a"].trainable[0])
        tc = 5.0 * tf.reduce_sum(recs["c"].trainable[0])
    g = tape.gradient([("a", ta), ("c", tc)])
    assert g["a"]["0"].numpy().tolist() == [1.0, 1.0] and g["c"]["0"].numpy().tolist() == [5.0]


def test_open_tape_of_a_backend_without_gradients() -> None:
    from mml.backends._tape import open_tape

    with pytest.raises(mml.BackendError) as err:
        open_tape("sklearn", {})
    assert str(err.value) == "the sklearn backend has no gradients; fit its nodes with a FitPhase"


# -- classification metrics ------------------------------------------------------------------


P2 = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9], [0.45, 0.55]])
T2 = np.array([0, 1, 1, 1, 0])
P3 = np.array(
    [[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3], [0.5, 0.1, 0.4], [0.1, 0.1, 0.8]]
)
T3 = np.array([0, 2, 2, 1, 1, 2])


def test_classification_scores_binary_against_sklearn() -> None:
    names = B.SKLEARN_CLASSIFICATION_METRICS
    assert names == (
        "accuracy",
        "balanced_accuracy",
        "f1",
        "precision",
        "recall",
        "roc_auc",
        "log_loss",
        "confusion_matrix",
    )
    got = B.classification_scores(T2, P2, np.arange(2), names)
    pred = P2.argmax(axis=1)  # 0 1 0 1 1
    want = {
        "accuracy": skm.accuracy_score(T2, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(T2, pred),
        "f1": skm.f1_score(T2, pred),
        "precision": skm.precision_score(T2, pred),
        "recall": skm.recall_score(T2, pred),
        "roc_auc": skm.roc_auc_score(T2, P2[:, 1]),
        "log_loss": skm.log_loss(T2, P2),
    }
    cm = skm.confusion_matrix(T2, pred)
    want.update({f"confusion_matrix_{i}_{j}": float(cm[i, j]) for i in range(2) for j in range(2)})
    assert got == pytest.approx(want, rel=1e-12)
    assert list(got) == list(want)
    assert all(type(v) is float for v in got.values())
    # by hand: 3 of 5 right; precision 2/3, recall 2/3
    assert got["accuracy"] == 0.6 and got["precision"] == pytest.approx(2 / 3)
    assert (got["confusion_matrix_0_0"], got["confusion_matrix_0_1"]) == (1.0, 1.0)
    assert (got["confusion_matrix_1_0"], got["confusion_matrix_1_1"]) == (1.0, 2.0)
    assert got["roc_auc"] == pytest.approx(5 / 6)  # 5 of the 6 (positive, negative) pairs ordered


def test_classification_scores_multiclass_against_sklearn() -> None:
    labels = np.arange(3)
    pred = P3.argmax(axis=1)  # 0 1 2 1 0 2
    got = B.classification_scores(T3, P3, labels, ("f1", "precision", "recall", "roc_auc", "log_loss"))
    assert got == pytest.approx(
        {
            "f1": skm.f1_score(T3, pred, average="macro"),
            "precision": skm.precision_score(T3, pred, average="macro"),
            "recall": skm.recall_score(T3, pred, average="macro"),
            "roc_auc": skm.roc_auc_score(T3, P3, multi_class="ovr", labels=labels),
            "log_loss": skm.log_loss(T3, P3, labels=labels),
        },
        rel=1e-12,
    )
    # a label no sample has still counts in the macro mean (precision of class 3: 0, no warning)
    p4 = np.hstack([P3, np.zeros((6, 1))])
    four = B.classification_scores(T3, p4, np.arange(4), ("recall", "precision", "confusion_matrix"))
    assert four["recall"] == pytest.approx(
        skm.recall_score(T3, pred, labels=np.arange(4), average="macro", zero_division=0)
    )
    assert four["recall"] == pytest.approx((1 + 0.5 + 2 / 3 + 0) / 4)
    assert four["precision"] == pytest.approx((0.5 + 0.5 + 1 + 0) / 4)
    assert len([k for k in four if k.startswith("confusion_matrix_")]) == 16
    assert four["confusion_matrix_3_3"] == 0.0 and four["confusion_matrix_2_2"] == 2.0
    assert four["confusion_matrix_1_0"] == 1.0 and four["confusion_matrix_0_1"] == 0.0


def test_classification_scores_edges_and_messages() -> None:
    # binary, no positive predictions: precision 0 (zero_division=0), no warning
    p = np.array([[0.9, 0.1], [0.8, 0.2]])
    got = B.classification_scores(np.array([1, 0]), p, np.arange(2), ("precision", "f1", "roc_auc"))
    assert got["precision"] == 0.0 and got["f1"] == 0.0 and got["roc_auc"] == 0.0
    one = B.classification_scores(np.array([1, 1]), p, np.arange(2), ("roc_auc", "accuracy"))
    assert np.isnan(one["roc_auc"]) and one["accuracy"] == 0.0
    one3 = B.classification_scores(np.array([2, 2, 2]), P3[:3], np.arange(3), ("roc_auc",))
    assert np.isnan(one3["roc_auc"])
    assert B.classification_scores(T2, P2, np.arange(2), ()) == {}
    with pytest.raises(mml.ConfigError) as err:
        B.classification_scores(T2, P2, np.arange(2), ("accuracy", "auc"))
    assert str(err.value) == (
        "unknown classification metric 'auc'; use one of accuracy, balanced_accuracy, f1, precision, "
        "recall, roc_auc, log_loss, confusion_matrix"
    )
