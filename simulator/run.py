"""``simulate``: one closed-loop run of a scenario under a controller, as a :class:`RunResult`."""

from __future__ import annotations

import functools
import hashlib
import platform
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, requires, version

import numpy as np
import pandas as pd

from forecasts import Forecaster, OracleForecaster
from optimizer.control import Controller
from optimizer.solvers import SolveOptions
from scenarios.arrays import SIGNALS, Fleet, build_fleet
from scenarios.io import DEFAULT_BUDGET_SCALE, budget_for_days, budget_note, dump_scenario, with_days
from scenarios.schema import Scenario
from scenarios.timebase import days_to_hours, minutes_to_hours, whole_steps
from simulator._engine import ClosedLoop
from simulator.accounting import AccountingConstants, realised_kpis
from simulator.controller_record import PLAN_HOURS, ForecastRecorder, planned_frame, signals_frame
from simulator.kpis_by_site import kpis_by
from simulator.processes import NoiseParameters, RealisedSignals, Submission, realise_signals, submit_jobs
from simulator.records import RawRun
from simulator.results import RunResult
from simulator.setpoint_check import user_call


def _horizon_hours(controller: Controller, scenario: Scenario) -> float:
    horizon = getattr(controller, "horizon_hours", None)
    return float(horizon) if horizon is not None else scenario.run.horizon_hours


