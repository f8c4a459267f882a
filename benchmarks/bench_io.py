"""What the data layer costs on disk and in memory: save/load, peak RSS, UUIDs, a cold first build.

Each case runs mml beside a plain pyarrow/numpy baseline doing the same work (in-process cases
interleaved, medians; peak memory and cold starts in fresh subprocesses) and prints the ratio.
Run: ``python benchmarks/bench_io.py`` (``MML_BENCH_N``, ``MML_BENCH_REPEATS`` to change size).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

sys.path.insert(0, os.path.dirname(__file__))
from _timing import interleaved, report

import mml
from mml.data._build import make_uuids

N = int(os.environ.get("MML_BENCH_N", 1_000_000))
F = 16
REPEATS = int(os.environ.get("MML_BENCH_REPEATS", 5))
RAW = N * F * 4  # the float32 features, the "raw data" of the memory ratios


def _columns(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"f{i}": rng.random(n, dtype=np.float32) for i in range(F)}


def save_load(tmp: str) -> None:
    fs = mml.FeatureSet.from_dict(_columns(N), features=[f"f{i}" for i in range(F)], label="bench")
    art, arrow = os.path.join(tmp, "fs"), os.path.join(tmp, "fs.arrow")

    def mml_case() -> None:
        mml.save(fs, art)
        assert mml.load(art).table.num_rows == N

    def ipc_full() -> None:  # write the same table, read it back fully into memory
        with ipc.new_file(arrow, fs.table.schema) as w:
            w.write_table(fs.table)
        with pa.OSFile(arrow) as f:
            assert ipc.open_file(f).read_all().num_rows == N

    def ipc_mmap() -> None:  # write, then a memory-mapped read (touches no data)
        with ipc.new_file(arrow, fs.table.schema) as w:
            w.write_table(fs.table)
        assert ipc.open_file(pa.memory_map(arrow)).read_all().num_rows == N

    t = interleaved({"mml": mml_case, "full": ipc_full, "mmap": ipc_mmap}, repeats=REPEATS)
    report("save + load (verified) vs IPC write + full read", t["mml"], t["full"], 1.3)
    report("save + load (verified) vs IPC write + mmap read", t["mml"], t["mmap"])
    # CPU seconds of all threads: what the work costs when other jobs hold the cores.
    cpu = interleaved({"mml": mml_case, "full": ipc_full}, repeats=REPEATS, clock=time.process_time)
    report("  same, CPU time of all threads (contended machine)", cpu["mml"], cpu["full"])


def build_and_uuids() -> None:
    cols = _columns(N)
    feats = list(cols)

    def build_mml() -> None:
        mml.FeatureSet.from_dict(cols, features=feats, label="bench")

    rng = np.random.default_rng(0)

    def build_base() -> None:  # the same columns zero-copy, plus 16 random bytes per row from numpy
        arrays = [pa.Array.from_buffers(pa.float32(), N, [None, pa.py_buffer(cols[k])]) for k in feats]
        arrays.append(
            pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), N, [None, pa.py_buffer(rng.bytes(16 * N))])
        )
        pa.Table.from_arrays(arrays, names=[*feats, "uuid"])

    t = interleaved({"mml": build_mml, "base": build_base}, repeats=REPEATS)
    report("build 1M x 16 + UUIDs vs Arrow table + numpy random bytes", t["mml"], t["base"], 2.0)
    key = mml.random.key(0)
    t = interleaved({"mml": lambda: make_uuids(N, key), "base": lambda: rng.bytes(16 * N)}, repeats=REPEATS)
    report("make_uuids(1M) vs numpy Generator.bytes(16M)", t["mml"], t["base"])


_RSS_CHILD = r"""
import json, os, resource, sys, tempfile
import numpy as np
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
N, F, which = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tmp = tempfile.mkdtemp()
import pyarrow as pa, pyarrow.ipc as ipc
if which == "mml":
    import mml
    warm = mml.FeatureSet.from_dict({"x": np.zeros(4, np.float32)}, features="x", label="w")
    mml.load(mml.save(warm, os.path.join(tmp, "warm")))  # lazy imports happen before the baseline
before = rss()
rng = np.random.default_rng(0)
cols = {f"f{i}": rng.random(N, dtype=np.float32) for i in range(F)}
if which == "mml":
    fs = mml.FeatureSet.from_dict(cols, features=list(cols), label="bench")
    mml.save(fs, os.path.join(tmp, "fs"))
else:
    t = pa.Table.from_arrays([pa.Array.from_buffers(pa.float32(), N, [None, pa.py_buffer(cols[k])])
                              for k in cols], names=list(cols))
    with ipc.new_file(os.path.join(tmp, "t.arrow"), t.schema) as w:
        w.write_table(t)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
try:  # ru_maxrss survives exec (it starts at the parent's peak); VmHWM is this process's own
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
print(json.dumps({"extra": peak - before}))
"""


def _child(code: str, *args: str) -> dict[str, float]:
    # cwd: not the checkout, so the child imports the mml on PYTHONPATH / installed, like this process
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_rss() -> None:
    res = {
        w: statistics.median(_child(_RSS_CHILD, str(N), str(F), w)["extra"] for _ in range(3))
        for w in ("mml", "base")
    }
    print(
        f"{'peak RSS of build + save, x raw features (' + format(RAW / 1e6, '.0f') + ' MB)':<58} "
        f"mml {res['mml'] / RAW:5.2f}x   pyarrow IPC {res['base'] / RAW:5.2f}x   "
        f"{'OK' if res['mml'] <= 2 * RAW else 'ABOVE TARGET 2.0'}",
        flush=True,
    )


_COLD_CHILD = r"""
import json, sys, time
import numpy as np
N, which = int(sys.argv[1]), sys.argv[2]
cols = {f"f{i}": np.random.default_rng(0).random(N, dtype=np.float32) for i in range(16)}
if which == "mml":
    import mml
    mml.FeatureSet  # resolve the lazy attribute before timing
    t0 = time.perf_counter()
    mml.FeatureSet.from_dict(cols, features=list(cols), label="cold")
else:  # the same columns straight from their buffers (pa.table(cols) would import pandas)
    import pyarrow as pa
    t0 = time.perf_counter()
    pa.Table.from_arrays([pa.Array.from_buffers(pa.float32(), N, [None, pa.py_buffer(v)]) for v in cols.values()],
                         names=list(cols))
print(json.dumps({"s": time.perf_counter() - t0, "pandas": "pandas" in sys.modules}))
"""


def cold_build() -> None:
    n = "10000"  # small: what is timed is the first call's one-off cost
    runs = {w: [_child(_COLD_CHILD, n, w) for _ in range(3)] for w in ("mml", "base")}
    med = {w: statistics.median(r["s"] for r in runs[w]) for w in runs}
    report("cold process: first FeatureSet build vs first Arrow table", med["mml"], med["base"])
    print(
        f"  pandas imported by the first build: mml {runs['mml'][0]['pandas']}, "
        f"pa.table {runs['base'][0]['pandas']}",
        flush=True,
    )


def main() -> None:
    print(f"# {N:,} samples x {F} float32, medians of {REPEATS} (in-process) / 3 (subprocesses)")
    peak_rss()  # first, while this process is small (children start from its memory footprint)
    with tempfile.TemporaryDirectory() as tmp:
        save_load(tmp)
    build_and_uuids()
    cold_build()


if __name__ == "__main__":
    main()
