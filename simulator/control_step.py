"""One control step of the closed loop: observe the plant, let the controller decide (falling
back to the greedy heuristic when it fails), apply the set-points, log the step.

Plain Python over the plant's components, the :class:`~simulator.workload.Workload` and the
:class:`~simulator.records.Recorder`; the closed loop (:mod:`simulator._engine`) calls
:meth:`ControlStep.run` every control interval.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from forecasts import ForecastError, HistoryView
from forecasts.plugin import UserCodeFailed, is_users_class
from optimizer.control import Controller, GreedyController, Observation, RunningJob, Setpoints
from optimizer.solvers import SolverUnavailable
from optimizer.variants import InfeasibleWindow
from scenarios.arrays import SIGNALS, Fleet
from scenarios.schema import Scenario
from scenarios.timebase import RunClock
from simulator.plant import Plant
from simulator.records import PlanRecord, PlantInputs, Recorder
from simulator.setpoint_check import SetpointError, check_setpoints
from simulator.workload import Workload

#: errors a controller may raise that must not stop a run (SPEC §5): the step falls back to greedy
CONTROLLER_FAILURES = (SolverUnavailable, InfeasibleWindow, ForecastError)


class ControlStep:
    """Observe -> decide -> apply -> log, for one controller over one run."""

    def __init__(
        self, scenario: Scenario, fleet: Fleet, controller: Controller, clock: RunClock, run_start: pd.Timestamp,
        history: dict[str, pd.DataFrame], plant: Plant, workload: Workload, recorder: Recorder, inputs: PlantInputs,
    ) -> None:
        self.controller, self.clock, self.run_start = controller, clock, run_start
        self.history = history  # realised signals at the control interval, history included
        self.plant, self.workload, self.recorder, self.inputs = plant, workload, recorder, inputs
        self.fallback = GreedyController()
        self.fallback.reset(scenario, fleet)
        self.fleet = fleet
        # non-finite set-point values repaired, per field, over the run; and those of the last step
        self.repaired: dict[str, int] = {}
        self.last_repaired: dict[str, int] = {}
        self.wall_s = 0.0  # wall time spent in control steps (observe, decide, apply, log)

    def run(self, step: int) -> list[tuple[str, float]]:
        """Control step ``step`` at ``step * interval_h``; returns (name, end hour) of the jobs started."""
        step_began = time.perf_counter()
        observation = self.begin(step)
        began = time.perf_counter()
        try:
            setpoints = self.controller.decide(observation)
        except CONTROLLER_FAILURES as error:
            setpoints = self.fallback.decide(observation)
            setpoints.log = {"fallback": f"greedy: {type(error).__name__}: {error}"}
        except Exception as error:
            if not (isinstance(error, UserCodeFailed) or is_users_class(self.controller)):
                raise  # a bug in aidc's own controller: keep the traceback
            raise self.failure(step, error) from None
        decide_s = time.perf_counter() - began
        started = self.conclude(step, setpoints, decide_s)
        self.wall_s += time.perf_counter() - step_began
        return started

    def begin(self, step: int) -> Observation:
        """The first half of a control step: completions and drops due now, then the observation."""
        now = step * self.clock.interval_h
        self.workload.complete_due(now)
        self.workload.drop_unreachable(now)
        return self.observe(now)

    def conclude(self, step: int, setpoints: Setpoints, decide_s: float) -> list[tuple[str, float]]:
        """The second half: apply ``setpoints`` and log the step; (name, end hour) of the jobs started."""
        now = step * self.clock.interval_h
        try:
            setpoints, repaired = check_setpoints(setpoints, self.fleet)
        except SetpointError as error:
            if not is_users_class(self.controller):
                raise
            raise self.failure(step, error) from None
        self.last_repaired = repaired
        for name, count in repaired.items():
            if name not in self.repaired:  # one event per field per run: the first step it happened
                self.recorder.event(now, None, "setpoint_repaired",
                                    f"{count} non-finite {name} value(s) repaired (NaN -> 0, inf -> limit)")
            self.repaired[name] = self.repaired.get(name, 0) + count
        if setpoints.log and setpoints.log.get("forecast_refused"):  # a NaN/inf forecast never reaches a solver
            self.recorder.event(now, None, "forecast_refused", str(setpoints.log["forecast_refused"]))
        if setpoints.log and setpoints.log.get("scenario_note"):  # mpc-stochastic: once per run
            self.recorder.event(now, None, "scenarios_point_filled", str(setpoints.log["scenario_note"]))
        started = self.apply(setpoints, now, step)
        self.log(now, setpoints, decide_s, len(started))
        return started

    def failure(self, step: int, error: BaseException) -> UserCodeFailed:
        """The one-line error for a user's controller that failed at control step ``step``."""
        stamp = self.run_start + pd.Timedelta(hours=step * self.clock.interval_h)
        name = getattr(self.controller, "spec", None) or self.controller.name
        what = str(error) if isinstance(error, SetpointError | UserCodeFailed) else f"{type(error).__name__}: {error}"
        return UserCodeFailed(f"controller {name!r} failed at {stamp:%Y-%m-%d %H:%M} (step {step}): {what}")

    def observe(self, now_h: float) -> Observation:
        """What the controller sees at ``now_h``: the plant's state and the history up to now."""
        stamp = self.run_start + pd.Timedelta(hours=now_h)
        running = tuple(
            RunningJob(name, r.site, float(r.job.gpus), r.job.power_mw, max(r.end_h - now_h, 0.0), r.job.value_usd)
            for name, r in sorted(self.plant.datacenter.running.items())
        )
        return Observation(
            time=stamp, elapsed_h=now_h, run_hours=self.clock.run_hours, interval_h=self.clock.interval_h,
            soc_mwh=self.plant.battery.soc_mwh.copy(), generator_on=self.plant.generator.on.copy(), running=running,
            queued=tuple(self.workload.queue.values()),
            cumulative_emissions_tco2=self.recorder.emissions_before(self.clock.tick_at(now_h)),
            history={signal: HistoryView(self.history[signal], stamp) for signal in SIGNALS},
        )

    def apply(self, setpoints: Setpoints, now_h: float, step: int) -> list[tuple[str, float]]:
        """Job starts the plant accepts, routing shares, battery and generator set-points."""
        tick = min(self.clock.tick_at(now_h), self.clock.n_ticks - 1)
        started = self.workload.start(setpoints.job_starts, now_h, self.inputs.pue[tick])
        datacenter = self.plant.datacenter
        datacenter.set_routing(setpoints.routing_shares)
        self.recorder.shares[step] = datacenter.shares
        self.recorder.unassigned[step] = datacenter.unassigned_share
        self.plant.battery.set_commands(np.asarray(setpoints.charge_mw, dtype=float),
                                        np.asarray(setpoints.discharge_mw, dtype=float))
        self.plant.generator.set_command(setpoints.generator_mw)
        self.plant.grid.set_command(setpoints.import_mw)
        if setpoints.plan is not None:
            self.recorder.plans.append(PlanRecord(now_h, setpoints.plan, setpoints.window))
        return started

    def log(self, now_h: float, setpoints: Setpoints, decide_s: float, started: int) -> None:
        """One row of the solver log."""
        log = setpoints.log or {}
        self.recorder.solver_log.append({
            "time": self.run_start + pd.Timedelta(hours=now_h),
            "controller": self.controller.name,
            "status": str(log.get("status", "fallback" if log.get("fallback") else "heuristic")),
            "objective_benefit_usd": _number(log, "objective_benefit_usd"),
            "gap": _number(log, "gap"),
            "wall_s": _number(log, "wall_s"),
            "build_s": _number(log, "build_s"),
            "decide_s": decide_s,
            "rows": int(_number(log, "rows", 0)),
            "cols": int(_number(log, "cols", 0)),
            "binaries": int(_number(log, "binaries", 0)),
            "fallback": str(log.get("fallback", "")),
            "starts_requested": len(setpoints.job_starts),
            "starts_applied": started,
            "queued_jobs": len(self.workload.queue),
        })


def _number(log: dict[str, object], key: str, default: float = np.nan) -> float:
    value = log.get(key, default)
    return float(value) if isinstance(value, int | float | np.number) else default
