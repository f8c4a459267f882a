"""Layer 1 benchmarks: FeatureSet construction, split + materialize, save/load, grouped from_pandas.

Each case runs mml and a hand-written numpy/pyarrow baseline doing the same work in this
process, interleaved, and prints medians and the ratio. Run: ``python benchmarks/bench_featureset.py``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

sys.path.insert(0, os.path.dirname(__file__))
from _timing import interleaved, report

import mml
from mml.data._build import make_uuids

N = int(os.environ.get("MML_BENCH_N", 1_000_000))
F = 16
REPEATS = int(os.environ.get("MML_BENCH_REPEATS", 5))


def main() -> None:
    rng = np.random.default_rng(0)
    cols = {f"f{i}": rng.random(N, dtype=np.float32) for i in range(F)}
    cols["y"] = rng.random(N, dtype=np.float32)
    feats = [f"f{i}" for i in range(F)]
    print(f"# {N:,} samples x {F} float32 features + 1 target, medians of {REPEATS} runs")

    # 1. build from a dict (with UUIDs)
    def build_mml() -> mml.FeatureSet:
        return mml.FeatureSet.from_dict(cols, features=feats, targets=["y"], label="bench")

    def build_base() -> pa.Table:
        arrays = [pa.array(cols[k]) for k in [*feats, "y"]]
        arrays.append(make_uuids(N, mml.random.key(0)))
        return pa.Table.from_arrays(arrays, names=[*feats, "y", "uuid"])

    t = interleaved({"mml": build_mml, "base": build_base}, repeats=REPEATS)
    report("build FeatureSet from dict (1M x 16 + target + UUIDs)", t["mml"], t["base"], 2.0)

    fs = build_mml()
    X = np.stack([cols[k] for k in feats], axis=1)  # the baseline's natural layout

    # 2. 70/15/15 split + materialize train features
    splitter = mml.RandomSplitter(ratios={"train": 0.7, "val": 0.15, "test": 0.15}, seed=0)

    def split_mml() -> np.ndarray:
        return fs.split(splitter)["train"].to_numpy("features")

    def split_base() -> np.ndarray:
        perm = np.random.default_rng(0).permutation(N)
        train = np.sort(perm[: int(0.7 * N)])
        return X[train]

    t = interleaved({"mml": split_mml, "base": split_base}, repeats=REPEATS)
    report("70/15/15 split + materialize train features (numpy)", t["mml"], t["base"], 1.5)

    tracemalloc.start()
    split_fs = fs.split(splitter)
    split_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    tracemalloc.start()
    views = [split_fs[n] for n in ("train", "val", "test")]
    views_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    table_bytes = fs.table.nbytes
    verdict = "OK" if views_peak < 0.01 * table_bytes else "ABOVE TARGET (1 %)"
    print(
        f"{'making the three split views: bytes allocated':<58} {views_peak / 1e3:9.1f} kB = "
        f"{100 * views_peak / table_bytes:.4f} % of the {table_bytes / 1e6:.0f} MB table  {verdict}"
    )
    print(
        f"{'the split itself (int64 index arrays + scratch), peak':<58} {split_peak / 1e6:9.2f} MB = "
        f"{100 * split_peak / table_bytes:.1f} % of the table (8 bytes per row of index)"
    )
    del views

    # 3. save and load vs pyarrow IPC
    tmp = tempfile.mkdtemp()
    try:

        def save_load_mml() -> None:
            p = mml.save(fs, os.path.join(tmp, "fs"))
            mml.load(p)

        def save_load_base() -> None:
            path = os.path.join(tmp, "t.arrow")
            with pa.OSFile(path, "wb") as sink, ipc.new_file(sink, fs.table.schema) as w:
                w.write_table(fs.table)
            ipc.open_file(pa.memory_map(path)).read_all()

        t = interleaved({"mml": save_load_mml, "base": save_load_base}, repeats=REPEATS)
        report("save + load FeatureSet vs pyarrow IPC write + read", t["mml"], t["base"], 1.3)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # 4. grouped from_pandas
    n_groups, length = 2000, 100
    df = pd.DataFrame(
        {
            "cell": np.repeat(np.arange(n_groups), length),
            "t": np.tile(np.arange(length), n_groups),
            "v": rng.random(n_groups * length),
            "soh": np.repeat(rng.random(n_groups), length),
        }
    ).sample(frac=1.0, random_state=0)

    def pandas_mml() -> mml.FeatureSet:
        return mml.FeatureSet.from_pandas(
            df, features="v", targets="soh", label="g", group_by="cell", sort_by="t"
        )

    def pandas_base() -> tuple[np.ndarray, np.ndarray]:
        groups = df.sort_values(["cell", "t"]).groupby("cell")
        v = np.stack([g["v"].to_numpy() for _, g in groups])
        soh = groups["soh"].first().to_numpy()
        return v, soh

    t = interleaved({"mml": pandas_mml, "base": pandas_base}, repeats=REPEATS)
    report("from_pandas(group_by, sort_by): 200k rows -> 2,000 curves", t["mml"], t["base"], 2.0)


if __name__ == "__main__":
    main()
