"""FeatureSet.from_arrow on ordinary Arrow list columns, and type checks of mml-named tables.

Regression: ``from_arrow`` let a raw ``ArrowInvalid: ... zero_copy_only was True`` escape for
``pa.table({"v": [[1.0, 2.0], ...]})`` (and for what ``pa.Table.from_pandas`` makes from array
cells); a table already using mml's names was not type-checked, so a list-valued ``voltage``
became shape ``()`` and failed later in ``to_numpy``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import mml
from mml.errors import DataError, SchemaError

pd = pytest.importorskip("pandas")


def test_ordinary_list_column_becomes_a_tensor_key() -> None:
    t = pa.table({"v": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], "y": [0.1, 0.2, 0.3]})
    fs = mml.FeatureSet.from_arrow(t, features="v", targets="y", label="lists")
    assert fs.key_shape("features", "v") == (2,)
    assert fs.to_numpy("features").tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]


def test_nested_lists_and_chunked_and_sliced_columns() -> None:
    cells = [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [[7.0, 8.0, 9.0], [0.0, 1.0, 2.0]], [[3.0] * 3, [4.0] * 3]]
    t = pa.concat_tables([pa.table({"img": cells[:2]}), pa.table({"img": cells[2:]})])
    assert t.column("img").num_chunks == 2
    fs = mml.FeatureSet.from_arrow(t.slice(1), features="img", label="nested")
    assert fs.key_shape("features", "img") == (2, 3)
    assert fs.column_array("features", "img").tolist() == cells[1:]


def test_from_pandas_table_of_array_cells() -> None:
    df = pd.DataFrame({"v": [np.array([1.0, 2.0]), np.array([3.0, 4.0])], "y": [1.0, 2.0]})
    fs = mml.FeatureSet.from_arrow(pa.Table.from_pandas(df), features="v", targets="y", label="pd")
    assert fs.to_numpy("features").tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_ragged_lists_name_the_key_and_lengths() -> None:
    t = pa.table({"v": [[1.0, 2.0], [3.0, 4.0], [5.0]]})
    with pytest.raises(
        DataError, match=r"key 'v' has ragged list data: per-sample lengths \[1, 2\] \(row 2 has 1\)"
    ):
        mml.FeatureSet.from_arrow(t, features="v", label="ragged")


def test_missing_list_cells_and_missing_items_are_refused() -> None:
    with pytest.raises(DataError, match=r"key 'v' has 1 missing list cell"):
        mml.FeatureSet.from_arrow(pa.table({"v": [[1.0], None]}), features="v", label="m")
    with pytest.raises(DataError, match=r"key 'v' has 1 missing value\(s\) inside its lists"):
        mml.FeatureSet.from_arrow(pa.table({"v": [[1.0], [None]]}), features="v", label="m")


def _mml_table(voltage: pa.Array) -> pa.Table:
    fs = mml.FeatureSet.from_dict({"x": [1.0, 2.0]}, features="x", label="base")
    return fs.table.append_column("features.voltage.raw", voltage)


def test_mml_named_table_with_a_list_column_gets_its_shape() -> None:
    fs = mml.FeatureSet.from_arrow(_mml_table(pa.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])), label="named")
    assert fs.key_shape("features", "voltage") == (3,)  # was () before
    assert fs.to_numpy("features", "voltage").tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]


def test_mml_named_table_types_are_checked() -> None:
    with pytest.raises(SchemaError, match=r"column 'features.voltage.raw' is a variable-length list"):
        mml.FeatureSet(label="raw", table=_mml_table(pa.array([[1.0], [2.0]])))
    with pytest.raises(
        SchemaError, match=r"column 'features.voltage.raw' holds string; features hold numbers"
    ):
        mml.FeatureSet.from_arrow(_mml_table(pa.array(["a", "b"])), label="s")
    with pytest.raises(DataError, match=r"key 'features.voltage.raw' has ragged list data"):
        mml.FeatureSet.from_arrow(_mml_table(pa.array([[1.0], [2.0, 3.0]])), label="r")
    bad_uuids = _mml_table(pa.array([1.0, 2.0])).set_column(1, "sample_uuids", pa.array([1, 2]))
    with pytest.raises(SchemaError, match=r"'sample_uuids' must hold 16-byte UUIDs"):
        mml.FeatureSet.from_arrow(bad_uuids, label="u")


def test_parquet_round_trip_of_a_tensor_key_is_unchanged(tmp_path) -> None:
    fs = mml.FeatureSet.from_dict({"v": np.arange(12.0).reshape(3, 2, 2)}, features="v", label="pq")
    fs.to_parquet(tmp_path / "pq.parquet")
    assert mml.FeatureSet.from_parquet(tmp_path / "pq.parquet") == fs
