"""Scenario round trips (dump -> TOML -> parse gives an equal scenario) and built-in scenarios.

The hypothesis strategy perturbs paper-day: every site's numeric fields within their valid
ranges, series in all three forms, batteries and generators present or not, random feasible
job lists and inference classes, and the time base. Every generated scenario must validate.
"""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios import (
    SIGNALS,
    Scenario,
    build_fleet,
    builtin_names,
    dump_scenario,
    load_builtin,
    nominal_signals,
    parse_scenario,
    time_index,
)
from scenarios.io import scenario_to_dict

PAPER_DAY = load_builtin("paper-day")
BUILTINS = builtin_names()

# real-data keys that cover 2022 (the year of paper-day's run)
DATA_KEYS = {
    "price": [("price_2022", "US-CAL-CISO"), ("price_2022", "US-TEX-ERCO"), ("price_2022", "US-MIDA-PJM")],
    "carbon": [("carbon_intensity_2022", "CISO"), ("carbon_intensity_2022", "ERCO")],
    "temperature": [("temperature_2022", "US-CAL-CISO"), ("temperature_2022", "US-NY-NYIS")],
    "availability": [("pv_availability_2022", "US-CAL-CISO"), ("wind_availability_2022", "US-TEX-ERCO")],
    "demand": [("llm_request_rate", "language_m_large")],
}


