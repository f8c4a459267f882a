"""Bundled, deterministic demo data (generated, never downloaded).

>>> import mml
>>> d = mml.datasets.battery_pulses(4, seed=0)
>>> d["voltage"].shape
(4, 101)
"""

from mml.datasets._battery import (
    BATTERY_DURATION_S as BATTERY_DURATION_S,
    BATTERY_PULSE_S as BATTERY_PULSE_S,
    battery_pulses as battery_pulses,
    load_battery as load_battery,
)

__all__ = ["BATTERY_DURATION_S", "BATTERY_PULSE_S", "battery_pulses", "load_battery"]
