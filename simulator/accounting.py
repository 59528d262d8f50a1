"""One accounting of a realised run, from its records (SPEC §7).

The parts are those of :func:`optimizer.accounting.account`, valued on the plant's tick records
(``dt`` = the tick):

    benefit = job rewards + inference value - unserved penalty - import cost + export revenue
              - fuel and no-load cost - battery degradation - carbon price x emissions
              - budget-violation penalty - tail energy of jobs running at the end
              + terminal battery value

* Job rewards are earned on completion. A job still running when the run ends will complete
  (rigid jobs are never paused and their deadline was checked at start), so -- as in the
  optimizer -- its reward counts and the energy it still needs is charged at the tail price;
  neither deferring work past the end nor draining the battery at the end is free.
* emissions = sum(ci x import x dt) + sum(ef x generation x dt) [tCO2]; the budget penalty
  applies to the overrun of the whole run's budget.
* Tail price and terminal battery value are those the optimizer would use for one window over
  the whole run on the realised data (:func:`optimizer.window.window_inputs`), so the
  perfect-information bound and a realised run are valued alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from optimizer.accounting import COST_PARTS
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
    fuel, no_load = np.asarray(c.fuel_usd_per_mwh), np.asarray(c.no_load_usd_per_h)
    emission_factor = np.asarray(c.emission_t_per_mwh)
    emissions_import = float((site["carbon_t_per_mwh"] * site["import_mw"]).sum() * dt)
    emissions_generator = float((emission_factor * site["generator_mw"]).sum() * dt)
    emissions = emissions_import + emissions_generator
    budget = c.budget_tco2

    class_index = {name: k for k, name in enumerate(c.class_names)}
    site_index = {name: s for s, name in enumerate(c.site_names)}
    k = routing["class"].map(class_index).to_numpy(dtype=np.int64) if len(routing) else np.zeros(0, np.int64)
    s = routing["site"].map(site_index).to_numpy(dtype=np.int64) if len(routing) else np.zeros(0, np.int64)
    served = routing["served_req_per_s"].to_numpy(dtype=float) if len(routing) else np.zeros(0)
    dropped = routing["dropped_req_per_s"].to_numpy(dtype=float) if len(routing) else np.zeros(0)
    requests = SECONDS_PER_HOUR * dt
    value = np.asarray(c.value_usd_per_req)[k] if len(k) else np.zeros(0)
    penalty = np.asarray(c.penalty_usd_per_req)[k] if len(k) else np.zeros(0)
    latency = np.asarray(c.latency_ms)[k, s] if len(k) else np.zeros(0)

    completed = jobs["status"].isin(["completed", "late"]).to_numpy() if len(jobs) else np.zeros(0, bool)
    running = (jobs["status"] == "running").to_numpy() if len(jobs) else np.zeros(0, bool)
    tail_h = np.zeros(len(jobs))
    tail_cost = 0.0
    if running.any():
        end_h = jobs["end_h"].to_numpy(dtype=float)
        tail_h = np.where(running, np.maximum(end_h - c.run_hours, 0.0), 0.0)
        job_site = jobs["site"].map(site_index).fillna(0).to_numpy(dtype=np.int64)
        tail_cost = float((jobs["power_mw"].to_numpy(dtype=float) * tail_h
                           * np.asarray(c.tail_price_usd_per_mwh)[job_site]).sum())
    soc_end = site["soc_mwh"][-1] if len(site["soc_mwh"]) else np.asarray(c.soc_initial_mwh)
    present = np.asarray(c.battery_present, dtype=bool)
    parts = {
        "job_reward_usd": float(jobs["value_usd"].to_numpy(dtype=float)[completed | running].sum())
        if len(jobs) else 0.0,
        "inference_value_usd": float((value * served).sum() * requests),
        "unserved_penalty_usd": float((penalty * dropped).sum() * requests),
        "import_cost_usd": float((site["import_price_usd_per_mwh"] * site["import_mw"]).sum() * dt),
        "export_revenue_usd": float((site["export_price_usd_per_mwh"] * site["export_mw"]).sum() * dt),
        "fuel_cost_usd": float((fuel * site["generator_mw"]).sum() * dt + (no_load * site["generator_on_h"]).sum()),
        "battery_degradation_usd": float(
            (np.asarray(c.degradation_usd_per_mwh) * (site["charge_mw"] + site["discharge_mw"])).sum() * dt),
        "carbon_cost_usd": c.carbon_price_usd_per_tco2 * emissions,
        "budget_penalty_usd": c.violation_penalty_usd_per_tco2 * max(emissions - budget, 0.0) if budget is not None
        else 0.0,
        "tail_energy_cost_usd": tail_cost,
        "battery_terminal_value_usd": float((np.asarray(c.battery_terminal_value_usd_per_mwh)
                                             * (soc_end - np.asarray(c.soc_initial_mwh)))[present].sum()),
    }
    benefit = sum(-v if name in COST_PARTS else v for name, v in parts.items())
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
        "benefit_usd": float(benefit),
        **parts,
        "emissions_tco2": emissions,
        "emissions_import_tco2": emissions_import,
        "emissions_generator_tco2": emissions_generator,
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
