"""mml.random pinned to its specification: BLAKE2b-derived keys, exact seeds, strict bounds.

Each expected value is recomputed here from the documented construction (``hashlib.blake2b``
over the key's four little-endian words and a tagged encoding of the data, person
``b"mml.random"``), so a change in the derivation, the encoding or a bound fails a test.
"""

import hashlib
import struct

import numpy as np
import pytest
from hypothesis import given, strategies as st

import mml
from mml.random import Key, as_key, fold_in, key, numpy_rng, seed_int, split, torch_generator


def _ref(k: Key, tag: bytes, size: int) -> bytes:
    return hashlib.blake2b(
        struct.pack("<4I", *k.words) + tag, digest_size=size, person=b"mml.random"
    ).digest()


def _ref_fold(k: Key, tag: bytes) -> tuple[int, ...]:
    return struct.unpack("<4I", _ref(k, tag, 16))


def test_root_key_words():
    assert key(0).words == (0x6D6D6C00, 0, 0, 0)
    assert key(7).words == (0x6D6D6C00, 0, 0, 7)
    assert key(np.int64(7)) == key(7)
    assert key(2**32 - 1).words[3] == 2**32 - 1  # the upper bound is inclusive


@pytest.mark.parametrize("bad", [-1, 2**32, True, 1.0, "1", None])
def test_bad_seeds_are_refused(bad):
    with pytest.raises(mml.ConfigError, match="seed"):
        key(bad)


@pytest.mark.parametrize(
    "words", [(1, 2, 3), (1, 2, 3, 4, 5), (1, 2, 3, 2**32), (1, 2, 3, -1), (1, 2, 3, 1.0)]
)
def test_bad_key_words_are_refused(words):
    with pytest.raises(
        mml.ConfigError, match=r"four unsigned 32-bit words.*; make keys with mml\.random\.key\(seed\)$"
    ):
        Key(words)


def test_key_words_bounds_inclusive():
    assert Key((0, 0, 0, 2**32 - 1)).words == (0, 0, 0, 2**32 - 1)


def test_fold_in_matches_the_specification():
    k = key(0)
    assert fold_in(k, 1).words == _ref_fold(k, b"i" + (1).to_bytes(8, "little"))
    assert fold_in(k, "split").words == _ref_fold(k, b"s" + b"split")
    assert fold_in(k, 1).words == (458567109, 1246374987, 3275223401, 689123882)
    big = 2**70
    assert fold_in(k, big).words == _ref_fold(k, b"i" + big.to_bytes(9, "little"))
    # ints of up to 64 bits are 8 bytes, whether Python or numpy ints
    for v in (0, 2**63 - 1, 2**63, 2**64 - 1):
        assert fold_in(k, v).words == _ref_fold(k, b"i" + v.to_bytes(8, "little")), v
    assert fold_in(k, np.uint64(2**63)).words == _ref_fold(k, b"i" + (2**63).to_bytes(8, "little"))
    assert fold_in(k, 2**64).words == _ref_fold(k, b"i" + (2**64).to_bytes(9, "little"))


def test_fold_in_distinguishes_kinds_of_data():
    k = key(3)
    # the same bytes as an int and as a str must not derive the same key
    assert fold_in(k, 49) != fold_in(k, "1")
    assert fold_in(k, 0) != fold_in(k, "\x00" * 8)
    assert fold_in(k, 1) != fold_in(k, "\x01" + "\x00" * 7)
    assert fold_in(k, np.int64(5)) == fold_in(k, 5)
    assert fold_in(k, np.int64(0)) == fold_in(k, 0)
    assert fold_in(k, 2**63) == fold_in(k, np.uint64(2**63))
    assert fold_in(k, 2**63 - 1) != fold_in(k, 2**63)


@pytest.mark.parametrize("bad", [-1, np.int64(-1), True, 1.5, None, b"x"])
def test_fold_in_refuses_other_data(bad):
    with pytest.raises(mml.ConfigError, match="fold_in takes a non-negative int or a str"):
        fold_in(key(0), bad)
    if isinstance(bad, float):
        with pytest.raises(mml.ConfigError, match=r"got float 1\.5"):
            fold_in(key(0), bad)


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**40), st.integers(0, 2**40))
def test_fold_in_is_deterministic_and_distinct(seed, a, b):
    k = key(seed)
    assert fold_in(k, a) == fold_in(key(seed), a)
    assert (fold_in(k, a) == fold_in(k, b)) == (a == b)
    assert fold_in(fold_in(k, a), b) != fold_in(k, a)


def test_split():
    k = key(1)
    assert split(k) == (fold_in(k, 0), fold_in(k, 1))
    three = split(k, 3)
    assert len(three) == 3 and three[2] == fold_in(k, 2) and len(set(three)) == 3


def test_numpy_rng_seeding():
    k = key(0)
    ref = np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(k.words))))
    assert numpy_rng(k).integers(0, 1000, 3).tolist() == ref.integers(0, 1000, 3).tolist() == [919, 416, 474]
    assert numpy_rng(fold_in(k, 1)).random() != numpy_rng(k).random()


def test_seed_int_matches_the_specification():
    for s in (0, 5, 2**32 - 1):
        k = key(s)
        assert seed_int(k) == int.from_bytes(_ref(k, b"seed31", 4), "little") & 0x7FFFFFFF
    assert seed_int(key(0)) == 82954780 and seed_int(key(5)) == 424579700
    assert all(0 <= seed_int(fold_in(key(0), i)) < 2**31 for i in range(200))


def test_torch_generator_seeding():
    torch = pytest.importorskip("torch")
    k = key(0)
    seed = int.from_bytes(_ref(k, b"torch", 8), "little") & 0x7FFFFFFFFFFFFFFF
    ref = torch.Generator().manual_seed(seed)
    got = torch_generator(k)
    assert torch.equal(
        torch.randint(0, 1000, (5,), generator=got), torch.randint(0, 1000, (5,), generator=ref)
    )
    assert got.initial_seed() == seed


def test_as_key_and_repr():
    assert as_key(3) == key(3) and as_key(fold_in(key(3), 1)) == fold_in(key(3), 1)
    assert repr(key(42)) == "Key(seed=42, words=...)"
    derived = fold_in(key(42), 1)
    assert repr(derived) == f"Key(words={derived.words})"
    assert mml.io.roundtrip(derived) == derived
