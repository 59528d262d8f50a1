"""The exogenous signals of a scenario: the one table of their names, units and ranges.

Every signal is a time series per site, except ``demand`` (per inference class). The scenario
arrays (:mod:`scenarios.arrays`), the realised processes of the simulator and the forecasters
(:mod:`forecasts`) all take the names and ranges from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Signal:
    """One exogenous signal: name, unit, the range its values (and forecasts) keep, and what a column is."""

    name: str
    unit: str
    low: float
    high: float
    per: str  # "site" or "class"
    meaning: str


SIGNAL_TABLE: tuple[Signal, ...] = (
    Signal("demand", "req/s", 0.0, math.inf, "class", "inference requests of each class"),
    Signal("pv", "per-unit", 0.0, 1.0, "site", "PV availability (x the site's PV capacity)"),
    Signal("wind", "per-unit", 0.0, 1.0, "site", "wind availability (x the site's wind capacity)"),
    Signal("import_price", "USD/MWh", -math.inf, math.inf, "site", "grid import price"),
    Signal("export_price", "USD/MWh", -math.inf, math.inf, "site", "grid export price"),
    Signal("carbon", "tCO2/MWh", 0.0, math.inf, "site", "carbon intensity of grid imports"),
    Signal("temperature", "degC", -math.inf, math.inf, "site", "ambient temperature (sets the PUE)"),
)
#: signal names in the order every table and loop uses
SIGNALS: tuple[str, ...] = tuple(signal.name for signal in SIGNAL_TABLE)
#: signals whose values and forecasts are clipped at 0 (prices and temperature may be negative)
NONNEGATIVE_SIGNALS: frozenset[str] = frozenset(signal.name for signal in SIGNAL_TABLE if signal.low >= 0.0)
#: per-unit availabilities, clipped at 1 as well
UNIT_INTERVAL_SIGNALS: frozenset[str] = frozenset(
    signal.name for signal in SIGNAL_TABLE if signal.low == 0.0 and signal.high == 1.0
)
