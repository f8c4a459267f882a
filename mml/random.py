"""Explicit, splittable random keys.

mml never touches a global random number generator. Every stochastic function takes a
:class:`Key`, and derives sub-keys from it by name, epoch and step with :func:`fold_in`.
Same key, same result — on any run, on any machine.

>>> import mml
>>> k = mml.random.key(0)
>>> mml.random.fold_in(k, "split") == mml.random.fold_in(k, "split")
True
>>> mml.random.fold_in(k, "split") == mml.random.fold_in(k, "shuffle")
False
>>> rng = mml.random.numpy_rng(k)
>>> int(rng.integers(0, 10**6)) == int(mml.random.numpy_rng(k).integers(0, 10**6))
True
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mml.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Key", "key", "fold_in", "split", "numpy_rng", "torch_generator", "seed_int", "as_key"]

_MASK32 = 0xFFFFFFFF


def _check_words(instance: Any, attribute: Any, value: tuple[int, ...]) -> None:
    if len(value) != 4 or not all(isinstance(w, int) and 0 <= w <= _MASK32 for w in value):
        raise ConfigError(
            f"a Key holds exactly four unsigned 32-bit words, got {value!r}; "
            "make keys with mml.random.key(seed)"
        )


@attrs.frozen
class Key:
    """A random key: four 32-bit words. Make one with :func:`key`, derive with :func:`fold_in`.

    >>> key(42)
    Key(seed=42, words=...)
    """

    words: tuple[int, ...] = attrs.field(converter=tuple, validator=_check_words)

    def __repr__(self) -> str:
        return f"Key(words={self.words})" if not _is_root(self) else f"Key(seed={self.words[3]}, words=...)"


def _is_root(k: Key) -> bool:
    return k.words[:3] == (0x6D6D6C00, 0, 0)


def key(seed: int) -> Key:
    """The root key for an integer seed (any non-negative int below 2**32).

    >>> key(0) == key(0)
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= _MASK32:
        raise ConfigError(f"a seed is an int in [0, 2**32), got {seed!r}")
    return Key((0x6D6D6C00, 0, 0, int(seed)))


def as_key(seed_or_key: Key | int) -> Key:
    """Accept either a :class:`Key` or an int seed (for convenience at API edges).

    >>> as_key(3) == key(3)
    True
    """
    if isinstance(seed_or_key, Key):
        return seed_or_key
    return key(seed_or_key)  # type: ignore[arg-type]


def _data_words(data: int | str) -> tuple[int, ...]:
    if isinstance(data, str):
        digest = hashlib.blake2b(data.encode("utf-8"), digest_size=16).digest()
        return (1, *tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)))
    if isinstance(data, (int, np.integer)) and not isinstance(data, bool):
        v = int(data)
        if v < 0:
            raise ConfigError(f"fold_in takes a non-negative int or a str, got {data!r}")
        return (2, *tuple(v >> 32 * i & _MASK32 for i in range(4)))
    raise ConfigError(f"fold_in takes a non-negative int or a str, got {type(data).__name__} {data!r}")


def fold_in(k: Key, data: int | str) -> Key:
    """A new key derived from ``k`` and a name or a number (epoch, step, node label).

    >>> fold_in(key(0), 1) != fold_in(key(0), 2)
    True
    """
    ss = np.random.SeedSequence(entropy=list(k.words) + list(_data_words(data)))
    return Key(tuple(int(w) for w in ss.generate_state(4, dtype=np.uint32)))


def split(k: Key, n: int = 2) -> tuple[Key, ...]:
    """``n`` independent keys derived from ``k``.

    >>> a, b = split(key(0))
    >>> a != b
    True
    """
    return tuple(fold_in(k, i) for i in range(n))


def numpy_rng(k: Key) -> np.random.Generator:
    """A fresh numpy ``Generator`` seeded from the key (a new one each call).

    >>> numpy_rng(key(1)).random() == numpy_rng(key(1)).random()
    True
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(k.words))))


def seed_int(k: Key) -> int:
    """A 31-bit integer seed derived from the key, for APIs that take ``random_state=int``.

    >>> 0 <= seed_int(key(5)) < 2**31
    True
    """
    ss = np.random.SeedSequence(list(k.words))
    return int(ss.generate_state(1, dtype=np.uint32)[0]) & 0x7FFFFFFF


def torch_generator(k: Key, device: Any = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded from the key (torch imported lazily)."""
    import torch

    ss = np.random.SeedSequence(list(k.words))
    seed = int(ss.generate_state(2, dtype=np.uint64)[0]) & 0x7FFFFFFFFFFFFFFF
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen
