"""``aidc compare``: controllers side by side on common random numbers, run like a sweep.

The comparison is a sweep grid (controllers x one forecast x seeds x scenario variants) run by
:func:`simulator.sweep.run_sweep` on a local process pool or Dask: with ``--runs DIR`` its run
folders are kept there and the same command resumes (finished runs are skipped); without, they
live in a temporary folder removed at the end. Every controller sees the same traffic, weather,
prices, jobs and forecast errors on a seed, so the per-seed differences between two controllers
come from the policies alone: :func:`paired_differences` reports their mean with a Student-t
confidence interval over the seeds.

This module imports only argparse at load time (``aidc --help`` stays fast).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from simulator.commands import (
    CONTROLLER_NAMES,
    MAIN_KPIS,
    USER_CLASS_HINT,
    _add_common,
    _user_error,
    check_controllers,
    check_forecast,
    check_mpc_settings,
    check_output,
    check_solver,
    compare_table,
    controllers_epilog,
    non_negative_int,
    parse_seeds,
)
from simulator.controllers import controller_names

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from scenarios.schema import Scenario
    from simulator.sweep_grid import SweepGrid

#: KPIs of the paired-difference table: the main ones without wall-clock times
PAIRED_KPIS = tuple((key, label, fmt) for key, label, fmt in MAIN_KPIS
                    if not key.startswith(("solve_s", "decide_s")))
#: the confidence level of the intervals
CONFIDENCE = 0.95


def add_compare_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compare", help="controllers side by side on common random numbers, with paired differences",
        description=textwrap.fill(
            "Run each controller on each seed (every controller sees the same traffic, weather, prices, jobs and "
            "forecast errors on a seed) on a process pool or Dask, print the main KPIs as mean ± std over the "
            f"seeds, and the paired differences to a reference controller with {CONFIDENCE:.0%} confidence "
            "intervals (Student t over the seeds' differences). Exit 1 if a run failed.", 79),
        epilog="example: aidc compare us-3site --controllers mpc,greedy,carbon_rule:CarbonRule --seeds 1-5 --days 1 "
               "--runs results/compare\n(run from the folder holding carbon_rule.py)\n\n" + controllers_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(parser)
    parser.add_argument("--controllers", default="mpc,greedy,local",
                        help=f"comma-separated specs, from: {', '.join(CONTROLLER_NAMES)}, {USER_CLASS_HINT} "
                             "(default mpc,greedy,local)")
    parser.add_argument("--reference", metavar="SPEC",
                        help="the controller the others are compared with, one of --controllers "
                             "(default mpc when compared, else the first)")
    parser.add_argument("--seeds", default="1-3", help="e.g. 1-5 or 1,4,9 (default 1-3)")
    parser.add_argument("--scenario-variant", action="append", dest="variants", metavar="[NAME:]FIELD=VALUE,...",
                        help="also compare on a scenario variant (repeat for several), e.g. rich:generation_scale=2; "
                             "base stays in unless --no-base")
    parser.add_argument("--no-base", action="store_true", help="with --scenario-variant: leave the base scenario out")
    parser.add_argument("--bound", action="store_true", help="also solve the hindsight bound (regret)")
    parser.add_argument("--runs", type=Path, metavar="DIR",
                        help="keep the run folders here (a sweep folder; the same command resumes, skipping "
                             "finished runs); default: a temporary folder, removed at the end")
    parser.add_argument("--workers", type=non_negative_int, default=2,
                        help="worker processes (default 2; 0 = one after the other in this process)")
    parser.add_argument("--dask", metavar="local|tcp://HOST:PORT",
                        help="run on Dask: 'local' starts a LocalCluster of --workers processes; an address "
                             "connects to that scheduler")
    parser.add_argument("--out", type=Path, help="write the per-run KPIs as CSV; refuses to overwrite unless --force")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    return parser


def run_compare(args: argparse.Namespace) -> int:
    controllers = controller_names(args.controllers)
    if not controllers:
        raise _user_error(f"--controllers: none given; choose from {', '.join(CONTROLLER_NAMES)}, {USER_CLASS_HINT}")
    if len(set(controllers)) != len(controllers):
        raise _user_error(f"--controllers: {args.controllers[:80]!r} names a controller twice")
    reference = args.reference or ("mpc" if "mpc" in controllers else controllers[0])
    if reference not in controllers:
        raise _user_error(f"--reference: {reference!r} is not one of --controllers ({', '.join(controllers)})")
    if args.no_base and not args.variants:
        raise _user_error("--no-base: give the variants to compare on with --scenario-variant")
    if args.dask is not None and args.dask != "local" and "://" not in args.dask:
        raise _user_error(f"--dask: give 'local' or a scheduler address like tcp://host:8786, got {args.dask[:80]!r}")
    seeds = parse_seeds(args.seeds)
    check_output(args.out, args.force, "KPI table")
    from scenarios import load_scenario
    from scenarios.io import with_days
    from simulator.sweep import SweepSpecError

    scenario = with_days(load_scenario(args.scenario), args.days, args.budget_scale)  # --days re-checks every rule
    check_forecast(args.forecast)
    check_mpc_settings(scenario, args)
    check_controllers(scenario, controllers, args, "--controllers")
    check_solver(scenario, controllers, args.solver)
    try:
        grid = _grid(args, controllers, seeds)
        scenarios = grid.scenarios()  # every variant checked, over --days, before any run
    except SweepSpecError as error:
        raise _user_error(str(error)) from None
    if args.runs is not None:  # the last check: it creates the folder, as the runs would
        check_runs_folder(args.runs)
    return _run(grid, args, controllers, reference, scenarios)


def check_runs_folder(path: Path) -> None:
    """Create the ``--runs`` folder, or refuse it in one line naming ``--runs`` (a file, a folder
    of other files, a path that cannot be created)."""
    from simulator.sweep import check_folder

    try:
        check_folder(path, "--runs")
    except OSError as error:
        reason = error.strerror if error.strerror and error.filename else str(error)
        raise _user_error(f"--runs {path}: cannot keep the run folders there: {reason}") from None


def _grid(args: argparse.Namespace, controllers: list[str], seeds: list[int]) -> SweepGrid:
    from simulator.sweep_grid import BASE, ScenarioVariant, SweepGrid

    variants = [ScenarioVariant.parse(text) for text in args.variants or ()]
    if any(variant.name == BASE.name and variant.overrides for variant in variants):
        raise _user_error(f"--scenario-variant: the name {BASE.name!r} is reserved for the scenario as given; "
                          "name your variant otherwise (e.g. rich:generation_scale=2)")
    if not args.no_base and BASE not in variants:
        variants.insert(0, BASE)  # a variant given alone is compared next to the base scenario
    if args.noise is not None:  # --noise on|off: the scenario's [noise] switch, in every variant
        variants = [ScenarioVariant(v.name, (*v.overrides, ("noise.enabled", args.noise == "on"))) for v in variants]
    options: dict[str, object] = {
        "scenario": args.scenario, "controllers": controllers, "forecasts": [args.forecast], "seeds": seeds,
        "variants": variants, "days": args.days, "solver": args.solver, "time_limit_s": args.time_limit,
        "mip_gap": args.gap, "horizon_hours": args.horizon_hours, "fine_hours": args.fine_hours,
        "coarse_factor": args.coarse_factor, "bound": args.bound, "budget_scale": args.budget_scale,
    }
    return SweepGrid.from_mapping({key: value for key, value in options.items() if value is not None},
                                  where="aidc compare")


def _run(grid: SweepGrid, args: argparse.Namespace, controllers: list[str], reference: str,
         scenarios: dict[str, Scenario]) -> int:
    from simulator.sweep import run_sweep
    from simulator.sweep_command import print_budgets
    from simulator.sweep_grid import BASE

    total = len(grid.runs())
    folder = args.runs if args.runs is not None else Path(tempfile.mkdtemp(prefix="aidc-compare-"))
    if not args.quiet:
        print(f"{grid.scenario}: {total} runs ({len(controllers)} controllers x {len(grid.seeds)} seeds x "
              f"{len(grid.variants)} scenario variant(s)) on "
              f"{_where(args)} ...",
              file=sys.stderr, flush=True)
    try:
        outcome = run_sweep(grid, folder, workers=args.workers, dask=args.dask, progress=not args.quiet)
    finally:
        if args.runs is None:
            shutil.rmtree(folder, ignore_errors=True)
    runs = outcome.runs
    for run_id, message in outcome.failed.items():
        print(f"failed {run_id}: {message}", file=sys.stderr)
    if len(runs) and "fallbacks" in runs.columns:
        for _, row in runs[runs["fallbacks"] > 0].iterrows():
            print(f"aidc: warning: {row['controller']} seed {row['seed']}: {row['fallbacks']:.0f} control steps "
                  "were decided by the fallback (KPI fallbacks; see the run's solver_log)", file=sys.stderr)
    days = runs["days"].iloc[0] if len(runs) else grid.days
    kept = f"run folders in {outcome.folder}/ ({outcome.ran} ran, {outcome.skipped} already finished)" \
        if args.runs is not None else "run folders not kept (--runs DIR keeps them and resumes)"
    print(f"{grid.scenario}: {days:g} days, seeds {', '.join(map(str, grid.seeds))}, forecast {grid.forecasts[0]}; "
          f"{kept}")
    print_budgets(grid, scenarios)
    for variant in grid.variants:
        rows = runs[runs["variant"] == variant.name] if len(runs) else runs
        present = [c for c in controllers if len(rows) and (rows["controller"] == c).any()]
        if len(grid.variants) > 1 or variant.name != BASE.name:
            print(f"\nscenario variant {variant.name}")
        for line in seed_counts(rows, controllers, len(grid.seeds)):
            print(line)
        if not present:
            continue
        print("mean ± std over seeds")
        print(compare_table(rows, present))
        others = [c for c in present if c != reference]
        if reference not in present:
            print(f"\nno paired differences vs {reference}: all runs of the reference failed")
        elif others:
            differences = paired_differences(rows, reference, others)
            per = differences.groupby("controller", sort=False)["n"].max() if len(differences) else None
            counts = sorted({int(n) for n in per}) if per is not None else [0]
            n = counts[-1]
            if per is not None and len(counts) > 1:
                both = ", ".join(f"{controller} {int(per[controller])}" for controller in others if controller in per)
                interval = f"[{CONFIDENCE:.0%} CI, Student t over the seeds both ran: {both}]"
            else:
                interval = f"[{CONFIDENCE:.0%} CI, Student t over {n} seeds]" if n > 1 else "(one seed: no interval)"
            print(f"\npaired differences vs {reference} (controller - {reference}, same seed): mean {interval}")
            print(differences_table(differences, others))
    if args.out is not None:
        runs.to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    if outcome.failed:
        print(f"aidc: {len(outcome.failed)} run(s) failed", file=sys.stderr)
    return 1 if outcome.failed else 0


def seed_counts(rows: pd.DataFrame, controllers: list[str], seeds: int) -> list[str]:
    """A line per controller with fewer finished runs than ``seeds`` (its runs failed): the table's
    mean ± std of that controller is over the seeds it finished."""
    lines = []
    for controller in controllers:
        done = int((rows["controller"] == controller).sum()) if len(rows) else 0
        if done < seeds:
            lines.append(f"{controller}: over {done} of {seeds} seeds ({seeds - done} failed)" if done
                         else f"{controller}: all {seeds} runs failed")
    return lines


def _where(args: argparse.Namespace) -> str:
    if args.dask:
        return f"Dask {args.dask}"
    return f"{args.workers} worker process(es)" if args.workers else "this process"


def paired_differences(runs: pd.DataFrame, reference: str, controllers: list[str],
                       kpis: tuple[tuple[str, str, str], ...] = PAIRED_KPIS,
                       confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per controller and KPI: the differences ``KPI(controller, seed) - KPI(reference, seed)``
    over the seeds both ran (common random numbers: the same draws), their mean, standard
    deviation (ddof 1), count ``n`` and the two-sided Student-t confidence interval
    ``mean ± t_{(1+confidence)/2, n-1} · std / sqrt(n)`` (NaN bounds for n < 2; the
    differences of a seed are one paired observation, so the interval needs no assumption about
    the spread between seeds of either controller alone). One scenario variant at a time.
    """
    import numpy as np
    import pandas as pd

    columns = ["controller", "kpi", "mean", "std", "n", "low", "high"]
    rows = []
    base = runs[runs["controller"] == reference].set_index("seed")
    for controller in controllers:
        other = runs[runs["controller"] == controller].set_index("seed")
        seeds = base.index.intersection(other.index)
        for key, _, _ in kpis:
            if key not in runs.columns:
                continue
            difference = (other.loc[seeds, key].astype(float) - base.loc[seeds, key].astype(float)).to_numpy()
            difference = difference[np.isfinite(difference)]
            mean, std, low, high = paired_interval(difference, confidence)
            rows.append({"controller": controller, "kpi": key, "mean": mean, "std": std, "n": difference.size,
                         "low": low, "high": high})
    return pd.DataFrame(rows, columns=columns)


