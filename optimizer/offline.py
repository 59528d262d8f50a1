"""The offline study (SPEC §1, §4): one MILP over the scenario's whole run, per variant, as a table."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
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
    scenario: Scenario, variants: Sequence[str] = tuple(VARIANTS), solve_options: SolveOptions | None = None,
    on_variant: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Solve the run as one window for each variant; one row per variant, KPIs as columns.
    ``on_variant(name)`` is called before each variant's solve (progress)."""
    window = offline_inputs(scenario)
    rows = {}
    for variant in variants:
        if on_variant is not None:
            on_variant(variant)
        result = run_variant(window, variant, solve_options)
        rows[variant] = {
            **result.kpis, "solve_s": result.solve.wall_s, "gap": result.solve.gap, "status": result.solve.status,
            "solver": result.solve.solver,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "variant"
    return table[[c for c in TABLE_COLUMNS if c in table.columns] + ["solver"]]


#: the generation scales of the study's gain curve: 1x to 6x in steps of 0.5
GAIN_CURVE_SCALES: tuple[float, ...] = tuple(float(x) for x in np.arange(1.0, 6.0 + 1e-9, 0.5))
GAIN_BASELINES = ("compute-only", "energy-only")


def is_study_pair(base: Scenario, rich: Scenario) -> bool:
    """True when ``rich`` is ``base`` with a larger ``generation_scale`` and nothing else changed
    but the name and description: the pair the study's findings are about (``paper-day`` and
    ``paper-day-genrich``)."""
    keep = {"name", "description", "generation_scale"}
    return (rich.generation_scale > base.generation_scale
            and base.model_dump(exclude=keep) == rich.model_dump(exclude=keep))


def generation_gain_curve(
    scenario: Scenario, scales: Sequence[float] = GAIN_CURVE_SCALES, baselines: Sequence[str] = GAIN_BASELINES,
    solve_options: SolveOptions | None = None,
) -> pd.DataFrame:
    """The joint model's gain over each baseline as a function of the local generation scale.

    For each scale the scenario's ``generation_scale`` is set to it (PV and wind capacities times
    the scale) and the run is planned offline by ``joint`` and each baseline. One row per scale
    (index ``generation_scale``): ``joint_benefit_usd``, ``<baseline>_benefit_usd``,
    ``gain_over_<baseline>_usd`` (joint minus baseline, USD), ``joint_emissions_tco2`` and
    ``joint_gap`` (the joint solve's certified MIP gap: a gain is exact only to about that
    fraction of the joint benefit).
    """
    rows = {}
    for scale in scales:
        scaled = scenario.model_copy(update={"generation_scale": float(scale)})
        table = offline_table(scaled, ("joint", *baselines), solve_options)
        benefit = table["benefit_usd"]
        row: dict[str, float] = {"joint_benefit_usd": float(benefit["joint"])}
        for baseline in baselines:
            row[f"{baseline}_benefit_usd"] = float(benefit[baseline])
            row[f"gain_over_{baseline}_usd"] = float(benefit["joint"] - benefit[baseline])
        row["joint_emissions_tco2"] = float(table["emissions_tco2"]["joint"])
        row["joint_gap"] = float(table["gap"]["joint"])
        rows[float(scale)] = row
    curve = pd.DataFrame.from_dict(rows, orient="index")
    curve.index.name = "generation_scale"
    return curve


def curve_findings(curve: pd.DataFrame, base_scale: float = 1.0) -> list[tuple[str, bool, str]]:
    """The generation-rich finding over the whole curve: for each baseline, is the joint model's
    gain larger than at ``base_scale`` at every larger scale? (finding, holds, where it does and
    where not)."""
    findings = []
    base_scale = float(base_scale)
    for column in [c for c in curve.columns if c.startswith("gain_over_")]:
        baseline = column.removeprefix("gain_over_").removesuffix("_usd")
        if base_scale not in curve.index:
            continue
        at_base = curve.loc[base_scale, column]
        larger = curve.loc[curve.index > base_scale, column]
        if not len(larger):
            continue
        holds = larger > at_base
        yes = ", ".join(f"{x:g}x" for x in larger.index[holds]) or "none"
        no = ", ".join(f"{x:g}x" for x in larger.index[~holds])
        findings.append((
            f"joint's gain over {baseline} is larger than at {base_scale:g}x at every scale up to "
            f"{larger.index.max():g}x",
            bool(holds.all()),
            f"{at_base:,.0f} USD at {base_scale:g}x; larger at {yes}" + (f"; not at {no}" if no else ""),
        ))
    return findings


def study_findings(
    base: pd.DataFrame, rich: pd.DataFrame | None = None, curve: pd.DataFrame | None = None, base_scale: float = 1.0,
) -> list[tuple[str, bool, str]]:
    """The seed study's findings, checked on offline tables: (finding, holds, numbers).

    ``base`` needs the ``joint`` row and at least one other variant (else no finding is
    checked: an empty list). ``rich`` adds the generation-rich finding at its one scale,
    ``curve`` (:func:`generation_gain_curve`) the same finding over every scale
    (:func:`curve_findings`, against ``base_scale``)."""
    if "joint" not in base.index or len(base) < 2:
        return []
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
                    f"joint's gain over {baseline} is larger with rich local generation (the rich scenario)",
                    bool(gain_rich > gain_base),
                    f"{gain_rich:,.0f} vs {gain_base:,.0f} USD",
                ))
    if curve is not None:
        findings.extend(curve_findings(curve, base_scale))
    return findings
