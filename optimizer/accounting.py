"""One accounting for every plan, so variants and controllers compare like for like.

benefit = job rewards + inference value - unserved penalty - import cost + export revenue
          - fuel and no-load cost - battery degradation - carbon price x emissions
          - budget-violation penalty - tail energy of started jobs + terminal battery value

with emissions = dt * sum(ci * import) + dt * sum(ef * generation) [tCO2]. The MILP's objective
is exactly this function of its decisions, which the tests check.
"""

from __future__ import annotations

import numpy as np

from optimizer.model import SECONDS_PER_HOUR
from optimizer.plan import Plan
from optimizer.window import WindowInputs

BENEFIT_PARTS = (
    "job_reward_usd", "inference_value_usd", "unserved_penalty_usd", "import_cost_usd", "export_revenue_usd",
    "fuel_cost_usd", "battery_degradation_usd", "carbon_cost_usd", "budget_penalty_usd", "tail_energy_cost_usd",
    "battery_terminal_value_usd",
)
COST_PARTS = {
    "unserved_penalty_usd", "import_cost_usd", "fuel_cost_usd", "battery_degradation_usd", "carbon_cost_usd",
    "budget_penalty_usd", "tail_energy_cost_usd",
}


def account(w: WindowInputs, plan: Plan) -> dict[str, float]:
    """Benefit, its parts (costs as positive numbers) and physical totals of a plan."""
    fleet, T = w.fleet, w.n_steps
    dt = w.dt[None, :]  # (1, T) step lengths, hours

    def total(values: np.ndarray) -> float:
        """Sum over everything of a (.., T) array of rates times the step lengths."""
        return float((values * dt).sum())

    requests = SECONDS_PER_HOUR * dt
    served = plan.served_req_per_s.sum(axis=1)  # (K, T)
    unserved = np.maximum(w.demand_req_per_s - served, 0.0)
    emissions_import = total(w.carbon_t_per_mwh * plan.import_mw)
    emissions_generator = total(fleet.generator_emission_t_per_mwh[:, None] * plan.generator_mw)
    emissions = emissions_import + emissions_generator
    tail_steps = np.maximum(w.step_offset[plan.start_step] + w.jobs.duration_steps[plan.start_job] - w.n_base_steps, 0)
    battery_end = plan.soc_mwh[:, -1] if T else w.soc_initial_mwh
    budget = w.carbon_budget_tco2
    parts = {
        "job_reward_usd": float(w.jobs.value_usd[plan.start_job].sum()),
        "inference_value_usd": float((fleet.class_value_usd_per_req[:, None] * served * requests).sum()),
        "unserved_penalty_usd": float((fleet.class_penalty_usd_per_req[:, None] * unserved * requests).sum()),
        "import_cost_usd": total(w.import_price_usd_per_mwh * plan.import_mw),
        "export_revenue_usd": total(w.export_price_usd_per_mwh * plan.export_mw),
        "fuel_cost_usd": total(fleet.generator_fuel_usd_per_mwh[:, None] * plan.generator_mw
                               + fleet.generator_no_load_usd_per_h[:, None] * plan.generator_on),
        "battery_degradation_usd": total(
            fleet.battery_degradation_usd_per_mwh[:, None] * (plan.charge_mw + plan.discharge_mw)
        ),
        "carbon_cost_usd": w.carbon_price_usd_per_tco2 * emissions,
        "budget_penalty_usd": (
            w.carbon_violation_penalty_usd_per_tco2 * max(emissions - budget, 0.0) if budget is not None else 0.0
        ),
        "tail_energy_cost_usd": float((
            w.jobs.power_mw[plan.start_job] * tail_steps * w.step_hours
            * w.tail_energy_price_usd_per_mwh[plan.start_site]
        ).sum()),
        "battery_terminal_value_usd": float((
            w.battery_terminal_value_usd_per_mwh * (battery_end - w.soc_initial_mwh)
        )[fleet.battery_energy_mwh > 0].sum()),
    }
    benefit = sum(-value if name in COST_PARTS else value for name, value in parts.items())
    renewable_available = total(w.pv_available_mw + w.wind_available_mw)
    renewable_used = total(plan.renewable_used_mw)
    return {
        "benefit_usd": benefit,
        **parts,
        "emissions_tco2": emissions,
        "emissions_import_tco2": emissions_import,
        "emissions_generator_tco2": emissions_generator,
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
