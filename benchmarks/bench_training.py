"""mml.run vs a hand-written PyTorch loop: wall time and peak RSS.

100,000 samples x 16 features, split 70/15/15, min-max scaled, SequentialMLP 16->64->64->1,
Adam(1e-3), 3 epochs, then a test evaluation. Every measurement runs in its own subprocess
(same thread count); medians of ``--repeats`` runs. Targets: time ratio <= 1.15 at batch 256
and <= 1.5 at batch 32; peak RSS ratio <= 1.3.

    python benchmarks/bench_training.py [--repeats 3] [--batch 256 32] [--threads 1] [--n 100000]
                                        [--device cpu|cuda]

With ``--device cuda`` both sides keep the model and the data on the GPU (mml via the phases'
``device=``; the hand-written loop via ``.to("cuda")``), and timings synchronize the device.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

N = int(os.environ.get("MML_BENCH_N", 100_000))
F, EPOCHS = 16, 3
DEVICE = os.environ.get("MML_BENCH_DEVICE", "cpu")


def make_featureset():  # type: ignore[no-untyped-def]
    import numpy as np

    import mml

    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, F)).astype(np.float32)
    w = rng.normal(size=F).astype(np.float32)
    y = (np.tanh(x @ w / 4) + 0.05 * rng.normal(size=N)).astype(np.float32)
    data = {f"f{i}": x[:, i] for i in range(F)} | {"y": y}
    fs = mml.FeatureSet.from_dict(data, features=[f"f{i}" for i in range(F)], targets="y", label="bench")
    fs = fs.split(mml.RandomSplitter({"train": 0.70, "val": 0.15, "test": 0.15}, seed=0))
    fs = mml.scalers.fit_transform(fs, "minmax", domain="features", fit_on="train")
    return mml.scalers.fit_transform(fs, "minmax", domain="targets", fit_on="train")


def run_mml(batch: int) -> float:
    import mml
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import SequentialMLP
    from mml.training import AppliedLoss, EvalPhase, Experiment, PhaseGroup, TrainPhase

    fs = make_featureset()
    g = ModelGraph.of(
        ModelNode(
            "mlp", SequentialMLP(hidden=(64, 64)), FeatureSetRef("bench"), optimizer=mml.optim.adam(1e-3)
        )
    )
    plan = PhaseGroup(
        "plan",
        [
            TrainPhase.simple(
                "fit",
                featureset="bench",
                heads=["mlp"],
                losses=AppliedLoss("mse", "mlp"),
                n_epochs=EPOCHS,
                sampler=mml.SimpleSampler(batch),
                device=DEVICE,
            ),
            EvalPhase.simple(
                "test",
                featureset="bench",
                heads=["mlp"],
                losses=[AppliedLoss("mse", "mlp")],
                batch_size=4096,
                device=DEVICE,
            ),
        ],
    )
    exp = Experiment({"bench": fs}, g, plan)
    state = mml.init(exp, 0)
    # library imports happen before timing, as they do for the hand-written loop
    import mml.callbacks
    import mml.training._shell

    t0 = time.perf_counter()
    _, h = mml.run(exp, state, progress=False)
    _sync()
    dt = time.perf_counter() - t0
    assert h.status == "completed", h.error
    return dt


def run_torch(batch: int) -> float:
    import numpy as np
    import torch

    fs = make_featureset()
    xtr = torch.from_numpy(np.ascontiguousarray(fs["train"].to_numpy("features"), dtype=np.float32))
    ytr = torch.from_numpy(np.ascontiguousarray(fs["train"].to_numpy("targets"), dtype=np.float32)).reshape(
        -1, 1
    )
    xte = torch.from_numpy(np.ascontiguousarray(fs["test"].to_numpy("features"), dtype=np.float32))
    yte = torch.from_numpy(np.ascontiguousarray(fs["test"].to_numpy("targets"), dtype=np.float32)).reshape(
        -1, 1
    )
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(F, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 1),
    ).to(DEVICE)
    xtr, ytr, xte, yte = (t.to(DEVICE) for t in (xtr, ytr, xte, yte))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    n = len(xtr)
    for _ in range(EPOCHS):
        perm = torch.from_numpy(rng.permutation(n)).to(DEVICE)
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            xb, yb = xtr[idx], ytr[idx]
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(xb), yb)
            loss.backward()
            opt.step()
            loss.item()
    with torch.no_grad():
        float(torch.nn.functional.mse_loss(model(xte), yte))
    _sync()
    return time.perf_counter() - t0


def _sync() -> None:
    if DEVICE.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def child(which: str, batch: int, threads: int) -> None:
    import resource

    import torch

    torch.set_num_threads(threads)
    dt = (run_mml if which == "mml" else run_torch)(batch)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": dt, "rss_mb": rss_mb}))


def measure(which: str, batch: int, threads: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, "--batch", str(batch), "--threads", str(threads)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, nargs="+", default=[256, 32])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", choices=["mml", "torch"])
    ap.add_argument("--n", type=int, default=N, help="number of samples")
    ap.add_argument("--device", default=DEVICE)
    args = ap.parse_args()
    os.environ["MML_BENCH_N"] = str(args.n)
    os.environ["MML_BENCH_DEVICE"] = args.device
    if args.child:
        child(args.child, args.batch[0], args.threads)
        return
    targets = {256: 1.15, 32: 1.5}
    print(
        f"# {args.n:,} samples, device {args.device}, {args.threads} torch thread(s), medians of {args.repeats}"
    )
    for batch in args.batch:
        res = {w: [measure(w, batch, args.threads) for _ in range(args.repeats)] for w in ("torch", "mml")}
        t = {w: statistics.median(r["seconds"] for r in res[w]) for w in res}
        m = {w: statistics.median(r["rss_mb"] for r in res[w]) for w in res}
        print(
            f"batch {batch}: torch {t['torch']:.2f}s mml {t['mml']:.2f}s ratio {t['mml'] / t['torch']:.3f} "
            f"(target <= {targets.get(batch, 1.5)}); peak RSS torch {m['torch']:.0f} MB mml {m['mml']:.0f} MB "
            f"ratio {m['mml'] / m['torch']:.2f} (target <= 1.3)"
        )


if __name__ == "__main__":
    main()
