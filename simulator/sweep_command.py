"""``aidc sweep`` (wired into :mod:`simulator.cli`); the work is :mod:`simulator.sweep`.

This module imports only argparse at load time, so ``aidc --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from optimizer.defaults import SOLVER_NAMES
from simulator.commands import add_days_arguments, add_mpc_arguments, check_solver, non_negative_int

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from scenarios.schema import Scenario
    from simulator.sweep_grid import SweepGrid

#: (KPI, label, format) in the table printed after a sweep
SWEEP_KPIS = (
    ("benefit_usd", "benefit (USD)", "{:,.0f}"),
    ("regret_usd", "regret (USD)", "{:,.0f}"),
    ("emissions_tco2", "emissions (tCO2)", "{:,.1f}"),
    ("budget_use_fraction", "budget use", "{:.1%}"),
    ("inference_served_fraction", "served", "{:.2%}"),
    ("jobs_completed", "jobs done", "{:.1f}"),
    ("fallbacks", "fallbacks", "{:.1f}"),
)

#: KPIs that count things: printed as integers when every seed has the same count
COUNT_KPIS = frozenset({"jobs_completed", "fallbacks"})


def _same_integer(values: np.ndarray) -> bool:
    import numpy as np

    finite = values[np.isfinite(values)]
    return bool(finite.size) and bool((finite == np.round(finite)).all()) and bool((finite == finite[0]).all())


def add_sweep_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "sweep", help="grid of closed-loop runs (controllers x forecasts x seeds x variants), resumable",
        description="Run a grid of closed-loop simulations on a local process pool (default) or a Dask cluster. "
                    "Each run is written atomically into OUT/runs/; re-running skips finished runs. Writes "
                    "OUT/runs.{parquet,csv} (one row per run) and OUT/summary.{parquet,csv} (mean, std and count "
                    "over seeds per variant, controller, forecast and KPI). Heuristic controllers use no forecast "
                    "and run once per seed and variant (forecast n/a). Exit 1 if a run failed.",
        epilog="example: aidc sweep us-3site --days 1 --controllers mpc,greedy,local "
               "--forecasts 'perfect;noisy:sigma_24h=0.1;noisy:sigma_24h=0.3' --seeds 1-3 --bound --out results/errors",
    )
    parser.add_argument("scenario", nargs="?", help="built-in name or TOML file (or give it in --grid)")
    parser.add_argument("--grid", type=Path, metavar="FILE.toml",
                        help="the grid as TOML (see simulator/sweep_grid.py); options given here override it")
    parser.add_argument("--out", type=Path, required=True, help="sweep folder (created; an existing sweep resumes)")
    parser.add_argument("--controllers", help="comma-separated (default mpc,greedy,local)")
    parser.add_argument("--forecasts",
                        help="forecaster specs for the MPC controllers, separated by ';' (or by commas before a new "
                             "name: perfect,noisy:sigma_24h=0.1,rho=0.8,ets); default perfect")
    parser.add_argument("--seeds", help="e.g. 1-5 or 1,4,9 (default 1-3)")
    add_days_arguments(parser, budget_default=None)
    parser.add_argument("--scenario-variant", action="append", dest="variants", metavar="[NAME:]FIELD=VALUE,...",
                        help="a scenario variant (repeat for several), e.g. rich:generation_scale=2 or "
                             "carbon.price_usd_per_tco2=60; 'base' = no overrides (default: base only; given "
                             "variants replace base unless one of them is 'base')")
    parser.add_argument("--solver", choices=SOLVER_NAMES)
    add_mpc_arguments(parser, defaults=False)
    parser.add_argument("--bound", action="store_true", default=None,
                        help="also solve each run's hindsight bound (regret_usd)")
    parser.add_argument("--workers", type=non_negative_int, default=2,
                        help="worker processes (default 2; 0 = one after the other in this process)")
    parser.add_argument("--dask", metavar="local|tcp://HOST:PORT",
                        help="run on Dask: 'local' starts a LocalCluster of --workers processes; an address "
                             "connects to that scheduler (OUT must be on a filesystem its workers share)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (there is none either when stderr is not a terminal)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="nothing on stderr but errors: no progress bar, no notes")
    return parser


def run_sweep(args: argparse.Namespace) -> int:
    from simulator.errors import UserError
    from simulator.sweep import SweepSpecError

    if args.workers < 0:
        raise UserError(f"--workers must be 0 or more, got {args.workers}")
    if args.dask is not None and args.dask != "local" and "://" not in args.dask:
        raise UserError(f"--dask: give 'local' or a scheduler address like tcp://host:8786, got {args.dask[:80]!r}")
    try:
        grid = _grid(args)
        scenarios = grid.scenarios()  # every variant checked, over --days, before any run
        if args.variants and "base" not in scenarios and not args.quiet:
            # a sweep runs exactly the variants it is given (aidc compare keeps base next to them)
            print("aidc: note: the sweep runs only the given scenario variant(s); add --scenario-variant base to "
                  "include the base scenario", file=sys.stderr)
        check_solver(next(iter(scenarios.values())), list(grid.controllers), grid.solver)
        return _run(grid, args, scenarios)
    except SweepSpecError as error:
        raise UserError(str(error)) from None


def print_budgets(grid: SweepGrid, scenarios: dict[str, Scenario]) -> None:
    """The carbon budget each variant's runs use (``--days`` never changes it silently)."""
    from scenarios.io import budget_note

    notes = {name: budget_note(scenario, grid.days, grid.budget_scale) for name, scenario in scenarios.items()}
    if len(set(notes.values())) == 1:
        note = next(iter(notes.values()))
        if note:
            print(note)
        return
    for name, note in notes.items():
        print(f"{name}: {note or 'no carbon budget'}")


