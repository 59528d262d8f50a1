"""`aidc plan`: the offline study table (one MILP over the scenario's run per variant).

The parser lives in :mod:`simulator.cli`; this module does the work."""

from __future__ import annotations

import argparse

import pandas as pd

PLAN_ROWS = {
    "benefit_usd": "total benefit (USD)",
    "job_reward_usd": "  job rewards",
    "inference_value_usd": "  inference value",
    "unserved_penalty_usd": "  - unserved penalty",
    "import_cost_usd": "  - import cost",
    "export_revenue_usd": "  export revenue",
    "fuel_cost_usd": "  - fuel cost",
    "battery_degradation_usd": "  - battery degradation",
    "carbon_cost_usd": "  - carbon cost",
    "budget_penalty_usd": "  - budget penalty",
    "tail_energy_cost_usd": "  - tail energy",
    "battery_terminal_value_usd": "  terminal battery value",
    "emissions_tco2": "emissions (tCO2)",
    "budget_use_fraction": "budget use (fraction)",
    "inference_served_mreq": "inference served (M req)",
    "inference_dropped_mreq": "inference dropped (M req)",
    "jobs_started": "jobs completed",
    "energy_import_mwh": "energy imported (MWh)",
    "energy_export_mwh": "energy exported (MWh)",
    "curtailment_mwh": "curtailment (MWh)",
    "solve_s": "solve time (s)",
    "gap": "MIP gap",
}


def format_plan_table(table: pd.DataFrame) -> str:
    """KPIs as rows, variants as columns, with readable labels and units."""
    shown = table[[c for c in PLAN_ROWS if c in table.columns]].T
    shown.index = [PLAN_ROWS[c] for c in shown.index]

    def cell(value: object, row: str) -> str:
        if not isinstance(value, int | float):
            return str(value)
        if row in ("MIP gap", "budget use (fraction)"):
            return f"{value:.4f}" if row == "MIP gap" else f"{value:.3f}"
        if row == "solve time (s)":
            return f"{value:.2f}"
        if row == "jobs completed":
            return f"{int(value)}"
        return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"

    text = shown.apply(lambda column: [cell(v, r) for v, r in zip(column, shown.index, strict=True)])
    text.index = shown.index
    return text.to_string()


def format_gain_curve(curve: pd.DataFrame) -> str:
    """The gain curve (:func:`optimizer.offline.generation_gain_curve`) as a table: one row per
    generation scale, the joint model's gain over each baseline (USD) and its emissions."""
    columns = {c: f"gain over {c.removeprefix('gain_over_').removesuffix('_usd')} (USD)"
               for c in curve.columns if c.startswith("gain_over_")}
    shown = curve[list(columns)].rename(columns=columns)
    shown["joint emissions (tCO2)"] = curve["joint_emissions_tco2"]
    shown.index = [f"{scale:g}x" for scale in curve.index]
    shown.index.name = "generation scale"
    text = shown.apply(lambda column: [f"{v:,.1f}" if "tCO2" in column.name else f"{v:,.0f}" for v in column])
    text.index = shown.index
    return text.to_string()


def run_offline_study(args: argparse.Namespace, variants: list[str]) -> int:
    """Solve, print the table(s); for a study pair (:func:`optimizer.offline.is_study_pair`) also
    the generation-rich gain over the generation scale and the study's findings; optionally
    write CSV (see `aidc plan --help`)."""
    from optimizer.offline import GAIN_BASELINES, generation_gain_curve, is_study_pair, offline_table, study_findings
    from optimizer.solvers import SolveOptions
    from scenarios import load_scenario

    scenario = load_scenario(args.scenario)
    rich = load_scenario(args.compare_rich) if args.compare_rich else None
    from simulator.progress import progress_bar

    options = SolveOptions(solver=args.solver, time_limit_s=args.time_limit, mip_gap=args.gap)
    quiet = getattr(args, "quiet", False)
    n_solves = len(variants) * (2 if rich is not None else 1)
    with progress_bar(quiet, total=n_solves, desc="plan", unit="solve", leave=False) as bar:
        started: list[str] = []  # the bar names the variant being solved and moves on when the next one starts

        def solving(name: str, where: str) -> None:
            if started:
                bar.update()
            started.append(name)
            bar.set_postfix_str(f"{where}: {name}")

        table = offline_table(scenario, variants, options, on_variant=lambda name: solving(name, scenario.name))
        rich_table = (offline_table(rich, variants, options, on_variant=lambda name: solving(name, rich.name))
                      if rich is not None else None)
        bar.update()
    print(f"{scenario.name}: offline study, {scenario.run.days:g} day(s), solver {table['solver'].iloc[0]}")
    print(format_plan_table(table))
    if rich is not None and rich_table is not None:
        print(f"\n{rich.name}:")
        print(format_plan_table(rich_table))
    if rich is None:
        print("\n(the study's findings are checked for a study pair: --compare-rich with this scenario at a "
              "larger generation_scale)")
    elif not is_study_pair(scenario, rich):
        print(f"\n(the study's findings are not checked: {rich.name} is not {scenario.name} with a larger "
              "generation_scale and nothing else changed, so the pair is not the study's)")
    elif "joint" in table.index and len(table) > 1:  # the findings compare joint with the other variants
        baselines = [b for b in GAIN_BASELINES if b in variants]
        curve = generation_gain_curve(scenario, baselines=baselines, solve_options=options) if baselines else None
        if curve is not None:
            print(f"\ngeneration-rich gain of joint over the generation scale ({scenario.name} with PV and wind "
                  "scaled):")
            print(format_gain_curve(curve))
        print("\nfindings:")
        for finding, holds, numbers in study_findings(table, rich_table, curve, scenario.generation_scale):
            print(f"  [{'yes' if holds else 'NO '}] {finding}: {numbers}")
    else:
        print("\n(the study's gain curve and findings compare joint with compute-only and energy-only: "
              "--variants needs joint and at least one of them)")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        output = table if rich is None else pd.concat({scenario.name: table, rich.name: rich_table})
        output.to_csv(args.out)
        print(f"\nwrote {args.out}")
    return 0
