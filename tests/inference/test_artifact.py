"""The exported Predictor as an artifact: small, free of training rows, loadable in a fresh process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP, SklearnModel
from mml.training import AppliedLoss, EvalPhase, Experiment, FitPhase, TrainPhase

pytest.importorskip("torch")

# Imports of these top-level packages fail in the child process: it has only the backends it needs.
_BLOCKER = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed in this process")
        return None
sys.meta_path.insert(0, _Block())
"""


def _run_child(code: str, blocked: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    script = f"BLOCKED = {blocked!r}\n{_BLOCKER}\n{textwrap.dedent(code)}"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def torch_pipeline(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, np.ndarray, np.ndarray, mml.FeatureSet]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 6)).astype(np.float32)
    y = (x[:, :2].sum(1) * 4 + 20).astype(np.float32)
    fs = mml.FeatureSet.from_dict({"x": x, "y": y}, features="x", targets="y", label="toy")
    fs = mml.scalers.fit_transform(fs.with_split("train", np.arange(2000)), "standard")
    fs = mml.scalers.fit_transform(fs, "minmax", domain="targets")
    g = ModelGraph.of(
        ModelNode("mlp", SequentialMLP(hidden=(8,)), FeatureSetRef("toy"), optimizer=mml.optim.adam(1e-2))
    )
    exp = Experiment(
        {"toy": fs},
        g,
        TrainPhase.simple(
            "fit",
            featureset="toy",
            heads=["mlp"],
            n_epochs=1,
            losses=AppliedLoss("mse", "mlp"),
            sampler=mml.SimpleSampler(256),
        ),
    )
    state, _ = mml.run(exp, mml.init(exp, 0), progress=False)
    predictor = mml.export(exp, state)
    path = mml.save(predictor, tmp_path_factory.mktemp("art") / "predictor")
    new = rng.normal(size=(50, 6)).astype(np.float32)
    return path, new, predictor.predict({"x": new}), fs


def test_round_trip_in_a_fresh_process_without_tensorflow(torch_pipeline, tmp_path):
    path, new, expected, _ = torch_pipeline
    np.save(tmp_path / "x.npy", new)
    out = _run_child(
        f"""
        import sys, numpy as np, mml
        p = mml.load({str(path)!r})
        assert type(p).__name__ == "Predictor"
        np.save({str(tmp_path / "y.npy")!r}, p.predict({{"x": np.load({str(tmp_path / "x.npy")!r})}}))
        print(sorted(m for m in ("tensorflow", "keras", "sklearn") if m in sys.modules))
        """,
        blocked=("tensorflow", "keras"),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert np.array_equal(np.load(tmp_path / "y.npy"), expected)


def test_artifact_holds_no_training_rows(torch_pipeline):
    path, _, _, fs = torch_pipeline
    blob = b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())
    # the weights (65 float32), scaler params and the JSON documents: a few KiB, whatever the rows
    assert len(blob) < 8 * 1024 and len(blob) * 20 < fs.table.nbytes
    for domain, key in (("features", "x"), ("targets", "y")):
        for rep in ("raw", "transformed"):
            values = fs.column_array(domain, key, rep)
            assert not any(values[i].tobytes() in blob for i in range(0, len(values), 7)), (domain, key, rep)
    uuids = fs.sample_uuids
    assert not any(uuids[i].tobytes() in blob for i in range(0, len(uuids), 7))
    assert mml.load(path).schemas["toy"].table.num_rows == 0


def test_sklearn_pipeline_loads_and_predicts_without_torch(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3))
    y = x @ np.array([1.0, 2.0, -1.0]) + 5
    fs = mml.FeatureSet.from_dict({"x": x, "y": y}, features="x", targets="y", label="lin")
    fs = mml.scalers.fit_transform(fs.with_split("train", np.arange(100)), "standard")
    fs = mml.scalers.fit_transform(fs, "standard", domain="targets")
    g = ModelGraph.of(
        ModelNode(
            "ridge",
            SklearnModel(estimator="sklearn.linear_model:Ridge", params={"alpha": 1e-6}),
            FeatureSetRef("lin"),
        )
    )
    plan = [
        FitPhase("fit", {"ridge": mml.training.InputBinding("lin", "train")}),
        EvalPhase.simple("test", featureset="lin", heads=["ridge"], split="train", inverse_transform=True),
    ]
    exp = Experiment({"lin": fs}, g, plan)
    state, history = mml.run(exp, mml.init(exp, 0), progress=False)
    predictor = mml.export(exp, state)
    assert np.array_equal(predictor.predict({"x": x}), history.eval_result("test").outputs["ridge"])
    path = mml.save(predictor, tmp_path / "ridge")
    out = _run_child(
        f"""
        import sys, numpy as np, mml
        p = mml.load({str(path)!r})
        y = p.predict({{"x": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])}})
        print(np.round(y.ravel(), 4).tolist(), "torch" in sys.modules)
        """,
        blocked=("torch", "tensorflow", "keras"),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("]")[0] + "]" == "[6.0, 5.0]" and out.stdout.split()[-1] == "False"


def test_predictor_document_round_trips_and_inspects(torch_pipeline):
    import json

    from mml.cli import inspect_artifact
    from mml.inference import OutputSpec

    path, new, expected, _ = torch_pipeline
    predictor = mml.load(path)
    doc, _, _ = mml.io.to_document(predictor)
    json.dumps(doc)  # the document is plain JSON
    again = mml.io.roundtrip(predictor)
    assert again == predictor and np.array_equal(again.predict({"x": new}), expected)
    spec = OutputSpec("mlp", "toy", ("y",), inverse=True, task="multiclass")
    assert mml.io.roundtrip(spec) == spec
    with pytest.raises(mml.ConfigError, match="task"):
        OutputSpec("mlp", None, (), task="ranking")
    text = inspect_artifact(path)
    assert (
        "mml.inference._predictor:Predictor (kind predictor)" in text
        and "output 'mlp': [1] regression -> raw y" in text
    )
