"""One accounting for every plan, so variants and controllers compare like for like.

The terms are those of the ledger (:mod:`optimizer.ledger`, shared with the simulator's
accounting of a realised run)::

    benefit = job rewards + inference value - unserved penalty - import cost + export revenue
              - fuel and no-load cost - battery degradation - carbon price x emissions
              - budget-violation penalty - tail energy of started jobs + terminal battery value

with emissions = dt * sum(ci * import) + dt * sum(ef * generation) [tCO2]. The MILP's objective
is exactly this function of its decisions, which the tests check. Job rewards and the tail follow
the run-end convention of :func:`optimizer.ledger.start_values`.
"""

from __future__ import annotations

import numpy as np

from optimizer.ledger import BENEFIT_PARTS, COST_PARTS, Flows, Prices, ledger, start_values
from optimizer.model import SECONDS_PER_HOUR
from optimizer.plan import Plan
from optimizer.window import WindowInputs

__all__ = ["BENEFIT_PARTS", "COST_PARTS", "account", "balance_residual_mw", "window_prices"]


def window_prices(w: WindowInputs) -> Prices:
    """The ledger's static valuation for a window (fleet terms, carbon price and budget, terminal value)."""
    fleet = w.fleet
    return Prices(
        value_usd_per_req=fleet.class_value_usd_per_req, penalty_usd_per_req=fleet.class_penalty_usd_per_req,
        fuel_usd_per_mwh=fleet.generator_fuel_usd_per_mwh, no_load_usd_per_h=fleet.generator_no_load_usd_per_h,
        emission_t_per_mwh=fleet.generator_emission_t_per_mwh,
        degradation_usd_per_mwh=fleet.battery_degradation_usd_per_mwh,
        battery_present=fleet.battery_energy_mwh > 0, terminal_value_usd_per_mwh=w.battery_terminal_value_usd_per_mwh,
        carbon_price_usd_per_tco2=w.carbon_price_usd_per_tco2, budget_tco2=w.carbon_budget_tco2,
        violation_penalty_usd_per_tco2=w.carbon_violation_penalty_usd_per_tco2,
    )


def account(w: WindowInputs, plan: Plan) -> dict[str, float]:
    """Benefit, its parts (costs as positive numbers) and physical totals of a plan."""
    T = w.n_steps
    dt = w.dt[None, :]  # (1, T) step lengths, hours

    def total(values: np.ndarray) -> float:
        """Sum over everything of a (.., T) array of rates times the step lengths."""
        return float((values * dt).sum())

    requests = SECONDS_PER_HOUR * dt
    served = plan.served_req_per_s.sum(axis=1)  # (K, T)
    unserved = np.maximum(w.demand_req_per_s - served, 0.0)
    battery_end = plan.soc_mwh[:, -1] if T else w.soc_initial_mwh
    reward, tail = start_values(w, plan.start_job, plan.start_site, plan.start_step)
    flows = Flows(
        dt_h=dt, import_mw=plan.import_mw, export_mw=plan.export_mw, generator_mw=plan.generator_mw,
        generator_on_h=plan.generator_on * dt, charge_mw=plan.charge_mw, discharge_mw=plan.discharge_mw,
        import_price_usd_per_mwh=w.import_price_usd_per_mwh, export_price_usd_per_mwh=w.export_price_usd_per_mwh,
        carbon_t_per_mwh=w.carbon_t_per_mwh, served_requests=(served * requests).sum(axis=1),
        dropped_requests=(unserved * requests).sum(axis=1), soc_initial_mwh=w.soc_initial_mwh,
        soc_end_mwh=battery_end, job_reward_usd=float(reward.sum()), tail_energy_cost_usd=float(tail.sum()),
    )
    values = ledger(flows, window_prices(w))
    emissions, budget = values["emissions_tco2"], w.carbon_budget_tco2
    renewable_available = total(w.pv_available_mw + w.wind_available_mw)
    renewable_used = total(plan.renewable_used_mw)
    return {
        **values,
        "budget_tco2": float("nan") if budget is None else budget,
        "budget_use_fraction": float("nan") if not budget else emissions / budget,
        "inference_served_mreq": float((served * requests).sum() / 1e6),
        "inference_dropped_mreq": float((unserved * requests).sum() / 1e6),
        "inference_served_fraction": float(
            (served * requests).sum() / max((w.demand_req_per_s * requests).sum(), 1e-12)
        ),
        "jobs_started": int(len(plan.start_job)),
        "jobs_total": int(w.jobs.n_jobs),
        "energy_import_mwh": total(plan.import_mw),
        "energy_export_mwh": total(plan.export_mw),
        "renewable_used_mwh": renewable_used,
        "curtailment_mwh": renewable_available - renewable_used,
        "generator_mwh": total(plan.generator_mw),
        "battery_throughput_mwh": total(plan.charge_mw + plan.discharge_mw),
        "facility_energy_mwh": total(plan.facility_load_mw(w)),
        "base_load_energy_mwh": total(w.base_load),
    }


def balance_residual_mw(w: WindowInputs, plan: Plan) -> np.ndarray:
    """(S, T) supply minus demand at every site and step; zero when power balance holds."""
    supply = plan.renewable_used_mw + plan.generator_mw + plan.discharge_mw + plan.import_mw
    return supply - plan.site_load_mw(w) - plan.charge_mw - plan.export_mw
