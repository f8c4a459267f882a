"""Checkpoint overhead: the battery example trained with and without a checkpoint every 100 steps.

The battery demo data (2,000 curves x 101 points, split 70/15/15), SequentialMLP 101->64->64->1,
Adam 3e-3, batch 32, validation every epoch; ``mml.run`` plain vs
``mml.run(..., checkpoint=Checkpointing(every_steps=100, keep=2, mode="disk"))`` (each a full
resumable record written atomically, plus one at the end of each phase). Runs alternate in one
process; medians of ``--repeats``. Target: overhead <= 5 %. Also times resuming: one artifact
load of the newest checkpoint.

    python benchmarks/bench_checkpoint.py [--repeats 3] [--epochs 10] [--every 100] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time


def experiment(epochs: int):  # type: ignore[no-untyped-def]
    import mml
    from mml.callbacks import Evaluation
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import SequentialMLP
    from mml.scalers import PerSampleZeroStart
    from mml.training import AppliedLoss, EvalPhase, Experiment, PhaseGroup, TrainPhase

    fs = mml.datasets.load_battery(2000, seed=0)
    fs = fs.split(mml.RandomSplitter({"train": 0.7, "val": 0.15, "test": 0.15}, seed=0, group_by="cell_id"))
    fs = mml.scalers.fit_transform(fs, PerSampleZeroStart(), domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "standard", domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "standard", domain="targets", fit_on="train")
    graph = ModelGraph.of(
        ModelNode(
            "mlp", SequentialMLP(hidden=(64, 64)), FeatureSetRef("battery"), optimizer=mml.optim.adam(3e-3)
        )
    )
    plan = PhaseGroup(
        "plan",
        [
            TrainPhase.simple(
                "train",
                featureset="battery",
                heads=["mlp"],
                losses=AppliedLoss("mse", "mlp"),
                n_epochs=epochs,
                sampler=mml.SimpleSampler(32),
                callbacks=[Evaluation(split="val")],
            ),
            EvalPhase.simple("test", featureset="battery", heads=["mlp"], losses=[AppliedLoss("mse", "mlp")]),
        ],
    )
    return Experiment({"battery": fs}, graph, plan)


class _InWriter:
    """Times what the run spends inside the checkpoint writer (its calls wrapped): the overhead
    measured directly, much less noisy on a shared box than the difference of two run times."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu = 0.0  # this thread's CPU time in the writer: not inflated by preemption
        self.background = 0.0  # the writer thread's CPU time

    def _time(self, owner, name: str, main_thread: bool) -> None:  # type: ignore[no-untyped-def]
        fn = getattr(owner, name)

        def timed(*a, **k):  # type: ignore[no-untyped-def]
            t, c = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                if main_thread:
                    self.seconds += time.perf_counter() - t
                    self.cpu += time.thread_time() - c
                else:
                    self.background += time.thread_time() - c

        setattr(owner, name, timed)

    def wrap(self) -> None:
        import mml.io._artifact as artifact
        from mml.training._checkpoints import CheckpointWriter

        for name in ("after", "phase_end", "close"):  # what the run calls
            self._time(CheckpointWriter, name, main_thread=True)
        # what the writer thread spends: the artifact's files and the index (its CPU time)
        self._time(artifact, "_write_artifact", main_thread=False)
        self._time(CheckpointWriter, "_publish_index", main_thread=False)


