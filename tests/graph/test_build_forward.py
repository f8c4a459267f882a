import numpy as np
import pytest

import mml
from mml.graph import ConcatNode, FeatureSetRef, ModelGraph, ModelNode, NodeRef, build, forward

torch = pytest.importorskip("torch")
from mml import backends  # noqa: E402
from mml.models import SequentialMLP, SklearnModel, TorchModule  # noqa: E402


def _fs(n=16, d=6, label="fs"):
    rng = np.random.default_rng(0)
    return mml.FeatureSet.from_dict(
        {
            "a": rng.random((n, d), dtype=np.float32),
            "b": rng.random((n, 4), dtype=np.float32),
            "y": rng.random(n, dtype=np.float32),
        },
        features=["a", "b"],
        targets="y",
        label=label,
    )


def test_single_node_shapes_and_determinism():
    fs = _fs()
    g = ModelGraph.of(ModelNode("mlp", SequentialMLP(hidden=(8,)), FeatureSetRef("fs")))
    s1 = build(g, {"fs": fs}, key=mml.random.key(0))
    s2 = build(g, {"fs": fs}, key=mml.random.key(0))
    s3 = build(g, {"fs": fs}, key=mml.random.key(1))
    assert s1.shapes["mlp"].input_shapes == ((10,),) and s1.shapes["mlp"].output_shape == (1,)
    assert s1 == s2 and s1 != s3
    out = forward(g, s1, mml.SampleData(features=fs.to_numpy()))
    assert tuple(out.outputs["mlp"].shape) == (16, 1)


def test_encoder_head_and_active_nodes():
    fs = _fs()
    g = ModelGraph.of(
        ModelNode("enc", SequentialMLP(hidden=(8,), output_shape=(5,)), FeatureSetRef("fs", features=("a",))),
        ModelNode("head", SequentialMLP(hidden=(4,)), NodeRef("enc")),
    )
    state = build(g, {"fs": fs}, key=mml.random.key(0))
    assert state.shapes["enc"].input_shapes == ((6,),)
    assert state.shapes["head"].input_shapes == ((5,),)
    x = mml.SampleData(features=fs.to_numpy(keys="a"))
    full = forward(g, state, {"enc": x})
    only_enc = forward(g, state, {"enc": x}, active_nodes=["enc"])
    assert set(full.outputs) == {"enc", "head"} and set(only_enc.outputs) == {"enc"}
    pulled = forward(g, state, {"enc": x}, active_nodes=["head"])
    assert set(pulled.outputs) == {"enc", "head"}
    torch.testing.assert_close(pulled.outputs["head"], full.outputs["head"])
    with pytest.raises(mml.GraphError, match="not in the graph"):
        forward(g, state, x, active_nodes=["nope"])


def test_two_branches_concat_head():
    fs = _fs()
    g = ModelGraph.of(
        ModelNode(
            "left", SequentialMLP(hidden=(8,), output_shape=(3,)), FeatureSetRef("fs", features=("a",))
        ),
        ModelNode(
            "right", SequentialMLP(hidden=(8,), output_shape=(5,)), FeatureSetRef("fs", features=("b",))
        ),
        ConcatNode("cat", (NodeRef("left"), NodeRef("right"))),
        ModelNode("head", SequentialMLP(hidden=(4,)), NodeRef("cat")),
    )
    state = build(g, {"fs": fs}, key=mml.random.key(0))
    assert state.shapes["cat"].output_shape == (8,)
    out = forward(
        g,
        state,
        {"left": mml.SampleData(fs.to_numpy(keys="a")), "right": mml.SampleData(fs.to_numpy(keys="b"))},
    )
    assert tuple(out.outputs["head"].shape) == (16, 1)
    torch.testing.assert_close(out.outputs["cat"][:, :3], out.outputs["left"])


def test_concat_padding_shapes():
    fs1 = mml.FeatureSet.from_dict({"x": np.zeros((4, 1, 10), np.float32)}, features="x", label="p")
    fs2 = mml.FeatureSet.from_dict({"z": np.zeros((4, 1, 5), np.float32)}, features="z", label="q")
    g = ModelGraph.of(ConcatNode("cat", (FeatureSetRef("p"), FeatureSetRef("q")), axis=0, pad=True))
    st = build(g, {"p": fs1, "q": fs2}, key=mml.random.key(0))
    assert st.shapes["cat"].output_shape == (2, 10)
    fs3 = mml.FeatureSet.from_dict({"z": np.zeros((4, 1, 16), np.float32)}, features="z", label="r")
    fs4 = mml.FeatureSet.from_dict({"z": np.zeros((4, 1, 8), np.float32)}, features="z", label="s")
    g2 = ModelGraph.of(ConcatNode("cat", (FeatureSetRef("s"), FeatureSetRef("r"))))
    assert build(g2, {"r": fs3, "s": fs4}, key=mml.random.key(0)).shapes["cat"].output_shape == (1, 24)
    g3 = ModelGraph.of(ConcatNode("cat", (FeatureSetRef("p"), FeatureSetRef("q")), axis=0))
    with pytest.raises(mml.ShapeError, match="cat"):
        build(g3, {"p": fs1, "q": fs2}, key=mml.random.key(0))


