"""What saving, loading and building cost: memory freed at once, peak RSS, UUIDs, no pandas."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pyarrow as pa
import pytest

import mml
from mml.data._build import column_to_numpy, make_uuids
from mml.random import numpy_rng


def test_loaded_tables_are_freed_without_the_garbage_collector(tmp_path):
    fs = mml.FeatureSet.from_dict(
        {"x": np.ones((50_000, 4), np.float32)}, features="x", label="m"
    ).with_split("train", np.arange(10))
    p = mml.save(fs, tmp_path / "fs")
    pool = pa.default_memory_pool()
    gc.collect()
    gc.disable()
    try:
        before = pool.bytes_allocated()
        loaded = mml.load(p)
        assert pool.bytes_allocated() - before >= 800_000  # the table's bytes, read into memory
        del loaded
        assert pool.bytes_allocated() == before  # no reference cycle keeps them alive
    finally:
        gc.enable()


def test_uuids_are_the_key_stream_bytes_stamped_as_version_4():
    k = mml.random.key(11)
    got = np.frombuffer(make_uuids(1001, k).buffers()[1], np.uint8).reshape(1001, 16)
    want = np.frombuffer(numpy_rng(k).bytes(16 * 1001), np.uint8).reshape(1001, 16).copy()
    want[:, 6] = (want[:, 6] & 0x0F) | 0x40
    want[:, 8] = (want[:, 8] & 0x3F) | 0x80
    assert np.array_equal(got, want)  # the same UUIDs as before the vectorised draw
    parsed = [uuid.UUID(bytes=bytes(row)) for row in got]
    assert {u.version for u in parsed} == {4} and len(set(parsed)) == 1001
    assert make_uuids(5, mml.random.key(12)).to_pylist() != make_uuids(5, k).to_pylist()


@pytest.mark.parametrize(
    "values",
    [
        np.array([True, False, True] * 7),
        np.arange(21, dtype=">i4"),  # non-native byte order
        np.linspace(0, 1, 21, dtype=np.float64),
        np.arange(21, dtype=np.uint16),
    ],
    ids=["bool", "big-endian", "float64", "uint16"],
)
def test_columns_built_without_pa_array_round_trip(values):
    fs = mml.FeatureSet.from_dict(
        {"v": values, "w": np.stack([values] * 3, axis=1)}, features=["v", "w"], label="c"
    )
    assert np.array_equal(fs.to_numpy("features", "v").ravel(), values)
    assert np.array_equal(fs.to_numpy("features", "w"), np.stack([values] * 3, axis=1))
    assert fs.table.column("features.v.raw").type == pa.from_numpy_dtype(values.dtype.newbyteorder("="))
    col = fs.table.column("features.v.raw").chunk(0).slice(3, 6)  # an offset into the buffers
    assert np.array_equal(column_to_numpy(col, ()), values[3:9])


_CHILD = r"""
import json, os, sys, tempfile
import numpy as np
import mml
tmp = tempfile.mkdtemp()
warm = mml.FeatureSet.from_dict({"x": np.zeros(4, np.float32)}, features="x", label="w")
mml.load(mml.save(warm, os.path.join(tmp, "warm")))
def hwm():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
n = int(sys.argv[1])
before = rss()
cols = {f"f{i}": np.random.default_rng(0).random(n, dtype=np.float32) for i in range(16)}
fs = mml.FeatureSet.from_dict(cols, features=list(cols), label="rss")
mml.save(fs, os.path.join(tmp, "fs"))
peak = hwm()
back = mml.load(os.path.join(tmp, "fs"))
print(json.dumps({"extra": peak - before, "raw": n * 16 * 4, "equal": back == fs, "pandas": "pandas" in sys.modules}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc")
def test_build_and_save_peak_memory_and_no_pandas_import(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, "400000"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["equal"] and not res["pandas"]
    assert res["extra"] <= 2.0 * res["raw"], res  # the inputs, the UUIDs, no serialized copy
