"""One accounting of a realised run, from its records (SPEC §7).

The terms are the ledger's (:mod:`optimizer.ledger`, shared with the optimizer's accounting of a
plan), valued on the plant's tick records (``dt`` = the tick)::

    benefit = job rewards + inference value - unserved penalty - import cost + export revenue
              - fuel and no-load cost - battery degradation - carbon price x emissions
              - budget-violation penalty + terminal battery value

* The run's end (the ledger's convention): a run is valued over its span only. A job completed
  inside it earns its full reward; a job still running at the end earns its reward pro rata,
  ``value x (run end - start) / duration`` (:func:`optimizer.ledger.reward_share`); energy, cost
  and emissions after the end are not the run's. So nothing is gained by starting work just
  before the end, and a run's KPIs are additive over time (:func:`span_kpis` values the first
  hours of a run alike). ``tail_energy_cost_usd`` is therefore 0 for a run.
* emissions = sum(ci x import x dt) + sum(ef x generation x dt) [tCO2]; the budget penalty
  applies to the overrun of the whole run's budget.
* The terminal battery value is the one the optimizer would use for one window over the whole
  run on the realised data (:func:`optimizer.window.window_inputs`), so the hindsight bound and
  a realised run are valued alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from optimizer.ledger import Flows, Prices, ledger, reward_share
from optimizer.model import SECONDS_PER_HOUR
from optimizer.window import window_inputs
from scenarios.arrays import Fleet
from scenarios.schema import Scenario
from scenarios.timebase import minutes_to_hours


@dataclass(frozen=True)
class AccountingConstants:
    """Everything besides the records that the accounting needs (kept in the run manifest)."""

    tick_hours: float
    run_hours: float
    site_names: list[str]
    class_names: list[str]
    tail_price_usd_per_mwh: list[float]
    battery_terminal_value_usd_per_mwh: list[float]
    battery_present: list[bool]
    soc_initial_mwh: list[float]
    degradation_usd_per_mwh: list[float]
    fuel_usd_per_mwh: list[float]
    no_load_usd_per_h: list[float]
    emission_t_per_mwh: list[float]
    value_usd_per_req: list[float]
    penalty_usd_per_req: list[float]
    latency_ms: list[list[float]]  # (K, S): from each class's origin to each site
    carbon_price_usd_per_tco2: float
    budget_tco2: float | None
    violation_penalty_usd_per_tco2: float

    @staticmethod
    def build(
        scenario: Scenario, fleet: Fleet, run_signals: dict[str, pd.DataFrame], run_hours: float
    ) -> AccountingConstants:
        """From the realised signals over the run at the control interval."""
        w = window_inputs(scenario, run_signals, fleet=fleet)
        return AccountingConstants(
            tick_hours=minutes_to_hours(scenario.run.plant_tick_minutes),
            run_hours=run_hours,
            site_names=list(fleet.site_names),
            class_names=list(fleet.class_names),
            tail_price_usd_per_mwh=w.tail_energy_price_usd_per_mwh.tolist(),
            battery_terminal_value_usd_per_mwh=w.battery_terminal_value_usd_per_mwh.tolist(),
            battery_present=(fleet.battery_energy_mwh > 0).tolist(),
            soc_initial_mwh=fleet.soc_initial_mwh.tolist(),
            degradation_usd_per_mwh=fleet.battery_degradation_usd_per_mwh.tolist(),
            fuel_usd_per_mwh=fleet.generator_fuel_usd_per_mwh.tolist(),
            no_load_usd_per_h=fleet.generator_no_load_usd_per_h.tolist(),
            emission_t_per_mwh=fleet.generator_emission_t_per_mwh.tolist(),
            value_usd_per_req=fleet.class_value_usd_per_req.tolist(),
            penalty_usd_per_req=fleet.class_penalty_usd_per_req.tolist(),
            latency_ms=fleet.latency_ms[fleet.class_origin].tolist() if fleet.n_classes else [],
            carbon_price_usd_per_tco2=scenario.carbon.price_usd_per_tco2,
            budget_tco2=scenario.carbon.budget_tco2,
            violation_penalty_usd_per_tco2=scenario.carbon.violation_penalty_usd_per_tco2,
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def prices(self) -> Prices:
        """The ledger's static valuation (:class:`optimizer.ledger.Prices`)."""
        return Prices(
            value_usd_per_req=np.asarray(self.value_usd_per_req, dtype=float),
            penalty_usd_per_req=np.asarray(self.penalty_usd_per_req, dtype=float),
            fuel_usd_per_mwh=np.asarray(self.fuel_usd_per_mwh, dtype=float),
            no_load_usd_per_h=np.asarray(self.no_load_usd_per_h, dtype=float),
            emission_t_per_mwh=np.asarray(self.emission_t_per_mwh, dtype=float),
            degradation_usd_per_mwh=np.asarray(self.degradation_usd_per_mwh, dtype=float),
            battery_present=np.asarray(self.battery_present, dtype=bool),
            terminal_value_usd_per_mwh=np.asarray(self.battery_terminal_value_usd_per_mwh, dtype=float),
            carbon_price_usd_per_tco2=self.carbon_price_usd_per_tco2, budget_tco2=self.budget_tco2,
            violation_penalty_usd_per_tco2=self.violation_penalty_usd_per_tco2,
        )


