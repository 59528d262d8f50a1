"""Per-site and per-class KPIs, the controller's record (forecast vintages, plans, realised signals),
and ``aidc show`` on saved results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_simulator import small_scenario

from forecasts.vintages import VINTAGE_COLUMNS, skill_by_lead
from simulator import make_controller, simulate
from simulator.cli import main
from simulator.controller_record import PLAN_HOURS, truth_frames
from simulator.kpis_by_site import ADDITIVE, kpis_by
from simulator.results import RunResult


def _run(variant: int, controller: str = "mpc", record: bool = True, forecast: str = "noisy:sigma_24h=0.2"):
    scenario = small_scenario(2, 2, 3, 12, population=True, variant=variant)
    return simulate(scenario, make_controller(controller, scenario, forecast=forecast, seed=variant),
                    days=0.25, seed=variant, record_plans=record)


@pytest.fixture(scope="module")
def result():
    return _run(5)


def _check_sums(result: RunResult) -> None:
    frame = result.kpis_by
    assert frame is not None
    sites, classes = frame[frame["by"] == "site"], frame[frame["by"] == "class"]
    fleet = frame[frame["by"] == "fleet"].iloc[0]
    assert list(sites["name"]) == result.manifest["accounting"]["site_names"]
    assert list(classes["name"]) == result.manifest["accounting"]["class_names"]
    for key in ADDITIVE:
        total = float(sites[key].sum())
        assert total == pytest.approx(fleet[key], rel=1e-9, abs=1e-9), key
        if key in result.kpis:  # the fleet row is the run's fleet KPI
            assert fleet[key] == pytest.approx(float(result.kpis[key]), rel=1e-9, abs=1e-9), key
    for key in ("inference_served_mreq", "inference_dropped_mreq", "inference_value_usd", "unserved_penalty_usd",
                "inference_demand_mreq"):
        assert float(classes[key].sum()) == pytest.approx(fleet[key], rel=1e-9, abs=1e-12), key
    for key in ("inference_demand_mreq", "renewable_self_consumption_fraction", "inference_served_fraction",
                "mean_rtt_ms", "jobs_submitted", "jobs_dropped", "jobs_never_started"):
        value, kpi = fleet[key], float(result.kpis[key])
        assert (np.isnan(value) and np.isnan(kpi)) or value == pytest.approx(kpi, rel=1e-9), key


def test_site_and_class_kpis_sum_to_the_fleet_totals(result):
    _check_sums(result)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variant=st.integers(0, 200), controller=st.sampled_from(["greedy", "local", "mpc"]))
def test_site_sums_equal_fleet_totals_for_any_scenario_and_controller(variant, controller):
    _check_sums(_run(variant, controller, record=False))


def test_equivalent_full_cycles_are_throughput_over_twice_the_capacity(result):
    frame = result.kpis_by.set_index("name")
    capacity = result.manifest["plant"]["battery"]["energy_capacity_mwh"]
    for site, mwh in capacity.items():
        cycles = frame.loc[site, "battery_equivalent_full_cycles"]
        if mwh > 0:
            assert cycles == pytest.approx(frame.loc[site, "battery_throughput_mwh"] / (2 * mwh))
        else:
            assert np.isnan(cycles)


def test_the_record_holds_every_forecast_and_the_first_hours_of_every_plan(result):
    vintages, planned, signals = result.vintages, result.planned, result.signals
    assert tuple(vintages.columns) == (*VINTAGE_COLUMNS, "unit")
    units = dict(zip(vintages["signal"], vintages["unit"], strict=True))
    assert units["carbon"] == "tCO2/MWh" and units["import_price"] == "USD/MWh"
    assert set(result.signals.columns) >= {"value", "unit"} and "" not in set(result.signals["unit"])
    steps = len(result.solver_log)
    # every control step forecast every signal it needs; the issue times are the control steps
    assert set(vintages["issue_time"]) == set(result.solver_log["time"])
    assert vintages["lead_h"].min() == pytest.approx(1.0)
    assert set(vintages["quantile"].dropna()) == {0.1, 0.5, 0.9}
    # one plan per step (no fallback here), each kept for PLAN_HOURS (or to the run's end)
    assert (result.solver_log["fallback"] == "").all()
    assert planned["issue_time"].nunique() == steps
    assert (planned["lead_h"] <= PLAN_HOURS + 1e-9).all()
    # the first step of every plan is what the plant was told: battery set-points per site
    first = planned[planned["lead_h"] == planned["step_h"]]
    assert len(first) == steps * len(result.manifest["accounting"]["site_names"])
    # the truth covers the run; skill by lead can be computed from the saved run alone
    skill = skill_by_lead(vintages, truth_frames(signals))
    assert len(skill) and (skill["n"] > 0).all() and np.isfinite(skill["mae"]).all()


def test_a_perfect_forecast_matches_the_recorded_truth():
    perfect = _run(7, forecast="perfect")
    skill = skill_by_lead(perfect.vintages, truth_frames(perfect.signals))
    point = skill.dropna(subset=["mae"])
    # float32 storage: 7 significant digits
    scale = perfect.signals.groupby("signal")["value"].apply(lambda v: v.abs().max())
    assert (point["mae"] <= 1e-6 * point["signal"].map(scale) + 1e-9).all()


def test_no_record_when_turned_off_and_the_result_still_saves_and_loads(tmp_path):
    off = _run(5, record=False)
    assert off.vintages is None and off.planned is None and off.manifest["record_plans"] is False
    folder = off.save(tmp_path / "off")
    assert not (folder / "vintages.parquet").exists()
    loaded = RunResult.load(folder)
    assert loaded.vintages is None
    pd.testing.assert_frame_equal(loaded.kpis_by, off.kpis_by)


def test_saved_and_loaded_record_and_kpis_by_are_equal(result, tmp_path):
    folder = result.save(tmp_path / "run")
    assert (folder / "kpis_by.csv").is_file()
    loaded = RunResult.load(folder)
    for name in ("kpis_by", "vintages", "planned", "signals"):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(result, name), check_dtype=False)


def test_kpis_by_is_recomputed_for_a_result_saved_without_it(result, tmp_path):
    folder = result.save(tmp_path / "old")
    (folder / "kpis_by.parquet").unlink()
    loaded = RunResult.load(folder)
    pd.testing.assert_frame_equal(loaded.kpis_by, kpis_by(result.ticks, result.routing, result.jobs,
                                                          result.manifest))


# ---------------------------------------------------------------------------------------------
# aidc show


@pytest.fixture(scope="module")
def saved(result, tmp_path_factory):
    return result.save(tmp_path_factory.mktemp("show") / "run")


def test_show_prints_the_manifest_and_kpis(saved, capsys):
    assert main(["show", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "controller mpc" in out and "benefit (USD)" in out and "\r" not in out


def test_show_by_site_and_class_tables(saved, capsys, result):
    assert main(["show", str(saved), "--by", "site"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("KPI"))
    assert header.split()[1:] == [*result.manifest["accounting"]["site_names"], "fleet"]
    assert "battery equivalent full cycles" in out
    assert main(["show", str(saved), "--by", "class"]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("KPI"))
    assert header.split()[1:] == [*result.manifest["accounting"]["class_names"], "fleet"]


def test_show_plot_never_overwrites_without_force(saved, capsys):
    assert main(["show", str(saved), "--plot", "forecast", "--lead-hours", "2"]) == 0
    assert (saved / "forecast.png").read_bytes().startswith(b"\x89PNG")
    before = (saved / "forecast.png").stat().st_mtime_ns
    assert main(["show", str(saved), "--plot", "forecast", "--plot", "soc"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {saved / 'forecast-2.png'}" in out and (saved / "soc.png").is_file()
    assert (saved / "forecast.png").stat().st_mtime_ns == before
    assert main(["show", str(saved), "--plot", "forecast", "--force"]) == 0
    assert not (saved / "forecast-3.png").exists()


def test_show_csv_exports_every_frame(saved, capsys):
    assert main(["show", str(saved), "--csv"]) == 0
    names = {path.stem for path in (saved / "csv").iterdir()}
    assert {"ticks", "routing", "jobs", "solver_log", "events", "kpis_by", "vintages", "planned", "signals"} <= names
    assert main(["show", str(saved), "--csv"]) == 2  # exists: refused
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["show", "{tmp}/missing"], "No such file or directory"),
    (["show", "{tmp}"], "not an aidc result folder"),
    (["show", "{saved}", "--lead-hours", "0"], "must be positive"),
    (["show", "{saved}", "--plot", "forecast", "--lead-hours", "100"], "--lead-hours 100"),
    (["show", "{saved}", "--plot", "chart"], "invalid choice"),
])
def test_show_errors_are_one_line(args, message, saved, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path, saved=saved) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("aidc: error:") and message in err and len(err.strip().splitlines()) == 1


def test_show_forecast_of_a_heuristic_run_says_why(tmp_path, capsys):
    folder = _run(3, controller="local").save(tmp_path / "local")
    assert main(["show", str(folder), "--plot", "forecast"]) == 2
    assert "no forecasts" in capsys.readouterr().err


def test_show_a_sweep_folder(tmp_path, capsys):
    folder = tmp_path / "sweep"
    folder.mkdir()
    runs = pd.DataFrame({"scenario": "x", "variant": "base", "controller": ["mpc", "mpc"], "forecast": "perfect",
                         "seed": [1, 2], "benefit_usd": [1.0, 3.0]})
    runs.to_parquet(folder / "runs.parquet")
    assert main(["show", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "2 runs" in out and "2 ± 1" in out
    assert json.dumps(out)  # plain text


# ---------------------------------------------------------------------------------------------
# output that suits where it goes


def test_run_by_site_prints_a_clean_table_and_no_progress_into_a_file(capsys):
    assert main(["run", "us-3site", "--days", "0.25", "--controller", "local", "--by", "site"]) == 0
    captured = capsys.readouterr()  # not a terminal: no bar, no carriage returns
    assert "\r" not in captured.out + captured.err
    header = next(line for line in captured.out.splitlines() if line.startswith("KPI"))
    assert header.split()[1:] == ["ca", "tx", "va", "fleet"]
    assert all(line == line.rstrip() for line in captured.out.splitlines())


def test_quiet_leaves_stderr_empty(capsys):
    assert main(["run", "us-3site", "--days", "0.25", "--controller", "local", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["compare", "us-3site", "--days", "0.25", "--controllers", "local", "--seeds", "1", "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_progress_bar_is_off_off_a_terminal_and_with_quiet():
    import io

    from simulator.progress import progress_bar

    assert progress_bar(True, total=3).disable
    stream = io.StringIO()  # not a TTY
    with progress_bar(total=3, file=stream) as bar:
        bar.update(3)
    assert stream.getvalue() == ""


def test_the_recorded_vintage_table_is_the_vintage_stores(result):
    """The recorder builds the table of forecasts.vintages itself (fast); VintageStore gives the same rows."""
    from forecasts import make_forecaster
    from forecasts.vintages import VintageStore
    from simulator.controller_record import ForecastRecorder

    scenario = small_scenario(2, 2, 3, 12, population=True, variant=5)
    forecaster = make_forecaster("noisy:sigma_24h=0.2", 5)
    controller = make_controller("mpc", scenario, forecast="noisy:sigma_24h=0.2", seed=5)
    with ForecastRecorder(controller.forecaster) as recorder:
        simulate(scenario, controller, days=0.25, seed=5, record_plans=False)
    assert "forecast" not in vars(controller.forecaster)  # the forecaster is itself again
    store = VintageStore()
    for signal, issue, forecast in recorder.forecasts:
        store.record(signal, issue, forecast)
    expected = store.to_frame()
    got = recorder.frame()
    assert len(got) == len(expected) > 0 and forecaster.name == "noisy"
    for column in ("issue_time", "target_time", "signal", "key"):
        assert (got[column].to_numpy() == expected[column].to_numpy()).all(), column
    for column in ("lead_h", "quantile"):
        assert np.array_equal(got[column].to_numpy(float), expected[column].to_numpy(float), equal_nan=True), column
    assert np.allclose(got["value"], expected["value"], rtol=1e-6)