def paired_interval(differences: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float, float]:
    """``(mean, std, low, high)`` of paired differences (any shape, flattened): the standard
    deviation with ddof 1 and the two-sided Student-t interval
    ``mean ± t_{(1+confidence)/2, n-1} · std / sqrt(n)``; NaN std and bounds for fewer than two
    pairs, NaN mean for none."""
    import numpy as np
    from scipy import stats

    d = np.asarray(differences, dtype=float).ravel()
    n = d.size
    mean = float(d.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(d.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * std / math.sqrt(n))
    return mean, std, mean - half, mean + half


def differences_table(differences: pd.DataFrame, controllers: list[str]) -> str:
    """Rows = KPIs, columns = controllers, cells = ``mean [low, high]`` (signed). KPIs equal for
    every controller on every seed (all differences 0) are left out."""
    labels = {key: (label, fmt) for key, label, fmt in PAIRED_KPIS}
    header = ["KPI", *controllers]
    body = []
    spread = differences.assign(zero=(differences["mean"] == 0) & ((differences["std"] == 0) | (differences["n"] < 2)))
    for key in dict.fromkeys(differences["kpi"]):
        if spread.loc[spread["kpi"] == key, "zero"].all():
            continue
        label, fmt = labels.get(key, (key, "{:,.3g}"))
        cells = [label]
        for controller in controllers:
            row = differences[(differences["controller"] == controller) & (differences["kpi"] == key)]
            if row.empty or not math.isfinite(row["mean"].iloc[0]):
                cells.append("-")
                continue
            mean, low, high = (float(row[c].iloc[0]) for c in ("mean", "low", "high"))
            signed = fmt.replace("{:", "{:+", 1)  # "{:,.0f}" -> "{:+,.0f}"
            text = signed.format(mean)
            if math.isfinite(low):
                text += f" [{signed.format(low)}, {signed.format(high)}]"
            cells.append(text)
        body.append(cells)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join([row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                                     strict=True))])
                     for row in [header, *body])
