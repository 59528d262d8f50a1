"""The model-predictive controller: forecasts -> window MILP -> first interval, with fallbacks.

Every interval: forecast each signal over the horizon from the history, build the window from
the current state (SOC, running jobs with their remaining steps, queued jobs, the carbon budget
left, paced to the window), solve it with the chosen variant, and apply the first step. A solve
that fails (no incumbent, licence refusal, infeasible input) or overruns the controller's
deadline falls back to the previous plan shifted by the elapsed steps, then to the greedy
heuristic; the log says which.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasts import Forecaster
from optimizer.control import (
    Controller,
    GreedyController,
    NonFiniteForecast,
    Observation,
    Setpoints,
    forecast_signals,
)
from optimizer.defaults import MPC_DEFAULTS
from optimizer.plan import Plan
from optimizer.solvers import SolveOptions, SolveResult, SolverUnavailable
from optimizer.variants import InfeasibleWindow, run_variant
from optimizer.window import JobBatch, RunningJobs, WindowInputs, coarsen, job_batch, window_inputs
from scenarios.arrays import Fleet
from scenarios.schema import Scenario
from scenarios.timebase import minutes_to_hours, whole_steps


@dataclass
class WindowPlan:
    """One decision's window, the plan solved on it, the solve's report and the seconds spent
    forecasting and building the window (``log``: extra entries for the controller's log)."""

    window: WindowInputs
    plan: Plan
    solve: SolveResult
    build_s: float
    log: dict[str, object] = field(default_factory=dict)


def paced_budget(scenario: Scenario, observation: Observation, window_h: float) -> float | None:
    """Window carbon budget: the budget left, scaled by the window's share of the time left."""
    budget = scenario.carbon.budget_tco2
    if budget is None:
        return None
    left = max(budget - observation.cumulative_emissions_tco2, 0.0)
    if scenario.carbon.pacing == "none":
        return left
    remaining_h = max(observation.run_hours - observation.elapsed_h, observation.interval_h)
    return left * min(1.0, window_h / remaining_h)


def running_jobs(observation: Observation) -> RunningJobs:
    eps = 1e-9
    jobs = observation.running
    return RunningJobs(
        names=tuple(j.name for j in jobs),
        site=np.array([j.site for j in jobs], dtype=np.int64),
        gpus=np.array([j.gpus for j in jobs], dtype=float),
        power_mw=np.array([j.power_mw for j in jobs], dtype=float),
        remaining_steps=np.ceil(np.array([j.remaining_h for j in jobs], dtype=float) / observation.interval_h - eps)
        .astype(np.int64),
    )


def setpoints_from_plan(w: WindowInputs, plan: Plan, step: int, queued: set[str]) -> Setpoints:
    """The decisions of one step of a plan (job starts only for jobs still queued)."""
    fleet = w.fleet
    starting = plan.start_step == step
    starts = tuple(
        (w.jobs.names[j], int(s)) for j, s in zip(plan.start_job[starting], plan.start_site[starting], strict=True)
        if w.jobs.names[j] in queued
    )
    demand = w.demand_req_per_s[:, step]
    served = plan.served_req_per_s[:, :, step]
    shares = np.divide(served, demand[:, None], out=np.zeros_like(served), where=demand[:, None] > 1e-9)
    idle_class = demand <= 1e-9
    shares[idle_class, fleet.home_site[idle_class]] = 1.0
    return Setpoints(
        job_starts=starts,
        routing_shares=np.clip(shares, 0.0, 1.0),
        charge_mw=plan.charge_mw[:, step].copy(),
        discharge_mw=plan.discharge_mw[:, step].copy(),
        generator_mw=plan.generator_mw[:, step].copy(),
        plan=plan,
        import_mw=plan.import_mw[:, step].copy(),
        window=w,
    )


class MPCController(Controller):
    """Rolling-horizon MILP control with one of the model variants (joint by default)."""

    def __init__(
        self,
        forecaster: Forecaster,
        variant: str = "joint",
        horizon_hours: float | None = None,
        solve_options: SolveOptions | None = None,
        fine_hours: float | None = MPC_DEFAULTS.fine_hours,
        coarse_factor: int | None = None,
        shrink_at_run_end: bool = True,
    ) -> None:
        """``fine_hours``: a variable-resolution horizon -- control-interval steps for the first
        ``fine_hours``, then steps ``coarse_factor`` intervals long (series averaged, jobs starting
        only at step boundaries, a coarse step's job load pro rata). None = full resolution;
        ``coarse_factor`` None = coarse steps of ``MPC_DEFAULTS.coarse_step_hours`` (so with
        hourly control the default horizon is at full resolution). The energy-only variant
        always plans at full resolution (its naive workload needs it).

        ``shrink_at_run_end``: in the run's last horizon the window ends with the run and is valued
        as the run is (:mod:`optimizer.ledger`: a job still running at the end earns its reward
        pro rata of the share run inside, nothing after the end counts, batteries are valued at
        their terminal value) -- exactly what the hindsight bound solves; a horizon past the end
        would plan for what the run does not measure."""
        if coarse_factor is not None and coarse_factor < 1:
            raise ValueError(f"coarse_factor must be a positive integer, got {coarse_factor}")
        if fine_hours is not None and not fine_hours > 0:
            raise ValueError(f"fine_hours must be positive (None = full resolution), got {fine_hours}")
        self.forecaster = forecaster
        self.variant = variant
        self.horizon_hours = horizon_hours
        self.fine_hours = None if variant == "energy-only" else fine_hours
        self.coarse_factor = None if coarse_factor is None else int(coarse_factor)
        self.shrink_at_run_end = shrink_at_run_end
        self.solve_options = solve_options or SolveOptions(time_limit_s=MPC_DEFAULTS.time_limit_s,
                                                           mip_gap=MPC_DEFAULTS.mip_gap)
        self.name = "mpc" if variant == "joint" else f"mpc-{variant}"
        self.previous: tuple[WindowInputs, Plan, float] | None = None
        self.fallback = GreedyController()

    def reset(self, scenario: Scenario, fleet: Fleet) -> None:
        super().reset(scenario, fleet)
        self.fallback.reset(scenario, fleet)
        self.previous = None

    def config(self) -> dict[str, object]:
        options = self.solve_options
        factor = self._coarse_factor()
        return {
            "name": self.name, "variant": self.variant, "horizon_hours": self._horizon_hours(),
            "solver": options.solver, "time_limit_s": options.time_limit_s, "mip_gap": options.mip_gap,
            "threads": options.threads, "forecaster": self.forecaster.spec,
            "fine_hours": self.fine_hours if factor > 1 else None,
            "coarse_factor": factor if factor > 1 else None,
            "shrink_at_run_end": self.shrink_at_run_end,
        }

    def _coarse_factor(self) -> int:
        """Control intervals per coarse step (1 = full resolution)."""
        if self.fine_hours is None:
            return 1
        if self.coarse_factor is not None:
            return self.coarse_factor
        interval_h = minutes_to_hours(self.scenario.run.control_interval_minutes)
        return max(whole_steps(MPC_DEFAULTS.coarse_step_hours, interval_h), 1)

    def _horizon_hours(self) -> float:
        return self.horizon_hours if self.horizon_hours is not None else self.scenario.run.horizon_hours

    def window_steps(self, observation: Observation) -> int:
        """Control intervals in this observation's window (the horizon, shortened at the run's end)."""
        interval = observation.interval_h
        steps = whole_steps(self._horizon_hours(), interval)
        if self.shrink_at_run_end:
            steps_left = whole_steps(observation.run_hours - observation.elapsed_h, interval)
            steps = max(min(steps, steps_left), 1)
        return steps

    def window(self, observation: Observation) -> WindowInputs:
        """The window this observation gives: forecasts, state, paced budget."""
        steps = self.window_steps(observation)
        signals = forecast_signals(self.forecaster, observation, steps, self.scenario)
        return self.window_from_signals(observation, signals, steps)

    def window_from_signals(
        self, observation: Observation, signals: dict[str, pd.DataFrame], steps: int, coarse_factor: int | None = None
    ) -> WindowInputs:
        """The window of ``steps`` intervals on the given signal frames (forecasts or scenarios of
        them): the plant's state, the queued jobs, the paced budget, the horizon's resolution
        (``coarse_factor``: control intervals per step after ``fine_hours``, default the MPC's own;
        ``fine_hours`` None then means the default's)."""
        interval = observation.interval_h
        # a window reaching the run's end is valued as the run is (optimizer.ledger)
        ends_run = self.shrink_at_run_end and steps >= whole_steps(observation.run_hours - observation.elapsed_h,
                                                                    interval)
        jobs = (
            job_batch(observation.queued, self.fleet, observation.elapsed_h, interval)
            if observation.queued else JobBatch.empty(self.fleet.n_sites)
        )
        window = window_inputs(
            self.scenario, signals, fleet=self.fleet, soc_initial_mwh=np.asarray(observation.soc_mwh, dtype=float),
            jobs=jobs, running=running_jobs(observation),
            carbon_budget_tco2=paced_budget(self.scenario, observation, steps * interval), step_hours=interval,
        ).with_changes(ends_run=ends_run)
        factor = self._coarse_factor() if coarse_factor is None else coarse_factor
        fine_hours = self.fine_hours if coarse_factor is None else (self.fine_hours or MPC_DEFAULTS.fine_hours)
        if fine_hours is None or factor <= 1:
            return window
        return coarsen(window, whole_steps(fine_hours, interval), factor)

    def plan_window(self, observation: Observation) -> WindowPlan:
        """Forecast, build and solve this observation's window. Raises :class:`NonFiniteForecast`
        (a forecast refused before the solver), :class:`InfeasibleWindow` or :class:`SolverUnavailable`
        when there is no plan."""
        began = time.perf_counter()
        w = self.window(observation)
        built = time.perf_counter() - began
        result = run_variant(w, self.variant, self.solve_options)
        return WindowPlan(w, result.plan, result.solve, built)

    def decide(self, observation: Observation) -> Setpoints:
        began = time.perf_counter()
        queued = {job.name for job in observation.queued}
        log: dict[str, object] = {}
        reason = None
        decided: WindowPlan | None = None
        try:
            decided = self.plan_window(observation)
            log["build_s"] = decided.build_s
            log.update(decided.solve.summary())
            log.update(decided.log)
            if decided.solve.status not in ("optimal", "time_limit"):
                reason = f"solver status {decided.solve.status}"
            elif decided.solve.wall_s > self.solve_options.time_limit_s * 1.5 + 1.0:
                reason = f"solve overran the deadline ({decided.solve.wall_s:.1f} s)"
        except NonFiniteForecast as error:  # refused before the solver: this step falls back
            setpoints = self._fallback(observation, queued)
            kind = setpoints.log.get("fallback_kind", "greedy")
            setpoints.log = {"decide_s": time.perf_counter() - began, "fallback": f"{kind}: {error}",
                             "forecast_refused": str(error)}
            return setpoints
        except (InfeasibleWindow, SolverUnavailable) as error:
            reason = str(error)
        log["decide_s"] = time.perf_counter() - began
        if reason is None and decided is not None:
            setpoints = setpoints_from_plan(decided.window, decided.plan, 0, queued)
            self.previous = (decided.window, decided.plan, observation.elapsed_h)
            log["fallback"] = ""
        else:
            setpoints = self._fallback(observation, queued)
            log["fallback"] = f"{setpoints.log.get('fallback_kind', 'greedy')}: {reason}"
        setpoints.log = {**log, **{k: v for k, v in setpoints.log.items() if k != "fallback_kind"}}
        return setpoints

    def _fallback(self, observation: Observation, queued: set[str]) -> Setpoints:
        if self.previous is not None:
            w, plan, issued_h = self.previous
            base_step = whole_steps(observation.elapsed_h - issued_h, observation.interval_h)
            matching = np.flatnonzero(w.step_offset == base_step)  # a coarse step has no exact start
            if base_step > 0 and len(matching):
                setpoints = setpoints_from_plan(w, plan, int(matching[0]), queued)
                setpoints.log = {"fallback_kind": "previous plan shifted"}
                return setpoints
        setpoints = self.fallback.decide(observation)
        setpoints.log = {"fallback_kind": "greedy"}
        return setpoints
