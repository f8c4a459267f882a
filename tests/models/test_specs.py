"""Laws and errors of the model specs (no backend needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import pytest
from hypothesis import given, settings, strategies as st

import mml
from mml.backends import output_shape
from mml.errors import ConfigError, ShapeError
from mml.models import (
    ACTIVATIONS,
    AbstractModel,
    KerasModel,
    SequentialCNN,
    SequentialMLP,
    SklearnModel,
    TemporalCNN,
    TorchModule,
)

sizes = st.tuples(st.integers(1, 64)) | st.tuples(st.integers(1, 64), st.integers(1, 64))
shapes = st.none() | st.tuples(st.integers(1, 5)) | st.tuples(st.integers(1, 3), st.integers(1, 3))
backends = st.sampled_from(["torch", "tensorflow"])


@st.composite
def nn_specs(draw: st.DrawFn) -> AbstractModel:
    kind = draw(st.sampled_from(["mlp", "cnn", "tcn"]))
    act = draw(st.sampled_from(ACTIVATIONS))
    drop = draw(st.sampled_from([0.0, 0.1, 0.5]))
    out = draw(shapes)
    backend = draw(backends)
    if kind == "mlp":
        return SequentialMLP(draw(sizes), act, drop, out, backend)
    if kind == "cnn":
        return SequentialCNN(
            draw(sizes), draw(st.integers(1, 5)), draw(st.integers(1, 3)), drop, True, act, out, backend
        )
    return TemporalCNN(draw(sizes), draw(st.integers(1, 4)), drop, out, act, backend)


@settings(max_examples=30)
@given(nn_specs())
def test_builtin_specs_roundtrip(spec: AbstractModel) -> None:
    assert mml.io.roundtrip(spec) == spec
    doc = mml.io.unstructure(spec)
    json.dumps(doc)
    assert doc["kind"] == spec.kind


# (module the spec's factory needs, spec maker): wrapper specs import their factory when built.
WRAPPER_SPECS = [
    pytest.param(
        None,
        lambda: SklearnModel(
            estimator="sklearn.decomposition:PCA", params={"n_components": 3, "whiten": True}
        ),
        id="sklearn-pca",
    ),
    pytest.param(
        None,
        lambda: SklearnModel(
            estimator="sklearn.linear_model:LogisticRegression", method="predict_proba", output_shape=(2,)
        ),
        id="sklearn-logistic",
    ),
    pytest.param(
        "torch",
        lambda: mml.models.TorchModule(
            factory="torch.nn:Linear", kwargs={"in_features": 2, "out_features": 3}
        ),
        id="torch-module",
    ),
    pytest.param(
        "keras",
        lambda: mml.models.KerasModel(factory="keras:Sequential", kwargs={"name": "m"}, output_shape=(1,)),
        id="keras-model",
    ),
]


@pytest.mark.parametrize(("needs", "make"), WRAPPER_SPECS)
def test_wrapper_specs_roundtrip(needs: str | None, make: Callable[[], AbstractModel]) -> None:
    if needs is not None:
        pytest.importorskip(needs)
    spec = make()
    back = mml.io.roundtrip(spec)
    assert back == spec and hash(back) == hash(spec)


def test_nested_kwargs_normalised_and_roundtrip() -> None:
    pytest.importorskip("torch")
    spec = mml.models.TorchModule(factory="torch.nn:Identity", kwargs={"a": [1, [2, 3]], "b": {"c": None}})
    assert spec.kwargs["a"] == (1, (2, 3))
    assert mml.io.roundtrip(spec) == spec


def test_unknown_activation_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"swish.*relu, gelu, tanh, sigmoid, elu, leaky_relu, silu"):
        SequentialMLP(activation="swish")
    with pytest.raises(ConfigError, match="activation"):
        TemporalCNN(activation="nope")


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        ("no_such_pkg_xyz.mod:Net", "cannot import module 'no_such_pkg_xyz.mod'"),
        ("math:NoSuchThing", "has no attribute 'NoSuchThing'"),
        ("math.pi", "looks like 'package.module:Name'"),
        ("math:pi", "not callable"),
    ],
)
def test_bad_factory_path(factory: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        mml.models.TorchModule(factory=factory)


def test_non_data_kwargs_rejected() -> None:
    with pytest.raises(ConfigError, match="JSON-able"):
        mml.models.TorchModule(factory="torch.nn:Identity", kwargs={"f": len})


def test_bad_estimator() -> None:
    with pytest.raises(ConfigError, match="cannot import module"):
        SklearnModel(estimator="sklearn.nope:PCA")
    with pytest.raises(ConfigError, match="not a scikit-learn estimator"):
        SklearnModel(estimator="math:sqrt")
    with pytest.raises(ConfigError, match="does not accept params"):
        SklearnModel(estimator="sklearn.decomposition:PCA", params={"bogus": 1})
    with pytest.raises(ConfigError, match="no method 'transform'"):
        SklearnModel(estimator="sklearn.linear_model:Ridge", method="transform")
    with pytest.raises(ConfigError, match="method must be one of"):
        SklearnModel(estimator="sklearn.linear_model:Ridge", method="fit")


def test_from_estimator_stores_data_only() -> None:
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline

    est = PCA(n_components=3)
    spec = SklearnModel.from_estimator(est)
    assert spec.estimator == "sklearn.decomposition:PCA"
    assert spec.params["n_components"] == 3
    assert all(not hasattr(v, "fit") for v in spec.params.values())
    with pytest.raises(ConfigError, match="cannot be saved safely"):
        SklearnModel.from_estimator(make_pipeline(PCA()))


def test_cnn_wrong_rank_is_shape_error() -> None:
    with pytest.raises(ShapeError, match=r"\(length,\) or \(channels, length\).*rank 3"):
        SequentialCNN().infer_output_shape((2, 3, 4), (1,))
    with pytest.raises(ShapeError, match="shorter than pooling"):
        SequentialCNN(channels=(4, 4, 4), pooling=4).infer_output_shape((8,), (1,))


def test_output_shape_rules() -> None:
    assert output_shape(SequentialMLP(), (4,), (2, 3)) == (2, 3)
    assert output_shape(SequentialMLP(output_shape=5), (4,), (2, 3)) == (5,)
    with pytest.raises(ShapeError, match="output_shape=None"):
        output_shape(SequentialMLP(), (4,), None)
    assert SequentialCNN(channels=(4,), pooling=2, flatten_output=False).infer_output_shape(
        (3, 10), None
    ) == (4, 5)
    with pytest.raises(ShapeError, match="feature map"):
        SequentialCNN(channels=(4,), flatten_output=False, output_shape=(3,)).infer_output_shape((10,), None)
    assert output_shape(SklearnModel(estimator="sklearn.preprocessing:StandardScaler"), (2, 3)) == (6,)
    assert output_shape(SklearnModel(estimator="sklearn.linear_model:Ridge"), (3,), (2,)) == (2,)
    with pytest.raises(ShapeError, match="n_classes"):
        output_shape(
            SklearnModel(estimator="sklearn.linear_model:LogisticRegression", method="predict_proba"), (3,)
        )


def test_a_user_module_without_a_declared_shape_is_run_by_its_backend() -> None:
    # issue 12: the specs import no backend; mml.backends.output_shape runs the module once
    flat = TorchModule(factory="torch.nn:Flatten")
    with pytest.raises(ShapeError) as err:
        flat.infer_output_shape((2, 3), None)
    assert str(err.value) == (
        "TorchModule('torch.nn:Flatten') declares no output_shape: it is found by running the model, which "
        "its backend does; call mml.backends.output_shape(spec, input_shape) (graphs and "
        "mml.backends.init_params do), or pass output_shape=... to the spec"
    )
    assert output_shape(flat, (2, 3)) == (6,)  # 2 * 3 after flattening one zero sample
    assert output_shape(TorchModule(factory="torch.nn:Flatten", output_shape=(7,)), (2, 3)) == (
        7,
    )  # declared wins
    assert TorchModule(factory="torch.nn:Flatten", output_shape=(7,)).infer_output_shape((2, 3), None) == (7,)


def test_bad_hyperparameters() -> None:
    with pytest.raises(ConfigError, match="dropout"):
        SequentialMLP(dropout=1.0)
    with pytest.raises(ConfigError, match="backend"):
        SequentialMLP(backend="jax")
    with pytest.raises(ConfigError, match="kernel_size"):
        SequentialCNN(kernel_size=0)
    with pytest.raises(ConfigError, match="positive"):
        SequentialMLP(hidden=(0,))


def test_import_is_lazy() -> None:
    code = "import sys, mml.models, mml.backends; print(any(m in sys.modules for m in ('torch', 'tensorflow', 'keras')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_factory_that_cannot_be_imported_says_so_and_how_to_fix_it() -> None:
    # issue 11.15: a factory defined in the script (``__main__``) trains and saves, but another
    # process cannot import it; the load error named only the JSON path
    pytest.importorskip("torch")
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode

    g = ModelGraph.of(
        ModelNode("m", TorchModule(factory="torch.nn:Linear", output_shape=(1,)), FeatureSetRef("fs"))
    )
    doc = mml.io.unstructure(g)
    doc["nodes"][0]["model"]["factory"] = "__main__:make_net_nowhere"
    with pytest.raises(mml.UntrustedTypeError, match=r"trusted=\['__main__:make_net_nowhere'\]"):
        mml.io.structure(doc, ModelGraph)  # a document names code only the caller may trust
    with pytest.raises(mml.ConfigError) as info:
        mml.io.structure(doc, ModelGraph, trusted=["__main__:*"])
    msg = str(info.value)
    assert "$.nodes[0].model" in msg and "TorchModule factory '__main__:make_net_nowhere'" in msg
    assert "could not be imported" in msg and "define it in an importable module" in msg
    with pytest.raises(mml.ConfigError, match=r"KerasModel factory 'no_such_pkg:net' could not be imported"):
        KerasModel(factory="no_such_pkg:net")


def test_sequential_cnn_runs_a_2d_convolution_on_images_when_asked() -> None:
    # issue 11.14: an (8, 8) image ran as a Conv1d over 8 channels, silently
    torch = pytest.importorskip("torch")
    from mml import backends

    one_d = SequentialCNN(channels=(4,), output_shape=(1,))
    assert one_d.convolution((8, 8)).startswith("Conv1d over 8 channel(s) of length 8 (pass dims=2")
    spec = SequentialCNN(channels=(4, 6), kernel_size=3, pooling=2, output_shape=(2,), dims=2)
    assert spec.convolution((8, 8)) == "Conv2d over 1 channel(s) of 8x8"
    assert spec.feature_map_shape((8, 8)) == (6, 2, 2)
    assert mml.io.roundtrip(spec) == spec
    p = backends.init_params(spec, (8, 8), (2,), key=mml.random.key(0))
    assert tuple(p.params["convs.0.weight"].shape) == (4, 1, 3, 3)
    x = torch.randn(5, 8, 8, generator=torch.Generator().manual_seed(0))
    ref = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 6, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(24, 2),
    )
    names = ["convs.0.weight", "convs.0.bias", "convs.1.weight", "convs.1.bias", "head.weight", "head.bias"]
    ref.load_state_dict(dict(zip(ref.state_dict(), (p.params[n] for n in names))))
    torch.testing.assert_close(backends.apply(spec, p, x)[0], ref(x.unsqueeze(1)))
    with pytest.raises(ShapeError, match=r"dims=2\) takes images"):
        spec.infer_output_shape((64,), None)
    with pytest.raises(ConfigError, match="dims must be 1"):
        SequentialCNN(dims=3)
