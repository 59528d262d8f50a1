"""Controllers by name: ``make_controller("mpc", scenario, forecast="noisy:sigma_24h=0.2", seed=3)``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from forecasts import make_forecaster
from optimizer.control import Controller, GreedyController, LocalController, Observation
from optimizer.mpc import MPCController
from optimizer.solvers import SolveOptions
from optimizer.window import JobBatch, WindowInputs, job_batch
from scenarios.arrays import Fleet
from scenarios.schema import Scenario, TrainingJob

#: controller name -> what it does
CONTROLLERS: dict[str, str] = {
    "mpc": "rolling-horizon joint MILP (compute and energy together)",
    "mpc-compute-only": "rolling-horizon MILP of the workload at grid prices; passive energy side",
    "mpc-energy-only": "naive workload; rolling-horizon MILP of the energy dispatch",
    "greedy": "jobs at the cheapest site now, inference cheapest first, battery on price quantiles",
    "local": "jobs at release at the first eligible site, inference at the nearest site, grid only",
}
MPC_VARIANTS = {"mpc": "joint", "mpc-compute-only": "compute-only", "mpc-energy-only": "energy-only"}


def exact_job_batch(jobs: Sequence[TrainingJob], fleet: Fleet, window_start_h: float, step_hours: float) -> JobBatch:
    """:func:`optimizer.window.job_batch` with the latest start computed from the real duration.

    ``job_batch`` rounds the deadline down and the duration up *separately*, so the latest start
    ``deadline_step - duration_steps`` can fall up to two steps before the true latest start
    ``deadline - duration``: a job that the plant can still finish in time looks infeasible to
    the model. Here ``deadline_step = floor((deadline - duration - t0) / dt) + duration_steps``:
    every start the model allows finishes by the true deadline (the real duration is at most
    ``duration_steps`` steps), and every step start the plant could make is allowed.
    """
    batch = job_batch(jobs, fleet, window_start_h, step_hours)
    if not batch.n_jobs:
        return batch
    latest = np.array([j.deadline_h - j.duration_h for j in jobs]) - window_start_h
    latest_step = np.floor(latest / step_hours + 1e-9).astype(np.int64)
    return replace(batch, deadline_step=latest_step + batch.duration_steps)


class FiniteRunMPC(MPCController):
    """The MPC with a horizon that shrinks to the run's end in its last horizon.

    A run is valued up to its end (jobs running then are charged their remaining energy at the
    tail price, the battery's energy at its terminal value): exactly the objective of one
    window that ends with the run, which is what the perfect-information bound solves. A
    horizon reaching past the end would let the MPC defer jobs beyond the run, where the run's
    accounting cannot see them; shrinking it makes the MPC optimise what is measured.
    """

    def __init__(self, *args: object, shrink_at_run_end: bool = True, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.shrink_at_run_end = shrink_at_run_end

    def window(self, observation: Observation) -> WindowInputs:
        full = self.horizon_hours
        interval = observation.interval_h
        left_h = round((observation.run_hours - observation.elapsed_h) / interval) * interval
        if self.shrink_at_run_end and left_h < self._horizon_hours():
            self.horizon_hours = max(left_h, interval)
        try:
            w = super().window(observation)
        finally:
            self.horizon_hours = full
        if observation.queued:
            w = w.with_changes(jobs=exact_job_batch(observation.queued, self.fleet, observation.elapsed_h, interval))
        return w

    def config(self) -> dict[str, object]:
        return {**super().config(), "shrink_at_run_end": self.shrink_at_run_end}


def make_controller(
    name: str,
    scenario: Scenario | None = None,
    forecast: str = "perfect",
    solver: str = "highs",
    time_limit_s: float = 20.0,
    seed: int = 0,
    mip_gap: float = 1e-3,
    horizon_hours: float | None = None,
    shrink_at_run_end: bool = True,
) -> Controller:
    """A controller by name (see :data:`CONTROLLERS`).

    MPC controllers forecast with ``make_forecaster(forecast, seed)`` (pass the run's seed so
    forecast errors are common random numbers across controllers) and solve with ``solver``
    within ``time_limit_s`` (a hard deadline of 1.5 x that interrupts HiGHS). ``horizon_hours``
    defaults to the scenario's; with ``shrink_at_run_end`` it stops at the run's end
    (:class:`FiniteRunMPC`). ``scenario`` is only checked for consistency of the horizon.
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
        steps = horizon_hours * 60.0 / scenario.run.control_interval_minutes
        if steps < 1 or abs(steps - round(steps)) > 1e-9:
            raise ValueError(f"horizon_hours ({horizon_hours:g}) must be a positive multiple of the control interval")
    options = SolveOptions(solver=solver, time_limit_s=time_limit_s, mip_gap=mip_gap,  # type: ignore[arg-type]
                           deadline_s=1.5 * time_limit_s)
    return FiniteRunMPC(make_forecaster(forecast, seed), variant=MPC_VARIANTS[name], horizon_hours=horizon_hours,
                        solve_options=options, shrink_at_run_end=shrink_at_run_end)
