"""One epoch of a Keras MLP: ``mml.run`` against ``model.fit`` on the same model, in one process.

1,000 samples x 16 features, a 16->64->64->1 Keras ``SequentialMLP`` (mml's built-in, built
with the Keras functional API), SGD(0.01), batch 32 and 256, no shuffle. ``model.fit`` runs on
the same Keras model object (compiled with ``tf.function``, as Keras does by default);
``mml.run`` runs one TrainPhase of one epoch. Both are timed interleaved (medians of
``--repeats``, after a warm-up run that traces/compiles), so machine noise hits both alike.

    python benchmarks/bench_keras.py [--repeats 5] [--batch 32 256] [--n 1000]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np
from _timing import interleaved


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    import mml
    from mml.backends._keras import keras_model
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import SequentialMLP
    from mml.training import AppliedLoss, Experiment, TrainPhase

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, 16)).astype(np.float32)
    y = np.tanh(x @ rng.normal(size=16).astype(np.float32) / 4).astype(np.float32)
    fs = mml.FeatureSet.from_dict({"x": x, "y": y}, features="x", targets="y", label="k")
    fs = fs.with_split("train", np.arange(args.n))
    spec = SequentialMLP(hidden=(64, 64), backend="tensorflow")
    model = keras_model(spec, (16,), (1,))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}, {args.n} x 16, 16-64-64-1 MLP, SGD")
    for batch in args.batch:
        g = ModelGraph.of(ModelNode("mlp", spec, FeatureSetRef("k"), optimizer=mml.optim.sgd(0.01)))
        phase = TrainPhase.simple(
            "fit",
            featureset="k",
            heads=["mlp"],
            losses=AppliedLoss("mse", "mlp"),
            sampler=mml.SimpleSampler(batch, shuffle=False),
        )
        exp = Experiment({"k": fs}, g, phase)
        state = mml.init(exp, 0)

        def run_mml(exp: Experiment = exp, state: object = state) -> None:
            _, history = mml.run(exp, state, progress=False)
            assert history.status == "completed", history.error

        def run_fit(batch: int = batch) -> None:
            model.fit(x, y[:, None], batch_size=batch, epochs=1, shuffle=False, verbose=0)

        t = interleaved({"mml": run_mml, "fit": run_fit}, repeats=args.repeats, warmup=1)
        print(
            f"batch {batch:4d}: mml.run {t['mml']:.4f} s   model.fit {t['fit']:.4f} s   "
            f"ratio {t['mml'] / t['fit']:.2f}"
        )


if __name__ == "__main__":
    main()
