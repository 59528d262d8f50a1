"""``aidc run`` and ``aidc compare`` (wired into :mod:`simulator.cli`).

This module imports only argparse at load time; the simulator, pandas and the solver are
imported inside the ``run_*`` functions so ``aidc --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from optimizer.defaults import MPC_DEFAULTS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

CONTROLLER_NAMES = ("mpc", "mpc-compute-only", "mpc-energy-only", "greedy", "local")  # simulator.CONTROLLERS
#: KPIs in the tables of ``run`` and ``compare``: (key, label, format)
MAIN_KPIS = (
    ("benefit_usd", "benefit (USD)", "{:,.0f}"),
    ("regret_usd", "regret vs bound (USD)", "{:,.0f}"),
    ("job_reward_usd", "job rewards (USD)", "{:,.0f}"),
    ("inference_value_usd", "inference value (USD)", "{:,.0f}"),
    ("unserved_penalty_usd", "unserved penalty (USD)", "{:,.0f}"),
    ("import_cost_usd", "import cost (USD)", "{:,.0f}"),
    ("export_revenue_usd", "export revenue (USD)", "{:,.0f}"),
    ("fuel_cost_usd", "fuel cost (USD)", "{:,.0f}"),
    ("carbon_cost_usd", "carbon cost (USD)", "{:,.0f}"),
    ("budget_penalty_usd", "budget penalty (USD)", "{:,.0f}"),
    ("emissions_tco2", "emissions (tCO2)", "{:,.1f}"),
    ("budget_use_fraction", "budget use", "{:.1%}"),
    ("energy_import_mwh", "imported (MWh)", "{:,.0f}"),
    ("energy_export_mwh", "exported (MWh)", "{:,.0f}"),
    ("base_load_energy_mwh", "base load (MWh)", "{:,.0f}"),
    ("unmet_energy_mwh", "unmet load (MWh)", "{:,.1f}"),
    ("renewable_self_consumption_fraction", "renewables used on site", "{:.1%}"),
    ("curtailment_mwh", "curtailed (MWh)", "{:,.1f}"),
    ("battery_throughput_mwh", "battery throughput (MWh)", "{:,.0f}"),
    ("generator_mwh", "generator (MWh)", "{:,.1f}"),
    ("inference_served_fraction", "inference served", "{:.2%}"),
    ("mean_rtt_ms", "mean RTT served (ms)", "{:.1f}"),
    ("jobs_completed", "jobs completed", "{:.0f}"),
    ("jobs_running_at_end", "jobs running at end", "{:.0f}"),
    ("jobs_dropped", "jobs dropped", "{:.0f}"),
    ("jobs_never_started", "jobs never started", "{:.0f}"),
    ("solve_s_mean", "solve s (mean)", "{:.2f}"),
    ("solve_s_p95", "solve s (p95)", "{:.2f}"),
    ("solve_s_max", "solve s (max)", "{:.2f}"),
    ("decide_s_max", "decide s (max; forecast+build+solve)", "{:.2f}"),
    ("fallbacks", "fallbacks", "{:.0f}"),
)


def _user_error(message: str) -> Exception:
    from simulator.errors import UserError

    return UserError(message)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", help="built-in name or TOML file")
    parser.add_argument("--forecast", default="perfect",
                        help="forecaster spec for MPC controllers, e.g. perfect, noisy:sigma_24h=0.2, ets "
                             "(default perfect)")
    parser.add_argument("--solver", choices=("highs", "gurobi", "auto"), default="highs")
    parser.add_argument("--time-limit", type=float, default=MPC_DEFAULTS.time_limit_s,
                        help=f"seconds per MPC solve (default {MPC_DEFAULTS.time_limit_s:g})")
    parser.add_argument("--days", type=float, help="run length (default: the scenario's)")
    parser.add_argument("--noise", choices=("on", "off"),
                        help="realisation noise on traffic, weather and prices; off replays the series exactly "
                             "(default: the scenario's [noise] table, on)")


# ---------------------------------------------------------------------------------------------
# aidc run

def add_run_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "run", help="closed-loop simulation of one controller",
        description="Simulate the scenario in closed loop under one controller, print the KPIs, and write a "
                    "result folder (Parquet + JSON) with a dispatch plot.",
    )
    _add_common(parser)
    parser.add_argument("--controller", choices=CONTROLLER_NAMES, default="mpc")
    parser.add_argument("--seed", type=int, help="seed of every random stream (default: the scenario's)")
    parser.add_argument("--out", type=Path, help="result folder; refuses an existing one unless --force")
    parser.add_argument("--force", action="store_true", help="replace an existing --out folder")
    parser.add_argument("--bound", action="store_true", help="also solve the perfect-information bound (regret)")
    return parser


def run_run(args: argparse.Namespace) -> int:
    if args.out is not None and args.out.exists() and not args.force:
        raise FileExistsError(f"{args.out}: result folder exists; use --force to replace it")
    import time

    from scenarios import load_scenario
    from simulator import make_controller, simulate
    from simulator.plots import plot_dispatch
    from simulator.processes import NoiseParameters

    scenario = load_scenario(args.scenario)
    seed = scenario.run.seed if args.seed is None else args.seed
    began = time.perf_counter()
    if args.time_limit <= 0:
        raise _user_error(f"--time-limit must be positive, got {args.time_limit:g}")
    controller = make_controller(args.controller, scenario, forecast=args.forecast, solver=args.solver,
                                 time_limit_s=args.time_limit, seed=seed)
    noise = NoiseParameters.for_scenario(scenario, args.noise)
    result = simulate(scenario, controller, days=args.days, seed=seed, progress=True, bound=args.bound, noise=noise)
    wall = time.perf_counter() - began
    manifest = result.manifest
    print(f"{manifest['scenario']}: {args.controller}, forecast {manifest['forecaster'] or '-'}, "
          f"{manifest['days']:g} days, seed {seed}, {wall:.1f} s")
    print(format_kpis(result.kpis))
    if args.out is not None:
        folder = result.save(args.out, force=args.force,
                             extras=lambda temporary: plot_dispatch(result, temporary / "dispatch.png"))
        print(f"wrote {folder}/ (ticks, routing, jobs, solver_log, events .parquet; kpis.json, manifest.json, "
              f"dispatch.png)")
    return 0


def format_kpis(kpis: dict[str, object]) -> str:
    """A two-column table of the main KPIs (those present)."""
    rows = [(label, fmt.format(kpis[key])) for key, label, fmt in MAIN_KPIS
            if key in kpis and kpis[key] == kpis[key]]
    rows.append(("tick (µs, plant only)", f"{kpis.get('tick_us', float('nan')):.1f}"))
    width = max(len(label) for label, _ in rows)
    value_width = max(len(value) for _, value in rows)
    return "\n".join(f"  {label.ljust(width)}  {value.rjust(value_width)}" for label, value in rows)


# ---------------------------------------------------------------------------------------------
# aidc compare

def add_compare_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compare", help="controllers side by side on common random numbers",
        description="Run each controller on each seed (every controller sees the same traffic, weather, "
                    "prices and jobs on a seed) and print the main KPIs as mean ± std over the seeds.",
    )
    _add_common(parser)
    parser.add_argument("--controllers", default="mpc,greedy,local",
                        help=f"comma-separated, from: {', '.join(CONTROLLER_NAMES)} (default mpc,greedy,local)")
    parser.add_argument("--seeds", default="1-3", help="e.g. 1-5 or 1,4,9 (default 1-3)")
    parser.add_argument("--bound", action="store_true", help="also solve the perfect-information bound (regret)")
    parser.add_argument("--out", type=Path, help="write the per-run KPIs as CSV; refuses to overwrite unless --force")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    return parser


def parse_seeds(text: str) -> list[int]:
    """``"1-5"`` -> [1, 2, 3, 4, 5]; ``"1,4,9"`` -> [1, 4, 9] (the sweep grid's parser, with the
    option's name in the one-line error)."""
    from simulator.sweep_grid import SweepSpecError
    from simulator.sweep_grid import parse_seeds as parse_grid_seeds

    try:
        return parse_grid_seeds(text)
    except SweepSpecError as error:
        raise _user_error(f"--{error}") from None


def run_compare(args: argparse.Namespace) -> int:
    controllers = [c.strip() for c in args.controllers.split(",") if c.strip()]
    unknown = [c for c in controllers if c not in CONTROLLER_NAMES]
    if unknown or not controllers:
        raise _user_error(f"--controllers: unknown {', '.join(unknown) or '(none)'}; choose from "
                          f"{', '.join(CONTROLLER_NAMES)}")
    seeds = parse_seeds(args.seeds)
    if args.time_limit <= 0:
        raise _user_error(f"--time-limit must be positive, got {args.time_limit:g}")
    if args.out is not None and args.out.exists() and not args.force:
        raise FileExistsError(f"{args.out}: exists; use --force to replace it")
    import pandas as pd
    from tqdm import tqdm

    from scenarios import load_scenario
    from simulator import make_controller, simulate
    from simulator.processes import NoiseParameters

    scenario = load_scenario(args.scenario)
    rows = []
    with tqdm(total=len(seeds) * len(controllers), desc="runs", unit="run", leave=False) as bar:
        for seed in seeds:
            for name in controllers:
                controller = make_controller(name, scenario, forecast=args.forecast, solver=args.solver,
                                             time_limit_s=args.time_limit, seed=seed)
                result = simulate(scenario, controller, days=args.days, seed=seed, bound=args.bound,
                                  noise=NoiseParameters.for_scenario(scenario, args.noise))
                rows.append({"controller": name, "seed": seed, **result.kpis})
                bar.update()
    runs = pd.DataFrame(rows)
    days = result.manifest["days"]
    print(f"{scenario.name}: {days:g} days, seeds {', '.join(map(str, seeds))}, forecast {args.forecast}; "
          "mean ± std over seeds")
    print(compare_table(runs, controllers))
    if args.out is not None:
        runs.to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    return 0


def format_mean_std(values: np.ndarray, fmt: str) -> str:
    """``mean ± std`` (ddof 1) of the finite ``values`` with the format ``fmt`` (e.g. ``"{:,.0f}"``);
    the value alone for one, ``-`` for none. The one formatter of the CLI's tables."""
    import numpy as np

    values = values[np.isfinite(values)]
    if not values.size:
        return "-"
    mean = fmt.format(values.mean())
    return mean if values.size < 2 else f"{mean} ± {fmt.format(values.std(ddof=1))}"


def compare_table(runs: pd.DataFrame, controllers: list[str]) -> str:
    """Rows = main KPIs, columns = controllers, cells = mean ± std over seeds."""
    grouped = runs.groupby("controller")
    lines = []
    header = ["KPI", *controllers]
    body = []
    for key, label, fmt in MAIN_KPIS:
        if key not in runs.columns or runs[key].isna().all():
            continue
        cells = [label]
        for name in controllers:
            cells.append(format_mean_std(grouped.get_group(name)[key].to_numpy(dtype=float), fmt))
        body.append(cells)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    for row in [header, *body]:
        lines.append("  ".join([row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                                        strict=True))]))
    return "\n".join(lines)
