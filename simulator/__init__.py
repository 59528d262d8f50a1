"""aidc simulator: the SimPy closed loop of a geo-distributed AI data-center fleet.

    from scenarios import load_scenario
    from simulator import make_controller, simulate

    scenario = load_scenario("us-3site")
    result = simulate(scenario, make_controller("mpc", scenario, forecast="perfect", seed=1), days=2, seed=1,
                      bound=True)
    result.kpis["benefit_usd"], result.kpis["regret_usd"]
    result.ticks          # one row per (tick, site)
    result.save("runs/mpc-seed1")

SimPy stays inside this package (``simulator._engine``); controllers, forecasters and the plant's
components (:mod:`simulator.plant`) are plain classes.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the types of the lazily imported names, for type checkers
    from simulator.controllers import CONTROLLERS as CONTROLLERS
    from simulator.controllers import make_controller as make_controller
    from simulator.processes import NoiseParameters as NoiseParameters
    from simulator.results import RunResult as RunResult
    from simulator.run import simulate as simulate

# Imported on first use (PEP 562), so that ``import simulator.cli`` -- every ``aidc`` command --
# does not pay for pandas, simpy and the solver.
_EXPORTS = {
    "CONTROLLERS": "simulator.controllers",
    "make_controller": "simulator.controllers",
    "NoiseParameters": "simulator.processes",
    "RunResult": "simulator.results",
    "simulate": "simulator.run",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'simulator' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