def _site_array(ticks: pd.DataFrame, column: str, n_sites: int) -> np.ndarray:
    """(n_ticks, S) from the tidy frame (rows ordered by time, then site); zeros for a base load
    missing from results written before the column existed."""
    if column == "base_load_mw" and column not in ticks:
        return np.zeros((len(ticks) // max(n_sites, 1), n_sites))
    return ticks[column].to_numpy(dtype=float).reshape(-1, n_sites)


def _quantile(values: np.ndarray, q: float) -> float:
    values = values[np.isfinite(values)]
    return float(np.quantile(values, q)) if values.size else float("nan")


def realised_kpis(
    ticks: pd.DataFrame, routing: pd.DataFrame, jobs: pd.DataFrame, solver_log: pd.DataFrame, c: AccountingConstants
) -> dict[str, float]:
    """Benefit, its parts (costs as positive numbers) and the physical and service KPIs of a run."""
    S, dt = len(c.site_names), c.tick_hours
    site = {name: _site_array(ticks, name, S) for name in (
        "import_mw", "export_mw", "generator_mw", "generator_on_h", "charge_mw", "discharge_mw", "soc_mwh",
        "renewable_available_mw", "renewable_used_mw", "facility_load_mw", "base_load_mw", "unmet_load_mw",
        "import_price_usd_per_mwh", "export_price_usd_per_mwh", "carbon_t_per_mwh",
    )}
    budget = c.budget_tco2
    class_index = {name: k for k, name in enumerate(c.class_names)}
    site_index = {name: s for s, name in enumerate(c.site_names)}
    k = routing["class"].map(class_index).to_numpy(dtype=np.int64) if len(routing) else np.zeros(0, np.int64)
    s = routing["site"].map(site_index).to_numpy(dtype=np.int64) if len(routing) else np.zeros(0, np.int64)
    served = routing["served_req_per_s"].to_numpy(dtype=float) if len(routing) else np.zeros(0)
    dropped = routing["dropped_req_per_s"].to_numpy(dtype=float) if len(routing) else np.zeros(0)
    requests = SECONDS_PER_HOUR * dt
    latency = np.asarray(c.latency_ms)[k, s] if len(k) else np.zeros(0)

    started = np.isfinite(jobs["start_h"].to_numpy(dtype=float)) if len(jobs) else np.zeros(0, bool)
    job_reward = float((jobs["value_usd"].to_numpy(dtype=float)[started] * reward_share(
        jobs["start_h"].to_numpy(dtype=float)[started], jobs["duration_h"].to_numpy(dtype=float)[started],
        c.run_hours)).sum()) if len(jobs) else 0.0
    K = len(c.class_names)
    soc_end = site["soc_mwh"][-1] if len(site["soc_mwh"]) else np.asarray(c.soc_initial_mwh)
    flows = Flows(
        dt_h=dt, import_mw=site["import_mw"].T, export_mw=site["export_mw"].T, generator_mw=site["generator_mw"].T,
        generator_on_h=site["generator_on_h"].T, charge_mw=site["charge_mw"].T, discharge_mw=site["discharge_mw"].T,
        import_price_usd_per_mwh=site["import_price_usd_per_mwh"].T,
        export_price_usd_per_mwh=site["export_price_usd_per_mwh"].T, carbon_t_per_mwh=site["carbon_t_per_mwh"].T,
        served_requests=np.bincount(k, weights=served, minlength=K) * requests,
        dropped_requests=np.bincount(k, weights=dropped, minlength=K) * requests,
        soc_initial_mwh=np.asarray(c.soc_initial_mwh, dtype=float), soc_end_mwh=soc_end,
        job_reward_usd=job_reward, tail_energy_cost_usd=0.0,
    )
    values = ledger(flows, c.prices())
    emissions = values["emissions_tco2"]
    available = float(site["renewable_available_mw"].sum() * dt)
    used = float(site["renewable_used_mw"].sum() * dt)
    on_site = float(np.maximum(site["renewable_used_mw"] - site["export_mw"], 0.0).sum() * dt)
    demand = served.sum() + dropped.sum()
    statuses = jobs["status"].value_counts().to_dict() if len(jobs) else {}
    solve_s = solver_log["wall_s"].to_numpy(dtype=float) if len(solver_log) else np.zeros(0)
    decide_s = solver_log["decide_s"].to_numpy(dtype=float) if len(solver_log) else np.zeros(0)
    fallbacks = int((solver_log["fallback"].astype(str) != "").sum()) if len(solver_log) else 0
    # decisions whose solve stopped on the wall-clock limit: the only results that can depend on load
    time_limit_stops = int((solver_log["status"].astype(str) == "time_limit").sum()) if "status" in solver_log else 0
    return {
        **values,
        "budget_tco2": float("nan") if budget is None else float(budget),
        "budget_use_fraction": float("nan") if not budget else emissions / budget,
        "budget_overrun_tco2": float("nan") if budget is None else max(emissions - budget, 0.0),
        "energy_import_mwh": float(site["import_mw"].sum() * dt),
        "energy_export_mwh": float(site["export_mw"].sum() * dt),
        "facility_energy_mwh": float(site["facility_load_mw"].sum() * dt),
        "base_load_energy_mwh": float(site["base_load_mw"].sum() * dt),
        "renewable_available_mwh": available,
        "renewable_used_mwh": used,
        "renewable_self_consumption_mwh": on_site,
        "renewable_self_consumption_fraction": on_site / available if available > 0 else float("nan"),
        "curtailment_mwh": available - used,
        "generator_mwh": float(site["generator_mw"].sum() * dt),
        "battery_throughput_mwh": float((site["charge_mw"] + site["discharge_mw"]).sum() * dt),
        "unmet_energy_mwh": float(site["unmet_load_mw"].sum() * dt),
        "inference_demand_mreq": float(demand * requests / 1e6),
        "inference_served_mreq": float(served.sum() * requests / 1e6),
        "inference_dropped_mreq": float(dropped.sum() * requests / 1e6),
        "inference_served_fraction": float(served.sum() / demand) if demand > 0 else float("nan"),
        "mean_rtt_ms": float((latency * served).sum() / served.sum()) if served.sum() > 0 else float("nan"),
        "jobs_submitted": int(len(jobs)),
        "jobs_completed": int(statuses.get("completed", 0)),
        "jobs_running_at_end": int(statuses.get("running", 0)),
        "jobs_late": int(statuses.get("late", 0)),
        "jobs_dropped": int(statuses.get("dropped", 0)),
        "jobs_never_started": int(statuses.get("never-started", 0)),
        "control_steps": int(len(solver_log)),
        "solve_s_mean": float(np.nanmean(solve_s)) if np.isfinite(solve_s).any() else float("nan"),
        "solve_s_p95": _quantile(solve_s, 0.95),
        "solve_s_max": float(np.nanmax(solve_s)) if np.isfinite(solve_s).any() else float("nan"),
        "decide_s_mean": float(decide_s.mean()) if decide_s.size else float("nan"),
        "decide_s_p95": _quantile(decide_s, 0.95),
        "decide_s_max": float(decide_s.max()) if decide_s.size else float("nan"),
        "fallbacks": fallbacks,
        "time_limit_stops": time_limit_stops,
    }


def span_kpis(
    ticks: pd.DataFrame, routing: pd.DataFrame, jobs: pd.DataFrame, solver_log: pd.DataFrame, c: AccountingConstants,
    until_h: float, budget_tco2: float | None = None,
) -> dict[str, float]:
    """The KPIs of the run's first ``until_h`` hours, valued as if the run had ended there (the
    ledger's run-end convention: jobs running at ``until_h`` earn their reward pro rata).

    Records after ``until_h`` are left out and job statuses are those at ``until_h``;
    ``budget_tco2`` replaces the budget (None keeps the run's). Raises ValueError unless
    ``0 < until_h <= c.run_hours``. With ``until_h = c.run_hours`` it equals :func:`realised_kpis`.
    """
    if not 0.0 < until_h <= c.run_hours + 1e-9:
        raise ValueError(f"until_h must lie in (0, {c.run_hours:g}] hours, got {until_h:g}")
    start = ticks["time"].min()
    end = start + pd.Timedelta(hours=until_h)
    ticks, routing = ticks[ticks["time"] < end], routing[routing["time"] < end]
    solver_log = solver_log[solver_log["time"] < end] if len(solver_log) else solver_log
    jobs = jobs[jobs["submitted_h"] < until_h].copy()
    start_h, end_h = jobs["start_h"].to_numpy(dtype=float), jobs["end_h"].to_numpy(dtype=float)
    not_yet = ~(start_h < until_h)
    jobs.loc[not_yet, "start_h"] = np.nan
    jobs.loc[not_yet & jobs["status"].isin(["running", "completed", "late"]).to_numpy(), "status"] = "never-started"
    jobs.loc[(start_h < until_h) & (end_h > until_h), "status"] = "running"
    constants = replace(c, run_hours=until_h, budget_tco2=c.budget_tco2 if budget_tco2 is None else budget_tco2)
    return realised_kpis(ticks, routing, jobs, solver_log, constants)
