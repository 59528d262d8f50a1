"""The offline study (SPEC §1, §4): one MILP over the scenario's whole run, per variant, as a table."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from optimizer.solvers import SolveOptions
from optimizer.variants import VARIANTS, run_variant
from optimizer.window import offline_inputs
from scenarios.schema import Scenario

TABLE_COLUMNS = (
    "benefit_usd", "job_reward_usd", "inference_value_usd", "unserved_penalty_usd", "import_cost_usd",
    "export_revenue_usd", "fuel_cost_usd", "battery_degradation_usd", "carbon_cost_usd", "budget_penalty_usd",
    "tail_energy_cost_usd", "battery_terminal_value_usd", "emissions_tco2", "budget_use_fraction",
    "inference_served_mreq", "inference_dropped_mreq", "jobs_started", "jobs_total", "energy_import_mwh",
    "energy_export_mwh", "curtailment_mwh", "solve_s", "gap", "status",
)


def offline_table(
    scenario: Scenario, variants: Sequence[str] = tuple(VARIANTS), solve_options: SolveOptions | None = None
) -> pd.DataFrame:
    """Solve the run as one window for each variant; one row per variant, KPIs as columns."""
    window = offline_inputs(scenario)
    rows = {}
    for variant in variants:
        result = run_variant(window, variant, solve_options)
        rows[variant] = {
            **result.kpis, "solve_s": result.solve.wall_s, "gap": result.solve.gap, "status": result.solve.status,
            "solver": result.solve.solver,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "variant"
    return table[[c for c in TABLE_COLUMNS if c in table.columns] + ["solver"]]


def study_findings(base: pd.DataFrame, rich: pd.DataFrame | None = None) -> list[tuple[str, bool, str]]:
    """The seed study's findings, checked on offline tables: (finding, holds, numbers)."""
    benefit, emissions = base["benefit_usd"], base["emissions_tco2"]
    findings = []
    others = benefit.drop("joint")
    # the joint model is optimal only up to its MIP gap
    tolerance = max(float(base["gap"]["joint"]) if "gap" in base else 0.0, 1e-6) * abs(benefit["joint"])
    findings.append((
        "joint has the highest benefit of all variants (within the joint MIP gap)",
        bool((benefit["joint"] >= others - tolerance).all()),
        f"joint {benefit['joint']:,.0f} vs best other {others.max():,.0f} ({others.idxmax()})",
    ))
    for baseline in ("compute-only", "energy-only"):
        if baseline in emissions:
            findings.append((
                f"joint emits less than {baseline}",
                bool(emissions["joint"] < emissions[baseline]),
                f"{emissions['joint']:,.1f} vs {emissions[baseline]:,.1f} tCO2",
            ))
    if {"no-routing", "no-battery"} <= set(benefit.index):
        routing_loss = benefit["joint"] - benefit["no-routing"]
        battery_loss = benefit["joint"] - benefit["no-battery"]
        findings.append((
            "removing routing costs more benefit than removing the battery",
            bool(routing_loss > battery_loss),
            f"routing {routing_loss:,.0f} vs battery {battery_loss:,.0f} USD",
        ))
    if rich is not None:
        for baseline in ("compute-only", "energy-only"):
            if baseline in benefit and baseline in rich["benefit_usd"]:
                gain_base = benefit["joint"] - benefit[baseline]
                gain_rich = rich["benefit_usd"]["joint"] - rich["benefit_usd"][baseline]
                findings.append((
                    f"joint's gain over {baseline} is larger with rich local generation",
                    bool(gain_rich > gain_base),
                    f"{gain_rich:,.0f} vs {gain_base:,.0f} USD",
                ))
    return findings