def _grid(args: argparse.Namespace) -> SweepGrid:
    from simulator.errors import UserError
    from simulator.sweep import ScenarioVariant, SweepGrid, split_forecasts

    options: dict[str, object] = {
        "scenario": args.scenario,
        "controllers": args.controllers,
        "forecasts": split_forecasts(args.forecasts) if args.forecasts is not None else None,
        "seeds": args.seeds,
        "days": args.days,
        "budget_scale": args.budget_scale,
        "solver": args.solver,
        "time_limit_s": args.time_limit,
        "mip_gap": args.gap,
        "horizon_hours": args.horizon_hours,
        "fine_hours": args.fine_hours,  # 0.0 = full resolution; None = not given
        "coarse_factor": args.coarse_factor,
        "bound": args.bound,
        "variants": [ScenarioVariant.parse(text) for text in args.variants] if args.variants else None,
    }
    if args.grid is not None:
        if not args.grid.is_file():
            raise FileNotFoundError(2, "No such file", str(args.grid))
        return SweepGrid.from_toml(args.grid, **options)
    if args.scenario is None:
        raise UserError("sweep: give a scenario (built-in name or TOML file) or --grid FILE.toml")
    return SweepGrid.from_mapping({key: value for key, value in options.items() if value is not None},
                                  where="aidc sweep")


def _run(grid: SweepGrid, args: argparse.Namespace, scenarios: dict[str, Scenario]) -> int:
    from simulator.plots import plot_comparison, plot_kpi_vs_forecast_error
    from simulator.sweep import run_sweep as sweep

    outcome = sweep(grid, args.out, workers=args.workers, dask=args.dask,
                    progress=not (args.no_progress or args.quiet))
    runs, folder = outcome.runs, outcome.folder
    print(f"{grid.scenario}: {outcome.total} runs: {outcome.ran} ran, {outcome.skipped} already finished, "
          f"{len(outcome.failed)} failed; {outcome.wall_s:.1f} s")
    print_budgets(grid, scenarios)
    if len(runs):
        print(summary_table(runs))
        written = ["runs.parquet", "runs.csv", "summary.parquet", "summary.csv"]
        plot_comparison(runs, "benefit_usd", path=folder / "benefit.png")
        written.append("benefit.png")
        if runs["forecast_sigma_24h"].nunique() > 1:
            kpi = "regret_usd" if "regret_usd" in runs.columns else "benefit_usd"
            plot_kpi_vs_forecast_error(runs, kpi, path=folder / f"{kpi}_vs_forecast_error.png")
            written.append(f"{kpi}_vs_forecast_error.png")
        print(f"wrote {folder}/ ({', '.join(written)}; one folder per run in runs/)")
    sys.stdout.flush()
    for run_id, message in outcome.failed.items():
        print(f"failed {run_id}: {message}", file=sys.stderr)
    if outcome.failed:
        print(f"aidc: {len(outcome.failed)} run(s) failed; run the same command again to retry them",
              file=sys.stderr)
    return 1 if outcome.failed else 0


def summary_table(runs: pd.DataFrame) -> str:
    """One line per (variant, controller, forecast): the main KPIs as mean ± std over seeds."""
    from simulator.commands import format_mean_std

    frame = runs
    keys = ["variant", "controller", "forecast"]
    shown = [(key, label, fmt) for key, label, fmt in SWEEP_KPIS
             if key in frame.columns and frame[key].notna().any()]
    header = ["variant", "controller", "forecast", "runs", *(label for _, label, _ in shown)]
    rows = []
    for group_keys, group in frame.groupby(keys, sort=False):
        cells = [*map(str, group_keys), str(len(group))]
        for key, _, fmt in shown:
            values = group[key].to_numpy(dtype=float)
            if key in COUNT_KPIS and _same_integer(values):  # a count, equal on every seed: 6, not 6.0
                fmt = "{:,.0f}"
            cells.append(format_mean_std(values, fmt))
        rows.append(cells)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        text = [cell.ljust(width) for cell, width in zip(row[:3], widths[:3], strict=True)]
        text += [cell.rjust(width) for cell, width in zip(row[3:], widths[3:], strict=True)]
        lines.append("  ".join(text))
    return "\n".join(lines)
