"""`make bench`: model build and solve times per window size, closed-loop wall time, plant overhead,
peak memory. Writes benchmarks/results.json and prints a table.

Sizes: paper (paper-day: 3 sites x 24 h steps x 6 jobs x 3 classes), medium (the first 5 sites of
fleet-10 at 30-min steps: 5 x 48 x 20 jobs), fleet (fleet-10: 10 x 96 x 60 jobs, 16 regions).
Each window is built and solved with the tight formulation (the product's default) and with the
straightforward one (every start covering its steps directly, every binary kept), in the same
run, so the speed-up is a measured ratio. HiGHS runs on one thread; Gurobi only where its pip
licence admits the model.

Usage: python benchmarks/run.py [--quick] [--out benchmarks/results.json]
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
from importlib.metadata import version
from pathlib import Path

from optimizer.heuristic import solve_window
from optimizer.model import ModelOptions, build_model
from optimizer.solvers import GUROBI_PIP_LIMIT, SolveOptions, SolverUnavailable
from optimizer.window import offline_inputs
from scenarios import Scenario, load_builtin

TARGETS = {
    "paper_solve_s": 0.1,
    "fleet_solve_s": 5.0,
    "fleet_gap": 0.01,
    "closed_loop_7d_s": 30.0,
    "plant_us_per_tick": 40.0,
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
    repeats = 1 if quick else 3
    rows = []
    for size, scenario in sizes.items():
        window = offline_inputs(scenario)
        for formulation in ("tight", "straightforward"):
            options = ModelOptions(formulation=formulation)
            build_times = []
            for _ in range(repeats):
                began = time.perf_counter()
                model, index = build_model(window, options)
                build_times.append(time.perf_counter() - began)
            gap = 0.01 if size == "fleet" else 1e-3
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
                    "build_s": statistics.median(build_times), "solve_s": median.wall_s,
                    "solve_s_all": [r.wall_s for r in results], "repeats": solve_repeats,
                    "status": median.status, "gap": median.gap, "gap_target": gap, "time_limit_s": time_limit,
                    "benefit_usd": -median.objective if median.has_solution else None, "method": median.message,
                })
                print(f"  {size:7s} {formulation:15s} {solver:6s} build {rows[-1]['build_s']:.4f} s  "
                      f"solve {median.wall_s:7.2f} s  gap {median.gap:.2e}  {median.status}", flush=True)
    return rows


def closed_loop_rows(quick: bool) -> dict:
    """7-day us-3site with hourly MPC and a 24 h horizon; plant overhead per tick with a heuristic."""
    try:
        from simulator import make_controller, simulate
    except ImportError as missing:
        return {"error": f"simulator not available: {missing}"}
    scenario = load_builtin("us-3site")
    days = 2 if quick else 7
    out: dict = {}
    controller = make_controller("mpc", scenario, forecast="perfect", solver="highs")
    began = time.perf_counter()
    result = simulate(scenario, controller, days=days, seed=1)
    out["closed_loop_days"] = days
    out["closed_loop_wall_s"] = time.perf_counter() - began
    log = result.solver_log
    out["closed_loop_solve_s_total"] = float(log["wall_s"].sum()) if "wall_s" in log else None
    out["closed_loop_control_steps"] = len(log)
    out["closed_loop_fallbacks"] = int((log.get("fallback", "").astype(str) != "").sum()) if len(log) else 0
    out["closed_loop_benefit_usd"] = result.kpis.get("benefit_usd")
    ticks_per_site = result.ticks.groupby("site").size().iloc[0]
    for name in ("local", "greedy"):
        heuristic = make_controller(name, scenario)
        began = time.perf_counter()
        heuristic_result = simulate(scenario, heuristic, days=days, seed=1)
        wall = time.perf_counter() - began
        # the simulator's own measure: the SimPy loop's time minus the controller's, per tick
        out[f"plant_us_per_tick_{name}"] = heuristic_result.kpis["tick_us"]
        out[f"plant_wall_s_{name}"] = wall
    out["plant_ticks"] = int(ticks_per_site)
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
    parser.add_argument("--quick", action="store_true", help="one repetition, 2-day closed loop")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()
    began = time.perf_counter()
    print("windows (HiGHS threads=1):", flush=True)
    windows = window_rows(args.quick)
    print("closed loop:", flush=True)
    loop = closed_loop_rows(args.quick)
    print("variable-resolution horizon:", flush=True)
    variable = variable_resolution_rows(args.quick)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    results = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "python": sys.version.split()[0], "cpus": len(os.sched_getaffinity(0))},
        "versions": {p: version(p) for p in ("aidc", "highspy", "gurobipy", "numpy", "scipy", "pandas", "simpy")},
        "quick": args.quick, "windows": windows, "closed_loop": loop, "variable_resolution": variable,
        "peak_rss_mb": peak_mb,
        "targets": TARGETS, "bench_wall_s": time.perf_counter() - began,
    }
    by = {(r["size"], r["formulation"], r["solver"]): r for r in windows if "error" not in r}
    for size in ("paper", "medium", "fleet"):
        tight, plain = by.get((size, "tight", "highs")), by.get((size, "straightforward", "highs"))
        if tight and plain:
            results.setdefault("speedup", {})[size] = {
                "solve_ratio": plain["solve_s"] / max(tight["solve_s"], 1e-9),
                "nonzeros_ratio": plain["nonzeros"] / tight["nonzeros"],
                "straightforward_gap": plain["gap"], "tight_gap": tight["gap"],
            }
    args.out.write_text(json.dumps(results, indent=2, default=float))
    print_table(results)
    print(f"\nwrote {args.out}")
    return 0


def print_table(results: dict) -> None:
    print("\n| size | formulation | solver | sites x steps x jobs | rows | cols | binaries | nonzeros | build s | "
          "solve s (median) | gap | status |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results["windows"]:
        if "error" in r:
            print(f"| {r['size']} | {r['formulation']} | {r['solver']} | refused: {r['error']} |")
            continue
        print(f"| {r['size']} | {r['formulation']} | {r['solver']} | {r['sites']} x {r['steps']} x {r['jobs']} | "
              f"{r['rows']:,} | {r['cols']:,} | {r['binaries']:,} | {r['nonzeros']:,} | {r['build_s']:.4f} | "
              f"{r['solve_s']:.2f} | {r['gap']:.2e} | {r['status']} |")
    for size, ratio in results.get("speedup", {}).items():
        print(f"speed-up {size}: solve {ratio['solve_ratio']:.1f}x, non-zeros {ratio['nonzeros_ratio']:.1f}x fewer")
    loop = results["closed_loop"]
    for key, value in loop.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    rows = results.get("variable_resolution", [])
    for label in dict.fromkeys(r["horizon"] for r in rows):
        chosen = [r for r in rows if r["horizon"] == label]
        print(f"horizon {label}: benefit {statistics.mean(r['benefit_usd'] for r in chosen):,.0f} USD, decide "
              f"{statistics.mean(r['decide_s_mean'] for r in chosen):.2f} s mean over seeds "
              f"{[r['seed'] for r in chosen]} ({chosen[0]['scenario']}, {chosen[0]['days']} day)")
    print(f"peak RSS: {results['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    raise SystemExit(main())
