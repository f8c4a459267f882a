"""to_pandas -> from_pandas gives the same table back (law), including tensor keys and scaled columns.

Regression: ``to_pandas`` wrote ``domain.key.rep`` names that ``from_pandas`` refused, and tensor
cells came out flattened (their per-sample shape lost).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

import mml
import mml.testing as mt
from mml.errors import DataError, SchemaError

pd = pytest.importorskip("pandas")


@given(mt.featuresets())
def test_to_pandas_from_pandas_round_trips_the_table(fs: mml.FeatureSet) -> None:
    back = mml.FeatureSet.from_pandas(fs.to_pandas(), label=fs.label)
    assert back.table.equals(fs.table, check_metadata=True)
    assert back == mml.FeatureSet(label=fs.label, table=fs.table)  # splits and records are not in a frame
    assert back.sample_uuids.tolist() == fs.sample_uuids.tolist()


def test_scaled_columns_and_tensor_cells_keep_their_shape() -> None:
    fs = mml.scalers.fit_transform(
        mml.FeatureSet.from_dict(
            {
                "img": np.arange(24, dtype=np.float32).reshape(3, 2, 4),
                "y": [1.0, 2.0, 3.0],
                "cell": ["a", "b", "a"],
            },
            features="img",
            targets="y",
            tags="cell",
            label="img",
        ),
        "minmax",
        fit_on=None,
    )
    df = fs.to_pandas()
    assert df["features.img.raw"].iloc[1].shape == (2, 4)
    assert list(df.columns) == [
        "features.img.raw",
        "features.img.transformed",
        "targets.y.raw",
        "tags.cell.raw",
        "sample_uuids",
    ]
    back = mml.FeatureSet.from_pandas(df, label="img")
    assert back.table.equals(fs.table, check_metadata=True)
    assert back.key_shape("features", "img") == (2, 4)


def test_plain_frames_still_need_features_and_mixing_is_refused() -> None:
    with pytest.raises(
        SchemaError, match=r"features= is required unless the DataFrame came from FeatureSet\.to_pandas"
    ):
        mml.FeatureSet.from_pandas(pd.DataFrame({"x": [1.0]}), label="plain")
    fs = mml.FeatureSet.from_dict({"x": [1.0, 2.0]}, features="x", label="m")
    with pytest.raises(SchemaError, match=r"targets= cannot be combined"):
        mml.FeatureSet.from_pandas(fs.to_pandas(), targets="y", label="m")
    df = fs.to_pandas()
    df.loc[1, "sample_uuids"] = "not-a-uuid"
    with pytest.raises(DataError, match=r"'sample_uuids' row 1 holds 'not-a-uuid', not a UUID"):
        mml.FeatureSet.from_pandas(df, label="m")
