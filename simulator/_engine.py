"""The SimPy adapter of the closed loop (private: users call :func:`simulator.simulate`).

SimPy time is hours after the run start. Four kinds of process, ordered at equal times by an
explicit event priority (SimPy's own ``Timeout`` always uses one priority):

* ``PRIORITY_ARRIVAL`` -- training-job submissions and job completions, at their exact times;
* ``PRIORITY_CONTROL`` -- the controller, every control interval: it sees the plant after the
  arrivals and completions of that instant, and its set-points hold from that instant on;
* ``PRIORITY_TICK`` -- the plant tick. A tick is split into phases at the exact time a job
  completes or a battery following its set-point reaches an SOC bound (it stops there and the
  rest of the tick is closed by the other sources); a generator started by the real-time rules
  starts at the start of its phase. Records hold each tick's time averages.

The exogenous processes (traffic, weather, prices, carbon, temperature) are realised before
the run from their own streams (:mod:`simulator.processes`); the tick process reads them from
preallocated arrays, so the plant loop uses numpy over sites and no pandas.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import simpy
from simpy.events import Event

from forecasts import ForecastError, HistoryView
from optimizer.control import Controller, GreedyController, Observation, RunningJob, Setpoints
from optimizer.solvers import SolverUnavailable
from optimizer.variants import InfeasibleWindow
from scenarios.arrays import SIGNALS, Fleet
from scenarios.schema import Scenario, TrainingJob
from simulator.plant import EPS, Battery, DataCenter, Flows, Generator, GridConnection, _positive, close_balance
from simulator.processes import RealisedSignals, Submission

PRIORITY_ARRIVAL, PRIORITY_CONTROL, PRIORITY_TICK = 0, 1, 2
#: errors a controller may raise that must not stop a run (SPEC §5): the step falls back to greedy
CONTROLLER_FAILURES = (SolverUnavailable, InfeasibleWindow, ForecastError)


class _At(Event):
    """A timeout with an explicit priority."""

    def __init__(self, env: simpy.Environment, delay: float, priority: int) -> None:
        self.env = env
        self.callbacks = []
        self._value = None
        self._ok = True
        env.schedule(self, priority, max(delay, 0.0))


@dataclass
class JobRecord:
    submitted_h: float
    job: TrainingJob
    site: int = -1
    start_h: float = np.nan
    end_h: float = np.nan
    status: str = "never-started"


@dataclass
class RawRun:
    """Everything the loop recorded, as arrays (turned into frames by :mod:`simulator.results`)."""

    ticks: dict[str, np.ndarray]  # (n_ticks, S) per recorded column
    served_req_per_s: np.ndarray  # (n_ticks, K, S)
    dropped_req_per_s: np.ndarray  # (n_ticks, K, S)
    shares: np.ndarray  # (n_control, K, S)
    jobs: list[JobRecord]
    solver_log: list[dict[str, object]]
    events: list[tuple[float, str, str, str]]
    plans: list[tuple[float, object]] = field(default_factory=list)


class ClosedLoop:
    """One closed-loop run: plant components, the controller, records."""

    def __init__(
        self, scenario: Scenario, fleet: Fleet, controller: Controller, realised: RealisedSignals,
        submissions: list[Submission], run_hours: float, on_control_step: Callable[[], None] | None = None,
    ) -> None:
        self.scenario, self.fleet, self.controller = scenario, fleet, controller
        run = scenario.run
        self.tick_h = run.plant_tick_minutes / 60.0
        self.interval_h = run.control_interval_minutes / 60.0
        self.run_hours = run_hours
        self.n_ticks = int(round(run_hours / self.tick_h))
        self.ticks_per_control = int(round(self.interval_h / self.tick_h))
        self.n_control = int(round(run_hours / self.interval_h))
        self.run_start = pd.Timestamp(run.start)
        self.on_control_step = on_control_step
        self.datacenter = DataCenter(fleet)
        self.battery = Battery(fleet)
        self.generator = Generator(fleet)
        self.grid = GridConnection(fleet)
        self.fallback = GreedyController()
        self.fallback.reset(scenario, fleet)

        S, K, n = fleet.n_sites, fleet.n_classes, self.n_ticks
        first = realised.run_offset
        frames = realised.frames

        def run_rows(signal: str, columns: tuple[str, ...]) -> np.ndarray:
            return frames[signal][list(columns)].to_numpy(dtype=float)[first:first + n]

        sites = fleet.site_names
        self.demand = run_rows("demand", fleet.class_names) if K else np.zeros((n, 0))
        self.renewable_mw = (run_rows("pv", sites) * fleet.pv_capacity_mw
                             + run_rows("wind", sites) * fleet.wind_capacity_mw)
        self.import_price = run_rows("import_price", sites)
        self.export_price = run_rows("export_price", sites)
        self.carbon = run_rows("carbon", sites)
        self.pue = fleet.pue(run_rows("temperature", sites).T).T.copy()
        self.base_load = run_rows("base_load", sites)  # exogenous site load beside PUE x IT, never shed
        self.export_cap = self.grid.export_cap_mw(self.export_price)  # exporting at a negative price is never forced
        self.it_capacity = fleet.power_capacity_mw / self.pue  # IT MW the facility capacity allows
        self.history = realised.at_step(self.interval_h)

        # per tick: (flows, IT MW, training GPUs, SOC, generator hours on | None, served | None, dropped | None);
        # turned into arrays after the run (appending is cheaper than writing a dozen rows per tick)
        self._ticks: list[tuple | None] = [None] * n
        self.unassigned_log = np.zeros((self.n_control, K))
        self.shares_log = np.zeros((self.n_control, K, S))
        self.emissions_t_per_tick = self.carbon * self.tick_h  # x import, summed lazily
        self.generator_emission_t = fleet.generator_emission_t_per_mwh * self.tick_h
        self._emissions_counted_ticks = 0
        self._cumulative_emissions = 0.0

        self.jobs: dict[str, JobRecord] = {}
        self.queue: dict[str, TrainingJob] = {}
        self.solver_log: list[dict[str, object]] = []
        self.events: list[tuple[float, str, str, str]] = []
        self.plans: list[tuple[float, object]] = []
        self.submissions = submissions
        self.control_s = 0.0  # wall time spent in control steps (observe, decide, apply)

        self.env = simpy.Environment()
        # the tick that starts a control interval waits for that interval's set-points (robust to
        # float rounding of event times)
        self._decided = [self.env.event() for _ in range(self.n_control)]
        self.env.process(self._submission_process())
        self.env.process(self._controller_process())
        self.env.process(self._tick_process())

    # --- running -------------------------------------------------------------------------------
    def run(self) -> RawRun:
        self.env.run(until=self.run_hours)
        for record in self.jobs.values():
            if record.status == "running" and record.end_h <= self.run_hours + EPS:
                self._complete(record.job.name)
        records, served, dropped = self._arrays()
        return RawRun(
            ticks=records, served_req_per_s=served, dropped_req_per_s=dropped, shares=self.shares_log,
            jobs=list(self.jobs.values()), solver_log=self.solver_log, events=self.events, plans=self.plans,
        )

    def plant_config(self) -> dict[str, object]:
        """Static configuration of the plant's components (for the run manifest)."""
        return {"datacenter": self.datacenter.config(), "battery": self.battery.config(),
                "generator": self.generator.config(), "grid": self.grid.config()}

    def _event(self, time_h: float, site: int | None, kind: str, detail: str = "") -> None:
        self.events.append((time_h, self.fleet.site_names[site] if site is not None else "", kind, detail))

    # --- arrivals ------------------------------------------------------------------------------
    def _submission_process(self):  # noqa: ANN202 (a SimPy process)
        env = self.env
        for submission in self.submissions:
            delay = submission.submitted_h - env.now
            if delay > 0:
                yield _At(env, delay, PRIORITY_ARRIVAL)
            job = submission.job
            self.jobs[job.name] = JobRecord(submission.submitted_h, job)
            self.queue[job.name] = job
            self._event(submission.submitted_h, None, "job_submitted", job.name)

    def _job_process(self, name: str, end_h: float):  # noqa: ANN202
        yield _At(self.env, end_h - self.env.now, PRIORITY_ARRIVAL)
        self._complete(name)

    def _complete(self, name: str) -> None:
        record = self.jobs[name]
        if record.status != "running":
            return
        self.datacenter.complete(name)
        record.status = "completed" if record.end_h <= record.job.deadline_h + EPS else "late"
        self._event(record.end_h, record.site, "job_completed", name)

    def _complete_due(self, now_h: float) -> None:
        for name, running in list(self.datacenter.running.items()):
            if running.end_h <= now_h + EPS:
                self._complete(name)

    # --- control -------------------------------------------------------------------------------
    def _controller_process(self):  # noqa: ANN202
        for step in range(self.n_control):
            now = step * self.interval_h
            step_began = time.perf_counter()
            self._complete_due(now)
            self._drop_unreachable(now)
            observation = self._observe(now)
            began = time.perf_counter()
            try:
                setpoints = self.controller.decide(observation)
            except CONTROLLER_FAILURES as error:
                setpoints = self.fallback.decide(observation)
                setpoints.log = {"fallback": f"greedy: {type(error).__name__}: {error}"}
            decide_s = time.perf_counter() - began
            starts = self._apply(setpoints, now, step)
            self._log_step(now, setpoints, decide_s, starts)
            self.control_s += time.perf_counter() - step_began
            self._decided[step].succeed()
            if self.on_control_step is not None:
                self.on_control_step()
            if step + 1 < self.n_control:
                yield _At(self.env, (step + 1) * self.interval_h - self.env.now, PRIORITY_CONTROL)

    def _drop_unreachable(self, now_h: float) -> None:
        for name, job in list(self.queue.items()):
            if now_h + job.duration_h > job.deadline_h + EPS:
                del self.queue[name]
                self.jobs[name].status = "dropped"
                self._event(now_h, None, "job_dropped", f"{name}: deadline {job.deadline_h:.2f} h unreachable")

    def _emissions_so_far(self, tick: int) -> float:
        lo = self._emissions_counted_ticks
        if tick > lo:
            imports = np.array([self._ticks[j][0].import_ for j in range(lo, tick)])
            generation = np.array([self._ticks[j][0].generator for j in range(lo, tick)])
            self._cumulative_emissions += float((self.emissions_t_per_tick[lo:tick] * imports).sum()
                                                + (generation * self.generator_emission_t).sum())
            self._emissions_counted_ticks = tick
        return self._cumulative_emissions

    def _observe(self, now_h: float) -> Observation:
        stamp = self.run_start + pd.Timedelta(hours=now_h)
        running = tuple(
            RunningJob(name, r.site, float(r.job.gpus), r.job.power_mw, max(r.end_h - now_h, 0.0), r.job.value_usd)
            for name, r in sorted(self.datacenter.running.items())
        )
        return Observation(
            time=stamp, elapsed_h=now_h, run_hours=self.run_hours, interval_h=self.interval_h,
            soc_mwh=self.battery.soc_mwh.copy(), generator_on=self.generator.on.copy(), running=running,
            queued=tuple(self.queue.values()),
            cumulative_emissions_tco2=self._emissions_so_far(int(round(now_h / self.tick_h))),
            history={signal: HistoryView(self.history[signal], stamp) for signal in SIGNALS},
        )

    def _apply(self, setpoints: Setpoints, now_h: float, step: int) -> int:
        fleet = self.fleet
        tick = min(int(round(now_h / self.tick_h)), self.n_ticks - 1)
        started = 0
        for name, site in setpoints.job_starts:
            job = self.queue.get(name)
            if job is None:
                reason = "not queued"
            elif not 0 <= int(site) < fleet.n_sites:
                reason = f"no site {site}"
            else:
                reason = self.datacenter.start_refusal(job, int(site), self.pue[tick])
            if reason is not None:
                self._event(now_h, int(site) if 0 <= int(site) < fleet.n_sites else None, "start_refused",
                            f"{name}: {reason}")
                continue
            del self.queue[name]
            running = self.datacenter.start(job, int(site), now_h)
            record = self.jobs[name]
            record.site, record.start_h, record.end_h, record.status = int(site), now_h, running.end_h, "running"
            self._event(now_h, int(site), "job_started", name)
            self.env.process(self._job_process(name, running.end_h))
            started += 1
        self.datacenter.set_routing(setpoints.routing_shares)
        self.shares_log[step] = self.datacenter.shares
        self.unassigned_log[step] = self.datacenter._unassigned
        self.battery.set_commands(np.asarray(setpoints.charge_mw, dtype=float),
                                  np.asarray(setpoints.discharge_mw, dtype=float))
        self.generator.set_command(setpoints.generator_mw)
        if setpoints.plan is not None:
            self.plans.append((now_h, setpoints.plan))
        return started

    def _log_step(self, now_h: float, setpoints: Setpoints, decide_s: float, started: int) -> None:
        log = setpoints.log or {}
        self.solver_log.append({
            "time": self.run_start + pd.Timedelta(hours=now_h),
            "controller": self.controller.name,
            "status": str(log.get("status", "fallback" if log.get("fallback") else "heuristic")),
            "objective_benefit_usd": float(log.get("objective_benefit_usd", np.nan)),
            "gap": float(log.get("gap", np.nan)),
            "wall_s": float(log.get("wall_s", np.nan)),
            "build_s": float(log.get("build_s", np.nan)),
            "decide_s": decide_s,
            "rows": int(log.get("rows", 0)),
            "cols": int(log.get("cols", 0)),
            "binaries": int(log.get("binaries", 0)),
            "fallback": str(log.get("fallback", "")),
            "starts_requested": len(setpoints.job_starts),
            "starts_applied": started,
            "queued_jobs": len(self.queue),
        })

    # --- plant tick ----------------------------------------------------------------------------
    def _tick_process(self):  # noqa: ANN202
        env, dt = self.env, self.tick_h
        dc, battery, generator = self.datacenter, self.battery, self.generator
        import_limit = self.grid.import_limit_mw
        max_phases = 2 * self.fleet.n_sites + 2 * max(len(self.submissions), 1) + 4
        per_control = self.ticks_per_control
        has_generators = bool(generator.present.any())
        for i in range(self.n_ticks):
            if i % per_control == 0 and not self._decided[i // per_control].triggered:
                yield self._decided[i // per_control]
            tick_start = i * dt
            pue = self.pue[i]
            served, dropped, inference_it = dc.route(self.demand[i], self.it_capacity[i] - dc.base_it_mw)
            sheddable = pue * inference_it
            charge_cmd, discharge_cmd = battery.commands()
            generator_cmd = generator.setpoint
            renewable = self.renewable_mw[i]
            export_cap = self.export_cap[i]
            elapsed = 0.0
            phases = []
            while True:
                now = tick_start + elapsed
                if dc.next_completion_h <= now + EPS:
                    self._complete_due(now)
                remaining = dt - elapsed
                it_load = dc.base_it_mw + inference_it
                flows = close_balance(pue * it_load + self.base_load[i], sheddable, renewable, charge_cmd,
                                      discharge_cmd, generator_cmd, battery, remaining, generator, import_limit,
                                      export_cap)
                length = battery.advance(flows.charge, flows.discharge, min(remaining, dc.next_completion_h - now))
                if has_generators:
                    on = flows.generator > EPS
                    if True in (on & ~generator.on).tolist():
                        for site in np.flatnonzero(on & ~generator.on):
                            rule = flows.started is not None and flows.started[site]
                            self._event(now, int(site), "generator_started", "real-time rule" if rule else "set-point")
                    generator.on = on
                phases.append((length, flows, it_load, dc.training_gpus))
                elapsed += length
                last = elapsed >= dt - EPS or len(phases) >= max_phases
                if last:  # record before yielding: the controller at the tick's end sees it
                    self._record(i, phases, pue, served, dropped, inference_it)
                yield _At(env, ((i + 1) * dt if last else tick_start + elapsed) - env.now, PRIORITY_TICK)
                if last:
                    break
                # a battery that reached an SOC bound stops following its set-point for the rest of the tick
                new_charge, new_discharge = battery.commands()
                new_charge = np.minimum(new_charge, charge_cmd)
                new_discharge = np.minimum(new_discharge, discharge_cmd)
                for site in np.flatnonzero((new_charge < charge_cmd) | (new_discharge < discharge_cmd)):
                    self._event(tick_start + elapsed, int(site), "soc_limit",
                                "full" if charge_cmd[site] > 0 else "empty")
                charge_cmd, discharge_cmd = new_charge, new_discharge

    def _record(self, i: int, phases: list, pue: np.ndarray, served: np.ndarray | None, dropped: np.ndarray | None,
                inference_it: np.ndarray) -> None:
        if len(phases) == 1:
            _, flows, it_load, gpus_training = phases[0]
            generator_on_h = None  # the tick's length wherever the generator runs
        else:
            weights = np.array([length for length, *_ in phases]) / self.tick_h
            flows = _weighted(phases, weights)
            it_load = sum(w * p[2] for w, p in zip(weights, phases, strict=True))
            gpus_training = sum(w * p[3] for w, p in zip(weights, phases, strict=True))
            generator_on_h = sum(p[0] * (p[1].generator > EPS) for p in phases)
        if flows.shed is not None and _positive(flows.shed):  # inference shed: served requests fall in proportion
            if served is None:
                served, dropped = self.datacenter.follow_shares(self.demand[i])
            with np.errstate(divide="ignore", invalid="ignore"):
                fraction = np.clip(np.where(inference_it > 0, flows.shed / (pue * inference_it), 0.0), 0.0, 1.0)
            lost = served * fraction[None, :]
            served = served - lost
            dropped = lost if dropped is None else dropped + lost
            it_load = it_load - inference_it * fraction
        self._ticks[i] = (flows, it_load, gpus_training, self.battery.soc_mwh, generator_on_h, served, dropped)

    def _arrays(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """The per-tick records as arrays: (n, S) per column, served and dropped (n, K, S)."""
        ticks = self._ticks
        n, S, K = self.n_ticks, self.fleet.n_sites, self.fleet.n_classes
        zeros = np.zeros(S)

        def stack(values: list) -> np.ndarray:
            return np.array(values, dtype=float).reshape(n, S)

        records = {
            "it_load_mw": stack([t[1] for t in ticks]),
            "renewable_used_mw": stack([t[0].renewable_used for t in ticks]),
            "import_mw": stack([t[0].import_ for t in ticks]),
            "export_mw": stack([t[0].export for t in ticks]),
            "charge_mw": stack([t[0].charge for t in ticks]),
            "discharge_mw": stack([t[0].discharge for t in ticks]),
            "soc_mwh": stack([t[3] for t in ticks]),
            "generator_mw": stack([t[0].generator for t in ticks]),
            "gpus_training": stack([t[2] for t in ticks]),
            "unmet_load_mw": stack([zeros if t[0].unmet is None else t[0].unmet for t in ticks]),
        }
        records["facility_load_mw"] = self.pue * records["it_load_mw"]
        records["base_load_mw"] = self.base_load
        on_h = stack([zeros if t[4] is None else t[4] for t in ticks])
        single = np.array([t[4] is None for t in ticks])
        records["generator_on_h"] = np.where(single[:, None], self.tick_h * (records["generator_mw"] > EPS), on_h)
        # ticks where every site had room: the requests followed the shares exactly
        step = np.arange(n) // self.ticks_per_control
        served = self.shares_log[step] * self.demand[:, :, None]
        dropped = np.zeros((n, K, S))
        if K:
            dropped[:, np.arange(K), self.fleet.home_site] = self.unassigned_log[step] * self.demand
        for i, t in enumerate(ticks):
            if t[5] is not None:
                served[i], dropped[i] = t[5], t[6]
        return records, served, dropped


def _weighted(phases: list, weights: np.ndarray) -> Flows:
    """Time-weighted mean of the phases' flows."""

    def mean(attribute: str) -> np.ndarray:
        parts = [w * getattr(p[1], attribute) for w, p in zip(weights, phases, strict=True)
                 if getattr(p[1], attribute) is not None]
        return sum(parts) if parts else np.zeros(len(phases[0][1].import_))

    return Flows(
        mean("renewable_used"), mean("import_"), mean("export"), mean("charge"), mean("discharge"),
        mean("generator"), mean("shed"), mean("unmet"), None,
    )
