"""`make bench`: what users run, timed and checked for quality. Writes benchmarks/results.json
and benchmarks/results.md and prints the tables.

1. Closed loops as users run them (``benchmarks/loops.py``): us-3site one week with the default
   noisy forecasts (seeds 1-3), fleet-10 one day at 15-min control with noisy forecasts, fleet-50
   half a day — decision time p50/p95/max next to each window's LP-relaxation time (the floor no
   MILP decision can beat), wall and CPU time, benefit, benefit relative to full precision on the
   same seeds, decisions that ended on the time limit, fallbacks; each against the reference
   commit that issue 10 measured (cached in benchmarks/reference_runs.json).
2. The whole ``aidc run`` of the default closed loop and ``aidc --version``, as subprocesses.
3. Windows: model build and solve times per window size (paper, medium, fleet-10, fleet-50), the
   tight formulation against the straightforward one, with the LP relaxation's time.
4. Variable-resolution horizon against full resolution (fleet-10, half a day).

HiGHS runs on one thread. Usage: python benchmarks/run.py [--quick] [--parts loops,commands,windows,variable]
[--no-reference] [--refresh-reference] [--out benchmarks/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import numpy as np

from optimizer.heuristic import solve_window
from optimizer.model import ModelOptions, build_model
from optimizer.solvers import GUROBI_PIP_LIMIT, SolveOptions, SolverUnavailable, solve
from optimizer.window import offline_inputs
from scenarios import Scenario, builtin_names, load_builtin

sys.path.insert(0, str(Path(__file__).parent))
from loops import aggregate, command_rows, loop_rows  # noqa: E402 (benchmarks/ is not a package)

TARGETS = {
    "paper_solve_s": 0.1,
    "fleet_solve_s": 5.0,
    "fleet_gap": 0.01,
    "fleet50_window_s": 10.0,
    "fleet50_gap": 0.01,
    "us3site_week_run_s": 15.0,
    "us3site_decide_p95_s": 0.2,
    "us3site_decide_max_s": 1.0,
    "fleet10_day_s": 120.0,
    "fleet10_decide_max_s": 5.0,
    "benefit_vs_full_precision": -0.001,
    "plant_us_per_tick": 40.0,
    "version_s": 1.0,
}


def medium_scenario() -> Scenario:
    """fleet-10 cut to its first 5 sites, 20 jobs and 30-minute steps (the research's 'medium')."""
    fleet = load_builtin("fleet-10")
    sites = fleet.sites[:5]
    names = {s.name for s in sites}
    latency = {r: {s: v for s, v in row.items() if s in names} for r, row in fleet.latency_ms.items()}
    classes = [k for k in fleet.inference_classes
               if any(latency[k.origin][s] <= k.latency_limit_ms for s in names)]
    jobs = []
    for job in fleet.jobs:
        eligible = [s for s in (job.sites or sorted(names)) if s in names]
        if eligible and len(jobs) < 20:
            jobs.append(job.model_copy(update={"sites": eligible}))
    run = fleet.run.model_copy(update={"control_interval_minutes": 30.0})
    return fleet.model_copy(update={
        "name": "medium", "sites": sites, "latency_ms": latency, "inference_classes": classes, "jobs": jobs,
        "run": run,
    })


def window_rows(quick: bool) -> list[dict]:
    sizes = {"paper": load_builtin("paper-day"), "medium": medium_scenario(), "fleet": load_builtin("fleet-10")}
    if not quick and "fleet-50" in builtin_names():
        sizes["fleet50"] = load_builtin("fleet-50")
    rows = []
    for size, scenario in sizes.items():
        repeats = 1 if quick or size == "fleet50" else 3
        window = offline_inputs(scenario)
        # the straightforward formulation of fleet-50 does not solve in useful time: tight only
        formulations = ("tight",) if size == "fleet50" else ("tight", "straightforward")
        for formulation in formulations:
            options = ModelOptions(formulation=formulation)
            build_times = []
            for _ in range(repeats):
                began = time.perf_counter()
                model, index = build_model(window, options)
                build_times.append(time.perf_counter() - began)
            gap = 0.01 if size.startswith("fleet") else 1e-3
            lp_began = time.perf_counter()
            solve(replace(model, col_integer=np.zeros_like(model.col_integer)), SolveOptions(solver="highs"))
            lp_s = time.perf_counter() - lp_began
            time_limit = 60.0
            solvers = ["highs"]
            if model.n_cols <= GUROBI_PIP_LIMIT and model.n_rows <= GUROBI_PIP_LIMIT:
                solvers.append("gurobi")
            for solver in solvers:
                # the straightforward formulation is solved the straightforward way: the plain MIP
                method = "auto" if formulation == "tight" else "mip"
                solve_options = SolveOptions(solver=solver, time_limit_s=time_limit, mip_gap=gap, method=method)
                solve_repeats = repeats if (formulation == "tight" or size == "paper") else 1
                results = []
                try:
                    for _ in range(solve_repeats):
                        results.append(solve_window(model, index, solve_options))
                except SolverUnavailable as refusal:
                    rows.append({"size": size, "formulation": formulation, "solver": solver, "error": str(refusal)})
                    continue
                median = sorted(results, key=lambda r: r.wall_s)[len(results) // 2]
                rows.append({
                    "size": size, "formulation": formulation, "solver": solver,
                    "sites": window.fleet.n_sites, "steps": window.n_steps, "jobs": window.jobs.n_jobs,
                    "classes": window.fleet.n_classes, "rows": model.n_rows, "cols": model.n_cols,
                    "binaries": model.n_integer, "nonzeros": model.n_nonzeros,
                    "build_s": statistics.median(build_times), "solve_s": median.wall_s, "lp_s": lp_s,
                    "solve_s_all": [r.wall_s for r in results], "repeats": solve_repeats,
                    "status": median.status, "gap": median.gap, "gap_target": gap, "time_limit_s": time_limit,
                    "benefit_usd": -median.objective if median.has_solution else None, "method": median.message,
                })
                print(f"  {size:7s} {formulation:15s} {solver:6s} build {rows[-1]['build_s']:.4f} s  "
                      f"solve {median.wall_s:7.2f} s  gap {median.gap:.2e}  {median.status}", flush=True)
    return rows


def plant_rows(days: float) -> dict:
    """Plant overhead per 5-min tick (the simulator's own measure: loop time minus controller time)
    with the two heuristics on us-3site; the MPC's is in the loop rows."""
    from simulator import make_controller, simulate

    scenario = load_builtin("us-3site")
    out: dict = {}
    for name in ("local", "greedy"):
        result = simulate(scenario, make_controller(name, scenario), days=days, seed=1)
        out[f"plant_us_per_tick_{name}"] = result.kpis["tick_us"]
    return out


def variable_resolution_rows(quick: bool) -> list[dict]:
    """Closed-loop benefit and solve time: full-resolution horizon vs fine-then-coarse, same seeds."""
    from simulator import make_controller, simulate

    scenario = load_builtin("fleet-10" if not quick else "us-3site")
    days = 0.5 if not quick else 1  # fleet-10's MPC decides in seconds per 15-min step: half a day
    seeds = (1,)
    settings = {"full": {}, "fine 4 h, then 1 h steps" if not quick else "fine 6 h, then 3 h steps":
                {"fine_hours": 4.0, "coarse_factor": 4} if not quick else {"fine_hours": 6.0, "coarse_factor": 3}}
    rows = []
    for label, extra in settings.items():
        for seed in seeds:
            controller = make_controller("mpc", scenario, forecast="perfect", seed=seed, **extra)
            began = time.perf_counter()
            result = simulate(scenario, controller, days=days, seed=seed)
            log = result.solver_log
            rows.append({
                "scenario": scenario.name, "horizon": label, "seed": seed, "days": days,
                "benefit_usd": result.kpis["benefit_usd"], "emissions_tco2": result.kpis["emissions_tco2"],
                "decide_s_mean": float(log["decide_s"].mean()), "decide_s_max": float(log["decide_s"].max()),
                "wall_s": time.perf_counter() - began,
            })
            print(f"  {scenario.name} {label:28s} seed {seed}: benefit {rows[-1]['benefit_usd']:,.0f} USD, "
                  f"decide {rows[-1]['decide_s_mean']:.2f} s mean / {rows[-1]['decide_s_max']:.2f} s max", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one seed, short loops, no reference, no fleet-50")
    parser.add_argument("--parts", default="loops,commands,windows",
                        help="comma-separated: loops, commands, windows, variable (the last not by default: "
                             "the loops compare the default variable-resolution horizon with full resolution)")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference commit's runs")
    parser.add_argument("--refresh-reference", action="store_true", help="re-measure the reference commit")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    began = time.perf_counter()
    results: dict = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "python": sys.version.split()[0], "cpus": len(os.sched_getaffinity(0)),
                    "load_average_at_start": os.getloadavg()},
        "versions": {p: version(p) for p in ("aidc", "highspy", "gurobipy", "numpy", "scipy", "pandas", "simpy")},
        "quick": args.quick, "targets": TARGETS,
    }
    if args.out.exists():  # keep the parts not re-measured this time
        previous = json.loads(args.out.read_text())
        results = {**{k: v for k, v in previous.items() if k in ("loops", "loop_summary", "commands", "windows",
                                                                  "variable_resolution", "plant")}, **results}
    reference = not (args.quick or args.no_reference)
    if "loops" in parts:
        print("closed loops (noisy forecasts):", flush=True)
        rows = []
        if args.quick:
            rows += loop_rows("us-3site", 2, (1,), reference=False)
            rows += loop_rows("fleet-10", 0.25, (1,), reference=False)
        else:
            rows += loop_rows("us-3site", 7, (1, 2, 3), reference, args.refresh_reference)
            rows += loop_rows("fleet-10", 1, (1, 2), reference, args.refresh_reference)
            if "fleet-50" in builtin_names():
                # full precision (1e-3, full resolution) on fleet-50 takes hours: the default only
                rows += loop_rows("fleet-50", 0.5, (1,), reference=False, full_precision=False)
        results["loops"] = rows
        results["loop_summary"] = aggregate(rows)
        results["plant"] = plant_rows(2 if args.quick else 7)
    if "commands" in parts:
        print("commands:", flush=True)
        results["commands"] = command_rows()
        print(f"  {results['commands']}", flush=True)
    if "windows" in parts:
        print("windows (HiGHS threads=1):", flush=True)
        results["windows"] = window_rows(args.quick)
        by = {(r["size"], r["formulation"], r["solver"]): r for r in results["windows"] if "error" not in r}
        for size in ("paper", "medium", "fleet"):
            tight, plain = by.get((size, "tight", "highs")), by.get((size, "straightforward", "highs"))
            if tight and plain:
                results.setdefault("speedup", {})[size] = {
                    "solve_ratio": plain["solve_s"] / max(tight["solve_s"], 1e-9),
                    "nonzeros_ratio": plain["nonzeros"] / tight["nonzeros"],
                    "straightforward_gap": plain["gap"], "tight_gap": tight["gap"],
                }
    if "variable" in parts:
        print("variable-resolution horizon:", flush=True)
        results["variable_resolution"] = variable_resolution_rows(args.quick)
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    results["bench_wall_s"] = time.perf_counter() - began
    args.out.write_text(json.dumps(results, indent=2, default=float))
    table = markdown(results)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


def markdown(results: dict) -> str:
    """The README's speed tables from ``results``."""
    lines: list[str] = []
    summary = results.get("loop_summary", [])
    if summary:
        lines += ["| case (noisy forecasts) | setting | seeds | wall s (mean) | CPU s (mean) "
                  "| decision p50 / p95 / max s "
                  "| window LP p95 / max s | benefit USD (mean) | vs full precision | time-limit stops | fallbacks |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in summary:
            relative = r["benefit_vs_full_precision"]
            lines.append(
                f"| {r['case']} | {r['setting']} | {','.join(map(str, r['seeds']))} | {r['wall_s_mean']:.1f} | "
                f"{r['cpu_s_mean']:.1f} | {r['decide_s_p50']:.3f} / {r['decide_s_p95']:.3f} / "
                f"{r['decide_s_max']:.2f} | "
                f"{r['lp_s_p95']:.3f} / {r['lp_s_max']:.3f} | {r['benefit_usd_mean']:,.0f} | "
                f"{'' if relative is None else f'{relative:+.3%}'} | {r['time_limit_count']} | {r['fallbacks']} |")
        ticks = {f"{r['case']} {r['setting']}": r["tick_us_mean"] for r in summary}
        lines += ["", "Plant overhead per 5-min tick (µs, loop time minus controller time): "
                  + ", ".join(f"{k}: {v:.0f}" for k, v in ticks.items() if "us-3site" in k)
                  + "; " + ", ".join(f"{k}: {v:.0f}" for k, v in results.get("plant", {}).items())]
    commands = results.get("commands", {})
    if commands and "error" not in commands:
        lines += ["", f"`aidc --version`: {commands['version_s_median']:.2f} s (median of 5); "
                  f"`{commands['run_command']}` (one week): {commands['run_week_s']:.1f} s in all, first line after "
                  f"{commands['run_first_line_s']:.2f} s, exit {commands['run_exit_code']}."]
    windows = results.get("windows", [])
    if windows:
        lines += ["", "| size | formulation | solver | sites × steps × jobs | rows | cols | binaries | non-zeros "
                  "| build s | "
                  "LP s | solve s (median) | gap | status |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in windows:
            if "error" in r:
                lines.append(f"| {r['size']} | {r['formulation']} | {r['solver']} | refused: {r['error']} |")
                continue
            lines.append(
                f"| {r['size']} | {r['formulation']} | {r['solver']} | {r['sites']} × {r['steps']} × {r['jobs']} | "
                f"{r['rows']:,} | {r['cols']:,} | {r['binaries']:,} | {r['nonzeros']:,} | {r['build_s']:.4f} | "
                f"{r.get('lp_s', float('nan')):.3f} | {r['solve_s']:.2f} | {r['gap']:.1e} | {r['status']} |")
    for size, ratio in results.get("speedup", {}).items():
        lines.append(f"\nspeed-up {size}: solve {ratio['solve_ratio']:.1f}×, "
                     f"non-zeros {ratio['nonzeros_ratio']:.1f}× fewer")
    for r in results.get("variable_resolution", []):
        lines.append(f"\nhorizon {r['horizon']} ({r['scenario']}, {r['days']} d, seed {r['seed']}): benefit "
                     f"{r['benefit_usd']:,.0f} USD, decide {r['decide_s_mean']:.2f} s mean / "
                     f"{r['decide_s_max']:.2f} s max")
    if "peak_rss_mb" in results:
        lines.append(f"\npeak RSS of the benchmark process: {results['peak_rss_mb']:.0f} MB; "
                     f"load average at start {results['machine']['load_average_at_start']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
