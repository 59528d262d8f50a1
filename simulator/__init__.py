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

from simulator.controllers import CONTROLLERS, make_controller
from simulator.processes import NoiseParameters
from simulator.results import RunResult
from simulator.run import simulate

__all__ = ["CONTROLLERS", "NoiseParameters", "RunResult", "make_controller", "simulate"]
