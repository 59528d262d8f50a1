"""``aidc run`` and ``aidc compare`` (wired into :mod:`simulator.cli`).

This module imports only argparse at load time; the simulator, pandas and the solver are
imported inside the ``run_*`` functions so ``aidc --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimizer.defaults import MPC_DEFAULTS, SOLVER_NAMES
from simulator.controllers import REGISTRY

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from scenarios import Scenario

#: the registered controllers' names (simulator.controllers.REGISTRY, the one list)
CONTROLLER_NAMES = tuple(REGISTRY)
#: how the options name a user's class
USER_CLASS_HINT = "or package.module:ClassName[:key=value,...] (a class of yours; see optimizer/protocol.py)"
BUDGET_SCALES, DEFAULT_BUDGET_SCALE = ("pro-rata", "none"), "pro-rata"  # scenarios.io's (without its imports)
#: KPIs in the tables of ``run`` and ``compare``: (key, label, format)
MAIN_KPIS = (
    ("benefit_usd", "benefit (USD)", "{:,.0f}"),
    ("hindsight_bound_usd", "hindsight bound (USD, dual bound)", "{:,.0f}"),
    ("hindsight_plan_benefit_usd", "hindsight best plan (USD)", "{:,.0f}"),
    ("regret_usd", "regret vs bound (USD)", "{:,.0f}"),
    ("regret_gap_usd", "of which bound gap (USD)", "{:,.0f}"),
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


# ---------------------------------------------------------------------------------------------
# option types and checks shared by the commands (argparse turns an ArgumentTypeError into the
# one-line usage error of simulator.cli.OneLineParser)

def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text[:40]!r}")
    return value


def positive_number(text: str) -> float:
    """argparse type: a finite number > 0 (seconds, days)."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value:g}")
    return value


def gap_fraction(text: str) -> float:
    """argparse type: a relative MIP gap, 0 <= gap < 1."""
    value = _finite(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"a relative gap must lie in [0, 1), got {value:g}")
    return value


def fine_hours(text: str) -> float:
    """argparse type: the MPC's fine-resolution hours, a positive number, or 0 / ``none`` for a
    full-resolution horizon (returned as 0.0)."""
    if text.strip().lower() in ("none", "full"):
        return 0.0
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be positive (0 or 'none' = full resolution), got {value:g}")
    return value


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {least} or more, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _whole(text, 1)


