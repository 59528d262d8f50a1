"""Closed-loop benchmark rows: the cases users run, on this tree and on a reference commit.

Every case runs in its own process (``benchmarks/case.py``) so imports, memory and timings are
clean, and so the same case can run against another checkout of aidc (``PYTHONPATH``): the
reference is the commit whose speed issue 10 measured (``REFERENCE_COMMIT``), checked out with
``git archive`` into ``.bench/``. Reference runs take minutes each and never change, so their
results are kept in ``benchmarks/reference_runs.json`` (keyed by commit and case) and re-run
only with ``--refresh-reference`` or when missing.

Cases (issue 10): us-3site one week with the default noisy forecasts, seeds 1-3; fleet-10 one day
at 15-min control with noisy forecasts; fleet-50 half a day. Each under three settings:

* ``default``: this tree's MPC defaults;
* ``full-precision``: this tree at the reference's precision (gap 1e-3, full-resolution horizon), the precision
  the default's benefit is compared with on the same seeds;
* ``reference``: the reference commit as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASE = Path(__file__).with_name("case.py")
REFERENCE_COMMIT = "3657179"
REFERENCE_CACHE = Path(__file__).with_name("reference_runs.json")
FULL_PRECISION = {"mip_gap": 1e-3, "fine_hours": None}


def run_case(spec: dict, tree: Path = ROOT) -> dict:
    """Run one case (see ``case.py``) with ``tree``'s packages first on the path; its JSON result."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, str(CASE), json.dumps(spec)], env=env, capture_output=True, text=True,
                          cwd=tempfile.gettempdir(), check=False)
    if done.returncode != 0:
        return {"spec": spec, "error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = time.perf_counter() - began
    return out


def reference_tree(commit: str = REFERENCE_COMMIT) -> Path:
    """A checkout of ``commit`` under ``.bench/`` (made once with ``git archive``)."""
    target = ROOT / ".bench" / f"reference-{commit}"
    if (target / "optimizer").is_dir():
        return target
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit], capture_output=True,
                             check=True).stdout
    with tempfile.TemporaryFile() as handle:
        handle.write(archive)
        handle.seek(0)
        with tarfile.open(fileobj=handle) as tar:
            tar.extractall(target, filter="data")
    return target


def reference_case(spec: dict, refresh: bool = False) -> dict:
    """The reference commit's result for ``spec``, from the cache or measured now (and cached)."""
    cache = json.loads(REFERENCE_CACHE.read_text()) if REFERENCE_CACHE.exists() else {}
    key = f"{REFERENCE_COMMIT} {json.dumps(spec, sort_keys=True)}"
    if key not in cache or refresh:
        result = run_case(spec, reference_tree())
        result["measured"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        cache[key] = result
        REFERENCE_CACHE.write_text(json.dumps(cache, indent=1, sort_keys=True, default=float))
    return {**cache[key], "cached": not refresh}


def loop_rows(scenario: str, days: float, seeds: tuple[int, ...], reference: bool, refresh: bool = False,
              full_precision: bool = True) -> list[dict]:
    """Every setting on every seed of one case, as flat rows."""
    rows = []
    for seed in seeds:
        spec = {"scenario": scenario, "days": days, "seed": seed, "forecast": "noisy"}
        settings = {"default": run_case(spec)}
        if full_precision:
            settings["full-precision"] = run_case({**spec, "mpc": FULL_PRECISION})
        if reference:
            settings["reference"] = reference_case(spec, refresh)
        for name, result in settings.items():
            rows.append({"case": f"{scenario} {days:g} d", "setting": name, "seed": seed, **result})
            print(f"  {scenario} {days:g} d seed {seed} {name:15s} " + summary_line(result), flush=True)
    return rows


def summary_line(r: dict) -> str:
    if "error" in r:
        return f"error: {r['error']}"
    return (f"wall {r['wall_s']:7.1f} s cpu {r['cpu_s']:7.1f} s  decide p50/p95/max {r.get('decide_s_p50', 0):.3f}/"
            f"{r.get('decide_s_p95', 0):.3f}/{r.get('decide_s_max', 0):.2f} s  LP p95 {r.get('lp_s_p95', 0):.3f} s  "
            f"benefit {r['benefit_usd']:,.0f}  time-limit {r.get('time_limit_count')} fallbacks {r.get('fallbacks')}")


def aggregate(rows: list[dict]) -> list[dict]:
    """Per (case, setting): means over seeds, worst decision times, and benefit relative to
    full precision on the same seeds (the mean of the per-seed ratios minus one)."""
    out = []
    cases = dict.fromkeys(r["case"] for r in rows)
    for case in cases:
        mine = [r for r in rows if r["case"] == case and "error" not in r]
        precise = {r["seed"]: r for r in mine if r["setting"] == "full-precision"}
        for setting in dict.fromkeys(r["setting"] for r in mine):
            chosen = [r for r in mine if r["setting"] == setting]
            relative = [r["benefit_usd"] / precise[r["seed"]]["benefit_usd"] - 1
                        for r in chosen if r["seed"] in precise]
            out.append({
                "case": case, "setting": setting, "seeds": [r["seed"] for r in chosen],
                "wall_s_mean": statistics.fmean(r["wall_s"] for r in chosen),
                "cpu_s_mean": statistics.fmean(r["cpu_s"] for r in chosen),
                "decide_s_p50": statistics.fmean(r["decide_s_p50"] for r in chosen),
                "decide_s_p95": max(r["decide_s_p95"] for r in chosen),
                "decide_s_max": max(r["decide_s_max"] for r in chosen),
                "lp_s_p95": max(r.get("lp_s_p95", float("nan")) for r in chosen),
                "lp_s_max": max(r.get("lp_s_max", float("nan")) for r in chosen),
                "benefit_usd_mean": statistics.fmean(r["benefit_usd"] for r in chosen),
                "benefit_vs_full_precision": statistics.fmean(relative) if relative else None,
                "time_limit_count": sum(r.get("time_limit_count") or 0 for r in chosen),
                "fallbacks": sum(r.get("fallbacks") or 0 for r in chosen),
                "tick_us_mean": statistics.fmean(r["tick_us"] for r in chosen if r.get("tick_us") is not None),
                "window_binaries_max": max(r.get("window_binaries_max", 0) for r in chosen),
            })
    return out


def command_rows(repeats: int = 5) -> dict:
    """Start-up and the whole default command, as a user runs them (``aidc`` from this venv)."""
    aidc = Path(sys.executable).with_name("aidc")
    out: dict = {}
    if not aidc.exists():
        return {"error": f"{aidc} not found"}
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        subprocess.run([str(aidc), "--version"], capture_output=True, check=True)
        times.append(time.perf_counter() - began)
    out["version_s_median"] = statistics.median(times)
    folder = Path(tempfile.mkdtemp(prefix="aidc-bench-"))
    try:
        command = [str(aidc), "run", "us-3site", "--controller", "mpc", "--forecast", "noisy", "--solver", "highs",
                   "--seed", "1", "--out", str(folder / "run")]
        began = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        first_line = None
        assert process.stdout is not None
        for _line in process.stdout:
            if first_line is None:
                first_line = time.perf_counter() - began
        process.wait()
        out["run_week_s"] = time.perf_counter() - began
        out["run_first_line_s"] = first_line
        out["run_exit_code"] = process.returncode
        out["run_command"] = " ".join(["aidc", *command[1:-2]])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out
