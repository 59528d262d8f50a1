"""Controllers by name: ``make_controller("mpc", scenario, forecast="noisy:sigma_24h=0.2", seed=3)``."""

from __future__ import annotations

from forecasts import make_forecaster
from optimizer.control import Controller, GreedyController, LocalController
from optimizer.defaults import MPC_DEFAULTS
from optimizer.mpc import MPCController
from optimizer.solvers import SolveOptions
from scenarios.schema import Scenario

#: controller name -> what it does
CONTROLLERS: dict[str, str] = {
    "mpc": "rolling-horizon joint MILP (compute and energy together)",
    "mpc-compute-only": "rolling-horizon MILP of the workload at grid prices; passive energy side",
    "mpc-energy-only": "naive workload; rolling-horizon MILP of the energy dispatch",
    "greedy": "jobs at the cheapest site now, inference cheapest first, battery on price quantiles",
    "local": "jobs at release at the first eligible site, inference at the nearest site, grid only",
}
MPC_VARIANTS = {"mpc": "joint", "mpc-compute-only": "compute-only", "mpc-energy-only": "energy-only"}


def horizon_problem(scenario: Scenario, horizon_hours: float) -> str | None:
    """Why ``horizon_hours`` cannot be the MPC's horizon on ``scenario`` (not a positive whole
    number of control intervals), or None."""
    steps = horizon_hours * 60.0 / scenario.run.control_interval_minutes
    if steps < 1 or abs(steps - round(steps)) > 1e-9:
        return (f"horizon_hours ({horizon_hours:g}) must be a positive multiple of the control interval "
                f"({scenario.run.control_interval_minutes:g} min)")
    return None


def make_controller(
    name: str,
    scenario: Scenario | None = None,
    forecast: str = "perfect",
    solver: str = "highs",
    time_limit_s: float = MPC_DEFAULTS.time_limit_s,
    seed: int = 0,
    mip_gap: float = MPC_DEFAULTS.mip_gap,
    horizon_hours: float | None = None,
    shrink_at_run_end: bool = True,
    fine_hours: float | None = MPC_DEFAULTS.fine_hours,
    coarse_factor: int | None = None,
) -> Controller:
    """A controller by name (see :data:`CONTROLLERS`).

    MPC controllers forecast with ``make_forecaster(forecast, seed)`` (pass the run's seed so
    forecast errors are common random numbers across controllers) and solve with ``solver``
    within ``time_limit_s`` (a hard deadline of 1.5 x that interrupts HiGHS). ``horizon_hours``
    defaults to the scenario's; with ``shrink_at_run_end`` it stops at the run's end;
    ``fine_hours``/``coarse_factor`` give a variable-resolution horizon (see
    :class:`optimizer.mpc.MPCController`). ``scenario`` is only checked for consistency of the horizon.
    Heuristics ignore the forecast and solver arguments.
    """
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; valid names: {', '.join(CONTROLLERS)}")
    if name == "greedy":
        return GreedyController()
    if name == "local":
        return LocalController()
    if solver not in ("highs", "gurobi", "auto"):
        raise ValueError(f"unknown solver {solver!r}; valid solvers: highs, gurobi, auto")
    if time_limit_s <= 0:
        raise ValueError(f"time_limit_s must be positive, got {time_limit_s:g}")
    if scenario is not None and horizon_hours is not None:
        problem = horizon_problem(scenario, horizon_hours)
        if problem:
            raise ValueError(problem)
    options = SolveOptions(solver=solver, time_limit_s=time_limit_s, mip_gap=mip_gap,  # type: ignore[arg-type]  # solver checked above
                           deadline_s=1.5 * time_limit_s)
    return MPCController(make_forecaster(forecast, seed), variant=MPC_VARIANTS[name], horizon_hours=horizon_hours,
                         solve_options=options, shrink_at_run_end=shrink_at_run_end, fine_hours=fine_hours,
                         coarse_factor=coarse_factor)