def add_mpc_arguments(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """The MPC's settings as options (run, compare, sweep). With ``defaults`` False every option
    defaults to None (a sweep's grid file or :data:`optimizer.defaults.MPC_DEFAULTS` decide)."""
    d = MPC_DEFAULTS
    fine = "full resolution" if d.fine_hours is None else f"{d.fine_hours:g} h"
    parser.add_argument("--time-limit", type=positive_number, default=d.time_limit_s if defaults else None,
                        help=f"seconds per MPC solve, a safety net (default {d.time_limit_s:g})")
    parser.add_argument("--gap", type=gap_fraction, default=d.mip_gap if defaults else None,
                        help=f"relative MIP gap of an MPC window, certified against its LP bound "
                             f"(default {d.mip_gap:g})")
    parser.add_argument("--horizon-hours", type=positive_number,
                        help="MPC horizon in hours (default: the scenario's run.horizon_hours)")
    parser.add_argument("--fine-hours", type=fine_hours, default=(d.fine_hours or 0.0) if defaults else None,
                        help=f"hours of control-interval steps at the start of the MPC horizon, coarse steps after; "
                             f"0 or 'none' = full resolution (default {fine})")
    parser.add_argument("--coarse-factor", type=positive_int,
                        help=f"control intervals per coarse step (default: steps of {d.coarse_step_hours:g} h)")


def check_mpc_settings(scenario: Scenario, args: argparse.Namespace) -> None:
    """Refuse, before any work, MPC options that cannot fit the scenario (one-line error)."""
    from simulator.controllers import horizon_problem

    problem = horizon_problem(scenario, args.horizon_hours) if args.horizon_hours is not None else None
    if problem:
        raise _user_error(f"--horizon-hours: {problem}")


def mpc_settings(args: argparse.Namespace) -> dict[str, Any]:
    """``make_controller`` keyword arguments from the options of :func:`add_mpc_arguments`."""
    return {"time_limit_s": args.time_limit, "mip_gap": args.gap, "horizon_hours": args.horizon_hours,
            "fine_hours": args.fine_hours or None, "coarse_factor": args.coarse_factor}


def seed_number(text: str) -> int:
    """argparse type: a random seed, an integer in [0, 2**63) (NumPy's seeds are non-negative)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"a seed must lie in [0, 2**63), got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (a count of workers)."""
    return _whole(text, 0)


def check_output(path: Path | None, force: bool, what: str = "output") -> None:
    """Refuse, before any work, an output the command could not write at its end.

    ``path`` exists and not ``force`` -> :class:`FileExistsError`; its nearest existing parent
    is not a folder -> :class:`NotADirectoryError`; that folder is not writable ->
    :class:`PermissionError`. (A full disk can still fail at the end.)
    """
    if path is None:
        return
    if path.exists() and not force:
        raise FileExistsError(f"{path}: {what} exists; use --force to replace it")
    wants_folder = what == "result folder"
    if path.exists() and path.is_dir() and not wants_folder:
        raise IsADirectoryError(f"{path}: is a folder; the {what} is a file and will not replace it")
    if path.exists() and not path.is_dir() and wants_folder:
        raise NotADirectoryError(f"{path}: is a file; the {what} will not replace it")
    if path.exists() and wants_folder:
        from simulator.results import replaceable_result_folder

        if not replaceable_result_folder(path):
            raise FileExistsError(f"{path}: not an aidc result folder (no manifest.json) and not empty; "
                                  "--force replaces only result folders")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(f"{path}: cannot be written: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: cannot be written: no permission to write in {parent}")


def check_forecast(spec: str) -> None:
    """A bad ``--forecast`` is an error whatever the controller (a heuristic ignores it, but a
    typo should not pass silently)."""
    from forecasts import make_forecaster

    make_forecaster(spec, 0)  # ForecastSpecError: one line


def check_controllers(scenario: Scenario, specs: list[str], args: argparse.Namespace,
                      option: str = "--controller") -> None:
    """Parse every controller spec and build each controller once with the run's settings, so an
    unknown name or option, a class that cannot be imported or does not follow the protocol, or a
    constructor that refuses its options is a one-line error before any run starts."""
    from simulator.controllers import make_controller

    seed = getattr(args, "seed", None)
    seed = seed if isinstance(seed, int) else scenario.run.seed  # as the run's (compare: its first seed's form)
    for spec in specs:
        try:
            make_controller(spec, scenario, forecast=args.forecast, solver=args.solver, seed=seed,
                            **mpc_settings(args))
        except ValueError as error:
            where = f"{option}: " if type(error).__name__ == "ControllerSpecError" else f"{option} {spec}: "
            raise _user_error(f"{where}{error}") from None


def check_solver(scenario: object, controllers: list[str], solver: str) -> None:
    """``--solver gurobi``: refuse, before the run, a Gurobi that cannot solve this scenario's windows.

    The MPC's first window is approximated by the scenario's explicit jobs over one horizon and
    solved with a time limit of a few milliseconds: a licence refusal (the size-limited pip
    licence admits 2,000 variables and 2,000 constraints) raises
    :class:`optimizer.solvers.SolverUnavailable` with its one-line message, as ``aidc plan`` does.
    ``auto`` may fall back to HiGHS and is not checked; a window that only later grows past the
    licence still falls back per step, counted in the KPI ``fallbacks`` and warned about on stderr.
    """
    if solver != "gurobi":
        return
    from simulator.controllers import parse_controller_spec

    variants = sorted({variant for name in controllers
                       if (variant := parse_controller_spec(name).mpc_variant) is not None})
    if not variants:
        return
    from optimizer.solvers import SolveOptions
    from optimizer.variants import InfeasibleWindow, run_variant
    from optimizer.window import offline_inputs

    run = scenario.run  # type: ignore[attr-defined]
    days = min(run.horizon_hours / 24.0, run.days)
    one_horizon = scenario.model_copy(update={"run": run.model_copy(update={"days": days})})  # type: ignore[attr-defined]
    window = offline_inputs(one_horizon)
    for variant in variants:
        # no plan within the probe's time limit says nothing about the licence
        with contextlib.suppress(InfeasibleWindow):
            run_variant(window, variant, SolveOptions(solver="gurobi", time_limit_s=0.01))


def warn_fallbacks(solver_log: object, label: str = "") -> None:
    """One stderr line when an MPC run decided some steps by its fallback (licence, time limit,
    no solution): ``aidc: warning: ...`` with the count and the first reason (see KPI ``fallbacks``)."""
    fallback = solver_log["fallback"].astype(str)  # type: ignore[index]
    used = fallback[fallback != ""]
    if len(used):
        where = f"{label}: " if label else ""
        print(f"aidc: warning: {where}{len(used)} of {len(fallback)} control steps were decided by the fallback "
              f"(first: {' '.join(used.iloc[0].split())[:200]})", file=sys.stderr)


def warn_bound(kpis: dict[str, object], label: str = "") -> None:
    """One stderr line when the hindsight bound had no feasible plan (``hindsight_status``
    infeasible: the bound's model cannot leave load unmet, so a run with ``unmet_energy_mwh`` > 0
    may have none); the run's results are kept and its regret is NaN."""
    if kpis.get("hindsight_status") == "infeasible":
        where = f"{label}: " if label else ""
        unmet = float(kpis.get("unmet_energy_mwh", 0.0))  # type: ignore[arg-type]
        print(f"aidc: warning: {where}the hindsight bound has no feasible plan (the plant left {unmet:.4g} MWh of "
              "load unmet, which the bound cannot); regret not reported", file=sys.stderr)


def warn_repairs(events: object, label: str = "") -> None:
    """One stderr line per set-point field in which the controller gave NaN or inf (repaired by
    :func:`simulator.setpoint_check.check_setpoints`; the ``setpoint_repaired`` events), and one for the
    ``scenarios_point_filled`` event (``mpc-stochastic:source=quantiles`` planned on the point forecast
    where the forecaster's quantiles were NaN)."""
    repaired = events[events["kind"] == "setpoint_repaired"]  # type: ignore[index]
    where = f"{label}: " if label else ""
    for row in repaired.itertuples():
        print(f"aidc: warning: {where}controller set-points at {row.time:%Y-%m-%d %H:%M} (first of the run): "
              f"{row.detail}", file=sys.stderr)
    for row in events[events["kind"] == "scenarios_point_filled"].itertuples():  # type: ignore[index]
        print(f"aidc: warning: {where}{row.time:%Y-%m-%d %H:%M}: {row.detail}", file=sys.stderr)


def controllers_epilog() -> str:
    """The controllers of the registry with their options and defaults, for ``--help``."""
    from simulator.controllers import describe_controllers

    return "controllers (--controller SPEC):\n" + "\n".join(f"  {line}" for line in describe_controllers().splitlines())


def add_days_arguments(parser: argparse.ArgumentParser, budget_default: str | None = DEFAULT_BUDGET_SCALE) -> None:
    """``--days`` and ``--budget-scale`` (what --days does to the carbon budget)."""
    parser.add_argument("--days", type=positive_number, help="run length (default: the scenario's)")
    parser.add_argument("--budget-scale", choices=BUDGET_SCALES, default=budget_default,
                        help="what --days does to the scenario's carbon budget: pro-rata scales it with the run "
                             "length (its pace in tCO2 per day kept), none keeps the whole budget "
                             f"(default {DEFAULT_BUDGET_SCALE}); the budget used is printed and in the manifest")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", help="built-in name or TOML file")
    parser.add_argument("--forecast", default="perfect",
                        help="forecaster spec for MPC controllers, e.g. perfect, noisy:sigma_24h=0.2, ets, "
                             "or package.module:ClassName[:key=value,...] (default perfect)")
    parser.add_argument("--solver", choices=SOLVER_NAMES, default="highs")
    add_mpc_arguments(parser, defaults=True)
    add_days_arguments(parser)
    parser.add_argument("--noise", choices=("on", "off"),
                        help="realisation noise on traffic, weather and prices; off replays the series exactly "
                             "(default: the scenario's [noise] table, on)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bar or status lines on stderr (warnings and errors still show; "
                             "there is no bar either when stderr is not a terminal)")


# ---------------------------------------------------------------------------------------------
# aidc run

def add_run_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "run", help="closed-loop simulation of one controller",
        description="Simulate the scenario in closed loop under one controller, print the KPIs, and write a\n"
                    "result folder (Parquet + JSON) with a dispatch plot.",
        epilog=controllers_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(parser)
    parser.add_argument("--controller", default="mpc", metavar="SPEC",
                        help=f"one of {', '.join(CONTROLLER_NAMES)} (options as name:key=value,...), "
                             f"{USER_CLASS_HINT} (default mpc)")
    parser.add_argument("--seed", type=seed_number, help="seed of every random stream (default: the scenario's)")
    parser.add_argument("--out", type=Path, help="result folder; refuses an existing one unless --force")
    parser.add_argument("--force", action="store_true", help="replace an existing --out folder")
    parser.add_argument("--bound", action="store_true",
                        help="also solve the hindsight bound on the plant tick (its dual bound; regret >= 0)")
    parser.add_argument("--explain", action="store_true",
                        help="with --bound and an MPC controller: split the regret into forecast error, unknown job "
                             "arrivals, horizon length, control resolution and a residual (four more paired runs)")
    parser.add_argument("--by", choices=("site", "class"),
                        help="also print the KPIs per site or per inference class next to the fleet totals")
    parser.add_argument("--no-record-plans", action="store_true",
                        help="do not keep the controller's record (forecasts issued, first hours of each plan, "
                             "realised signals) in the result")
    return parser


def run_run(args: argparse.Namespace) -> int:
    import time

    began = time.perf_counter()
    check_output(args.out, args.force, "result folder")
    if args.explain and not args.bound:
        raise _user_error("--explain splits the regret against the bound: add --bound")
    if args.explain and not args.controller.startswith("mpc"):
        raise _user_error(f"--explain needs an MPC controller (forecasts, horizon), not {args.controller}")
    from scenarios import load_scenario
    from scenarios.io import with_days

    base = load_scenario(args.scenario)
    scenario = with_days(base, args.days, args.budget_scale)  # --days re-checks every rule
    seed = scenario.run.seed if args.seed is None else args.seed
    check_forecast(args.forecast)
    check_mpc_settings(scenario, args)
    check_controllers(scenario, [args.controller], args)
    check_solver(scenario, [args.controller], args.solver)
    if not args.quiet:
        print(f"{scenario.name}: {args.controller}, {scenario.run.days:g} days, seed {seed}; simulating ...",
              file=sys.stderr, flush=True)
    from simulator import make_controller, simulate
    from simulator.processes import NoiseParameters

    controller = make_controller(args.controller, scenario, forecast=args.forecast, solver=args.solver,
                                 seed=seed, **mpc_settings(args))
    noise = NoiseParameters.for_scenario(scenario, args.noise)
    result = simulate(base, controller, days=args.days, budget_scale=args.budget_scale, seed=seed,
                      progress=not args.quiet, bound=args.bound, noise=noise, record_plans=not args.no_record_plans)
    wall = time.perf_counter() - began
    manifest = result.manifest
    print(f"{manifest['scenario']}: {args.controller}, forecast {manifest['forecaster'] or '-'}, "
          f"{manifest['days']:g} days, seed {seed}, {wall:.1f} s")
    if manifest["carbon_budget"]["note"]:
        print(manifest["carbon_budget"]["note"])
    print(format_kpis(result.kpis))
    if args.by:
        from simulator.kpis_by_site import by_table

        print()
        print(by_table(result.kpis_by, args.by))
    warn_fallbacks(result.solver_log)
    warn_bound(result.kpis)
    if args.explain:
        from simulator.regret import explain_regret, format_breakdown

        if not args.quiet:
            print("regret breakdown (paired runs on the same seed; simulator.regret):", file=sys.stderr, flush=True)
        table = explain_regret(scenario, args.controller, args.forecast, seed=seed, solver=args.solver,
                               specified=result, noise=noise, **mpc_settings(args))
        print("regret breakdown (USD; each part = the benefit one more piece of hindsight gives):")
        print(format_breakdown(table))
    warn_repairs(result.events)
    from simulator.plots import plot_dispatch

    if args.out is not None:
        folder = result.save(args.out, force=args.force,
                             extras=lambda temporary: plot_dispatch(result, temporary / "dispatch.png"))
        from simulator.results import FRAMES, OPTIONAL_FRAMES

        frames = [name for name in (*FRAMES, *OPTIONAL_FRAMES) if (folder / f"{name}.parquet").is_file()]
        others = [name for name in ("kpis_by.csv", "kpis.json", "manifest.json", "dispatch.png")
                  if (folder / name).is_file()]
        print(f"wrote {folder}/ ({', '.join(frames)} .parquet; {', '.join(others)}; "
              f"`aidc show {folder}` shows it)")
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
# aidc compare: the command is simulator.compare_command; its tables are here

def parse_seeds(text: str) -> list[int]:
    """``"1-5"`` -> [1, 2, 3, 4, 5]; ``"1,4,9"`` -> [1, 4, 9] (the sweep grid's parser, with the
    option's name in the one-line error)."""
    from simulator.sweep_grid import SweepSpecError
    from simulator.sweep_grid import parse_seeds as parse_grid_seeds

    try:
        return parse_grid_seeds(text)
    except SweepSpecError as error:
        raise _user_error(f"--{error}") from None


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
