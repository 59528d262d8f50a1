"""What the stochastic MPC wins back: ``mpc-stochastic`` against ``mpc`` on common random numbers.

For each forecast error level σ24h (noisy forecaster, every signal at that σ at 24 h lead) and
each seed, both controllers run the same closed loop (same traffic, weather, prices, jobs and the
same forecast errors: the forecaster's streams depend only on the seed). The perfect-information
bound of each seed is solved once (it does not depend on σ nor on the controller) and gives the
regret. Per σ the script reports each controller's mean and the paired difference
``mpc-stochastic − mpc`` with a 95 % t-interval on the paired differences (n − 1 degrees of
freedom) for benefit, regret, emissions, budget overrun, unserved inference and decision time.

Runs are appended to a CSV as they finish, so an interrupted study resumes where it stopped
(runs already in the file are skipped); the summary is written from whatever is in the file.

    .venv/bin/python benchmarks/stochastic_value.py [--seeds 1-10] [--sigmas 0.15,0.3,0.5] [--days 2]
        [--stochastic mpc-stochastic] [--runs benchmarks/stochastic_value_runs.csv]
        [--out benchmarks/stochastic_value.md] [--summary-only]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
SCENARIO = "us-3site"
#: (KPI, label, format, higher is better) in the summary; the difference is mpc-stochastic − mpc
METRICS = (
    ("benefit_usd", "benefit (USD)", "{:,.0f}", True),
    ("regret_usd", "regret vs bound (USD)", "{:,.0f}", False),
    ("emissions_tco2", "emissions (tCO2)", "{:,.2f}", False),
    ("budget_overrun_tco2", "budget overrun (tCO2)", "{:,.2f}", False),
    ("inference_dropped_mreq", "unserved inference (Mreq)", "{:,.3f}", False),
    ("jobs_completed", "jobs completed", "{:.2f}", True),
    ("jobs_running_at_end", "jobs running at the end", "{:.2f}", False),
    ("inference_value_usd", "inference value (USD)", "{:,.0f}", True),
    ("unserved_penalty_usd", "unserved penalty (USD)", "{:,.0f}", False),
    ("export_revenue_usd", "export revenue (USD)", "{:,.0f}", True),
    ("import_cost_usd", "import cost (USD)", "{:,.0f}", False),
    ("tail_energy_cost_usd", "tail energy of jobs running at the end (USD)", "{:,.0f}", False),
    ("decide_s_mean", "decision time, mean (s)", "{:.3f}", False),
)


def forecast_spec(sigma: float) -> str:
    return f"noisy:sigma_24h={sigma:g}"


def paired_interval(differences: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lower, upper) of the ``level`` t-interval of the mean of paired differences: aidc
    compare's own (:func:`simulator.compare_command.paired_interval`)."""
    from simulator.compare_command import paired_interval as interval

    mean, _, low, high = interval(differences, level)
    return mean, low, high


def run_one(scenario, controller: str, sigma: float, seed: int, bound: bool) -> dict:
    from simulator import make_controller, simulate

    began = time.perf_counter()
    result = simulate(scenario, make_controller(controller, scenario, forecast=forecast_spec(sigma), seed=seed),
                      seed=seed, bound=bound)
    # every numeric KPI (the same keys for every run; the bound's are added by the caller)
    kpis = {key: value for key, value in result.kpis.items()
            if isinstance(value, int | float) and not key.startswith("bound") and key != "regret_usd"}
    return {"controller": controller, "sigma_24h": sigma, "seed": seed, "wall_s": time.perf_counter() - began,
            "bound_usd": float("nan"), "regret_usd": float("nan"), **kpis,
            "bound_found_usd": result.kpis.get("regret_usd", float("nan")) + result.kpis["benefit_usd"]}


def summarise(runs: pd.DataFrame, stochastic: str) -> pd.DataFrame:
    """One row per (σ, metric): both controllers' means, the paired difference and its interval."""
    rows = []
    for sigma, group in runs.groupby("sigma_24h"):
        base = group[group["controller"] == "mpc"].set_index("seed")
        other = group[group["controller"] == stochastic].set_index("seed")
        seeds = base.index.intersection(other.index)
        for key, label, _, higher in METRICS:
            if key not in group:
                continue
            d = other.loc[seeds, key].to_numpy(dtype=float) - base.loc[seeds, key].to_numpy(dtype=float)
            mean, low, high = paired_interval(d)
            rows.append({"sigma_24h": sigma, "metric": key, "label": label, "pairs": len(seeds),
                         "mpc": base.loc[seeds, key].mean(), "stochastic": other.loc[seeds, key].mean(),
                         "difference": mean, "ci_low": low, "ci_high": high,
                         "stochastic_better_seeds": int(((d if higher else -d) > 0).sum())})
        overruns = {name: int((frame.loc[seeds, "budget_overrun_tco2"] > 1e-6).sum())
                    for name, frame in (("mpc", base), ("stochastic", other))}
        rows.append({"sigma_24h": sigma, "metric": "budget_overrun_runs", "label": "runs over the budget",
                     "pairs": len(seeds), "mpc": overruns["mpc"], "stochastic": overruns["stochastic"],
                     "difference": overruns["stochastic"] - overruns["mpc"], "ci_low": float("nan"),
                     "ci_high": float("nan"), "stochastic_better_seeds": float("nan")})
    return pd.DataFrame(rows)


