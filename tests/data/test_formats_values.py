"""FeatureSet formats, pandas frames and split freezing pinned value by value (issue 17).

Expected values are built with pandas/numpy/pyarrow directly (``groupby``, ``np.lexsort``,
``uuid.UUID``), not with mml; every message is compared in full.
"""

from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mml
from mml.data import FeatureSet
from mml.data._pandas import is_mml_frame, table_from_mml_frame, table_to_pandas
from mml.data._splits import freeze_splits, report_overlap
from mml.errors import DataError, SchemaError, SplitError


def _raises(exc: type[Exception], fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(exc) as err:
        fn(*args, **kwargs)
    return str(err.value)


def _fs() -> FeatureSet:
    return FeatureSet.from_dict(
        {"x": [1.0, 2.0, 3.0], "y": [0, 1, 0], "g": ["a", "b", "c"]},
        features="x",
        targets="y",
        tags="g",
        label="F",
    )


# -- from_dict / from_arrow -----------------------------------------------------------------


def test_from_dict_names_each_domain_in_its_messages() -> None:
    for domain in ("features", "targets", "tags"):
        kw = {"features": "x", domain: 3}
        assert _raises(SchemaError, FeatureSet.from_dict, {"x": [1.0]}, label="a", **kw) == (
            f"{domain}= takes a key name or a list of key names, got 3"
        )
        kw = {"features": "x", domain: ["x", 2]} if domain != "features" else {"features": ["x", 2]}
        assert _raises(SchemaError, FeatureSet.from_dict, {"x": [1.0]}, label="a", **kw) == (
            f"{domain}= takes key names (str), got 2"
        )


def test_the_key_seeds_the_uuids_through_every_constructor() -> None:
    data = {"x": [1.0, 2.0], "t": ["p", "q"]}
    k = mml.random.key(5)
    a = FeatureSet.from_dict(data, features="x", tags="t", label="u", key=k)
    b = FeatureSet.from_dict(data, features="x", tags="t", label="u")
    assert a.uuid_strings() != b.uuid_strings()
    c = FeatureSet.from_arrow(pa.table(data), features="x", tags="t", label="u", key=k)
    assert c == a and c.keys("tags") == ("t",)
    d = FeatureSet.from_pandas(pd.DataFrame(data), features="x", tags="t", label="u", key=k)
    assert d == a


def test_from_arrow_needs_features_unless_mml_schema() -> None:
    assert _raises(SchemaError, FeatureSet.from_arrow, pa.table({"x": [1.0]}), label="a") == (
        "features= is required unless the table already follows the mml schema "
        "(columns like 'features.x.raw' and 'sample_uuids')"
    )
    fs = _fs()
    back = FeatureSet.from_arrow(fs.to_arrow(), label="F")
    assert back == fs and fs.to_arrow() is fs.table


# -- parquet ---------------------------------------------------------------------------------


def test_parquet_label_rules_and_atomic_write(tmp_path: Path) -> None:
    fs = _fs()
    p = tmp_path / "data.parquet"
    fs.to_parquet(p)
    assert os.listdir(tmp_path) == ["data.parquet"]
    meta = pq.read_schema(p).metadata
    assert meta[b"mml.label"] == b"F"
    assert FeatureSet.from_parquet(p) == fs
    assert FeatureSet.from_parquet(p).table.schema.metadata in (None, {}) or (
        b"mml.label" not in FeatureSet.from_parquet(p).table.schema.metadata
    )
    assert FeatureSet.from_parquet(p, label="other").label == "other"
    plain = tmp_path / "plain-file.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0]}), plain)
    got = FeatureSet.from_parquet(plain, features="x")
    assert got.label == "plain-file" and got.to_numpy("features").ravel().tolist() == [1.0, 2.0]
    k = mml.random.key(1)
    pq.write_table(pa.table({"x": [1.0, 2.0], "t": ["a", "b"]}), plain)
    got = FeatureSet.from_parquet(plain, features="x", tags="t", key=k, label="L")
    assert got == FeatureSet.from_dict(
        {"x": [1.0, 2.0], "t": ["a", "b"]}, features="x", tags="t", key=k, label="L"
    )


def test_to_parquet_removes_its_temporary_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "dir.parquet"
    target.mkdir()
    (target / "x").write_text("")
    with pytest.raises(OSError):
        _fs().to_parquet(target)  # os.replace cannot put a file over a non-empty directory
    assert sorted(os.listdir(tmp_path)) == ["dir.parquet"]


def test_from_parquet_errors_and_list_item_names(tmp_path: Path) -> None:
    missing = tmp_path / "none.parquet"
    msg = _raises(DataError, FeatureSet.from_parquet, missing, features="x")
    assert msg.startswith(f"cannot read Parquet data at {missing}: ")
    fs = FeatureSet.from_dict(
        {"v": np.arange(6.0).reshape(3, 2), "y": [1.0, 2.0, 3.0]}, features="v", targets="y", label="V"
    )
    p = tmp_path / "v.parquet"
    fs.to_parquet(p)
    stored = pq.read_schema(p)
    assert stored.field("features.v.raw").type.value_field.name == "element"  # what Parquet writes
    back = FeatureSet.from_parquet(p)
    assert back.table.schema.field("features.v.raw").type == pa.list_(pa.field("item", pa.float64()), 2)
    assert back == fs and back.key_shape("features", "v") == (2,)


# -- pandas ----------------------------------------------------------------------------------


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cell": [2, 1, 2, 1, 3, 3],
            "t": [1, 1, 0, 0, 1, 0],
            "v": [6.0, 4.0, 5.0, 3.0, 8.0, 7.0],
            "soh": [0.8, 0.9, 0.8, 0.9, np.nan, np.nan],
            "site": ["b", "a", "b", "a", "c", "c"],
        }
    )


