"""Sweeps: the grid, atomic resumable runs, identical tables on the process pool and on Dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_simulator import small_scenario

from scenarios import save_scenario
from simulator.cli import main
from simulator.sweep import (
    FAIL_HOOK,
    RUN_MARKER,
    ScenarioVariant,
    SweepGrid,
    SweepSpecError,
    collect_runs,
    is_timing_column,
    load_sweep,
    run_sweep,
    same_tables,
    split_forecasts,
    summarise_runs,
)

CONTROLLERS = ("mpc", "local")
FORECASTS = ("perfect", "noisy:sigma_24h=0.3")
SEEDS = (1, 2, 3)  # three seeds: a mean and a std per cell, and enough runs to kill a sweep midway


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("scenarios") / "small.toml"
    save_scenario(small_scenario(2, 2, 2, 6, variant=21), path)  # 6 h, 6 control steps
    return path


@pytest.fixture(scope="module")
def grid(scenario_file):
    return SweepGrid(str(scenario_file), controllers=CONTROLLERS, forecasts=FORECASTS, seeds=SEEDS, bound=True)


@pytest.fixture(scope="module")
def fresh(grid, tmp_path_factory):
    """The grid swept once, uninterrupted, on the local process pool."""
    return run_sweep(grid, tmp_path_factory.mktemp("sweeps") / "fresh", workers=2, progress=False)


def cli_arguments(scenario_file: Path, out: Path) -> list[str]:
    return ["sweep", str(scenario_file), "--controllers", ",".join(CONTROLLERS), "--forecasts", ";".join(FORECASTS),
            "--seeds", f"{SEEDS[0]}-{SEEDS[-1]}", "--bound", "--out", str(out)]


# ---------------------------------------------------------------------------------------------
# the grid


def test_heuristics_run_once_per_seed_and_variant_and_ids_are_stable(scenario_file):
    rich = ScenarioVariant.parse("rich:generation_scale=2")
    grid = SweepGrid(str(scenario_file), controllers=("mpc", "greedy"), forecasts=FORECASTS, seeds=(1, 2),
                     variants=(ScenarioVariant("base"), rich))
    specs = grid.runs()
    assert len(specs) == 2 * (2 * 2 + 2)
    assert {s.forecast for s in specs if s.controller == "greedy"} == {None}
    ids = [s.run_id for s in specs]
    assert len(set(ids)) == len(ids) and ids == [s.run_id for s in grid.runs()]
    assert ids[0].startswith("mpc_perfect_base_seed1-")
    # the run id follows everything that determines the run, and nothing else
    longer = SweepGrid(str(scenario_file), controllers=("mpc", "greedy"), forecasts=FORECASTS, seeds=(1, 2),
                       variants=(ScenarioVariant("base"), rich), days=0.25, time_limit_s=5.0)
    assert not set(ids) & {s.run_id for s in longer.runs()}
    slower = SweepGrid(str(scenario_file), controllers=("greedy",), seeds=(1,), time_limit_s=5.0)
    assert slower.runs()[0].run_id == next(s.run_id for s in specs if s.controller == "greedy" and s.seed == 1)
    assert {s.scenario_sha256 for s in specs if s.variant == "rich"} != {s.scenario_sha256 for s in specs
                                                                         if s.variant == "base"}


def test_scenario_variants_override_fields_and_are_validated(scenario_file):
    from scenarios import load_scenario

    base = load_scenario(str(scenario_file))
    variant = ScenarioVariant.parse("rich:generation_scale=2.5,carbon.price_usd_per_tco2=60")
    changed = variant.apply(base)
    assert changed.generation_scale == 2.5 and changed.carbon.price_usd_per_tco2 == 60.0
    assert ScenarioVariant.parse("generation_scale=3").name == "generation_scale=3"
    assert ScenarioVariant.parse("base").apply(base) is base
    with pytest.raises(SweepSpecError, match="generation_scal: no such scenario field"):
        ScenarioVariant.parse("generation_scal=2").apply(base)
    with pytest.raises(SweepSpecError, match="generation_scale"):
        ScenarioVariant.parse("generation_scale=-1").apply(base)
    with pytest.raises(SweepSpecError, match="name:field=value"):
        ScenarioVariant.parse("rich:generation_scale")


def test_grid_from_toml_with_overrides_and_bad_grids(scenario_file, tmp_path):
    (tmp_path / "small.toml").write_text(scenario_file.read_text())
    path = tmp_path / "grid.toml"
    path.write_text('scenario = "small.toml"\ncontrollers = ["mpc", "local"]\n'
                    'forecasts = ["perfect", "noisy:sigma_24h=0.2"]\nseeds = "1-3"\ndays = 0.25\nbound = true\n'
                    '[variants]\nbase = {}\n'
                    'rich = { generation_scale = 2.0, carbon = { price_usd_per_tco2 = 50.0 } }\n')
    grid = SweepGrid.from_toml(path, seeds="4", days=None)
    assert Path(grid.scenario) == tmp_path / "small.toml"
    assert grid.seeds == (4,) and grid.days == 0.25 and grid.bound
    assert [v.name for v in grid.variants] == ["base", "rich"]
    assert dict(grid.variants[1].overrides) == {"generation_scale": 2.0, "carbon.price_usd_per_tco2": 50.0}
    assert SweepGrid.from_mapping(grid.to_dict()) == grid
    for bad, message in ((dict(controllers=("mpc", "oracle")), "oracle"), (dict(forecasts=("crystal",)), "crystal"),
                         (dict(seeds=()), "seeds"), (dict(days=-1.0), "days")):
        with pytest.raises(SweepSpecError, match=message):
            SweepGrid(str(scenario_file), **bad)
    with pytest.raises(SweepSpecError, match="unknown key"):
        SweepGrid.from_mapping({"scenario": "x", "seed": 3})


def test_split_forecasts_keeps_parameters_with_their_forecaster():
    assert split_forecasts("perfect,noisy:sigma_24h=0.1,rho=0.8,ets") == ["perfect", "noisy:sigma_24h=0.1,rho=0.8",
                                                                          "ets"]
    assert split_forecasts("perfect; noisy:sigma_24h=0.1,rho=0.5") == ["perfect", "noisy:sigma_24h=0.1,rho=0.5"]


def test_timing_columns():
    assert all(map(is_timing_column, ("solve_s_mean", "decide_s_p95", "loop_wall_s", "hindsight_wall_s", "tick_us",
                                      "wall_s")))
    assert not any(map(is_timing_column, ("benefit_usd", "hindsight_gap", "control_steps", "regret_usd")))


# ---------------------------------------------------------------------------------------------
# running it


def test_a_sweep_writes_runs_and_tables(fresh, grid):
    assert fresh.complete and fresh.ran == fresh.total == 2 * len(SEEDS) + len(SEEDS) and not fresh.failed
    runs, summary = fresh.runs, fresh.summary
    assert list(runs["run_id"]) == [spec.run_id for spec in grid.runs()]
    assert set(runs.loc[runs["controller"] == "local", "forecast"]) == {"n/a"}
    assert runs["regret_usd"].notna().all()
    assert sorted(runs["forecast_sigma_24h"].dropna().unique()) == [0.0, 0.3]
    for name in ("runs", "summary"):
        assert same_tables(pd.read_parquet(fresh.folder / f"{name}.parquet"), getattr(fresh, name))
        assert len(pd.read_csv(fresh.folder / f"{name}.csv")) == len(getattr(fresh, name))
    benefit = summary[summary["kpi"] == "benefit_usd"]
    assert len(benefit) == 3 and set(benefit["count"]) == {len(SEEDS)} and set(benefit["runs"]) == {len(SEEDS)}
    mpc_perfect = runs[(runs["controller"] == "mpc") & (runs["forecast"] == "perfect")]["benefit_usd"]
    row = benefit[(benefit["controller"] == "mpc") & (benefit["forecast"] == "perfect")].iloc[0]
    assert row["mean"] == pytest.approx(mpc_perfect.mean()) and row["std"] == pytest.approx(mpc_perfect.std())
    # the saved run folders are whole results
    from simulator import RunResult

    result = RunResult.load(fresh.folder / "runs" / runs["run_id"].iloc[0])
    assert result.kpis["benefit_usd"] == runs["benefit_usd"].iloc[0]
    assert same_tables(load_sweep(fresh.folder)[0], runs)


def test_rerun_skips_finished_runs(fresh, grid):
    markers = {p: p.stat().st_mtime_ns for p in (fresh.folder / "runs").glob(f"*/{RUN_MARKER}")}
    again = run_sweep(grid, fresh.folder, workers=2, progress=False)
    assert again.ran == 0 and again.skipped == again.total and again.complete
    assert {p: p.stat().st_mtime_ns for p in (fresh.folder / "runs").glob(f"*/{RUN_MARKER}")} == markers
    assert same_tables(again.runs, fresh.runs) and same_tables(again.summary, fresh.summary)


def test_dask_local_cluster_gives_the_same_tables_as_the_process_pool(fresh, grid, tmp_path):
    on_dask = run_sweep(grid, tmp_path / "dask", workers=2, dask="local", progress=False)
    assert on_dask.complete and on_dask.ran == on_dask.total
    assert same_tables(on_dask.runs, fresh.runs)
    assert same_tables(on_dask.summary, fresh.summary)
    # only wall-clock columns may differ (and are left out of the comparison)
    pool, dask = fresh.runs.set_index("run_id"), on_dask.runs.set_index("run_id")
    differ = [c for c in pool.columns if not pool[c].equals(dask.loc[pool.index, c])]
    assert all(map(is_timing_column, differ))


def test_a_killed_sweep_resumes_with_nothing_lost_or_duplicated(fresh, scenario_file, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "simulator.cli", *cli_arguments(scenario_file, out), "--workers", "1",
               "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list((out / "runs").glob(f"*/{RUN_MARKER}")):
            assert process.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the driver and its worker, at once
        process.wait()
    finished = {p.parent.name for p in (out / "runs").glob(f"*/{RUN_MARKER}")}
    assert 0 < len(finished) < fresh.total
    assert (out / ".lock").exists()  # left by the killed driver (its pid is dead now)
    # debris of a crash: a half-written staging folder, a run folder without marker, a temporary table
    (out / ".staging" / "mpc_perfect_base_seed9-0000000000.deadbeef").mkdir(parents=True)
    (out / "runs" / "local_none_base_seed9-0000000000").mkdir()
    (out / "runs" / "local_none_base_seed9-0000000000" / "ticks.parquet").write_bytes(b"partial")
    (out / ".runs.csv.tmp-12345678").write_text("partial")
    markers = {name: (out / "runs" / name / RUN_MARKER).stat().st_mtime_ns for name in finished}

    assert main([*cli_arguments(scenario_file, out), "--no-progress"]) == 0
    resumed = collect_runs(out)
    assert sorted(resumed["run_id"]) == sorted(fresh.runs["run_id"])  # every run exactly once, nothing else
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(fresh.runs["run_id"])
    assert not (out / ".staging").exists() or not any((out / ".staging").iterdir())
    assert not list(out.glob(".*.tmp-*")) and not (out / ".lock").exists()
    assert {name: (out / "runs" / name / RUN_MARKER).stat().st_mtime_ns for name in finished} == markers
    runs, summary = pd.read_parquet(out / "runs.parquet"), pd.read_parquet(out / "summary.parquet")
    assert same_tables(runs, fresh.runs) and same_tables(summary, fresh.summary)


def test_a_failing_run_is_reported_and_retried(scenario_file, tmp_path, monkeypatch, capsys):
    out = tmp_path / "failing"
    arguments = ["sweep", str(scenario_file), "--controllers", "mpc,local", "--seeds", "1-2", "--days", "0.25",
                 "--out", str(out), "--workers", "0", "--no-progress"]
    monkeypatch.setenv(FAIL_HOOK, "mpc_perfect_base_seed2")
    assert main(arguments) == 1
    printed = capsys.readouterr()
    assert "3 ran" in printed.out and "1 failed" in printed.out
    assert "failed mpc_perfect_base_seed2-" in printed.err and "on purpose" in printed.err
    assert len(pd.read_csv(out / "runs.csv")) == 3
    monkeypatch.delenv(FAIL_HOOK)
    assert main(arguments) == 0
    assert "1 ran, 3 already finished, 0 failed" in capsys.readouterr().out
    assert len(pd.read_csv(out / "runs.csv")) == 4


def test_sweep_folder_guards(scenario_file, tmp_path, capsys):
    other = tmp_path / "not-a-sweep"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["sweep", str(scenario_file), "--out", str(other), "--workers", "0"]) == 2
    assert "not a sweep folder" in capsys.readouterr().err
    busy = tmp_path / "busy"
    (busy / "runs").mkdir(parents=True)
    (busy / ".lock").write_text(str(os.getppid()))  # a live process holds it
    assert main(["sweep", str(scenario_file), "--controllers", "local", "--seeds", "1", "--out", str(busy)]) == 2
    assert "another sweep" in capsys.readouterr().err
    for arguments, message in (
        (["--controllers", "mpc,oracle"], "oracle"),
        (["--forecasts", "crystal-ball"], "unknown forecaster"),
        (["--scenario-variant", "rich:no_such_field=1"], "no_such_field"),
        (["--days", "0.3"], "run.days"),
        (["--dask", "somewhere"], "--dask"),
        (["--seeds", "3-1"], "seeds"),
    ):
        code = main(["sweep", str(scenario_file), "--out", str(tmp_path / "bad"), *arguments])
        error = capsys.readouterr().err
        assert code == 2 and error.startswith("aidc: error: ") and message in error and error.count("\n") == 1
    assert not (tmp_path / "bad" / "runs").exists() or not any((tmp_path / "bad" / "runs").iterdir())


def test_summary_of_an_empty_sweep_and_the_grid_record(tmp_path, scenario_file):
    assert summarise_runs(collect_runs(tmp_path)).empty
    outcome = run_sweep(SweepGrid(str(scenario_file), controllers=("local",), seeds=(1,), days=0.25), tmp_path / "one",
                        workers=0, progress=False)
    assert outcome.complete and len(outcome.runs) == 1
    record = json.loads((tmp_path / "one" / "sweep.json").read_text())
    assert record["controllers"] == ["local"] and record["seeds"] == [1]


def test_a_script_without_main_guard_can_run_a_sweep(scenario_file, tmp_path):
    """Spawned workers do not run the calling script again (it would sweep again, inside each worker)."""
    script = tmp_path / "study.py"
    script.write_text(
        "from simulator.sweep import SweepGrid, run_sweep\n"
        f"grid = SweepGrid({str(scenario_file)!r}, controllers=('local',), seeds=(1, 2), days=0.25)\n"
        "outcome = run_sweep(grid, 'out', workers=2, progress=False)\n"
        "print('complete' if outcome.complete else outcome.failed)\n"
    )
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "complete"


def test_the_readme_grid_example_is_a_valid_grid():
    import re
    import tomllib

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```toml title=grid.toml\n(.*?)```", readme, flags=re.DOTALL)
    grid = SweepGrid.from_mapping(tomllib.loads(block), where="README.md")
    specs = grid.runs()
    assert len(specs) == 2 * (2 * 3 * 5 + 2 * 5)  # variants x (MPCs x forecasts x seeds + heuristics x seeds)
    assert {s.variant for s in specs} == {"base", "rich"}


def test_grid_carries_the_mpc_settings_into_each_mpc_run():
    from optimizer.defaults import MPC_DEFAULTS
    from simulator.sweep import SweepGrid, SweepSpecError

    grid = SweepGrid.from_mapping({"scenario": "paper-day", "controllers": "mpc,greedy", "seeds": "1",
                                   "mip_gap": 0.01, "horizon_hours": 12, "fine_hours": 0, "coarse_factor": 2.0})
    mpc, greedy = grid.runs()
    assert mpc.mpc_settings() == {"time_limit_s": MPC_DEFAULTS.time_limit_s, "mip_gap": 0.01, "horizon_hours": 12,
                                  "fine_hours": None, "coarse_factor": 2}
    assert greedy.fine_hours is None and greedy.mip_gap is None
    default = SweepGrid.from_mapping({"scenario": "paper-day", "controllers": "mpc", "seeds": "1"}).runs()[0]
    assert default.mpc_settings()["fine_hours"] == MPC_DEFAULTS.fine_hours
    assert default.run_id != mpc.run_id
    for key, value in (("mip_gap", 1.0), ("fine_hours", -1), ("coarse_factor", 1.5), ("horizon_hours", 0)):
        with pytest.raises(SweepSpecError, match=key):
            SweepGrid.from_mapping({"scenario": "paper-day", key: value})


def test_grid_file_errors_name_the_file(tmp_path):
    from simulator.sweep import SweepGrid, SweepSpecError

    grid = tmp_path / "grid.toml"
    grid.write_text('scenario = "paper-day"\ncoarse_factor = 0\n')
    with pytest.raises(SweepSpecError, match=r"grid\.toml: coarse_factor"):
        SweepGrid.from_toml(grid)