def markdown(summary: pd.DataFrame, stochastic: str, days: float, note: str) -> str:
    lines = [f"# `{stochastic}` against `mpc`: {SCENARIO}, {days:g} days, noisy forecasts", "",
             "Paired on common random numbers (same seed: same traffic, weather, prices, jobs and forecast "
             f"errors). Difference = `{stochastic}` − `mpc`, mean over seeds with its 95 % t-interval "
             "(paired differences); 'better' = seeds on which the stochastic MPC did better. "
             "Written by `benchmarks/stochastic_value.py`.", "", note, ""]
    formats = {key: fmt for key, _, fmt, _ in METRICS}
    for sigma, group in summary.groupby("sigma_24h"):
        pairs = int(group["pairs"].iloc[0])
        lines += [f"## σ24h = {sigma:g} ({pairs} seeds)", "",
                  "| metric | mpc | mpc-stochastic | difference | 95 % CI | better |", "|---|---:|---:|---:|---|---:|"]
        for row in group.itertuples():
            fmt = formats.get(row.metric, "{:.0f}")
            ci = "" if not np.isfinite(row.ci_low) else f"[{fmt.format(row.ci_low)}, {fmt.format(row.ci_high)}]"
            wins = row.stochastic_better_seeds
            better = "" if not np.isfinite(wins) else f"{int(wins)}/{pairs}"
            lines.append(f"| {row.label} | {fmt.format(row.mpc)} | {fmt.format(row.stochastic)} | "
                         f"{fmt.format(row.difference)} | {ci} | {better} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="1-10")
    parser.add_argument("--sigmas", default="0.15,0.3,0.5")
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--stochastic", default="mpc-stochastic", help="the stochastic controller's spec")
    parser.add_argument("--runs", type=Path, default=HERE / "stochastic_value_runs.csv")
    parser.add_argument("--out", type=Path, default=HERE / "stochastic_value.md")
    parser.add_argument("--summary-only", action="store_true", help="only rewrite the summary from --runs")
    args = parser.parse_args()
    from scenarios import load_scenario
    from scenarios.io import with_days
    from simulator.sweep_grid import parse_seeds

    seeds = parse_seeds(args.seeds)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    scenario = with_days(load_scenario(SCENARIO), args.days)
    runs = pd.read_csv(args.runs) if args.runs.exists() else pd.DataFrame()
    done = set() if runs.empty else set(zip(runs["controller"], runs["sigma_24h"].round(6), runs["seed"], strict=True))
    bounds = {} if runs.empty else runs.dropna(subset=["bound_usd"]).groupby("seed")["bound_usd"].first().to_dict()
    if not args.summary_only:
        for sigma in sigmas:
            for seed in seeds:
                for controller in ("mpc", args.stochastic):
                    if (controller, round(sigma, 6), seed) in done:
                        continue
                    row = run_one(scenario, controller, sigma, seed, bound=seed not in bounds)
                    if seed not in bounds:
                        bounds[seed] = row["bound_found_usd"]
                    del row["bound_found_usd"]
                    row["bound_usd"] = bounds[seed]
                    row["regret_usd"] = bounds[seed] - row["benefit_usd"]
                    pd.DataFrame([row]).to_csv(args.runs, mode="a", header=not args.runs.exists(), index=False)
                    print(f"σ={sigma:g} seed {seed} {controller}: benefit {row['benefit_usd']:,.0f} USD, "
                          f"decide {row['decide_s_mean']:.3f} s, run {row['wall_s']:.0f} s", flush=True)
        runs = pd.read_csv(args.runs)
    summary = summarise(runs, args.stochastic)
    summary.to_csv(args.out.with_suffix(".csv"), index=False)
    note = (f"Machine: {platform.machine()}, {platform.python_version()}; shared with other jobs, so decision "
            "times are indicative only.")
    args.out.write_text(markdown(summary, args.stochastic, args.days, note) + "\n")
    print(markdown(summary, args.stochastic, args.days, note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
