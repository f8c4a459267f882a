"""Field helpers for your own frozen components: arrays that are read-only, owned and compared
by value; mappings that are immutable.

Use them in a custom scaler's params (or any attrs class you hand to mml) so the value keeps
its promise of immutability: ``frozen=True`` alone does not stop ``obj.arr[0] = 5``.

>>> import attrs, numpy as np
>>> from mml.fields import array_field
>>> @attrs.frozen
... class ShiftParams:
...     shift_: np.ndarray = array_field()
>>> caller = np.array([1.0, 2.0])
>>> p = ShiftParams(caller)
>>> caller[0] = 99.0                      # the value owns a copy
>>> p.shift_.tolist(), p.shift_.flags.writeable, p == ShiftParams([1.0, 2.0])
([1.0, 2.0], False, True)
"""

from __future__ import annotations

from mml._fields import (
    FrozenDict as FrozenDict,
    array_field as array_field,
    arrays_equal as arrays_equal,
    frozen_dict as frozen_dict,
    frozen_tuple as frozen_tuple,
    optional_array_field as optional_array_field,
    readonly_array as readonly_array,
)

__all__ = [
    "FrozenDict",
    "array_field",
    "arrays_equal",
    "frozen_dict",
    "optional_array_field",
    "readonly_array",
]
