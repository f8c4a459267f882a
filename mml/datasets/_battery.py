"""Synthetic battery pulse-test data from an equivalent-circuit model.

Each sample is one current pulse applied to a lithium-ion cell at some state of charge, and the
terminal voltage recorded on a fixed time grid. The cell is a second-order Thevenin
equivalent circuit:

.. code-block:: text

    V(t) = OCV(soc(t)) - I(t) * R0 - V1(t) - V2(t)
    dVk/dt = -Vk / tau_k + I(t) / Ck          (tau_k = Rk * Ck, k = 1, 2)
    dsoc/dt = -I(t) / (3600 * Q)

with the current ``I`` positive for a discharge. The pulse is a step of amplitude ``I`` between
``t_on`` and ``t_off``; the RC branches rise as ``I Rk (1 - exp(-(t - t_on) / tau_k))`` during the
pulse and relax as ``exp(-(t - t_off) / tau_k)`` after it, so the curve has an instantaneous
ohmic step, a slow polarisation and a relaxation tail -- all closed form, so whole batches are
computed at once with numpy broadcasting.

Ageing is driven by the state of health ``soh`` (the target, in ``[0.7, 1.0]``):

* capacity fade: ``Q = Q_nom * soh`` (a faded cell's SOC moves faster under the same current);
* resistance growth: ``R0, R1, R2`` grow by ``1 + 3 (1 - soh)`` (up to 1.9 x at end of life) and
  the slow time constant grows with them.

Cell-to-cell manufacturing spread (a few percent on ``R0`` and ``Q_nom``), a small temperature
effect on resistance (tag ``temperature``, 20-30 degC) and 1 mV Gaussian measurement noise keep
the problem from being trivial, but SOH stays clearly learnable from the curve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import mml.random
from mml.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from mml.data import FeatureSet

__all__ = ["battery_pulses", "load_battery", "BATTERY_DURATION_S", "BATTERY_PULSE_S"]

#: Length of the recorded window in seconds (rest, pulse, relaxation).
BATTERY_DURATION_S: float = 30.0
#: (start, end) of the current pulse in seconds.
BATTERY_PULSE_S: tuple[float, float] = (2.0, 12.0)

_CELLS_PER_GROUP = 4
_SAMPLES_PER_CELL = 10
_Q_NOM_AH = 2.5
_R0_OHM = 0.020
_R1_OHM = 0.012
_R2_OHM = 0.018
_TAU1_S = 1.5
_TAU2_S = 12.0
_NOISE_V = 0.001
_C_RATE = {"discharge": 1.0, "charge": -0.5}


def _ocv(soc: np.ndarray) -> np.ndarray:
    """A smooth NMC-like open-circuit voltage curve (3.0 V empty, 4.2 V full)."""
    return 3.3 + 0.75 * soc + 0.15 * soc**3 - 0.3 * np.exp(-20.0 * soc)


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def battery_pulses(n_samples: int = 1000, *, n_points: int = 101, seed: int = 0) -> dict[str, np.ndarray]:
    """Raw columns of ``n_samples`` simulated pulse tests (deterministic in ``seed``).

    Returns a dict of numpy arrays, one row per sample:

    * ``voltage``: ``(n, n_points)`` float32 terminal voltage in volts on the grid
      ``np.linspace(0, BATTERY_DURATION_S, n_points)``;
    * ``soh``: ``(n,)`` float32 state of health in ``[0.7, 1.0]`` (the target);
    * ``cell_id``: ``(n,)`` int64, about ten samples per cell (measurements through its life);
    * ``group_id``: ``(n,)`` int64, cells grouped four to a module/batch;
    * ``pulse_type``: ``(n,)`` str, ``"charge"`` (-0.5 C) or ``"discharge"`` (1 C);
    * ``soc``: ``(n,)`` float64 state of charge at the start of the pulse, in ``[0.1, 0.9]``;
    * ``temperature``: ``(n,)`` float64 cell temperature in degC, in ``[20, 30]``.

    See the module docstring (and ``docs/datasets.md``) for the circuit model.

    >>> d = battery_pulses(8, n_points=11, seed=1)
    >>> d["voltage"].shape, d["voltage"].dtype, d["soh"].dtype
    ((8, 11), dtype('float32'), dtype('float32'))
    >>> bool(np.array_equal(d["voltage"], battery_pulses(8, n_points=11, seed=1)["voltage"]))
    True
    >>> sorted(set(d["pulse_type"].tolist())) <= ["charge", "discharge"]
    True
    """
    n = _check_int("n_samples", n_samples, 1)
    n_points = _check_int("n_points", n_points, 2)
    root = mml.random.key(seed)

    # Cells: a life segment [soh_start, soh_end] and manufacturing spread.
    n_cells = max(1, -(-n // _SAMPLES_PER_CELL))
    cell_rng = mml.random.numpy_rng(mml.random.fold_in(root, "cells"))
    soh_start = cell_rng.uniform(0.92, 1.0, n_cells)
    soh_end = cell_rng.uniform(0.7, soh_start)
    r_spread = cell_rng.normal(1.0, 0.02, n_cells)
    q_spread = cell_rng.normal(1.0, 0.02, n_cells)

    # Samples: which cell, where in its life, operating point.
    rng = mml.random.numpy_rng(mml.random.fold_in(root, "samples"))
    cell_id = rng.integers(0, n_cells, n)
    life = rng.uniform(0.0, 1.0, n)
    soh = soh_start[cell_id] + life * (soh_end[cell_id] - soh_start[cell_id])
    soc0 = rng.uniform(0.1, 0.9, n)
    temperature = rng.uniform(20.0, 30.0, n)
    is_discharge = rng.random(n) < 0.5

    ageing = 1.0 + 3.0 * (1.0 - soh)
    thermal = np.exp(0.01 * (25.0 - temperature))
    r_scale = (ageing * thermal * r_spread[cell_id])[:, None]
    capacity_ah = (_Q_NOM_AH * q_spread[cell_id] * soh)[:, None]
    current = np.where(is_discharge, _C_RATE["discharge"], _C_RATE["charge"]) * _Q_NOM_AH
    current = current[:, None]

    t = np.linspace(0.0, BATTERY_DURATION_S, n_points)[None, :]
    t_on, t_off = BATTERY_PULSE_S
    on = (t >= t_on) & (t < t_off)
    # Time spent under current so far, and time since the pulse ended.
    t_in = np.clip(t - t_on, 0.0, t_off - t_on)
    t_after = np.clip(t - t_off, 0.0, None)

    soc = soc0[:, None] - current * t_in / (3600.0 * capacity_ah)
    v = _ocv(soc) - current * _R0_OHM * r_scale * on
    taus = (np.full((n, 1), _TAU1_S), _TAU2_S * ageing[:, None])
    for r_k, tau in zip((_R1_OHM, _R2_OHM), taus):
        peak = current * r_k * r_scale * (1.0 - np.exp(-t_in / tau))
        v = v - peak * np.exp(-t_after / tau)

    noise = mml.random.numpy_rng(mml.random.fold_in(root, "noise")).normal(0.0, _NOISE_V, v.shape)
    voltage = (v + noise).astype(np.float32)

    return {
        "voltage": voltage,
        "soh": soh.astype(np.float32),
        "cell_id": cell_id.astype(np.int64),
        "group_id": (cell_id // _CELLS_PER_GROUP).astype(np.int64),
        "pulse_type": np.where(is_discharge, "discharge", "charge"),
        "soc": soc0,
        "temperature": temperature,
    }


def load_battery(n_samples: int = 1000, *, seed: int = 0, label: str = "battery") -> FeatureSet:
    """The battery pulse data as a :class:`mml.data.FeatureSet`.

    Feature ``voltage`` (a 101-point curve per sample), target ``soh``, tags ``cell_id``,
    ``group_id``, ``pulse_type``, ``soc`` and ``temperature``. Sample UUIDs are derived from
    ``seed`` too, so the same call gives an equal FeatureSet.

    >>> fs = load_battery(50, seed=0)
    >>> len(fs), fs.keys("features"), fs.keys("targets")
    (50, ('voltage',), ('soh',))
    >>> fs.key_shape("features", "voltage")
    (101,)
    """
    from mml.data import FeatureSet

    data = battery_pulses(n_samples, seed=seed)
    return FeatureSet.from_dict(
        data,
        features=["voltage"],
        targets=["soh"],
        tags=["cell_id", "group_id", "pulse_type", "soc", "temperature"],
        label=label,
        key=mml.random.fold_in(mml.random.key(seed), "uuids"),
    )
