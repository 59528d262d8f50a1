"""Physics that cannot be met is named, never hidden (issue 12, item 7): validation refuses idle
load x the hottest PUE above the power capacity; the plant never draws more than the capacity
and records the rest as unmet energy with an event; non-finite forecasts and window inputs are
refused before any solver with a message naming what is wrong."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from test_simulator import assert_invariants, site_arrays

from forecasts.base import ForecastRequest, Prediction
from forecasts.models import PerfectForecaster
from optimizer.variants import NonFiniteWindow, run_variant
from optimizer.window import non_finite_input, offline_inputs
from scenarios import ScenarioError, load_builtin, parse_scenario, save_scenario
from scenarios.schema import Scenario
from simulator import make_controller, simulate
from simulator.cli import main

HOT_DAY = [30.0] * 12 + [47.0] * 6 + [30.0] * 6  # °C: PUE 1.2 + 0.01 x 27 = 1.47 from 12:00 to 18:00


def hot_site(capacity_mw: float = 11.0, import_limit_mw: float = 30.0) -> dict:
    """One site idling at 10 MW IT: 11.5 MW at 30 °C (PUE 1.3), 14.7 MW at 47 °C (PUE 1.47)."""
    return {
        "name": "hot-site", "run": {"start": "2022-07-12T00:00:00Z", "days": 1}, "noise": {"enabled": False},
        "sites": [{
            "name": "desert", "region": "here", "gpus": 100, "throughput_req_per_s_per_gpu": 1.0,
            "idle_power_mw": 10.0, "power_capacity_mw": capacity_mw, "ambient_temperature_c": HOT_DAY,
            "grid": {"import_limit_mw": import_limit_mw, "import_price_usd_per_mwh": 50.0,
                     "carbon_intensity_g_per_kwh": 400.0},
        }],
        "regions": [{"name": "here"}], "latency_ms": {"here": {"desert": 0.0}},
    }


def test_validation_names_idle_load_times_the_hottest_pue_above_capacity(tmp_path, capsys):
    with pytest.raises(ScenarioError) as error:
        parse_scenario(hot_site(capacity_mw=14.0), "hot.toml")
    message = str(error.value)
    assert message.startswith("hot.toml: sites[0].idle_power_mw: site 'desert': idle facility load 14.7 MW")
    assert "x PUE 1.47 at 47 °C, 2022-07-12 12:00 UTC" in message and "power_capacity_mw 14 MW" in message
    assert "\n" not in message
    parse_scenario(hot_site(capacity_mw=14.7))  # exactly at the capacity is fine
    # aidc validate: one bad line naming the file and the numbers
    path = tmp_path / "hot.toml"
    scenario = Scenario.model_validate(hot_site(capacity_mw=14.0))  # the schema alone: no cross-field rules
    save_scenario(scenario, path)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "idle facility load 14.7 MW" in err and "power_capacity_mw 14 MW" in err


def test_the_plant_never_draws_more_than_the_capacity_and_records_the_rest_as_unmet():
    scenario = Scenario.model_validate(hot_site(capacity_mw=14.0))  # past validation, as a noisy hot tick could be
    result = simulate(scenario, make_controller("local"))
    assert_invariants(scenario, result)
    facility = site_arrays(result, "facility_load_mw")[:, 0]
    unmet = site_arrays(result, "unmet_load_mw")[:, 0]
    supplied = facility - unmet
    assert supplied.max() <= 14.0 + 1e-9  # never through the cap
    # temperature is interpolated between hourly levels: PUE x 10 MW climbs through 14 MW before noon
    expected = np.maximum(10.0 * site_arrays(result, "pue")[:, 0] - 14.0, 0.0)
    assert np.allclose(unmet, expected, atol=1e-9) and expected.max() == pytest.approx(0.7)
    assert site_arrays(result, "import_mw")[:, 0].max() <= 14.0 + 1e-9
    assert result.kpis["unmet_energy_mwh"] == pytest.approx(expected.sum() / 12)
    events = result.events
    unmet_events = events[events["kind"] == "load_unmet"]
    assert len(unmet_events) == 1 and unmet_events["site"].iloc[0] == "desert"
    first, last = np.flatnonzero(expected > 1e-9)[[0, -1]]
    start = pd.Timestamp("2022-07-12T00:00:00Z")
    assert abs(unmet_events["time"].iloc[0] - (start + pd.Timedelta(minutes=5 * first))) < pd.Timedelta("1ms")
    assert "MW not supplied: PUE x IT asks" in unmet_events["detail"].iloc[0]
    assert "of a 14 MW facility capacity" in unmet_events["detail"].iloc[0]
    met = events[events["kind"] == "load_met"]
    assert len(met) == 1
    assert abs(met["time"].iloc[0] - (start + pd.Timedelta(minutes=5 * (last + 1)))) < pd.Timedelta("1ms")


def test_a_short_grid_is_named_as_such():
    scenario = Scenario.model_validate(hot_site(capacity_mw=20.0, import_limit_mw=13.5))
    result = simulate(scenario, make_controller("local"))
    assert_invariants(scenario, result)
    expected = np.maximum(10.0 * site_arrays(result, "pue")[:, 0] - 13.5, 0.0)
    assert expected.max() == pytest.approx(1.2)
    assert result.kpis["unmet_energy_mwh"] == pytest.approx(expected.sum() / 12)
    detail = result.events.loc[result.events["kind"] == "load_unmet", "detail"].iloc[0]
    assert "short within their limits" in detail


class NaNAtNoonForecaster(PerfectForecaster):
    """The truth, except that the import price forecast issued at 03:00 holds a NaN."""

    def _predict(self, request: ForecastRequest, history: object) -> Prediction:
        prediction = super()._predict(request, history)
        if request.signal == "import_price" and request.issue_time.hour == 3:
            values = prediction.values.copy()
            values[2, 0] = np.nan
            return Prediction(values=values)
        return prediction


def test_a_non_finite_forecast_is_refused_and_the_step_falls_back():
    scenario = parse_scenario({**hot_site(capacity_mw=16.0), "run": {"start": "2022-07-12T00:00:00Z", "days": 0.25}})
    controller = make_controller("mpc", scenario)
    result = simulate(scenario, controller, forecaster=NaNAtNoonForecaster())
    log = result.solver_log
    fallback = log["fallback"].astype(str).tolist()
    assert fallback[3].startswith("previous plan shifted: forecaster perfect gave a non-finite import_price "
                                  "forecast (nan for desert at 2022-07-12 05:00:00+00:00")
    assert [i for i, text in enumerate(fallback) if text] == [3]
    assert np.isnan(log["wall_s"].iloc[3])  # no solver ran
    refused = result.events[result.events["kind"] == "forecast_refused"]
    assert len(refused) == 1 and "import_price" in refused["detail"].iloc[0]


class NaNExportForecaster(PerfectForecaster):
    """The truth, except that every export-price forecast is NaN: a contractual export price
    (fraction x import) replaces it, so nothing the MPC uses is non-finite."""

    def _predict(self, request: ForecastRequest, history: object) -> Prediction:
        prediction = super()._predict(request, history)
        if request.signal == "export_price":
            return Prediction(values=np.full_like(prediction.values, np.nan))
        return prediction


def test_a_non_finite_forecast_of_a_derived_signal_is_not_refused():
    scenario = parse_scenario({**hot_site(capacity_mw=16.0), "run": {"start": "2022-07-12T00:00:00Z", "days": 0.25}})
    assert all(site.grid.export_price_usd_per_mwh is None for site in scenario.sites)  # contractual
    result = simulate(scenario, make_controller("mpc", scenario), forecaster=NaNExportForecaster())
    assert not result.solver_log["fallback"].astype(str).str.len().any()
    assert not (result.events["kind"] == "forecast_refused").any()


def test_nan_in_a_window_is_named_not_called_infeasible():
    w = offline_inputs(load_builtin("paper-day"))
    assert non_finite_input(w) is None
    pue = w.pue.copy()
    pue[1, 5] = np.inf
    message = non_finite_input(replace(w, pue=pue))
    assert message == "pue is inf at site " + w.fleet.site_names[1] + ", step 5 (1 of 72 values)"
    with pytest.raises(NonFiniteWindow, match="joint: the window's input is not finite: pue is inf") as error:
        run_variant(replace(w, pue=pue), "joint")
    assert "check capacities" not in str(error.value)
    assert "tail_energy_price_usd_per_mwh is nan at site" in non_finite_input(
        replace(w, tail_energy_price_usd_per_mwh=np.full(w.fleet.n_sites, np.nan)))


def test_a_bound_without_a_feasible_plan_keeps_the_run():
    """The bound cannot leave load unmet: where the plant could not supply it, the run is kept
    and the bound and regret are NaN with hindsight_status 'infeasible' (found by the issue-12 tester)."""
    scenario = Scenario.model_validate(hot_site(capacity_mw=20.0, import_limit_mw=13.5))
    result = simulate(scenario, make_controller("local"), bound=True)
    assert result.kpis["unmet_energy_mwh"] > 0
    assert result.kpis["hindsight_status"] == "infeasible"
    assert np.isnan(result.kpis["hindsight_bound_usd"]) and np.isnan(result.kpis["regret_usd"])
    assert np.isfinite(result.kpis["benefit_usd"])
