"""Whole runs: determinism, common random numbers, fallbacks, the bound, results on disk, the API."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_simulator import assert_invariants, small_scenario

import optimizer.mpc
from forecasts import ForecastError, make_forecaster
from optimizer.control import GreedyController
from optimizer.solvers import SolverUnavailable
from scenarios import dump_scenario
from simulator import CONTROLLERS, RunResult, make_controller, simulate
from simulator.results import FRAMES, same_kpis

TIMING_COLUMNS = ["wall_s", "build_s", "decide_s", "objective_benefit_usd", "gap"]


@pytest.fixture(scope="module")
def scenario():
    return small_scenario(2, 2, 3, 12, population=True, variant=11)


@pytest.fixture(scope="module")
def mpc_result(scenario):
    return simulate(scenario, make_controller("mpc", scenario, seed=4), seed=4, bound=True)


def test_same_seed_gives_identical_frames(scenario):
    first = simulate(scenario, make_controller("greedy", scenario), seed=9)
    second = simulate(scenario, make_controller("greedy", scenario), seed=9)
    for name in ("ticks", "routing", "jobs", "events"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    pd.testing.assert_frame_equal(first.solver_log.drop(columns=TIMING_COLUMNS),
                                  second.solver_log.drop(columns=TIMING_COLUMNS))
    other = simulate(scenario, make_controller("greedy", scenario), seed=10)
    assert not np.allclose(first.ticks["renewable_available_mw"], other.ticks["renewable_available_mw"])


def exogenous(result: RunResult) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    demand = result.routing.groupby(["time", "class"])[["served_req_per_s", "dropped_req_per_s"]].sum().sum(axis=1)
    weather = result.ticks[["time", "site", "renewable_available_mw", "import_price_usd_per_mwh",
                            "carbon_t_per_mwh", "pue"]]
    submissions = result.jobs[["job", "submitted_h", "release_h", "deadline_h", "duration_h", "gpus", "power_mw",
                               "value_usd", "eligible_sites"]].sort_values("job", ignore_index=True)
    return demand.to_frame("demand"), weather, submissions


def test_controllers_on_one_seed_see_common_random_numbers(scenario, mpc_result):
    greedy = simulate(scenario, make_controller("greedy", scenario), seed=4)
    local = simulate(scenario, make_controller("local", scenario), seed=4)
    short = simulate(scenario, make_controller("mpc", scenario, horizon_hours=2.0, seed=4), seed=4)  # shorter span
    for a, b in ((greedy, local), (greedy, mpc_result), (greedy, short)):
        for frame_a, frame_b in zip(exogenous(a), exogenous(b), strict=True):
            pd.testing.assert_frame_equal(frame_a, frame_b, rtol=1e-9)
    assert not np.allclose(greedy.ticks["import_mw"], mpc_result.ticks["import_mw"])  # the decisions differ


def test_mpc_with_perfect_forecasts_is_close_to_the_hindsight_bound(scenario, mpc_result):
    assert_invariants(scenario, mpc_result)
    kpis = mpc_result.kpis
    assert kpis["hindsight_status"] == "optimal"
    assert kpis["fallbacks"] == 0
    assert kpis["time_limit_stops"] == (mpc_result.solver_log["status"] == "time_limit").sum() == 0
    # the bound is a true upper bound (tick grid, exact durations, dual bound): regret >= 0, and
    # perfect forecasts bring the MPC within 5 % of it
    assert kpis["hindsight_plan_benefit_usd"] <= kpis["hindsight_bound_usd"] + 1e-6
    assert 0.0 <= kpis["regret_usd"] <= 0.05 * abs(kpis["hindsight_bound_usd"])
    heuristic = simulate(scenario, make_controller("local", scenario), seed=4)
    assert kpis["benefit_usd"] > heuristic.kpis["benefit_usd"]


def test_a_failing_solver_falls_back_and_the_run_completes(scenario, monkeypatch):
    calls = {"n": 0}
    solve = optimizer.mpc.run_variant

    def flaky(window, variant, options):
        calls["n"] += 1
        if calls["n"] % 2 == 0:
            raise SolverUnavailable("injected: licence refused")
        return solve(window, variant, options)

    monkeypatch.setattr(optimizer.mpc, "run_variant", flaky)
    result = simulate(scenario, make_controller("mpc", scenario, seed=1), seed=1)
    log = result.solver_log
    assert len(log) == 12 and result.kpis["fallbacks"] == 6
    failed = log[log["fallback"] != ""]
    assert failed["fallback"].str.contains("injected").all()
    assert failed["fallback"].str.startswith("previous plan shifted").all()
    assert_invariants(scenario, result)


def test_decisions_stopped_on_the_time_limit_are_counted(scenario, monkeypatch):
    """Only such decisions can depend on machine load, so the KPIs count them."""
    solve = optimizer.mpc.run_variant

    def stopped(window, variant, options):
        result = solve(window, variant, options)
        result.solve.status = "time_limit"  # as if the solver had stopped on its limit with this incumbent
        return result

    monkeypatch.setattr(optimizer.mpc, "run_variant", stopped)
    result = simulate(scenario, make_controller("mpc", scenario, seed=1), days=0.25, seed=1)
    assert result.kpis["time_limit_stops"] == len(result.solver_log) == 6
    assert result.kpis["fallbacks"] == 0  # an incumbent at the limit is used, not a fallback


def test_a_controller_error_falls_back_to_greedy(scenario):
    class Broken(GreedyController):
        name = "broken"

        def decide(self, observation):
            if observation.elapsed_h >= 3:
                raise ForecastError("injected: no forecast")
            return super().decide(observation)

    result = simulate(scenario, Broken(), seed=2)
    log = result.solver_log
    assert (log["fallback"] != "").sum() == 9
    assert log.loc[log["fallback"] != "", "status"].eq("fallback").all()
    assert_invariants(scenario, result)


def test_save_and_load_round_trip(tmp_path, mpc_result):
    folder = mpc_result.save(tmp_path / "run")
    loaded = RunResult.load(folder)
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(mpc_result, name), getattr(loaded, name))
    assert same_kpis(mpc_result.kpis, loaded.kpis)
    assert json.loads(json.dumps(loaded.manifest)) == loaded.manifest
    assert loaded.manifest["seed"] == 4 and loaded.manifest["controller_name"] == "mpc"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_save_refuses_an_existing_folder_unless_forced(tmp_path, mpc_result):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="exists"):
        mpc_result.save(folder)
    assert (folder / "keep.txt").read_text() == "mine"
    # force replaces only a result folder (or an empty one): a folder of the user's stays untouched
    with pytest.raises(FileExistsError, match="not an aidc result folder"):
        mpc_result.save(folder, force=True)
    assert (folder / "keep.txt").read_text() == "mine"
    result_folder = tmp_path / "result"
    mpc_result.save(result_folder)
    (result_folder / "ticks.parquet").unlink()
    mpc_result.save(result_folder, force=True)
    assert (result_folder / "ticks.parquet").exists() and (result_folder / "manifest.json").exists()


def test_manifest_records_what_reproduces_the_run(scenario, mpc_result):
    import hashlib

    manifest = mpc_result.manifest
    assert manifest["scenario_sha256"] == hashlib.sha256(dump_scenario(scenario).encode()).hexdigest()
    assert manifest["forecaster"] == "perfect" and manifest["solver"] == "highs"
    assert manifest["controller"]["variant"] == "joint"
    assert {"numpy", "pandas", "highspy", "simpy", "python", "aidc"} <= set(manifest["versions"])
    # every runtime dependency of aidc with its installed version (the constraints.txt pin under make)
    from importlib.metadata import version

    assert {"statsmodels", "scipy", "pydantic", "pyarrow"} <= set(manifest["versions"])
    assert manifest["versions"]["statsmodels"] == version("statsmodels")
    # the commit of the code that ran (this checkout is a git clone in development and CI)
    import re

    commit = manifest["versions"]["aidc_git_commit"]
    assert commit == "unknown" or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", commit), commit
    assert manifest["noise"]["demand_day_sigma"] == 0.1
    assert manifest["wall_start"] <= manifest["wall_end"]


def test_kpis_add_up(mpc_result):
    kpis = mpc_result.kpis
    costs = ("unserved_penalty_usd", "import_cost_usd", "fuel_cost_usd", "battery_degradation_usd", "carbon_cost_usd",
             "budget_penalty_usd", "tail_energy_cost_usd")
    gains = ("job_reward_usd", "inference_value_usd", "export_revenue_usd", "battery_terminal_value_usd")
    assert kpis["benefit_usd"] == pytest.approx(sum(kpis[g] for g in gains) - sum(kpis[c] for c in costs))
    served, dropped = kpis["inference_served_mreq"], kpis["inference_dropped_mreq"]
    assert served + dropped == pytest.approx(kpis["inference_demand_mreq"])
    assert kpis["jobs_submitted"] == len(mpc_result.jobs)
    assert 0 < kpis["mean_rtt_ms"] < 60
    assert kpis["solve_s_p95"] <= kpis["solve_s_max"]


def test_days_and_forecaster_override(scenario):
    forecaster = make_forecaster("noisy:sigma_24h=0.2", seed=3)
    result = simulate(scenario, make_controller("mpc", scenario), days=0.25, seed=3, forecaster=forecaster)
    assert result.manifest["days"] == 0.25 and len(result.solver_log) == 6
    assert result.kpis["budget_tco2"] == pytest.approx(scenario.carbon.budget_tco2 * 0.25 / scenario.run.days)
    assert result.manifest["forecaster"].startswith("noisy")
    with pytest.raises(ValueError, match="days"):
        simulate(scenario, make_controller("local"), days=0.3)


def test_make_controller_names_and_errors(scenario):
    for name in CONTROLLERS:
        assert make_controller(name, scenario).name == name
    with pytest.raises(ValueError, match="valid names: mpc, mpc-compute-only"):
        make_controller("oracle")
    with pytest.raises(ValueError, match="solver"):
        make_controller("mpc", solver="cplex")


def test_round_trip_of_a_run_without_jobs_or_events(tmp_path):
    quiet = small_scenario(1, 1, 0, 6, battery=False, generator=False, variant=1)
    result = simulate(quiet, make_controller("local"), seed=1)
    assert result.jobs.empty and result.events.empty
    loaded = RunResult.load(result.save(tmp_path / "quiet"))
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(result, name), getattr(loaded, name))
