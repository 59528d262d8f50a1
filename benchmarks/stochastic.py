"""Speed of the stochastic MPC: window size and decision time against the deterministic MPC.

Runs the closed loop on us-3site (noisy forecasts, seed 1) with ``mpc`` and with
``mpc-stochastic`` at 5, 10 and 20 scenarios, and reports per controller the mean window size
(rows, columns, binaries of the solved MILP) and the decision time per control step (mean, p95,
max; forecast + scenarios + build + solve), with the ratio of mean decision times to ``mpc``.
The deterministic MPC runs first and last (its two runs' mean is the reference), so a change in
the machine's load during the benchmark shows as a difference between them.
Writes ``benchmarks/stochastic.md`` and ``benchmarks/stochastic.json``.

    .venv/bin/python benchmarks/stochastic.py [--days 2] [--seed 1] [--forecast noisy] [--scenarios 5,10,20]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
SCENARIO = "us-3site"


def measure(scenario, controller: str, forecast: str, seed: int) -> dict:
    from simulator import make_controller, simulate

    began = time.perf_counter()
    result = simulate(scenario, make_controller(controller, scenario, forecast=forecast, seed=seed), seed=seed)
    log = result.solver_log
    decide = log["decide_s"].to_numpy(dtype=float)
    return {
        "controller": controller, "steps": len(log), "run_s": time.perf_counter() - began,
        "rows": float(log["rows"].mean()), "cols": float(log["cols"].mean()), "binaries": float(log["binaries"].mean()),
        "decide_s_mean": float(decide.mean()), "decide_s_p95": float(np.quantile(decide, 0.95)),
        "decide_s_max": float(decide.max()), "solve_s_mean": float(log["wall_s"].astype(float).mean()),
        "fallbacks": int((log["fallback"].astype(str) != "").sum()),
        "time_limit_stops": int((log["status"].astype(str) == "time_limit").sum()),
        "benefit_usd": float(result.kpis["benefit_usd"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--forecast", default="noisy")
    parser.add_argument("--scenarios", default="5,10,20")
    parser.add_argument("--out", type=Path, default=HERE / "stochastic.md")
    args = parser.parse_args()
    from scenarios import load_scenario
    from scenarios.io import with_days

    scenario = with_days(load_scenario(SCENARIO), args.days)
    counts = [int(n) for n in args.scenarios.split(",")]
    names = ["mpc", *(f"mpc-stochastic:scenarios={n}" for n in counts), "mpc"]
    rows = []
    for name in names:
        rows.append(measure(scenario, name, args.forecast, args.seed))
        print(json.dumps(rows[-1]), flush=True)
    reference = float(np.mean([r["decide_s_mean"] for r in rows if r["controller"] == "mpc"]))
    reference_cols = float(np.mean([r["cols"] for r in rows if r["controller"] == "mpc"]))
    for row in rows:
        row["decide_ratio"] = row["decide_s_mean"] / reference
        row["size_ratio"] = row["cols"] / reference_cols
    lines = [f"# Stochastic MPC speed: {SCENARIO}, {args.days:g} days, forecast {args.forecast}, seed {args.seed}", "",
             "Mean window size of the solved MILP and decision time per control step (forecast, scenarios, build, "
             "solve). Ratios against the mean of the two `mpc` runs. Written by `benchmarks/stochastic.py`; "
             f"machine {platform.machine()}, Python {platform.python_version()}, shared with other jobs "
             "(times vary with the load; the two `mpc` runs show by how much).", "",
             "| controller | rows | columns | binaries | columns / mpc | decide mean (s) | p95 (s) | max (s) "
             "| decide / mpc | fallbacks |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['controller']}` | {r['rows']:,.0f} | {r['cols']:,.0f} | {r['binaries']:,.0f} | "
                     f"{r['size_ratio']:.1f} | {r['decide_s_mean']:.3f} | {r['decide_s_p95']:.3f} | "
                     f"{r['decide_s_max']:.3f} | {r['decide_ratio']:.2f} | {r['fallbacks']} |")
    args.out.write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps({"days": args.days, "seed": args.seed,
                                                         "forecast": args.forecast, "runs": rows}, indent=1) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
