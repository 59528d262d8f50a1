"""``--days`` never changes a scenario's carbon budget silently: ``--budget-scale none|pro-rata``
on run, compare and sweep (and grid files), the budget printed and in the manifest (issue 12, item 6)."""

from __future__ import annotations

import pytest
from test_simulator import small_scenario

from scenarios import save_scenario
from scenarios.io import BUDGET_SCALES, DEFAULT_BUDGET_SCALE, budget_for_days, budget_note, with_days
from simulator import RunResult, commands, make_controller, simulate
from simulator.cli import main
from simulator.sweep_grid import SweepGrid, SweepSpecError


@pytest.fixture(scope="module")
def scenario():
    return small_scenario(1, 1, 0, 24, variant=3)  # budget 2 tCO2 over 1 day


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory, scenario):
    path = tmp_path_factory.mktemp("budget") / "small.toml"
    save_scenario(scenario, path)
    return path


def test_the_budget_of_a_shorter_run_is_scaled_or_kept_as_asked(scenario):
    budget = scenario.carbon.budget_tco2
    assert budget == pytest.approx(2.0)
    assert with_days(scenario, 0.25).carbon.budget_tco2 == pytest.approx(budget / 4)  # the default: pro rata
    assert with_days(scenario, 0.25, "pro-rata").carbon.budget_tco2 == pytest.approx(budget / 4)
    assert with_days(scenario, 0.25, "none").carbon.budget_tco2 == pytest.approx(budget)
    assert budget_for_days(scenario, None, "pro-rata") == budget_for_days(scenario, 1.0, "none") == budget
    with pytest.raises(ValueError, match="budget scale must be one of pro-rata, none"):
        with_days(scenario, 0.25, "half")
    note = budget_note(scenario, 0.25, "pro-rata")
    assert note == ("carbon budget for the simulated 0.25 days: 0.5 tCO2 (the scenario's 2 tCO2 over 1 day, "
                    "scaled pro rata; --budget-scale none keeps 2)")
    assert "2 tCO2 (the scenario's 2 tCO2 over 1 day, kept whole" in budget_note(scenario, 0.25, "none")
    assert budget_note(scenario, None) == "carbon budget: 2 tCO2 over the scenario's 1 day"


def test_the_commands_offer_the_scenarios_choices():
    assert commands.BUDGET_SCALES == BUDGET_SCALES and commands.DEFAULT_BUDGET_SCALE == DEFAULT_BUDGET_SCALE


def test_the_manifest_records_the_budget_of_the_simulated_span(scenario):
    kept = simulate(scenario, make_controller("local"), days=0.25, budget_scale="none")
    scaled = simulate(scenario, make_controller("local"), days=0.25)
    assert kept.manifest["carbon_budget"] == {
        "budget_tco2": 2.0, "budget_scale": "none", "scenario_budget_tco2": 2.0, "scenario_days": 1.0,
        "note": budget_note(scenario, 0.25, "none")}
    assert scaled.manifest["carbon_budget"]["budget_tco2"] == pytest.approx(0.5)
    assert kept.kpis["budget_tco2"] == 2.0 and scaled.kpis["budget_tco2"] == pytest.approx(0.5)
    # the same emissions against a four times larger budget
    assert kept.kpis["emissions_tco2"] == pytest.approx(scaled.kpis["emissions_tco2"])
    assert kept.kpis["budget_use_fraction"] == pytest.approx(scaled.kpis["budget_use_fraction"] / 4)


def test_run_and_compare_print_the_budget_and_honour_the_option(scenario_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(scenario_file), "--controller", "local", "--days", "0.25", "--budget-scale", "none",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "carbon budget for the simulated 0.25 days: 2 tCO2" in printed
    assert RunResult.load(out).manifest["carbon_budget"]["budget_scale"] == "none"
    assert main(["compare", str(scenario_file), "--controllers", "local", "--seeds", "1", "--days", "0.25"]) == 0
    assert "carbon budget for the simulated 0.25 days: 0.5 tCO2" in capsys.readouterr().out
    assert main(["run", str(scenario_file), "--budget-scale", "half"]) == 2
    assert "--budget-scale" in capsys.readouterr().err


def test_sweep_grids_take_the_budget_scale(scenario_file, tmp_path, capsys):
    grid = SweepGrid.from_mapping({"scenario": str(scenario_file), "controllers": ["local"], "seeds": [1],
                                   "days": 0.25})
    kept = SweepGrid.from_mapping({**grid.to_dict(), "budget_scale": "none"})
    assert grid.budget_scale == "pro-rata" and kept.budget_scale == "none"
    (default_run,), (kept_run,) = grid.runs(), kept.runs()
    assert kept_run.budget_scale == "none" and kept_run.run_id != default_run.run_id
    with pytest.raises(SweepSpecError, match="budget_scale: unknown 'half'"):
        SweepGrid.from_mapping({"scenario": str(scenario_file), "budget_scale": "half"})
    file = tmp_path / "grid.toml"
    file.write_text(f'scenario = "{scenario_file}"\ncontrollers = ["local"]\nseeds = [1]\ndays = 0.25\n'
                    'budget_scale = "none"\n', encoding="utf-8")
    assert main(["sweep", "--grid", str(file), "--out", str(tmp_path / "sweep"), "--workers", "0",
                 "--no-progress"]) == 0
    assert "carbon budget for the simulated 0.25 days: 2 tCO2" in capsys.readouterr().out
    run = RunResult.load(next((tmp_path / "sweep" / "runs").iterdir()))
    assert run.manifest["carbon_budget"]["budget_tco2"] == 2.0
    assert main(["sweep", "--grid", str(file), "--budget-scale", "pro-rata", "--out", str(tmp_path / "sweep2"),
                 "--workers", "0", "--no-progress"]) == 0
    assert "0.5 tCO2" in capsys.readouterr().out
