"""Inference: ``Predictor.predict`` against hand-written numpy scalers + a torch forward pass,
and a fresh process's load + first prediction against scikit-learn + joblib and Keras ``.keras``.

1. **Throughput**, 1,000,000 rows x 16 float32 features, a 16 -> 64 -> 64 -> 1 MLP, standard
   scaler on the features and on the target: ``predictor.predict({"x": X})`` (checks, scaling,
   forward in batches of 65,536, inverse target scaling) versus numpy ``(X - mean) / scale`` +
   the same weights in a ``torch.nn.Sequential`` under ``no_grad`` in the same batches +
   ``y * scale + mean``. Target: ratio <= 1.2.
2. **Cold start**, a fresh ``python -c`` per measurement: import, load the saved model, predict
   one row. mml's Predictor artifact versus a scikit-learn ``Pipeline(StandardScaler,
   MLPRegressor(64, 64))`` dumped with joblib (joblib is only the baseline here; mml never
   pickles) and a Keras ``Sequential(Normalization, Dense 64, Dense 64, Dense 1)`` saved as
   ``.keras``. Reported: the wall time of the whole process and the time of load + predict
   after the imports.

Run: ``.venv/bin/python benchmarks/bench_predict.py [--rows N] [--repeats R] [--skip-keras]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved, report

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP
from mml.training import EvalPhase, Experiment

N_FEATURES = 16


def _predictor(n_fit: int = 20_000) -> mml.Predictor:
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(n_fit, N_FEATURES)).astype(np.float32)
    y = (x[:, :4].sum(1) * 5 + 100).astype(np.float32)
    fs = mml.FeatureSet.from_dict({"x": x, "y": y}, features="x", targets="y", label="bench")
    fs = mml.scalers.fit_transform(fs.with_split("train", np.arange(n_fit)), "standard")
    fs = mml.scalers.fit_transform(fs, "standard", domain="targets")
    g = ModelGraph.of(ModelNode("mlp", SequentialMLP(hidden=(64, 64)), FeatureSetRef("bench")))
    exp = Experiment(
        {"bench": fs}, g, EvalPhase.simple("e", featureset="bench", heads=["mlp"], split="train")
    )
    return mml.export(exp, mml.init(exp, 0))


def throughput(rows: int, repeats: int) -> dict[str, float]:
    import torch

    predictor = _predictor()
    schema = predictor.schemas["bench"]
    (fx,) = [r for r in schema.records if r.domain == "features"]
    (fy,) = [r for r in schema.records if r.domain == "targets"]
    px, py = fx.params_of("x"), fy.params_of("y")
    mean_x, scale_x = np.asarray(px.mean_), np.asarray(px.scale_)
    mean_y, scale_y = np.asarray(py.mean_), np.asarray(py.scale_)
    params = predictor.state.params["mlp"].params
    seq = torch.nn.Sequential(
        torch.nn.Linear(N_FEATURES, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 1),
    )
    with torch.no_grad():
        for i, layer in enumerate([seq[0], seq[2], seq[4]]):
            layer.weight.copy_(torch.as_tensor(np.asarray(params[f"layers.{i}.weight"])))
            layer.bias.copy_(torch.as_tensor(np.asarray(params[f"layers.{i}.bias"])))
    seq.eval()
    x = np.random.default_rng(1).normal(2.0, 3.0, size=(rows, N_FEATURES)).astype(np.float32)
    batch = predictor.batch_size

    def hand() -> np.ndarray:
        out = np.empty((rows, 1), np.float32)
        with torch.no_grad():
            for s in range(0, rows, batch):
                xs = ((x[s : s + batch] - mean_x) / scale_x).astype(np.float32)
                out[s : s + batch] = seq(torch.from_numpy(xs)).numpy()
        return out * scale_y + mean_y

    def ours() -> np.ndarray:
        return predictor.predict({"x": x})

    assert np.allclose(ours(), hand(), rtol=1e-5, atol=1e-3)
    times = interleaved({"mml": ours, "hand": hand}, repeats=repeats)
    report(f"predict {rows:,} rows (16 -> 64 -> 64 -> 1, batch {batch:,})", times["mml"], times["hand"], 1.2)
    return times


_MML_CHILD = """
import time; t0 = time.perf_counter()
import numpy as np, mml
t1 = time.perf_counter()
p = mml.load({path!r}); y = p.predict({{"x": np.ones((1, 16), np.float32)}})
t2 = time.perf_counter(); print(t2 - t0, t2 - t1)
"""
_SKLEARN_CHILD = """
import time; t0 = time.perf_counter()
import numpy as np, joblib
t1 = time.perf_counter()
p = joblib.load({path!r}); y = p.predict(np.ones((1, 16), np.float32))
t2 = time.perf_counter(); print(t2 - t0, t2 - t1)
"""
_KERAS_CHILD = """
import os; os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import time; t0 = time.perf_counter()
import numpy as np, keras
t1 = time.perf_counter()
m = keras.models.load_model({path!r}); y = m.predict(np.ones((1, 16), np.float32), verbose=0)
t2 = time.perf_counter(); print(t2 - t0, t2 - t1)
"""


def _child(code: str) -> tuple[float, float]:
    # bytecode caching on, as in an installed package (a warm-up run writes the caches)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    wall = time.perf_counter() - t0
    _, load_predict = map(float, out.stdout.split()[-2:])
    return wall, load_predict


def cold_start(repeats: int, keras_too: bool) -> dict[str, tuple[float, float]]:
    tmp = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, N_FEATURES)).astype(np.float32)
    y = x[:, :4].sum(1)
    path = mml.save(_predictor(2000), tmp / "predictor")
    import joblib
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(
        StandardScaler(), MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=5, random_state=0)
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(x, y)
    joblib.dump(pipe, tmp / "pipe.joblib")
    children = {
        "mml": _MML_CHILD.format(path=str(path)),
        "sklearn+joblib": _SKLEARN_CHILD.format(path=str(tmp / "pipe.joblib")),
    }
    if keras_too:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras

        norm = keras.layers.Normalization()
        norm.adapt(x)
        model = keras.Sequential(
            [
                keras.Input((N_FEATURES,)),
                norm,
                keras.layers.Dense(64, "relu"),
                keras.layers.Dense(64, "relu"),
                keras.layers.Dense(1),
            ]
        )
        model.save(tmp / "model.keras")
        children["keras .keras"] = _KERAS_CHILD.format(path=str(tmp / "model.keras"))
    sizes = {
        "mml": sum(p.stat().st_size for p in path.rglob("*") if p.is_file()),
        "sklearn+joblib": (tmp / "pipe.joblib").stat().st_size,
    }
    if keras_too:
        sizes["keras .keras"] = (tmp / "model.keras").stat().st_size
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in children}
    for code in children.values():
        _child(code)  # warm-up: bytecode caches, OS file cache
    for _ in range(repeats):
        for name, code in children.items():
            runs[name].append(_child(code))
    result = {
        k: (statistics.median(w for w, _ in v), statistics.median(lp for _, lp in v)) for k, v in runs.items()
    }
    for name, (wall, lp) in result.items():
        print(
            f"cold start {name:<16} process {wall:6.2f} s   load + first predict {lp * 1e3:8.1f} ms   "
            f"artifact {sizes[name] / 1024:7.1f} KiB",
            flush=True,
        )
    base = result["sklearn+joblib"]
    for name in result:
        if name != "sklearn+joblib":
            print(
                f"  {name} / sklearn+joblib: process {result[name][0] / base[0]:.2f}x, "
                f"load + predict {result[name][1] / base[1]:.2f}x"
            )
    if keras_too:
        k = result["keras .keras"]
        print(
            f"  mml / keras: process {result['mml'][0] / k[0]:.2f}x, load + predict {result['mml'][1] / k[1]:.2f}x"
        )
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cold-repeats", type=int, default=3)
    ap.add_argument("--skip-keras", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("MML_BENCH_THREADS", "1")))
    times = {} if args.skip_throughput else throughput(args.rows, args.repeats)
    cold = cold_start(args.cold_repeats, not args.skip_keras)
    print(json.dumps({"throughput": times, "cold_start": cold}))


if __name__ == "__main__":
    main()