def num(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


@st.composite
def series(draw: st.DrawFn, low: float, high: float, data: str, days: int) -> dict:
    """A series spec whose values stay within [low, high] over the run (for range-checked signals)."""
    form = draw(st.sampled_from(["constant", "inline-daily", "inline-run", "generated", "data"]))
    if form == "constant":
        return {"kind": "generated", "shape": "constant", "mean": draw(num(low, high))}
    if form == "inline-daily":
        step_minutes = draw(st.sampled_from([60.0, 30.0, 120.0, 240.0]))
        values = draw(st.lists(num(low, high), min_size=int(1440 / step_minutes), max_size=int(1440 / step_minutes)))
        return {"kind": "inline", "values": values, "step_minutes": step_minutes, "repeat": "daily"}
    if form == "inline-run":
        count = days * 24 + draw(st.integers(0, 6))
        return {"kind": "inline", "values": draw(st.lists(num(low, high), min_size=count, max_size=count)),
                "step_minutes": 60.0, "repeat": "none"}
    if form == "generated":
        # solar = mean x bell in [0, mean]: only where 0 is an allowed value
        shape = draw(st.sampled_from(["diurnal", "double-peak", "solar"] if low <= 0 else ["diurnal", "double-peak"]))
        if shape == "solar":
            return {"kind": "generated", "shape": "solar", "mean": draw(num(0.0, high)),
                    "peak_hour": draw(num(0.0, 24.0)), "daylight_hours": draw(num(6.0, 16.0))}
        mean = draw(num(low, high))
        return {"kind": "generated", "shape": shape, "mean": mean,
                "amplitude": draw(num(0.0, min(mean - low, high - mean))), "peak_hour": draw(num(0.0, 24.0))}
    dataset, key = draw(st.sampled_from(DATA_KEYS[data]))
    spec = {"kind": "data", "dataset": dataset, "key": key}
    if data == "demand":  # a shape: rescale and repeat the 14-day trace
        spec.update(cyclic=True, scale=draw(num(0.1, 5.0)))
    return spec


@st.composite
def cooling(draw: st.DrawFn) -> dict:
    pue_min = draw(num(1.0, 1.3))
    return {"pue_at_reference": draw(num(1.0, 2.0)), "reference_temperature_c": draw(num(0.0, 30.0)),
            "pue_per_degc": draw(num(0.0, 0.05)), "pue_min": pue_min, "pue_max": draw(num(pue_min, 2.5))}


@st.composite
def battery(draw: st.DrawFn) -> dict:
    soc_min, initial, soc_max = sorted(draw(st.lists(num(0.0, 1.0), min_size=3, max_size=3)))
    spec = {
        "energy_capacity_mwh": draw(num(0.1, 200.0)), "charge_power_mw": draw(num(0.0, 50.0)),
        "discharge_power_mw": draw(num(0.0, 50.0)), "charge_efficiency": draw(num(0.5, 1.0)),
        "discharge_efficiency": draw(num(0.5, 1.0)), "soc_min_fraction": soc_min, "soc_max_fraction": soc_max,
        "initial_soc_fraction": initial, "degradation_cost_usd_per_mwh": draw(num(0.0, 20.0)),
    }
    if draw(st.booleans()):
        spec["terminal_value_usd_per_mwh"] = draw(num(0.0, 200.0))
    return spec


@st.composite
def generator(draw: st.DrawFn) -> dict:
    p_max = draw(num(0.1, 30.0))
    return {"p_min_mw": draw(num(0.0, p_max)), "p_max_mw": p_max, "fuel_cost_usd_per_mwh": draw(num(0.0, 300.0)),
            "no_load_cost_usd_per_h": draw(num(0.0, 500.0)), "emission_factor_t_per_mwh": draw(num(0.0, 1.0))}


@st.composite
def site(draw: st.DrawFn, base: dict, days: int) -> dict:
    spec = dict(base)
    spec.update(
        gpus=draw(st.integers(500, 30000)), throughput_req_per_s_per_gpu=draw(num(0.5, 5.0)),
        idle_power_mw=draw(num(0.0, 5.0)), power_capacity_mw=draw(num(10.0, 100.0)), cooling=draw(cooling()),
        pv_capacity_mw=draw(num(0.0, 50.0)), wind_capacity_mw=draw(num(0.0, 50.0)),
        pv_availability=draw(series(0.0, 1.0, "availability", days)),
        wind_availability=draw(series(0.0, 1.0, "availability", days)),
        ambient_temperature_c=draw(series(-20.0, 45.0, "temperature", days)),
    )
    for component, strategy in (("battery", battery()), ("generator", generator())):
        spec.pop(component, None)
        if draw(st.booleans()):
            spec[component] = draw(strategy)
    grid = {
        # at least the idle facility load: a site that can never power it is refused (check_supply)
        "import_limit_mw": draw(num(spec["idle_power_mw"] * spec["cooling"]["pue_min"], 100.0)),
        "export_limit_mw": draw(num(0.0, 50.0)),
        "export_price_fraction": draw(num(0.0, 2.0)),
        "import_price_usd_per_mwh": draw(series(-50.0, 500.0, "price", days)),
        "carbon_intensity_g_per_kwh": draw(series(0.0, 900.0, "carbon", days)),
    }
    if draw(st.booleans()):
        grid["export_price_usd_per_mwh"] = draw(series(-50.0, 300.0, "price", days))
    spec["grid"] = grid
    return spec


@st.composite
def job(draw: st.DrawFn, index: int, sites: list[dict], run_hours: float) -> dict:
    """A job that fits at one 'anchor' site it is eligible for and can meet its deadline."""
    anchor = draw(st.sampled_from(sites))
    pue_min = anchor["cooling"]["pue_min"]
    headroom_mw = anchor["power_capacity_mw"] / pue_min - anchor["idle_power_mw"]
    release = draw(num(0.0, run_hours - 0.5))
    duration = draw(num(0.25, 24.0))
    spec = {
        "name": f"job-{index}", "gpus": draw(st.integers(1, anchor["gpus"])),
        "power_mw": draw(num(0.01, headroom_mw)), "duration_h": duration, "release_h": release,
        "deadline_h": release + duration + draw(num(0.0, 24.0)), "value_usd": draw(num(0.0, 1e5)),
    }
    others = [s["name"] for s in sites if s is not anchor]
    if draw(st.booleans()):
        spec["sites"] = [anchor["name"], *draw(st.lists(st.sampled_from(others), unique=True))] if others else [
            anchor["name"]]
    return spec


@st.composite
def inference_class(draw: st.DrawFn, base: dict, latency_ms: dict[str, dict[str, float]], days: int) -> dict:
    spec = dict(base)
    nearest = min(latency_ms[base["origin"]].values())
    spec.update(
        latency_limit_ms=draw(num(nearest, 300.0)), energy_per_request_wh=draw(num(0.01, 1.0)),
        value_usd_per_1k_requests=draw(num(0.0, 5.0)), unserved_penalty_usd_per_1k_requests=draw(num(0.0, 5.0)),
        demand_req_per_s=draw(series(0.0, 20000.0, "demand", days)),
    )
    return spec


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    data = scenario_to_dict(PAPER_DAY)
    days = draw(st.sampled_from([1, 2]))
    interval = draw(st.sampled_from([15.0, 30.0, 60.0]))
    data["run"].update(days=days, control_interval_minutes=interval, plant_tick_minutes=draw(st.sampled_from(
        [1.0, 5.0, 15.0])), horizon_hours=draw(st.sampled_from([6.0, 12.0, 24.0])), seed=draw(st.integers(0, 2**31)))
    data["sites"] = [draw(site(base, days)) for base in data["sites"]]
    data["inference_classes"] = [draw(inference_class(base, data["latency_ms"], days))
                                 for base in data["inference_classes"]]
    n_jobs = draw(st.integers(0, 6))
    data["jobs"] = [draw(job(i, data["sites"], days * 24.0)) for i in range(n_jobs)]
    data["carbon"] = {"price_usd_per_tco2": draw(num(0.0, 200.0)), "pacing": draw(st.sampled_from(
        ["proportional", "none"])), "violation_penalty_usd_per_tco2": draw(num(0.0, 5000.0))}
    if draw(st.booleans()):
        data["carbon"]["budget_tco2"] = draw(num(0.0, 2000.0))
    data["generation_scale"] = draw(num(0.0, 3.0))
    if draw(st.booleans()):
        data["tail_energy_price_usd_per_mwh"] = draw(num(0.0, 300.0))
    if draw(st.booleans()):
        data["job_population"] = {"arrival_rate_per_h": draw(num(0.01, 5.0)), "gpus_choices": [8, 64, 256],
                                  "duration_h_min": 1.0, "duration_h_max": draw(num(1.0, 24.0)),
                                  "value_usd_per_gpu_h_min": 0.5, "value_usd_per_gpu_h_max": draw(num(0.5, 5.0))}
    return parse_scenario(data, "<generated>")  # the strategy only builds valid scenarios


def round_trip(scenario: Scenario) -> Scenario:
    return parse_scenario(tomllib.loads(dump_scenario(scenario)), "<round trip>")


def assert_routes_match_latency(scenario: Scenario) -> None:
    fleet = build_fleet(scenario)
    for k, klass in enumerate(scenario.inference_classes):
        for s, site_spec in enumerate(scenario.sites):
            expected = scenario.latency_ms[klass.origin][site_spec.name] <= klass.latency_limit_ms
            assert fleet.route_feasible[k, s] == expected, (klass.name, site_spec.name)
        assert fleet.route_feasible[k].any()
        assert fleet.route_feasible[k, fleet.home_site[k]]


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios())
def test_generated_scenarios_round_trip(scenario):
    again = round_trip(scenario)
    assert again == scenario
    assert dump_scenario(again) == dump_scenario(scenario)
    assert_routes_match_latency(scenario)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads_and_round_trips(name):
    scenario = load_builtin(name)
    assert scenario.description.strip(), "a built-in needs a one-line description for `aidc scenarios`"
    assert round_trip(scenario) == scenario


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_nominal_signals_first_day(name):
    scenario = load_builtin(name)
    step_hours = scenario.run.control_interval_minutes / 60.0
    n_steps = int(round(24.0 / step_hours))
    frames = nominal_signals(scenario, pd.Timestamp(scenario.run.start), n_steps, step_hours)
    assert tuple(frames) == SIGNALS
    sites = [s.name for s in scenario.sites]
    index = time_index(pd.Timestamp(scenario.run.start), n_steps, step_hours)
    for signal, frame in frames.items():
        columns = [k.name for k in scenario.inference_classes] if signal == "demand" else sites
        assert list(frame.columns) == columns, signal
        assert frame.shape == (n_steps, len(columns)), signal
        assert frame.index.equals(index), signal
        assert np.isfinite(frame.to_numpy(dtype=float)).all(), signal
    for signal in ("pv", "wind"):
        assert ((frames[signal] >= 0) & (frames[signal] <= 1)).all().all()
    assert (frames["demand"] >= 0).all().all()
    assert (frames["carbon"] >= 0).all().all()


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_routes_match_latency(name):
    assert_routes_match_latency(load_builtin(name))
