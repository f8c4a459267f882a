"""Warm vs cold: the training benchmark's two jobs run alternately in ONE process.

The first run of each pays one-time costs (CUDA context, kernel and library initialisation,
allocator warm-up); later runs show the steady-state ratio. Use it to tell fixed per-process
cost from per-step cost, e.g. ``MML_BENCH_DEVICE=cuda python benchmarks/bench_training_warm.py``.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import bench_training as bt


def main() -> None:
    import torch

    torch.set_num_threads(1)
    batches = [int(b) for b in os.environ.get("MML_BENCH_BATCHES", "256").split(",")]
    print(f"# {bt.N:,} samples, device {bt.DEVICE}, runs alternate in one process")
    for batch in batches:
        times: dict[str, list[float]] = {"torch": [], "mml": []}
        for _ in range(3):
            times["torch"].append(bt.run_torch(batch))
            times["mml"].append(bt.run_mml(batch))
        t, m = times["torch"], times["mml"]
        print(
            f"batch {batch}: torch {', '.join(f'{v:.2f}' for v in t)} s; mml {', '.join(f'{v:.2f}' for v in m)} s"
        )
        print(
            f"batch {batch}: cold ratio {m[0] / t[0]:.3f}; warm ratio (last two) {(m[1] + m[2]) / (t[1] + t[2]):.3f}"
        )


if __name__ == "__main__":
    main()
