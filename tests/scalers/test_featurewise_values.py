"""Feature-wise scalers compute in the input's floating dtype: float32 data are shifted and scaled
with float32 statistics, bit for bit as numpy does it in float32 (issue 17: mutation testing of
``mml/scalers/_featurewise.py``)."""

from __future__ import annotations

import numpy as np

from mml.scalers import MaxAbs, MinMax, Robust, Standard
from mml.scalers._featurewise import MaxAbsParams, MinMaxParams, RobustParams, StandardParams

X32 = (np.random.default_rng(0).random((200, 2)) * 7).astype(np.float32)
SHIFT = np.array([0.1, -0.7])
SCALE = np.array([0.3, 1.1])
S32, M32 = SCALE.astype(np.float32), SHIFT.astype(np.float32)


def same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


def test_float32_in_float32_out_bit_for_bit() -> None:
    # float64 statistics would round differently in about half of these values
    assert (np.divide(X32, SCALE).astype(np.float32) != X32 / S32).any()
    same(Standard().apply(StandardParams(mean_=SHIFT, scale_=SCALE), X32), (X32 - M32) / S32)
    same(Standard().inverse(StandardParams(mean_=SHIFT, scale_=SCALE), X32), X32 * S32 + M32)
    same(MinMax().apply(MinMaxParams(min_=SHIFT, scale_=SCALE), X32), X32 * S32 + M32)
    same(MinMax().inverse(MinMaxParams(min_=SHIFT, scale_=SCALE), X32), (X32 - M32) / S32)
    same(MaxAbs().apply(MaxAbsParams(scale_=SCALE), X32), X32 / S32)
    same(MaxAbs().inverse(MaxAbsParams(scale_=SCALE), X32), X32 * S32)
    same(Robust().apply(RobustParams(center_=SHIFT, scale_=SCALE), X32), (X32 - M32) / S32)


def test_without_mean_or_std_the_dtype_is_kept() -> None:
    p = StandardParams(mean_=SHIFT, scale_=SCALE)
    same(Standard(with_std=False).inverse(p, X32), X32 + M32)
    same(Standard(with_std=False).apply(p, X32), X32 - M32)
    same(Standard(with_mean=False).apply(p, X32), X32 / S32)
    same(Standard(with_mean=False).inverse(p, X32), X32 * S32)
    both = Standard(with_mean=False, with_std=False)
    out = both.apply(p, X32)
    same(out, X32)
    assert not np.shares_memory(out, X32)
    back = both.inverse(p, X32)
    same(back, X32)
    assert not np.shares_memory(back, X32)


def test_integer_input_is_scaled_in_float64() -> None:
    xi = np.array([[1, 2], [3, 4]])
    out = MinMax().apply(MinMaxParams(min_=SHIFT, scale_=SCALE), xi)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, xi * SCALE + SHIFT)
    back = Standard(with_std=False).inverse(StandardParams(mean_=SHIFT, scale_=SCALE), xi)
    assert back.dtype == np.float64 and back.tolist() == (xi + SHIFT).tolist()