@functools.cache
def _versions() -> dict[str, str]:
    """Python and the installed version of aidc and of every package it depends on (the pins of
    ``constraints.txt`` when installed by ``make``), plus gurobipy when present, and the git commit.
    Cached: the code and packages a process runs do not change while it runs, and a sweep would
    otherwise ask git and the package metadata again for every run."""
    out = {"python": platform.python_version()}
    try:
        requirements = requires("aidc") or []
    except PackageNotFoundError:
        requirements = []
    names = (re.match(r"[A-Za-z0-9_.\-]+", line) for line in requirements if "extra ==" not in line)
    runtime = [name.group(0) for name in names if name is not None]
    for package in ("aidc", *sorted(runtime, key=str.lower), "gurobipy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    out["aidc_git_commit"] = _git_commit()
    return out


def _git_commit() -> str:
    """The commit of the aidc checkout that ran (with ``+dirty`` for uncommitted changes), or
    ``unknown`` outside a git checkout: the version number alone does not change between commits."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head


def simulate(
    scenario: Scenario,
    controller: Controller,
    *,
    days: float | None = None,
    seed: int | None = None,
    forecaster: Forecaster | None = None,
    progress: bool = False,
    bound: bool = False,
    noise: NoiseParameters | None = None,
    bound_options: SolveOptions | None = None,
    budget_scale: str = DEFAULT_BUDGET_SCALE,
    record_plans: bool = True,
    jobs_known: bool = False,
    bound_start_minutes: float | None = None,
) -> RunResult:
    """Run ``controller`` on ``scenario`` in the closed loop and return the recorded result.

    ``days`` overrides the scenario's run length, its carbon budget scaled by ``budget_scale``
    (``"pro-rata"``, the default, or ``"none"``: :func:`scenarios.io.with_days`; the manifest's
    ``carbon_budget`` records both budgets and the choice), and ``seed``
    its seed (the seed of every exogenous stream: same seed, same traffic, weather, prices and
    jobs for every controller).
    ``forecaster`` replaces the controller's forecaster (MPC controllers); an oracle forecaster
    (``perfect``, ``noisy``) is bound to the realised truth at the control interval, covering
    the run plus one horizon. ``bound=True`` also solves the hindsight bound on the plant's
    tick (:mod:`simulator.bound`) and reports ``hindsight_bound_usd`` (the solver's dual bound),
    ``hindsight_plan_benefit_usd`` (its best plan), ``regret_usd`` = bound - realised benefit
    (>= 0), ``regret_gap_usd`` = bound - plan and ``realised_share_of_bound``.
    ``progress`` shows a bar over control steps (on a terminal only:
    :func:`simulator.progress.progress_bar`).
    ``jobs_known=True`` submits every job of the run at its start (each still starts no earlier
    than its release): the controller knows future arrivals (:func:`simulator.regret.explain_regret`).
    ``bound_start_minutes`` lets the bound start jobs every so many minutes (default: the control
    interval; a multiple of the plant tick).
    ``noise`` sets the realisation noise; None takes the scenario's ``[noise]`` table
    (:meth:`simulator.processes.NoiseParameters.for_scenario`).
    ``record_plans`` keeps the controller's record (:mod:`simulator.controller_record`): every
    forecast it was given (``result.vintages``), the first hours of every plan (``result.planned``)
    and the realised signals at the control interval (``result.signals``).
    """
    prepared = prepare_run(scenario, controller, days=days, seed=seed, forecaster=forecaster, noise=noise,
                           budget_scale=budget_scale, jobs_known=jobs_known)
    bar = None
    if progress:
        from simulator.progress import progress_bar

        bar = progress_bar(total=prepared.n_control, desc=f"{controller.name} {prepared.scenario.name}",
                           unit="step", leave=False)
    loop = prepared.closed_loop(controller, on_control_step=bar.update if bar is not None else None)
    recorder = ForecastRecorder(prepared.used_forecaster) if record_plans else None
    loop_began = time.perf_counter()
    try:
        if recorder is not None:
            with recorder:
                raw = loop.run()
        else:
            raw = loop.run()
    finally:
        if bar is not None:
            bar.close()
    return finish_run(prepared, controller, loop, raw, time.perf_counter() - loop_began, bound=bound,
                      bound_options=bound_options, recorder=recorder, bound_start_minutes=bound_start_minutes,
                      status=progress)


@dataclass
class PreparedRun:
    """Everything a closed-loop run draws and builds before its loop starts (:func:`prepare_run`):
    the run's scenario (days applied), seed, noise, fleet, realised signals and job submissions."""

    scenario: Scenario
    seed: int
    noise: NoiseParameters
    fleet: Fleet
    realised: RealisedSignals
    submissions: list[Submission]
    control_signals: dict[str, pd.DataFrame]
    used_forecaster: Forecaster | None
    horizon_h: float
    run_hours: float
    n_control: int
    wall_start: datetime
    began: float
    # the carbon budget of the simulated span: budget_tco2, budget_scale, scenario_budget_tco2,
    # scenario_days and the note the commands print (scenarios.io.budget_note)
    carbon_budget: dict[str, object] = field(default_factory=dict)
    jobs_known: bool = False  # every job submitted at the run's start (simulate(jobs_known=True))

    def closed_loop(self, controller: Controller, on_control_step: Callable[[], None] | None = None,
                    stepped: bool = False) -> ClosedLoop:
        """The SimPy loop of this run (``stepped``: driven step by step, see :class:`ClosedLoop`)."""
        return ClosedLoop(self.scenario, self.fleet, controller, self.realised, self.submissions, self.run_hours,
                          on_control_step=on_control_step, stepped=stepped)


def prepare_run(scenario: Scenario, controller: Controller, *, days: float | None = None, seed: int | None = None,
                forecaster: Forecaster | None = None, noise: NoiseParameters | None = None,
                budget_scale: str = DEFAULT_BUDGET_SCALE, jobs_known: bool = False) -> PreparedRun:
    """The first half of :func:`simulate`: realise the exogenous signals and the job submissions
    of the seed, bind an oracle forecaster to the truth and reset the controller. ``jobs_known``
    submits every job at the run's start (see :func:`simulate`)."""
    wall_start = datetime.now(UTC)
    began = time.perf_counter()
    budget: dict[str, object] = {
        "budget_tco2": budget_for_days(scenario, days, budget_scale), "budget_scale": budget_scale,
        "scenario_budget_tco2": scenario.carbon.budget_tco2, "scenario_days": scenario.run.days,
        "note": budget_note(scenario, days, budget_scale)}
    scenario = with_days(scenario, days, budget_scale)
    seed = scenario.run.seed if seed is None else int(seed)
    noise = NoiseParameters.for_scenario(scenario) if noise is None else noise
    fleet = build_fleet(scenario)
    run = scenario.run
    run_hours = days_to_hours(run.days)
    interval_h = minutes_to_hours(run.control_interval_minutes)
    horizon_h = _horizon_hours(controller, scenario)
    realised = realise_signals(scenario, seed, run_hours, max(horizon_h, interval_h), noise)
    submissions = submit_jobs(scenario, fleet, seed, run_hours)
    if jobs_known:
        submissions = [Submission(0.0, submission.job) for submission in submissions]
    control_signals = realised.at_step(interval_h)
    if forecaster is not None:
        if not hasattr(controller, "forecaster"):
            raise ValueError(f"controller {controller.name!r} does not use a forecaster")
        controller.forecaster = forecaster
    used_forecaster: Forecaster | None = getattr(controller, "forecaster", None)
    if isinstance(used_forecaster, OracleForecaster):
        for signal in SIGNALS:
            used_forecaster.bind_truth(signal, control_signals[signal])
    user_call(controller, "reset()", lambda: controller.reset(scenario, fleet))
    return PreparedRun(scenario, seed, noise, fleet, realised, submissions, control_signals, used_forecaster,
                       horizon_h, run_hours, whole_steps(run_hours, interval_h), wall_start, began, budget,
                       jobs_known)


def finish_run(prepared: PreparedRun, controller: Controller, loop: ClosedLoop, raw: RawRun, loop_s: float, *,
               bound: bool = False, bound_options: SolveOptions | None = None,
               recorder: ForecastRecorder | None = None, bound_start_minutes: float | None = None,
               status: bool = False) -> RunResult:
    """The second half of :func:`simulate`: frames, KPIs (and the bound) and the manifest; with
    ``recorder`` (the forecasts of the run) also the controller's record."""
    scenario, fleet, seed, noise = prepared.scenario, prepared.fleet, prepared.seed, prepared.noise
    run, run_hours, n_control, horizon_h = scenario.run, prepared.run_hours, prepared.n_control, prepared.horizon_h
    realised, submissions, used_forecaster = prepared.realised, prepared.submissions, prepared.used_forecaster
    wall_start, began = prepared.wall_start, prepared.began
    run_signals = {name: frame.loc[(frame.index >= pd.Timestamp(run.start))].iloc[:n_control]
                   for name, frame in prepared.control_signals.items()}
    constants = AccountingConstants.build(scenario, fleet, run_signals, run_hours)
    frames = build_frames(raw, fleet)
    realised_values = realised_kpis(frames["ticks"], frames["routing"], frames["jobs"], frames["solver_log"], constants)
    kpis: dict[str, object] = dict(realised_values)
    kpis["loop_wall_s"] = loop_s
    kpis["control_wall_s"] = loop.control_s
    # the plant tick's own CPU time per tick (routing, real-time rules, records); CPU rather than wall
    # time, so that it does not count other processes on a busy machine
    kpis["tick_us"] = 1e6 * loop.tick_cpu_s / max(loop.clock.n_ticks, 1)
    if bound:
        from optimizer.variants import InfeasibleWindow
        from simulator.bound import hindsight_bound

        if status:  # the bound can take minutes on a week (one MILP over every plant tick)
            from simulator.bound import DEFAULT_BOUND_OPTIONS

            limit = (bound_options or DEFAULT_BOUND_OPTIONS).time_limit_s
            print(f"solving the hindsight bound (one MILP over the run's {loop.clock.n_ticks} plant ticks; "
                  f"at most {limit:g} s) ...", file=sys.stderr, flush=True)
        try:
            result = hindsight_bound(scenario, fleet, realised, submissions, run_hours, constants, bound_options,
                                     start_minutes=bound_start_minutes)
        except InfeasibleWindow:
            # the bound's model cannot leave load unmet; a plant that could not supply its load
            # (KPI unmet_energy_mwh) has no plan to compare with: the run is kept, the bound is NaN
            kpis.update(dict.fromkeys(("hindsight_bound_usd", "hindsight_plan_benefit_usd", "hindsight_gap",
                                       "hindsight_wall_s", "hindsight_plan_emissions_tco2", "regret_usd",
                                       "regret_gap_usd", "realised_share_of_bound"), float("nan")))
            kpis["hindsight_status"] = "infeasible"
        else:
            kpis.update(result.summary())
            kpis["regret_usd"] = result.bound_usd - realised_values["benefit_usd"]
            kpis["regret_gap_usd"] = result.bound_usd - result.plan_benefit_usd
            kpis["realised_share_of_bound"] = (realised_values["benefit_usd"] / result.bound_usd
                                               if result.bound_usd > 0 else float("nan"))
    scenario_text = dump_scenario(scenario)
    forecaster_spec = used_forecaster.spec if used_forecaster is not None else None
    manifest = {
        "scenario": scenario.name,
        "scenario_sha256": hashlib.sha256(scenario_text.encode("utf-8")).hexdigest(),
        "seed": seed,
        "days": run.days,
        "carbon_budget": prepared.carbon_budget,
        "start": pd.Timestamp(run.start).isoformat(),
        "plant_tick_minutes": run.plant_tick_minutes,
        "control_interval_minutes": run.control_interval_minutes,
        "horizon_hours": horizon_h,
        "controller_name": controller.name,
        # the spec that rebuilds it (``make_controller``: a registered name with options, or a user's
        # ``package.module:ClassName``) and the class that ran
        "controller_spec": getattr(controller, "spec", None) or controller.name,
        "controller_class": f"{type(controller).__module__}:{type(controller).__qualname__}",
        "controller": user_call(controller, "config()", controller.config),
        "forecaster": forecaster_spec,
        "forecaster_config": used_forecaster.config() if used_forecaster is not None else None,
        "solver": user_call(controller, "config()", controller.config).get("solver"),
        "noise": noise.config(),
        "plant": loop.plant.config(),
        "realisation_note": realised.nominal_note,
        "history_hours": realised.run_offset * realised.tick_hours,
        "bound": bool(bound),
        "jobs_known": prepared.jobs_known,
        "accounting": constants.to_dict(),
        "versions": dict(_versions()),  # a copy: the cached dict is shared
        "wall_start": wall_start.isoformat(),
        "wall_end": datetime.now(UTC).isoformat(),
        "wall_s": time.perf_counter() - began,
    }
    record: dict[str, pd.DataFrame | None] = {"vintages": None, "planned": None, "signals": None}
    if recorder is not None:
        start = pd.Timestamp(run.start)
        record = {
            "vintages": recorder.frame(),
            "planned": planned_frame(raw.plans),
            "signals": signals_frame(prepared.control_signals, start,
                                     start + pd.Timedelta(hours=run_hours + horizon_h)),
        }
    manifest["record_plans"] = recorder is not None
    manifest["plan_record_hours"] = PLAN_HOURS if recorder is not None else None
    return RunResult(**frames, kpis=kpis, manifest=manifest, plans=raw.plans,
                     kpis_by=kpis_by(frames["ticks"], frames["routing"], frames["jobs"], manifest), **record)


def build_frames(raw: RawRun, fleet: Fleet) -> dict[str, pd.DataFrame]:
    """Tidy frames from the loop's arrays (see :mod:`simulator.results`)."""
    clock, inputs = raw.clock, raw.inputs
    n, S, K = clock.n_ticks, fleet.n_sites, fleet.n_classes
    dt = clock.tick_h
    times = pd.date_range(raw.run_start, periods=n, freq=pd.Timedelta(hours=dt))
    site_names = np.array(fleet.site_names, dtype=object)
    r = raw.ticks
    renewable = inputs.renewable_mw
    served_site = raw.served_req_per_s.sum(axis=1)
    dropped_site = raw.dropped_req_per_s.sum(axis=1)
    emissions = (inputs.carbon_t_per_mwh * r["import_mw"] + fleet.generator_emission_t_per_mwh * r["generator_mw"]) * dt
    columns = {
        "it_load_mw": r["it_load_mw"], "facility_load_mw": r["facility_load_mw"], "pue": inputs.pue,
        "base_load_mw": r["base_load_mw"],
        "renewable_available_mw": renewable, "renewable_used_mw": r["renewable_used_mw"],
        "curtailed_mw": np.maximum(renewable - r["renewable_used_mw"], 0.0),
        "import_mw": r["import_mw"], "export_mw": r["export_mw"], "charge_mw": r["charge_mw"],
        "discharge_mw": r["discharge_mw"], "soc_mwh": r["soc_mwh"], "generator_mw": r["generator_mw"],
        "generator_on": r["generator_on_h"] > 0, "generator_on_h": r["generator_on_h"],
        "gpus_training": r["gpus_training"], "gpus_inference": served_site / fleet.throughput_req_per_s_per_gpu,
        "served_req_per_s": served_site, "dropped_req_per_s": dropped_site, "unmet_load_mw": r["unmet_load_mw"],
        "import_price_usd_per_mwh": inputs.import_price_usd_per_mwh,
        "export_price_usd_per_mwh": inputs.export_price_usd_per_mwh,
        "carbon_t_per_mwh": inputs.carbon_t_per_mwh, "emissions_t": emissions,
    }
    ticks = pd.DataFrame({"time": np.repeat(times, S), "site": np.tile(site_names, n).astype(str)})
    for name, values in columns.items():
        ticks[name] = np.asarray(values).reshape(n * S)

    k, s = np.nonzero(fleet.route_feasible) if K else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    step = np.arange(n) // clock.ticks_per_control
    routing = pd.DataFrame({
        "time": np.repeat(times, len(k)),
        "class": np.tile(np.array(fleet.class_names, dtype=object)[k], n).astype(str),
        "site": np.tile(site_names[s], n).astype(str),
        "share": raw.shares[step][:, k, s].reshape(-1),
        "served_req_per_s": raw.served_req_per_s[:, k, s].reshape(-1),
        "dropped_req_per_s": raw.dropped_req_per_s[:, k, s].reshape(-1),
    })

    start = raw.run_start
    records = raw.jobs

    def stamp(hours: float) -> pd.Timestamp:
        return start + pd.Timedelta(hours=hours) if np.isfinite(hours) else pd.NaT

    jobs = pd.DataFrame({
        "job": [j.job.name for j in records],
        "submitted_h": [j.submitted_h for j in records],
        "release_h": [j.job.release_h for j in records],
        "deadline_h": [j.job.deadline_h for j in records],
        "duration_h": [j.job.duration_h for j in records],
        "gpus": np.array([j.job.gpus for j in records], dtype=np.int64),
        "power_mw": [j.job.power_mw for j in records],
        "value_usd": [j.job.value_usd for j in records],
        "eligible_sites": [",".join(j.job.sites) if j.job.sites is not None else "" for j in records],
        "site": [fleet.site_names[j.site] if j.site >= 0 else "" for j in records],
        "start_h": [j.start_h for j in records],
        "end_h": [j.end_h for j in records],
        "start_time": pd.to_datetime([stamp(j.start_h) for j in records], utc=True),
        "end_time": pd.to_datetime([stamp(j.end_h) for j in records], utc=True),
        "status": [j.status for j in records],
    }, columns=["job", "submitted_h", "release_h", "deadline_h", "duration_h", "gpus", "power_mw", "value_usd",
                "eligible_sites", "site", "start_h", "end_h", "start_time", "end_time", "status"])
    for column in ("submitted_h", "release_h", "deadline_h", "duration_h", "power_mw", "value_usd", "start_h", "end_h"):
        jobs[column] = jobs[column].astype(float)
    for column in ("job", "eligible_sites", "site", "status"):
        jobs[column] = jobs[column].astype(str)

    solver_log = pd.DataFrame(raw.solver_log, columns=[
        "time", "controller", "status", "objective_benefit_usd", "gap", "wall_s", "build_s", "decide_s", "rows",
        "cols", "binaries", "fallback", "starts_requested", "starts_applied", "queued_jobs",
    ])
    events = pd.DataFrame({
        "time": pd.to_datetime([start + pd.Timedelta(hours=e.time_h) for e in raw.events], utc=True),
        "site": [e.site for e in raw.events], "kind": [e.kind for e in raw.events],
        "detail": [e.detail for e in raw.events],
    })
    for frame, text in ((solver_log, ("controller", "status", "fallback")), (events, ("site", "kind", "detail"))):
        for column in text:
            frame[column] = frame[column].astype(str)
    solver_log["time"] = pd.to_datetime(solver_log["time"], utc=True)
    frames = {"ticks": ticks, "routing": routing, "jobs": jobs, "solver_log": solver_log, "events": events}
    for frame in frames.values():  # one time unit everywhere (an empty column would otherwise get seconds)
        for column in frame.columns:
            if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
                frame[column] = frame[column].astype("datetime64[ns, UTC]")
    return frames