def test_sklearn_pca_into_torch_head():
    fs = _fs()
    g = ModelGraph.of(
        ModelNode(
            "pca",
            SklearnModel(estimator="sklearn.decomposition:PCA", params={"n_components": 3}),
            FeatureSetRef("fs"),
        ),
        ModelNode("head", SequentialMLP(hidden=(4,)), NodeRef("pca")),
    )
    state = build(g, {"fs": fs}, key=mml.random.key(0))
    assert state.shapes["head"].input_shapes == ((3,),)
    assert state.gradient_stops == (("pca", "head"),)
    x = fs.to_numpy()
    fitted = backends.fit(g["pca"].model, state["pca"], x, key=mml.random.key(0))
    state = state.with_params({"pca": fitted})
    out = forward(g, state, mml.SampleData(features=x))
    assert isinstance(out.outputs["pca"], np.ndarray)
    assert tuple(out.outputs["head"].shape) == (16, 1)


def test_missing_featureset_and_shape_mismatch():
    fs = _fs()
    g = ModelGraph.of(ModelNode("mlp", SequentialMLP(hidden=(8,)), FeatureSetRef("other")))
    with pytest.raises(mml.GraphError, match=r"'other'.*available: fs"):
        build(g, {"fs": fs}, key=mml.random.key(0))
    bad = ModelGraph.of(
        ModelNode("enc", SequentialMLP(hidden=(8,), output_shape=(5,)), FeatureSetRef("fs")),
        ModelNode(
            "lin",
            TorchModule(factory="torch.nn:Linear", kwargs={"in_features": 7, "out_features": 1}),
            NodeRef("enc"),
        ),
    )
    with pytest.raises(mml.ShapeError, match="lin") as info:
        build(bad, {"fs": fs}, key=mml.random.key(0))
    assert "enc" in str(info.value) and "5" in str(info.value)


def test_graph_state_save_load(tmp_path):
    fs = _fs()
    g = ModelGraph.of(ModelNode("mlp", SequentialMLP(hidden=(8,)), FeatureSetRef("fs")))
    state = build(g, {"fs": fs}, key=mml.random.key(3))
    mml.save(state, tmp_path / "state")
    back = mml.load(tmp_path / "state")
    assert back == state
    x = mml.SampleData(features=fs.to_numpy())
    torch.testing.assert_close(
        forward(g, back, x).outputs["mlp"], forward(g, state, x).outputs["mlp"], rtol=0, atol=0
    )


def test_forward_never_mutates_inputs():
    fs = _fs()
    g = ModelGraph.of(ModelNode("mlp", SequentialMLP(hidden=(8,), dropout=0.5), FeatureSetRef("fs")))
    state = build(g, {"fs": fs}, key=mml.random.key(0))
    before = {k: v.clone() for k, v in state["mlp"].params.items()}
    x = fs.to_numpy()
    x_copy = x.copy()
    a = forward(g, state, mml.SampleData(x), training=True, key=mml.random.key(1)).outputs["mlp"]
    b = forward(g, state, mml.SampleData(x), training=True, key=mml.random.key(1)).outputs["mlp"]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    np.testing.assert_array_equal(x, x_copy)
    for k, v in state["mlp"].params.items():
        assert torch.equal(v, before[k])


def test_graph_state_loads_without_torch(tmp_path):
    import subprocess
    import sys

    fs = _fs()
    g = ModelGraph.of(ModelNode("mlp", SequentialMLP(hidden=(8,)), FeatureSetRef("fs")))
    state = build(g, {"fs": fs}, key=mml.random.key(3))
    mml.save(state, tmp_path / "state")
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'tensorflow', 'keras'):
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
import numpy as np, mml
st = mml.load({str(tmp_path / "state")!r})
p = st['mlp'].params
assert all(isinstance(v, np.ndarray) for v in p.values()), {{k: type(v) for k, v in p.items()}}
assert 'torch' not in sys.modules
print(sorted((k, v.shape) for k, v in p.items())[0])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "layers.0.bias" in out.stdout
    # and the loaded numpy params still run once torch is back
    x = fs.to_numpy()
    torch.testing.assert_close(
        forward(g, mml.load(tmp_path / "state"), mml.SampleData(x)).outputs["mlp"],
        forward(g, state, mml.SampleData(x)).outputs["mlp"],
    )
