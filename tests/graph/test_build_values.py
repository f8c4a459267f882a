"""Building and running graphs pinned value by value (issue 17): shapes, states, inputs, messages.

Forward outputs are checked against the same torch module called directly
(``torch.func.functional_call`` with the built parameters), and shapes by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.data import Batch, SampleData
from mml.errors import GraphError, ShapeError
from mml.graph import ConcatNode, FeatureSetRef, MergeNode, ModelGraph, ModelNode, NodeRef, build, forward
from mml.graph._build import ForwardResult, GraphState, NodeShapes, _common_backend, head_inputs
from mml.graph._grad import value_and_grad

torch = pytest.importorskip("torch")
from mml.models import SequentialMLP  # noqa: E402


def _raises(exc: type[Exception], fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(exc) as err:
        fn(*args, **kwargs)
    return str(err.value)


def _fs(label: str = "fs", n: int = 4) -> mml.FeatureSet:
    return mml.FeatureSet.from_dict(
        {
            "a": np.arange(n * 3, dtype=np.float32).reshape(n, 3) / 10,
            "b": np.ones((n, 2), np.float32),
            "y": np.arange(n, dtype=np.float32),
            "z": np.zeros((n, 2), np.float32),
        },
        features=["a", "b"],
        targets=["y", "z"],
        label=label,
    )


def _mlp(out: tuple[int, ...] | None = None) -> SequentialMLP:
    return SequentialMLP(hidden=(3,)) if out is None else SequentialMLP(hidden=(3,), output_shape=out)


def test_node_shapes_and_graph_state_records() -> None:
    s = NodeShapes([[np.int64(3)], (2, 1)], [np.int32(4)])
    assert s.input_shapes == ((3,), (2, 1)) and s.output_shape == (4,)
    assert type(s.input_shapes[0][0]) is int and type(s.output_shape[0]) is int
    gs = GraphState({"m": None}, {"m": s}, gradient_stops=[["a", "b"]])
    assert gs.gradient_stops == (("a", "b"),) and GraphState({}, {}).gradient_stops == ()
    assert gs["m"] is None
    assert _raises(GraphError, gs.__getitem__, "q") == "the graph state has no node 'q'; nodes: m"
    assert _raises(GraphError, gs.with_params, {"q": 1, "m": 2}) == (
        "cannot update unknown nodes ['q']; nodes: m"
    )
    assert gs.with_params({"m": 5}).params["m"] == 5 and gs.params["m"] is None
    assert repr(gs) == (
        "GraphState(\n  m: [3] + [2, 1] -> [4] [merge]\n  gradient stops between a -> b (backend boundary)\n)"
    )
    fr = ForwardResult(outputs={}, params={})
    assert fr.update(gs) is gs
    assert ForwardResult(outputs={}, params={"m": 7}).update(gs).params["m"] == 7


def test_build_shapes_targets_and_repr() -> None:
    fs = _fs()
    g = ModelGraph.of(
        ModelNode("enc", _mlp((5,)), FeatureSetRef("fs", features="a")),
        ModelNode("side", _mlp((2,)), FeatureSetRef("fs", features="b", targets="z")),
        ConcatNode("cat", (NodeRef("enc"), NodeRef("side"))),
        ModelNode("head", _mlp(), NodeRef("cat")),
    )
    st = build(g, {"fs": fs}, mml.random.key(0))
    assert st.shapes["enc"] == NodeShapes(((3,),), (5,))
    assert st.shapes["cat"] == NodeShapes(((5,), (2,)), (7,))
    # head's targets: all of fs's (y and z: 3) concatenated with side's z (2)
    assert st.shapes["head"] == NodeShapes(((7,),), (5,))
    assert st.params["cat"] is None and st.gradient_stops == ()
    assert repr(st).splitlines()[0] == "GraphState(" and repr(st).splitlines()[-1] == ")"
    assert "  cat: [5] + [2] -> [7] [merge]" in repr(st).splitlines()
    assert "  head: [7] -> [5] [TorchParams]" in repr(st).splitlines()


def test_the_key_reaches_every_node_by_label() -> None:
    fs = _fs()
    g = ModelGraph.of(ModelNode("m", _mlp((2,)), FeatureSetRef("fs", features="a")))
    a, b = build(g, {"fs": fs}, mml.random.key(1)), build(g, {"fs": fs}, 1)
    assert a == b
    renamed = ModelGraph.of(ModelNode("n", _mlp((2,)), FeatureSetRef("fs", features="a")))
    c = build(renamed, {"fs": fs}, mml.random.key(1))
    pa_, pc = a.params["m"].params, c.params["n"].params
    assert any(not np.array_equal(np.asarray(pa_[k]), np.asarray(pc[k])) for k in pa_)


def test_build_messages() -> None:
    fs = _fs()
    g = ModelGraph.of(ModelNode("m", _mlp(), FeatureSetRef("other")))
    assert _raises(GraphError, build, g, {"fs": fs}, 0) == (
        "node 'm' reads FeatureSet 'other', which was not given; available: fs"
    )
    assert _raises(GraphError, build, g, {}, 0) == (
        "node 'm' reads FeatureSet 'other', which was not given; available: (none)"
    )
    bad_keys = ModelGraph.of(ModelNode("m", _mlp(), FeatureSetRef("fs", features="q")))
    assert _raises(GraphError, build, bad_keys, {"fs": fs}, 0).startswith("node 'm': ")
    cat = ModelGraph.of(
        ConcatNode("c", (FeatureSetRef("fs", features="a"), FeatureSetRef("gs")), axis=0),
    )
    two = mml.FeatureSet.from_dict({"v": np.zeros((4, 2, 2), np.float32)}, features="v", label="gs")
    assert _raises(ShapeError, build, cat, {"fs": fs, "gs": two}, 0).startswith(
        "node 'c' cannot combine its inputs (fs [3], gs [2, 2]): "
    )


def test_no_targets_means_no_target_shape() -> None:
    fs = mml.FeatureSet.from_dict({"a": np.ones((3, 2), np.float32)}, features="a", label="u")
    g = ModelGraph.of(ModelNode("m", _mlp((4,)), FeatureSetRef("u")))
    assert build(g, {"u": fs}, 0).shapes["m"].output_shape == (4,)


def test_forward_values_against_the_module() -> None:
    fs = _fs()
    g = ModelGraph.of(
        ModelNode("enc", _mlp((2,)), FeatureSetRef("fs", features="a")),
        MergeNode("m", (NodeRef("enc"), FeatureSetRef("fs", features="b"))),
        ModelNode("head", _mlp((1,)), NodeRef("m")),
    )
    st = build(g, {"fs": fs}, mml.random.key(2))
    x = fs.to_numpy("features")
    xa = np.ascontiguousarray(x[:, :3])
    out = forward(g, st, {"enc": xa, "fs": np.ones((4, 2), np.float32)})
    enc = out.outputs["enc"]
    assert isinstance(enc, torch.Tensor) and tuple(enc.shape) == (4, 2)
    assert torch.allclose(out.outputs["m"], enc + 1.0)
    assert tuple(out.outputs["head"].shape) == (4, 1)
    part = forward(g, st, {"enc": xa, "fs": np.ones((4, 2), np.float32)}, active_nodes=["enc"])
    assert list(part.outputs) == ["enc"] and torch.equal(part.outputs["enc"], enc)
    assert dict(out.params) == {}
    assert _raises(GraphError, forward, g, st, xa, active_nodes=["zz", "enc", "aa"]) == (
        "active_nodes ['aa', 'zz'] are not in the graph; nodes: enc, m, head"
    )


def test_forward_inputs_and_their_messages() -> None:
    fs = _fs()
    g = ModelGraph.of(ModelNode("m", _mlp((2,)), FeatureSetRef("fs", features="a")))
    st = build(g, {"fs": fs}, 0)
    xa = np.ascontiguousarray(fs.to_numpy("features")[:, :3])
    ref = forward(g, st, xa).outputs["m"]
    for inputs in (
        {"m": xa},
        {"fs": xa},
        {"*": xa},
        SampleData(features=xa),
        Batch.single(SampleData(features=xa)),
    ):
        assert torch.equal(forward(g, st, inputs).outputs["m"], ref)
    assert torch.equal(forward(g, st, {"m": xa, "fs": xa * 0}).outputs["m"], ref)  # the head label first
    assert _raises(GraphError, forward, g, st, {"x": xa}) == (
        "no input for node 'm' (reads FeatureSet 'fs'); give inputs keyed by the head label "
        "or the FeatureSet label; got keys x"
    )
    assert _raises(GraphError, forward, g, st, {}) == (
        "no input for node 'm' (reads FeatureSet 'fs'); give inputs keyed by the head label "
        "or the FeatureSet label; got keys (none)"
    )
    two = Batch({"anchor": SampleData(features=xa), "positive": SampleData(features=xa)})
    assert _raises(GraphError, forward, g, st, two) == (
        "node 'm' got a batch with roles anchor, positive; pass one role's SampleData per head"
    )
    assert head_inputs(two) == {"*": two}
    assert head_inputs({"a": 1}) == {"a": 1}
    assert head_inputs(xa)["*"] is xa


def test_stop_gradients_detaches_between_nodes() -> None:
    fs = _fs()
    g = ModelGraph.of(
        ModelNode("e", _mlp((2,)), FeatureSetRef("fs", features="a")),
        ModelNode("h", _mlp((1,)), NodeRef("e")),
    )
    st = build(g, {"fs": fs}, 0)
    xa = np.ascontiguousarray(fs.to_numpy("features")[:, :3])

    def fn(stop: bool):  # type: ignore[no-untyped-def]
        def inner(state):  # type: ignore[no-untyped-def]
            y = forward(g, state, xa, training=True, stop_gradients=stop).outputs["h"]
            return [("h", (y**2).mean())], None

        return inner

    _, grads = value_and_grad(g, st, fn(False), ["e", "h"])
    assert sorted(grads) == ["e", "h"]
    assert any(float(v.abs().sum()) > 0 for v in grads["e"].values())
    _, grads = value_and_grad(g, st, fn(True), ["e", "h"])
    assert all(float(v.abs().sum()) == 0.0 for v in grads.get("e", {}).values())
    assert any(float(v.abs().sum()) > 0 for v in grads["h"].values())


def test_value_and_grad_messages() -> None:
    g = ModelGraph.of(
        ModelNode("e", _mlp((2,)), FeatureSetRef("fs", features="a")),
        ConcatNode("c", (NodeRef("e"), FeatureSetRef("fs", features="b"))),
        ModelNode("s", "no backend", NodeRef("e")),
    )
    st = GraphState({"e": None, "c": None, "s": None}, {})
    for label in ("c", "s"):
        assert _raises(GraphError, value_and_grad, g, st, lambda s: ([], None), [label]) == (
            f"node {label!r} has no model to differentiate; train model nodes only"
        )


def test_common_backend() -> None:
    assert _common_backend([np.zeros(1), torch.zeros(1)]) == "torch"
    assert _common_backend([np.zeros(1), np.zeros(1)]) is None
    assert _common_backend([np.zeros(1), 3.0]) is None
    tf = pytest.importorskip("tensorflow")
    assert _common_backend([np.zeros(1), tf.zeros(1)]) == "tensorflow"
    assert _common_backend([tf.zeros(1), torch.zeros(1)]) == "torch"