def test_from_pandas_group_by_and_sort_by() -> None:
    fs = FeatureSet.from_pandas(
        _frame(), features=["v"], targets=["soh"], tags=["site"], label="c", group_by="cell", sort_by="t"
    )
    assert fs.to_numpy("features").tolist() == [[3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]
    y = fs.to_numpy("targets").ravel()
    assert y[:2].tolist() == [0.9, 0.8] and np.isnan(y[2])  # NaN constant in a group is constant
    assert fs.keys("tags") == ("site", "cell")
    assert fs.column_array("tags", "site").tolist() == ["a", "b", "c"]
    assert fs.column_array("tags", "cell").tolist() == [1, 2, 3]


def test_from_pandas_group_by_without_sort_keeps_row_order_in_groups() -> None:
    fs = FeatureSet.from_pandas(_frame(), features=["v", "t"], label="c", group_by="cell")
    assert fs.column_array("features", "v").tolist() == [[4.0, 3.0], [6.0, 5.0], [8.0, 7.0]]
    assert fs.column_array("features", "t").tolist() == [[1, 0], [1, 0], [1, 0]]
    assert fs.keys("tags") == ("cell",)
    listed = FeatureSet.from_pandas(_frame(), features=["v"], tags=["cell"], label="c", group_by="cell")
    assert listed.keys("tags") == ("cell",) and listed.column_array("tags", "cell").tolist() == [1, 2, 3]
    as_feature = FeatureSet.from_pandas(_frame(), features=["v", "cell"], label="c", group_by="cell")
    assert as_feature.keys("tags") == () and as_feature.keys("features") == ("v", "cell")


def test_from_pandas_group_strings_sorted_and_constant_strings() -> None:
    df = pd.DataFrame({"g": ["z", "y", "z", "y"], "x": [1.0, 2.0, 3.0, 4.0], "k": ["p", "q", "p", "q"]})
    fs = FeatureSet.from_pandas(df, features=["x"], tags=["k"], label="s", group_by="g")
    assert fs.column_array("tags", "g").tolist() == ["y", "z"]
    assert fs.column_array("features", "x").tolist() == [[2.0, 4.0], [1.0, 3.0]]
    assert fs.column_array("tags", "k").tolist() == ["q", "p"]


def test_from_pandas_sort_by_without_groups() -> None:
    df = pd.DataFrame({"t": [3, 1, 2, 1], "x": [30.0, 10.0, 20.0, 11.0]})
    fs = FeatureSet.from_pandas(df, features="x", label="s", sort_by="t")
    assert fs.to_numpy("features").ravel().tolist() == [10.0, 11.0, 20.0, 30.0]  # stable for the tie
    plain = FeatureSet.from_pandas(df, features="x", label="s")
    assert plain.to_numpy("features").ravel().tolist() == [30.0, 10.0, 20.0, 11.0]


def test_from_pandas_messages() -> None:
    df = _frame()
    assert _raises(SchemaError, FeatureSet.from_pandas, df, features=["v", "w"], targets="q", label="c") == (
        "column(s) ['w', 'q'] are not in the DataFrame (columns: cell, t, v, soh, site)"
    )
    assert _raises(
        SchemaError, FeatureSet.from_pandas, df, features="v", label="c", group_by="cel", sort_by="tt"
    ) == ("column(s) ['cel', 'tt'] are not in the DataFrame (columns: cell, t, v, soh, site)")
    bad = df.assign(cell=[1.0, np.nan, 2.0, 1.0, 3.0, 3.0])
    assert _raises(DataError, FeatureSet.from_pandas, bad, features="v", label="c", group_by="cell") == (
        "group_by column 'cell' has missing values; fill or drop them first"
    )
    assert _raises(
        DataError, FeatureSet.from_pandas, df.iloc[1:], features="v", label="c", group_by="cell"
    ) == (
        "column 'v' varies within groups of 'cell', but groups have different sizes (1..2 rows); "
        "resample to a common length first"
    )
    assert _raises(
        DataError, FeatureSet.from_pandas, df, features="v", tags="t", label="c", group_by="cell"
    ) == ("tag 't' varies within groups of 'cell'; a tag is one value per sample")
    unequal_constant = df.iloc[1:]
    fs = FeatureSet.from_pandas(unequal_constant, features="soh", label="c", group_by="site")
    assert fs.column_array("tags", "site").tolist() == ["a", "b", "c"]


def test_from_pandas_without_features_is_the_frame_of_to_pandas() -> None:
    fs = _fs()
    df = fs.to_pandas()
    assert list(df.columns) == ["features.x.raw", "targets.y.raw", "tags.g.raw", "sample_uuids"]
    assert df["sample_uuids"].tolist() == fs.uuid_strings()
    assert FeatureSet.from_pandas(df, label="F") == fs
    for name, value in (
        ("targets", "y"),
        ("tags", "g"),
        ("group_by", "g"),
        ("sort_by", "x"),
        ("key", mml.random.key(1)),
    ):
        assert _raises(SchemaError, FeatureSet.from_pandas, df, label="F", **{name: value}) == (
            f"from_pandas without features= reads a frame from to_pandas as it is; "
            f"{name}= cannot be combined with it (give features= to pick keys)"
        )
    assert _raises(SchemaError, FeatureSet.from_pandas, df, label="F", targets="y", sort_by="x") == (
        "from_pandas without features= reads a frame from to_pandas as it is; "
        "targets, sort_by= cannot be combined with it (give features= to pick keys)"
    )


def test_frames_with_tensor_cells() -> None:
    v = np.arange(12.0).reshape(2, 2, 3)
    fs = FeatureSet.from_dict({"v": v, "w": np.arange(4.0).reshape(2, 2)}, features=["v", "w"], label="T")
    df = fs.to_pandas()
    assert [c.shape for c in df["features.v.raw"]] == [(2, 3), (2, 3)]
    assert np.array_equal(np.stack(df["features.v.raw"].to_numpy()), v)
    assert [c.tolist() for c in df["features.w.raw"]] == [[0.0, 1.0], [2.0, 3.0]]
    back = FeatureSet.from_pandas(df, label="T")
    assert back == fs and back.key_shape("features", "v") == (2, 3)
    assert (
        back.table.schema.field("features.v.raw").metadata == fs.table.schema.field("features.v.raw").metadata
    )
    empty = fs.view().take([]).to_featureset()
    edf = table_to_pandas(empty.table, [])
    assert len(edf) == 0 and list(edf.columns) == ["features.v.raw", "features.w.raw", "sample_uuids"]


def test_is_mml_frame() -> None:
    assert is_mml_frame(pd.DataFrame({"features.x.raw": [1.0], "sample_uuids": ["u"]}))
    assert is_mml_frame(pd.DataFrame({"sample_uuids": ["u"]}))
    assert not is_mml_frame(pd.DataFrame({"features.x.raw": [1.0]}))
    assert not is_mml_frame(pd.DataFrame({"features.x.raw": [1.0], "x": [2.0], "sample_uuids": ["u"]}))
    assert not is_mml_frame(pd.DataFrame({"x": [2.0], "features.x.raw": [1.0], "sample_uuids": ["u"]}))


def test_mml_frame_uuids_and_messages() -> None:
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    raw = b"\x00" * 15 + b"\x01"
    df = pd.DataFrame({"features.x.raw": [1.0, 2.0], "sample_uuids": [str(u), raw]})
    table = table_from_mml_frame(df)
    assert table.column("sample_uuids").to_pylist() == [u.bytes, raw]
    assert table.schema.field("sample_uuids").type == pa.binary(16)
    assert table.column_names == ["features.x.raw", "sample_uuids"]
    assert table.schema.field("features.x.raw").metadata is None
    short = pd.DataFrame({"features.x.raw": [1.0, 2.0], "sample_uuids": [str(u), b"abc"]})
    assert _raises(DataError, table_from_mml_frame, short) == (
        "column 'sample_uuids' row 1 holds b'abc', not a UUID; a frame from "
        "FeatureSet.to_pandas holds canonical UUID strings there"
    )
    bad = pd.DataFrame({"features.x.raw": [1.0], "sample_uuids": ["nope"]})
    assert _raises(DataError, table_from_mml_frame, bad) == (
        "column 'sample_uuids' row 0 holds 'nope', not a UUID; a frame from "
        "FeatureSet.to_pandas holds canonical UUID strings there"
    )
    cols = {f"c{i}": [1.0] for i in range(7)}
    assert _raises(SchemaError, table_from_mml_frame, pd.DataFrame(cols)) == (
        "features= is required unless the DataFrame came from FeatureSet.to_pandas (every column "
        "named 'domain.key.rep', plus 'sample_uuids'); got columns ['c0', 'c1', 'c2', 'c3', 'c4'] "
        "and no 'sample_uuids' column"
    )
    assert _raises(
        SchemaError, table_from_mml_frame, pd.DataFrame({"x": [1.0], "sample_uuids": [str(u)]})
    ) == (
        "features= is required unless the DataFrame came from FeatureSet.to_pandas (every column "
        "named 'domain.key.rep', plus 'sample_uuids'); got columns ['x']"
    )


# -- splits ----------------------------------------------------------------------------------


def test_freeze_splits_values_and_messages() -> None:
    out = freeze_splits({"a": [2, 0], "b": np.array([1], dtype=np.uint8), "c": []})
    assert list(out) == ["a", "b", "c"]
    for arr in out.values():
        assert arr.dtype == np.int64 and not arr.flags.writeable
    assert out["a"].tolist() == [2, 0] and out["b"].tolist() == [1] and out["c"].tolist() == []
    assert dict(freeze_splits(None)) == {}
    assert _raises(SplitError, freeze_splits, {"s": [0.5]}) == (
        "split 's' must hold integer row indices, got dtype float64"
    )
    assert _raises(SplitError, freeze_splits, {"t": np.array([True])}) == (
        "split 't' must hold integer row indices, got dtype bool"
    )
    own = np.array([1, 2], dtype=np.int64)
    frozen = freeze_splits({"x": own})["x"]
    own[0] = 9
    assert frozen.tolist() == [1, 2]


def test_report_overlap_rules() -> None:
    existing = {"train": np.arange(4), "train/fold_0": np.array([0, 1]), "val": np.array([7, 8, 9])}
    report_overlap("fs", "train", np.arange(4), existing, "error")  # replaces itself
    report_overlap("fs", "train/fold_1", np.array([2, 3]), existing, "error")  # a part of train
    report_overlap("fs", "train/fold_0/x", np.array([0]), {"train/fold_0": np.array([0])}, "error")
    report_overlap("fs", "test", np.array([], dtype=np.int64), existing, "error")
    report_overlap("fs", "test", np.array([1, 8]), existing, "allow")
    assert _raises(SplitError, report_overlap, "fs", "test", np.array([9, 1, 3, 8]), existing, "error") == (
        "with_split('test') on FeatureSet 'fs': the new split shares rows with 'train' (2 rows, e.g. row 1), "
        "'train/fold_0' (1 rows, e.g. row 1), 'val' (2 rows, e.g. row 8); pass rows disjoint from the other "
        "splits, or with_split(..., overlap='allow') if the overlap is intended"
    )
    assert _raises(
        SplitError, report_overlap, "fs", "trainx", np.array([0]), {"train": np.arange(2)}, "error"
    ) == (
        "with_split('trainx') on FeatureSet 'fs': the new split shares rows with 'train' (1 rows, e.g. row 0); "
        "pass rows disjoint from the other splits, or with_split(..., overlap='allow') if the overlap is intended"
    )
    assert _raises(SplitError, report_overlap, "fs", "a", np.array([0]), {"a/b": np.arange(2)}, "x") == (
        "overlap= is one of 'warn', 'error', 'allow', got 'x'"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report_overlap("fs", "test", np.array([5]), {"val": np.array([5])}, "warn")
    assert [type(w.message).__name__ for w in caught] == ["OverlappingSplitsWarning"]
    assert str(caught[0].message).startswith(
        "with_split('test') on FeatureSet 'fs': the new split shares rows"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report_overlap("fs", "test", np.array([6]), {"val": np.array([5])}, "warn")


def test_from_parquet_and_from_pandas_pass_every_domain_on(tmp_path: Path) -> None:
    p = tmp_path / "p.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0], "y": [3.0, 4.0], "t": ["a", "b"]}), p)
    fs = FeatureSet.from_parquet(p, features="x", targets="y", tags="t")
    assert (fs.keys("features"), fs.keys("targets"), fs.keys("tags")) == (("x",), ("y",), ("t",))
    assert fs.to_numpy("targets").ravel().tolist() == [3.0, 4.0]
    df = pd.DataFrame({"x": [1.0], "y": [2.0]})
    for domain in ("features", "targets", "tags"):
        kw = {"features": "x", domain: 3}
        assert _raises(SchemaError, FeatureSet.from_pandas, df, label="a", **kw) == (
            f"{domain}= takes a key name or a list of key names, got 3"
        )


def test_sort_by_is_stable_on_many_ties() -> None:
    t = np.arange(300) % 3
    df = pd.DataFrame({"t": t, "x": np.arange(300.0)})
    fs = FeatureSet.from_pandas(df, features="x", label="s", sort_by="t")
    expected = np.concatenate([np.arange(300.0)[t == k] for k in range(3)])  # ties keep row order
    assert fs.to_numpy("features").ravel().tolist() == expected.tolist()
