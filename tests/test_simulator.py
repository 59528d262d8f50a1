"""Closed-loop invariants at every tick (SPEC §5) on small generated scenarios, and the plant rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios import build_fleet, parse_scenario
from simulator import make_controller, simulate
from simulator.plant import Battery, DataCenter, Generator, GridConnection, close_balance
from simulator.processes import realise_signals, stream, submit_jobs

TOLERANCE = 1e-6


def small_scenario(
    n_sites: int = 2, n_classes: int = 2, n_jobs: int = 2, hours: int = 24, *, battery: bool = True,
    generator: bool = True, population: bool = False, tight_import: bool = False, negative_prices: bool = False,
    tick_minutes: float = 5.0, control_minutes: float = 60.0, variant: int = 0,
) -> object:
    """A validated scenario of 1-2 sites, 1-2 classes and a few jobs; ``variant`` perturbs the numbers."""
    rng = np.random.default_rng(variant)
    regions = [{"name": f"r{i}", "longitude_deg": -120.0 + 30 * i} for i in range(n_sites)]
    sites = []
    for i in range(n_sites):
        gpus = int(rng.integers(200, 1200))
        capacity = round(0.3 + gpus * 1.1e-3 * 1.45, 3)
        price = [round(float(p), 1) for p in 60 + 40 * np.sin(np.arange(24) / 24 * 2 * np.pi + i)
                 + rng.normal(0, 5, 24)]
        if negative_prices:
            price[3] = price[4] = -15.0
        site = {
            "name": f"s{i}", "region": f"r{i}", "longitude_deg": -120.0 + 30 * i, "gpus": gpus,
            "throughput_req_per_s_per_gpu": 2.0, "idle_power_mw": 0.1, "power_capacity_mw": capacity,
            "pv_capacity_mw": round(float(rng.uniform(0, capacity)), 3),
            "pv_availability": {"kind": "generated", "shape": "solar", "mean": 0.8, "peak_hour": 12.5},
            "wind_capacity_mw": round(float(rng.uniform(0, capacity / 2)), 3),
            "wind_availability": {"kind": "generated", "shape": "diurnal", "mean": 0.4, "amplitude": 0.2},
            "ambient_temperature_c": {"kind": "generated", "shape": "diurnal", "mean": 24.0, "amplitude": 6.0},
            "grid": {
                "import_limit_mw": round(capacity * (0.35 if tight_import else 1.0), 3),
                "export_limit_mw": round(float(rng.uniform(0, capacity / 3)), 3),
                "import_price_usd_per_mwh": price,
                "carbon_intensity_g_per_kwh": [float(c) for c in 300 + 80 * np.cos(np.arange(24) / 24 * 2 * np.pi)],
            },
        }
        if battery:
            energy = round(float(rng.uniform(0.5, 3.0)), 3)
            site["battery"] = {"energy_capacity_mwh": energy, "charge_power_mw": round(energy / 2, 3),
                               "discharge_power_mw": round(energy / 2, 3), "initial_soc_fraction": 0.5}
        if generator and i == n_sites - 1:
            site["generator"] = {"p_min_mw": round(capacity * 0.1, 3), "p_max_mw": round(capacity * 0.6, 3),
                                 "fuel_cost_usd_per_mwh": 150.0, "no_load_cost_usd_per_h": 20.0,
                                 "emission_factor_t_per_mwh": 0.6}
        sites.append(site)
    latency = {f"r{i}": {f"s{j}": 3.0 + 30.0 * abs(i - j) for j in range(n_sites)} for i in range(n_sites)}
    classes = []
    total_capacity = sum(s["gpus"] for s in sites) * 2.0
    for k in range(n_classes):
        classes.append({
            "name": f"k{k}", "origin": f"r{k % n_sites}", "latency_limit_ms": 50.0 if k == 0 else 10.0,
            "energy_per_request_wh": 0.15, "value_usd_per_1k_requests": 0.15,
            "unserved_penalty_usd_per_1k_requests": 0.08,
            "demand_req_per_s": {"kind": "generated", "shape": "double-peak",
                                 "mean": round(total_capacity * 0.25 / n_classes, 1),
                                 "amplitude": round(total_capacity * 0.12 / n_classes, 1), "peak_hour": 14},
        })
    jobs = []
    min_gpus = min(s["gpus"] for s in sites)
    for j in range(n_jobs):
        gpus = int(rng.integers(50, max(min_gpus // 2, 60)))
        duration = round(float(rng.uniform(1.0, hours / 3)), 2)
        release = round(float(rng.uniform(0, hours / 2)), 2)
        jobs.append({"name": f"job{j}", "gpus": gpus, "power_mw": round(gpus * 1.1e-3, 4), "duration_h": duration,
                     "release_h": release, "deadline_h": round(min(release + duration + rng.uniform(0, 8), hours), 2)
                     if release + duration <= hours else release + duration + 1.0,
                     "value_usd": round(gpus * duration * 1.0, 1)})
    data = {
        "name": f"small-{variant}", "run": {"start": "2022-06-01T00:00:00Z", "days": hours / 24.0,
                                            "plant_tick_minutes": tick_minutes,
                                            "control_interval_minutes": control_minutes, "horizon_hours": 6.0},
        "sites": sites, "regions": regions, "latency_ms": latency, "inference_classes": classes, "jobs": jobs,
        "carbon": {"budget_tco2": 2.0 * n_sites * hours / 24, "price_usd_per_tco2": 30.0},
    }
    if population:
        data["job_population"] = {"arrival_rate_per_h": 0.5, "gpus_choices": [64, 128], "duration_h_min": 0.5,
                                  "duration_h_max": 3.0, "slack_h_min": 0.0, "slack_h_max": 4.0,
                                  "power_kw_per_gpu": 1.1, "value_usd_per_gpu_h_min": 0.5,
                                  "value_usd_per_gpu_h_max": 1.5, "eligible_site_fraction": 0.5}
    return parse_scenario(data, "<test>")


def site_arrays(result: object, column: str) -> np.ndarray:
    n_sites = result.ticks["site"].nunique()
    return result.ticks[column].to_numpy(dtype=float).reshape(-1, n_sites)


def assert_invariants(scenario: object, result: object) -> None:
    """SPEC §5: balance, SOC, GPUs, jobs, grid limits, emissions -- at every tick."""
    fleet = build_fleet(scenario)
    ticks = result.ticks
    dt = scenario.run.plant_tick_minutes / 60.0
    a = {c: site_arrays(result, c) for c in (
        "renewable_used_mw", "renewable_available_mw", "discharge_mw", "generator_mw", "import_mw", "unmet_load_mw",
        "facility_load_mw", "it_load_mw", "pue", "charge_mw", "export_mw", "soc_mwh", "gpus_training",
        "gpus_inference", "carbon_t_per_mwh", "emissions_t")}
    supply = a["renewable_used_mw"] + a["discharge_mw"] + a["generator_mw"] + a["import_mw"] + a["unmet_load_mw"]
    demand = a["facility_load_mw"] + a["charge_mw"] + a["export_mw"]
    assert np.abs(supply - demand).max() < TOLERANCE, "power balance"
    assert np.allclose(a["facility_load_mw"], a["pue"] * a["it_load_mw"])
    for name in ("renewable_used_mw", "discharge_mw", "generator_mw", "import_mw", "charge_mw", "export_mw"):
        assert a[name].min() >= -TOLERANCE, name
    assert (a["renewable_used_mw"] <= a["renewable_available_mw"] + TOLERANCE).all()
    assert (a["soc_mwh"] >= fleet.soc_min_mwh - TOLERANCE).all()
    assert (a["soc_mwh"] <= fleet.soc_max_mwh + TOLERANCE).all()
    assert (a["charge_mw"] <= fleet.battery_charge_mw + TOLERANCE).all()
    assert (a["discharge_mw"] <= fleet.battery_discharge_mw + TOLERANCE).all()
    assert (a["generator_mw"] <= fleet.generator_max_mw + TOLERANCE).all()
    assert (a["gpus_training"] + a["gpus_inference"] <= fleet.gpus + TOLERANCE).all(), "GPU capacity"
    assert (a["import_mw"] <= fleet.import_limit_mw + TOLERANCE).all(), "import limit"
    assert (a["export_mw"] <= fleet.export_limit_mw + TOLERANCE).all(), "export limit"
    expected = (a["carbon_t_per_mwh"] * a["import_mw"] + fleet.generator_emission_t_per_mwh * a["generator_mw"]) * dt
    assert np.allclose(a["emissions_t"], expected, rtol=1e-12, atol=1e-12), "emissions per tick"
    assert result.kpis["emissions_tco2"] == pytest.approx(float(expected.sum()), rel=1e-9, abs=1e-12)
    # facility capacity holds wherever inference is still served (only training could exceed it)
    over = a["facility_load_mw"] > fleet.power_capacity_mw + TOLERANCE
    assert (a["gpus_inference"][over] <= TOLERANCE).all(), "facility capacity"
    if (fleet.import_limit_mw >= fleet.power_capacity_mw).all():  # unmet only what asks beyond the capacity
        over_capacity = np.maximum(a["facility_load_mw"] - fleet.power_capacity_mw, 0.0)
        assert (a["unmet_load_mw"] <= over_capacity + TOLERANCE).all()
    # jobs: each at most once, contiguously, at one site: training GPUs per tick equal the jobs' overlap
    jobs = result.jobs
    assert jobs["job"].is_unique
    started = jobs[jobs["site"] != ""]
    assert np.allclose(started["end_h"] - started["start_h"], started["duration_h"])
    assert (started["start_h"] >= started["release_h"] - 1e-9).all()
    done = started[started["status"].isin(["completed", "late"])]
    assert (done["end_h"] <= scenario.run.days * 24 + 1e-9).all()
    assert (started["status"].isin(["completed", "running", "late"])).all()
    assert (jobs.loc[jobs["site"] == "", "status"].isin(["dropped", "never-started"])).all()
    n_ticks = a["gpus_training"].shape[0]
    tick_start = np.arange(n_ticks) * dt
    busy = np.zeros_like(a["gpus_training"])
    site_index = {name: s for s, name in enumerate(fleet.site_names)}
    for _, job in started.iterrows():
        overlap = np.clip(np.minimum(tick_start + dt, job["end_h"]) - np.maximum(tick_start, job["start_h"]), 0, dt)
        busy[:, site_index[job["site"]]] += job["gpus"] * overlap / dt
    assert np.allclose(busy, a["gpus_training"], atol=1e-6), "training GPUs = contiguous job runs"
    # every request is served or dropped exactly once
    routing = result.routing
    by_class = routing.groupby(["time", "class"], sort=True)[["served_req_per_s", "dropped_req_per_s"]].sum()
    assert (by_class.to_numpy() >= -TOLERANCE).all()
    served = routing["served_req_per_s"].sum()
    assert served == pytest.approx(ticks["served_req_per_s"].sum(), rel=1e-9, abs=1e-9)


scenario_args = st.fixed_dictionaries({
    "n_sites": st.integers(1, 2), "n_classes": st.integers(1, 2), "n_jobs": st.integers(0, 3),
    "hours": st.sampled_from([6, 12, 24]), "battery": st.booleans(), "generator": st.booleans(),
    "population": st.booleans(), "tight_import": st.booleans(), "negative_prices": st.booleans(),
    "tick_minutes": st.sampled_from([5.0, 15.0]), "variant": st.integers(0, 10_000),
})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=scenario_args, controller=st.sampled_from(["greedy", "local"]), seed=st.integers(0, 2**31 - 1))
def test_invariants_hold_at_every_tick_with_heuristics(args, controller, seed):
    scenario = small_scenario(**args)
    result = simulate(scenario, make_controller(controller, scenario), seed=seed)
    assert_invariants(scenario, result)
    assert len(result.ticks) == round(args["hours"] * 60 / args["tick_minutes"]) * args["n_sites"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=scenario_args, seed=st.integers(0, 1000))
def test_invariants_hold_with_the_mpc(args, seed):
    args = {**args, "hours": min(args["hours"], 12)}
    scenario = small_scenario(**args)
    result = simulate(scenario, make_controller("mpc", scenario, seed=seed, time_limit_s=10.0), seed=seed)
    assert_invariants(scenario, result)
    assert (result.solver_log["status"].isin(["optimal", "time_limit"]) | (result.solver_log["fallback"] != "")).all()


def test_battery_reaching_its_bound_splits_the_tick_at_the_exact_time():
    scenario = small_scenario(1, 1, 0, 6, battery=True, generator=False, variant=3)
    fleet = build_fleet(scenario)

    class ChargeFlat(make_controller("local").__class__):
        def decide(self, observation):
            setpoints = super().decide(observation)
            setpoints.charge_mw = fleet.battery_charge_mw.copy()
            return setpoints

    result = simulate(scenario, ChargeFlat(), seed=1)
    assert_invariants(scenario, result)
    limits = result.events[result.events["kind"] == "soc_limit"]
    assert len(limits) == 1
    # SOC starts at 50 %: (soc_max - soc_0) / (eta_c * P) hours later, not at a tick boundary
    hours = (fleet.soc_max_mwh[0] - fleet.soc_initial_mwh[0]) / (0.95 * fleet.battery_charge_mw[0])
    expected = pd.Timestamp(scenario.run.start) + pd.Timedelta(hours=hours)
    assert abs((limits["time"].iloc[0] - expected).total_seconds()) < 1e-3
    soc = site_arrays(result, "soc_mwh")[:, 0]
    assert soc.max() == pytest.approx(fleet.soc_max_mwh[0])
    charge = site_arrays(result, "charge_mw")[:, 0]
    tick = int(hours / (5 / 60))
    assert 0 < charge[tick] < fleet.battery_charge_mw[0]  # the split tick charges part of the time
    assert charge[tick + 1:].max() == 0


def test_job_completion_mid_tick_frees_power_at_its_exact_time():
    scenario = small_scenario(1, 1, 1, 6, battery=False, generator=False, variant=5)
    result = simulate(scenario, make_controller("local", scenario), seed=2)
    assert_invariants(scenario, result)
    job = result.jobs.iloc[0]
    assert job["status"] == "completed"
    completed = result.events[result.events["kind"] == "job_completed"]["time"].iloc[0]
    assert completed == pd.Timestamp(scenario.run.start) + pd.Timedelta(hours=job["end_h"])


# --- the real-time rules, one site at a time -------------------------------------------------------

def rule_fixture(import_limit: float = 5.0, export_limit: float = 2.0) -> tuple:
    scenario = small_scenario(1, 1, 0, 6, battery=True, generator=True, variant=1)
    fleet = build_fleet(scenario)
    fleet = type(fleet)(**{**fleet.__dict__, "import_limit_mw": np.array([import_limit]),
                           "export_limit_mw": np.array([export_limit]),
                           "battery_discharge_mw": np.array([1.0]), "battery_charge_mw": np.array([1.0]),
                           "generator_min_mw": np.array([0.5]), "generator_max_mw": np.array([3.0])})
    return Battery(fleet), Generator(fleet), GridConnection(fleet)


def balance(load, renewable, battery, generator, grid, charge=0.0, discharge=0.0, gen=0.0, sheddable=None,
            export_price=50.0):
    one = np.ones(1)
    return close_balance(load * one, (load if sheddable is None else sheddable) * one, renewable * one,
                         charge * one, discharge * one, gen * one, battery, 1 / 12, generator,
                         grid.import_limit_mw, grid.export_cap_mw(export_price * one))


def test_deficit_is_closed_by_import_then_battery_then_generator_then_shedding():
    battery, generator, grid = rule_fixture(import_limit=5.0)
    flows = balance(4.0, 1.0, battery, generator, grid)
    assert (flows.renewable_used[0], flows.import_[0], flows.discharge[0]) == (1.0, 3.0, 0.0)
    flows = balance(6.5, 1.0, battery, generator, grid)
    assert flows.import_[0] == 5.0 and flows.discharge[0] == pytest.approx(0.5) and flows.generator[0] == 0
    flows = balance(8.0, 1.0, battery, generator, grid)
    assert flows.discharge[0] == pytest.approx(1.0) and flows.generator[0] == pytest.approx(1.0)
    assert flows.started[0]
    flows = balance(12.0, 1.0, battery, generator, grid, sheddable=4.0)
    assert flows.generator[0] == pytest.approx(3.0) and flows.shed[0] == pytest.approx(2.0)
    flows = balance(12.0, 1.0, battery, generator, grid, sheddable=1.0)
    assert flows.shed[0] == pytest.approx(1.0) and flows.unmet[0] == pytest.approx(1.0)


def test_generator_started_at_its_minimum_backs_off_imports():
    battery, generator, grid = rule_fixture(import_limit=5.0)
    battery.soc_mwh[:] = battery.soc_min_mwh  # empty: no extra discharge
    flows = balance(5.2, 0.0, battery, generator, grid)
    assert flows.generator[0] == pytest.approx(0.5) and flows.import_[0] == pytest.approx(4.7)


def test_surplus_is_exported_within_the_limit_then_curtailed_and_never_at_a_negative_price():
    battery, generator, grid = rule_fixture(export_limit=2.0)
    flows = balance(1.0, 4.0, battery, generator, grid)
    assert flows.export[0] == 2.0 and flows.renewable_used[0] == 3.0 and flows.import_[0] == 0
    flows = balance(1.0, 4.0, battery, generator, grid, export_price=-5.0)
    assert flows.export[0] == 0 and flows.renewable_used[0] == 1.0


def test_a_commanded_generator_beyond_the_load_backs_off_to_its_minimum():
    battery, generator, grid = rule_fixture(export_limit=0.0)
    flows = balance(1.0, 0.0, battery, generator, grid, gen=3.0)
    assert flows.generator[0] == pytest.approx(1.0) and flows.import_[0] == 0
    flows = balance(0.2, 0.0, battery, generator, grid, gen=3.0)  # minimum 0.5 > load: battery absorbs
    assert flows.generator[0] == pytest.approx(0.5) and flows.charge[0] == pytest.approx(0.3)


def test_overloaded_site_spills_to_the_nearest_feasible_site_with_room_then_drops():
    scenario = small_scenario(2, 1, 0, 6, variant=2)
    fleet = build_fleet(scenario)
    datacenter = DataCenter(fleet)
    datacenter.set_routing(np.array([[1.0, 0.0]]))
    capacity = fleet.gpus * fleet.throughput_req_per_s_per_gpu
    room = np.full(2, 1e3)
    served, dropped, _ = datacenter.route(np.array([capacity[0] + 100.0]), room)
    assert served[0, 0] == pytest.approx(capacity[0]) and served[0, 1] == pytest.approx(100.0)
    assert dropped is None or dropped.sum() == pytest.approx(0.0)
    served, dropped, _ = datacenter.route(np.array([capacity.sum() + 50.0]), room)
    assert served.sum() == pytest.approx(capacity.sum()) and dropped.sum() == pytest.approx(50.0)


# --- stochastic processes --------------------------------------------------------------------------

def test_streams_are_keyed_by_seed_and_name():
    a = stream(1, "demand/k0").standard_normal(5)
    assert np.array_equal(a, stream(1, "demand/k0").standard_normal(5))
    assert not np.array_equal(a, stream(1, "demand/k1").standard_normal(5))
    assert not np.array_equal(a, stream(2, "demand/k0").standard_normal(5))


def test_realised_demand_follows_the_nominal_profile_and_availability_stays_in_range():
    scenario = small_scenario(2, 2, 0, 24, variant=4)
    realised = realise_signals(scenario, 3, 24.0, 6.0)
    from scenarios import nominal_signals

    start = pd.Timestamp(scenario.run.start)
    nominal = nominal_signals(scenario, start, 288, 5 / 60)
    run = realised.frames["demand"].loc[start:].iloc[:288]
    ratio = run.sum().to_numpy() / nominal["demand"].sum().to_numpy()
    assert np.all(np.abs(ratio - 1) < 0.4)  # one day-level lognormal shock, sigma 0.1
    for signal in ("pv", "wind"):
        values = realised.frames[signal].to_numpy()
        assert values.min() >= 0 and values.max() <= 1


def test_submitted_jobs_fit_a_site_and_follow_the_population():
    scenario = small_scenario(2, 1, 1, 24, population=True, variant=6)
    fleet = build_fleet(scenario)
    submissions = submit_jobs(scenario, fleet, 7, 24.0)
    assert submissions == submit_jobs(scenario, fleet, 7, 24.0)
    drawn = [s for s in submissions if s.job.name.startswith("pop-")]
    assert drawn, "rate 0.5/h over 24 h"
    for item in drawn:
        job = item.job
        assert job.release_h == item.submitted_h and 0 <= job.release_h < 24
        assert job.deadline_h >= job.release_h + job.duration_h
        assert job.power_mw == pytest.approx(job.gpus * 1.1e-3)
        eligible = job.sites or list(fleet.site_names)
        assert any(fleet.gpus[fleet.site_names.index(s)] >= job.gpus for s in eligible)
    assert [s.submitted_h for s in submissions] == sorted(s.submitted_h for s in submissions)
