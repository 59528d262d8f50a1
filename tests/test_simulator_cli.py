"""``aidc run`` and ``aidc compare``."""

from __future__ import annotations

import pandas as pd
import pytest
from test_simulator import small_scenario

from scenarios import save_scenario
from simulator import RunResult
from simulator.cli import main
from simulator.commands import compare_table, parse_seeds


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("scenarios") / "small.toml"
    save_scenario(small_scenario(2, 2, 2, 12, variant=21), path)
    return path


def test_run_writes_the_result_folder_and_prints_the_kpis(scenario_file, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", str(scenario_file), "--controller", "mpc", "--forecast", "perfect", "--days", "0.25",
                 "--seed", "3", "--out", str(out), "--bound"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "benefit (USD)" in printed and "regret vs bound (USD)" in printed
    assert (out / "dispatch.png").stat().st_size > 10_000
    result = RunResult.load(out)
    assert result.manifest["seed"] == 3 and result.manifest["days"] == 0.25 and len(result.solver_log) == 6
    code = main(["run", str(scenario_file), "--controller", "local", "--out", str(out)])
    error = capsys.readouterr().err
    assert code == 2 and error.startswith("aidc: error: ") and "--force" in error and error.count("\n") == 1
    assert main(["run", str(scenario_file), "--controller", "local", "--days", "0.25", "--out", str(out),
                 "--force"]) == 0
    assert RunResult.load(out).manifest["controller_name"] == "local"


def test_run_reports_bad_input_in_one_line(scenario_file, capsys):
    assert main(["run", str(scenario_file), "--days", "0.3"]) == 2
    assert "run.days" in capsys.readouterr().err
    assert main(["run", str(scenario_file), "--forecast", "crystal-ball"]) == 2
    assert "unknown forecaster" in capsys.readouterr().err
    assert main(["run", "no-such-scenario"]) == 2


def test_compare_prints_mean_and_std_over_seeds(scenario_file, tmp_path, capsys):
    out = tmp_path / "runs.csv"
    code = main(["compare", str(scenario_file), "--controllers", "greedy,local", "--seeds", "1-2", "--days", "0.25",
                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    header = next(line for line in printed.splitlines() if line.startswith("KPI"))
    assert header.split()[1:] == ["greedy", "local"]
    assert "±" in printed
    runs = pd.read_csv(out)
    assert sorted(runs["seed"].unique()) == [1, 2] and len(runs) == 4
    assert main(["compare", str(scenario_file), "--controllers", "greedy,oracle"]) == 2
    assert "oracle" in capsys.readouterr().err


def test_seed_lists():
    assert parse_seeds("1-3") == [1, 2, 3]
    assert parse_seeds("4,1-2,4") == [4, 1, 2]
    for bad in ("3-1", "a", "", "-2"):
        with pytest.raises(Exception, match="--seeds"):
            parse_seeds(bad)


def test_compare_table_layout():
    runs = pd.DataFrame({"controller": ["a", "a", "b", "b"], "seed": [1, 2, 1, 2],
                         "benefit_usd": [10.0, 12.0, 7.0, 7.0], "fallbacks": [0, 1, 0, 0]})
    table = compare_table(runs, ["b", "a"]).splitlines()
    assert table[0].split() == ["KPI", "b", "a"]
    assert table[1].split()[-3:] == ["11", "±", "1"] and "7 ± 0" in table[1]


def test_run_takes_the_mpc_settings_and_records_them(tmp_path, capsys):
    """--gap, --time-limit, --horizon-hours, --fine-hours, --coarse-factor reach the controller (manifest)."""
    fleet = tmp_path / "fleet"
    code = main(["run", "fleet-10", "--controller", "mpc", "--days", "0.125", "--seed", "1", "--gap", "0.01",
                 "--time-limit", "7", "--horizon-hours", "6", "--fine-hours", "1", "--coarse-factor", "2",
                 "--out", str(fleet)])
    assert code == 0, capsys.readouterr().err
    config = RunResult.load(fleet).manifest["controller"]
    assert config["mip_gap"] == 0.01 and config["time_limit_s"] == 7 and config["horizon_hours"] == 6
    assert config["fine_hours"] == 1 and config["coarse_factor"] == 2
    full = tmp_path / "full"
    assert main(["run", "fleet-10", "--controller", "mpc", "--days", "0.125", "--seed", "1", "--fine-hours", "none",
                 "--out", str(full)]) == 0
    config = RunResult.load(full).manifest["controller"]
    assert config["fine_hours"] is None and config["coarse_factor"] is None and config["mip_gap"] == 0.005
    for bad, reason in ((["--gap", "1.5"], "--gap"), (["--fine-hours", "-2"], "--fine-hours"),
                        (["--coarse-factor", "0"], "--coarse-factor"), (["--horizon-hours", "0"], "--horizon-hours")):
        capsys.readouterr()
        code = main(["run", "paper-day", "--controller", "mpc", *bad])
        error = capsys.readouterr().err
        assert code == 2 and error.startswith("aidc: error: ") and reason in error and error.count("\n") == 1
