"""One closed-loop benchmark case, run in its own process; prints one JSON line.

Runs against whatever ``optimizer``/``simulator`` packages are first on ``sys.path``, so
``benchmarks/run.py`` can time the same case on this tree and on a reference checkout (given by
``PYTHONPATH``) with the same seeds. Works with every aidc version since the first release: it
uses only ``make_controller``, ``simulate`` and the result's ``kpis``/``solver_log``.

Usage: python benchmarks/case.py '{"scenario": "us-3site", "days": 7, "seed": 1, "forecast": "noisy"}'

Optional keys: ``controller`` (default ``mpc``), ``mpc`` (keyword arguments for
``make_controller``, e.g. ``{"mip_gap": 1e-3}``), ``lp`` (default true: after the run, time the LP
relaxation of every window the controller solved — the floor no MILP decision on that window
can beat).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import replace


def quantile(values: list[float], q: float) -> float:
    """The q-quantile by linear interpolation (numpy's default), of a non-empty list."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def main(spec: dict) -> dict:
    import numpy as np

    import optimizer.variants as variants
    from optimizer.solvers import SolveOptions, solve
    from scenarios import load_builtin
    from simulator import make_controller, simulate

    windows: list = []
    if spec.get("lp", True):
        inner = variants.solve_window

        def recording(model, index, options):  # noqa: ANN001, ANN202 (a wrapper of the library's own)
            windows.append(model)
            return inner(model, index, options)

        variants.solve_window = recording
    scenario = load_builtin(spec["scenario"])
    controller = make_controller(spec.get("controller", "mpc"), scenario, forecast=spec.get("forecast", "perfect"),
                                 seed=spec["seed"], **spec.get("mpc", {}))
    wall, cpu = time.perf_counter(), time.process_time()
    result = simulate(scenario, controller, days=spec["days"], seed=spec["seed"])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    kpis = result.kpis
    log = result.solver_log
    out: dict = {"spec": spec, "wall_s": wall, "cpu_s": cpu, "benefit_usd": kpis["benefit_usd"],
                 "emissions_tco2": kpis["emissions_tco2"], "tick_us": kpis.get("tick_us"),
                 "control_steps": len(log), "config": controller.config()}
    if len(log) and "decide_s" in log:
        decide = [float(v) for v in log["decide_s"]]
        out.update(decide_s_p50=quantile(decide, 0.5), decide_s_p95=quantile(decide, 0.95), decide_s_max=max(decide),
                   decide_s_mean=statistics.fmean(decide))
        status = [str(s) for s in log.get("status", [])]
        out["time_limit_count"] = sum(s == "time_limit" for s in status)
        out["fallbacks"] = int((log["fallback"].astype(str) != "").sum()) if "fallback" in log else 0
        for column in ("rows", "cols", "binaries"):
            if column in log:
                out[f"window_{column}_max"] = int(np.nanmax(log[column].astype(float)))
    if windows:
        options = SolveOptions(solver="highs", threads=1, time_limit_s=60.0)
        lp = []
        for model in windows:
            began = time.perf_counter()
            solve(replace(model, col_integer=np.zeros_like(model.col_integer)), options)
            lp.append(time.perf_counter() - began)
        out.update(lp_s_p50=quantile(lp, 0.5), lp_s_p95=quantile(lp, 0.95), lp_s_max=max(lp), windows=len(lp))
    return out


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1])), default=float))