def main() -> None:
    import torch

    import mml
    from mml.callbacks import Checkpointing
    from mml.training import latest_checkpoint

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument(
        "--dir",
        default=None,
        help="where the checkpoints go (default: the system temp dir; /dev/shm leaves the shared disk out)",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    exp = experiment(args.epochs)
    s0 = mml.init(exp, 0)
    mml.run(exp, s0, progress=False)  # warm-up: imports, first-call costs
    inside = _InWriter()
    inside.wrap()
    spent: list[float] = []
    cpu_plain: list[float] = []  # process CPU time (all threads): steadier than wall time on a shared box
    cpu_ckpt: list[float] = []
    thread_cpu: list[tuple[float, float]] = []  # (main-thread CPU in the writer, in the whole run)
    plain: list[float] = []
    ckpt: list[float] = []
    loads: list[float] = []
    cost: list[
        float
    ] = []  # checkpointing's CPU (main thread in the writer + the writer thread) / a plain run's CPU
    per_ckpt: list[tuple[float, float]] = []
    steps = written = 0
    for _ in range(args.repeats):
        t, c = time.perf_counter(), time.process_time()
        final, _h = mml.run(exp, s0, progress=False)
        plain.append(time.perf_counter() - t)
        cpu_plain.append(time.process_time() - c)
        with tempfile.TemporaryDirectory(dir=args.dir) as d:
            policy = Checkpointing(every_steps=args.every, keep=2, mode="disk", directory=d)
            inside.seconds = inside.cpu = inside.background = 0.0
            tc = time.thread_time()
            t, c = time.perf_counter(), time.process_time()
            final2, _h2 = mml.run(exp, s0, progress=False, checkpoint=policy)
            ckpt.append(time.perf_counter() - t)
            cpu_ckpt.append(time.process_time() - c)
            spent.append(inside.seconds)
            thread_cpu.append((inside.cpu, time.thread_time() - tc))
            cost.append((inside.cpu + inside.background) / cpu_plain[-1])
            per_ckpt.append((inside.cpu, inside.background))
            assert final2 == final
            steps = final.step
            written = steps // args.every + len(exp.plan.phases)
            t = time.perf_counter()
            mml.load(latest_checkpoint(d))
            loads.append(time.perf_counter() - t)
    p, c, lo = statistics.median(plain), statistics.median(ckpt), statistics.median(loads)
    # each checkpointed run against the plain run just before it
    ratios = sorted(b / a - 1 for a, b in zip(plain, ckpt))
    inw = statistics.median(x / a for a, x in zip(plain, spent))
    print(
        f"# battery MLP, batch 32, {args.epochs} epochs = {steps} steps, ~{written} checkpoints per run, "
        f"medians of {args.repeats}"
    )
    print(
        f"plain {p:.2f}s  checkpoint every {args.every} steps {c:.2f}s  overhead {100 * (c / p - 1):+.1f} % "
        f"(target <= 5 %); resume = one load: {1000 * lo:.0f} ms"
    )
    print(
        f"paired overheads {', '.join(f'{100 * r:+.1f}' for r in ratios)} % (median {100 * statistics.median(ratios):+.1f} %); "
        f"inside the writer {1000 * statistics.median(spent):.1f} ms per run = {100 * inw:.1f} % of a plain run, "
        f"{1000 * statistics.median(spent) / max(written, 1):.2f} ms per checkpoint"
    )
    share = statistics.median(w / max(r - w, 1e-9) for w, r in thread_cpu)
    per = statistics.median(w for w, _ in thread_cpu) / max(written, 1)
    print(
        f"main-thread CPU in the writer: {1000 * per:.2f} ms per checkpoint = {100 * share:.1f} % "
        "of the run's other main-thread CPU"
    )
    # the fastest of each: noise on a shared box only adds time, so the minima are the steadiest
    print(
        f"fastest of {args.repeats}: plain {min(plain):.3f}s  with checkpoints {min(ckpt):.3f}s  "
        f"overhead {100 * (min(ckpt) / min(plain) - 1):+.1f} %; CPU (all threads) "
        f"{100 * (min(cpu_ckpt) / min(cpu_plain) - 1):+.1f} %"
    )
    n = max(written, 1)
    print(
        f"checkpointing's own CPU (main thread in the writer + the writer thread): "
        f"{1000 * statistics.median(a for a, _ in per_ckpt) / n:.2f} + {1000 * statistics.median(b for _, b in per_ckpt) / n:.2f} ms "
        f"per checkpoint = {100 * statistics.median(cost):.1f} % of a plain run's CPU "
        f"(range {100 * min(cost):.1f}-{100 * max(cost):.1f} %): the overhead with no core free for the writer thread"
    )
    cp, cc = statistics.median(cpu_plain), statistics.median(cpu_ckpt)
    print(
        f"CPU time (all threads): plain {cp:.2f}s  with checkpoints {cc:.2f}s  overhead {100 * (cc / cp - 1):+.1f} %"
    )


if __name__ == "__main__":
    main()
