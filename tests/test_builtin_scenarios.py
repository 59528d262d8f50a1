"""The built-in scenarios us-3site, fleet-10 and fleet-50: they load, have the stated sizes, use the
real data they claim, are internally consistent, and are exactly what their generator writes."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scenarios
from scenarios import build_fleet, load_scenario, nominal_signals
from scenarios.datasets import load_latency_matrix, load_series

REPO_ROOT = Path(__file__).resolve().parents[1]
GENERATOR = REPO_ROOT / "benchmarks" / "make_builtin_scenarios.py"
NAMES = ("us-3site", "fleet-10", "fleet-50")
FLEETS = ("fleet-10", "fleet-50")


def generator_constants():
    """The generator's place tables (weather city -> (region name, Azure region); Azure region
    locations). Only its constants are used: the tests recompute everything from them."""
    spec = importlib.util.spec_from_file_location("make_builtin_scenarios", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module.FLEET_CITIES, module.AZURE_LOCATION


@pytest.fixture(scope="module")
def loaded() -> dict[str, scenarios.Scenario]:
    return {name: load_scenario(name) for name in NAMES}


def run_signals(scenario: scenarios.Scenario) -> dict[str, pd.DataFrame]:
    step_h = scenario.run.control_interval_minutes / 60.0
    n_steps = int(round(scenario.run.days * 24 / step_h))
    return nominal_signals(scenario, pd.Timestamp(scenario.run.start), n_steps, step_h)


def test_all_are_listed_builtins():
    assert set(NAMES) <= set(scenarios.builtin_names())


def test_us_3site_sizes(loaded):
    scenario = loaded["us-3site"]
    assert [s.name for s in scenario.sites] == ["ca", "tx", "va"]
    assert len(scenario.regions) >= 4
    assert scenario.run.days == 7
    assert scenario.run.control_interval_minutes == 60 and scenario.run.horizon_hours == 24
    assert 4 <= len(scenario.jobs) <= 8
    assert all(job.deadline_h <= 24 for job in scenario.jobs)
    assert scenario.job_population is not None and scenario.job_population.arrival_rate_per_h == 1.0
    assert sum(s.generator is not None for s in scenario.sites) in (1, 2)


def test_fleet_10_sizes(loaded):
    scenario = loaded["fleet-10"]
    assert len(scenario.sites) == 10
    assert len(scenario.regions) == 16
    assert len(scenario.jobs) == 60
    assert scenario.run.days == 1 and scenario.run.control_interval_minutes == 15
    assert scenario.job_population is not None and scenario.job_population.arrival_rate_per_h == 2.5
    for job in scenario.jobs:
        assert job.release_h >= 0 and job.release_h + job.duration_h <= job.deadline_h <= 24
        assert 256 <= job.gpus <= 4096 and 1 <= job.duration_h <= 8
        assert job.sites is not None and len(job.sites) == 7
        assert 0.4 - 0.01 <= job.value_usd / (job.gpus * job.duration_h) <= 1.5 + 0.01


def test_fleet_50_sizes(loaded):
    scenario = loaded["fleet-50"]
    fleet = build_fleet(scenario)
    assert len(scenario.sites) == 50
    assert len(scenario.regions) == 16
    assert len(scenario.jobs) >= 300
    assert scenario.run.days == 1 and scenario.run.control_interval_minutes == 15
    assert scenario.run.horizon_hours == 24
    assert scenario.job_population is not None and scenario.job_population.arrival_rate_per_h * 24 >= 300
    # every site stands in one of the 16 user cities, each city has at least one site
    assert {s.region for s in scenario.sites} == {r.name for r in scenario.regions}
    gpus = {s.name: s.gpus for s in scenario.sites}
    for job in scenario.jobs:
        assert job.release_h >= 0 and job.release_h + job.duration_h <= job.deadline_h <= 24
        assert 256 <= job.gpus <= 4096 and 1 <= job.duration_h <= 8
        assert job.sites is not None and len(job.sites) == 5
        assert all(gpus[site] >= 2 * job.gpus for site in job.sites)  # a job takes at most half a site
        assert 0.4 - 0.01 <= job.value_usd / (job.gpus * job.duration_h) <= 1.5 + 0.01
    assert 200_000 <= fleet.gpus.sum() <= 600_000


def test_fleet_50_is_diverse(loaded):
    """Site sizes, cooling, storage, generators and grid limits differ across the fleet."""
    scenario = loaded["fleet-50"]
    fleet = build_fleet(scenario)
    assert len(set(fleet.gpus.tolist())) >= 6 and fleet.gpus.max() >= 8 * fleet.gpus.min()
    assert len({s.cooling.pue_min for s in scenario.sites}) >= 3
    with_battery = sum(s.battery is not None for s in scenario.sites)
    with_generator = [s for s in scenario.sites if s.generator is not None]
    assert 25 <= with_battery < 50 and 8 <= len(with_generator) <= 25
    assert {s.generator.fuel_cost_usd_per_mwh for s in with_generator} >= {140.0, 200.0}  # gas and diesel
    assert 0 < (fleet.pv_capacity_mw > 0).sum() < 50 and 0 < (fleet.wind_capacity_mw > 0).sum() < 50
    constrained = fleet.import_limit_mw < fleet.power_capacity_mw - 1e-9
    assert 1 <= constrained.sum() <= 10


@pytest.mark.parametrize("name", FLEETS)
def test_fleet_weather_is_each_sites_city(loaded, name):
    """Temperature, PV and wind of every site are the shipped 2022 series of its city: PV and wind
    hold over their hour; temperature is interpolated between its hourly readings, so a 15-min
    step's mean is the line's value at the step's midpoint."""
    cities, _ = generator_constants()
    code_of_region = {region: code for code, (region, _) in cities.items()}
    scenario = loaded[name]
    signals = run_signals(scenario)
    steps = signals["temperature"].index
    hour = steps.floor("h")
    midpoint = ((steps - hour) / pd.Timedelta(hours=1)).to_numpy() + 0.125  # hours after the reading
    for site in scenario.sites:
        code = code_of_region[site.region]
        for signal, dataset in (("pv", "pv_availability_2022"), ("wind", "wind_availability_2022")):
            expected = load_series(dataset, code).reindex(hour).to_numpy()
            np.testing.assert_allclose(signals[signal][site.name].to_numpy(), expected, rtol=1e-9, atol=1e-12)
        readings = load_series("temperature_2022", code)
        now, following = readings.reindex(hour).to_numpy(), readings.reindex(hour + pd.Timedelta(hours=1)).to_numpy()
        expected = now + (following - now) * midpoint
        np.testing.assert_allclose(signals["temperature"][site.name].to_numpy(), expected, rtol=1e-9, atol=1e-9)


def great_circle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


@pytest.mark.parametrize("name", FLEETS)
def test_fleet_latency_is_the_azure_matrix_plus_fibre(loaded, name):
    """Every region -> site round trip is Azure's P50 RTT between the two places' Azure regions plus
    fibre (0.015 ms/km) from each place to its region; within one Azure region 3 ms + fibre between
    the places. Whole ms, recomputed here from the coordinates in the file (rounded to 0.01 deg)."""
    cities, azure_location = generator_constants()
    azure_of = {region: azure for region, azure in cities.values()}
    matrix = load_latency_matrix()
    scenario = loaded[name]
    where = {r.name: (r.latitude_deg, r.longitude_deg) for r in scenario.regions}
    for user, row in scenario.latency_ms.items():
        for site in scenario.sites:
            at = (site.latitude_deg, site.longitude_deg)
            azure_user, azure_site = azure_of[user], azure_of[site.region]
            if azure_user == azure_site:
                expected = 3.0 + 0.015 * great_circle_km(where[user], at)
            else:
                expected = (matrix.loc[azure_user, azure_site]
                            + 0.015 * (great_circle_km(where[user], azure_location[azure_user])
                                       + great_circle_km(at, azure_location[azure_site])))
            assert abs(row[site.name] - expected) <= 0.55, (user, site.name, row[site.name], expected)


@pytest.mark.parametrize("name", NAMES)
def test_every_job_has_a_feasible_site(loaded, name):
    """Each explicit job fits (GPUs, and facility power at the best PUE) at an eligible site and
    can finish by its deadline inside the run."""
    scenario = loaded[name]
    sites = {s.name: s for s in scenario.sites}
    for job in scenario.jobs:
        eligible = [sites[n] for n in (job.sites or sites)]
        assert any(s.gpus >= job.gpus and (s.idle_power_mw + job.power_mw) * s.cooling.pue_min <= s.power_capacity_mw
                   for s in eligible), job.name
        assert job.release_h + job.duration_h <= job.deadline_h <= scenario.run.days * 24


def test_us_3site_series_are_the_real_2022_data(loaded):
    scenario = loaded["us-3site"]
    signals = run_signals(scenario)
    hours = signals["carbon"].index  # hourly steps: the step value is the hour's value
    for site, ba, market, weather in (("ca", "CISO", "US-CAL-CISO", "US-CAL-CISO"),
                                      ("tx", "ERCO", "US-TEX-ERCO", "US-TEX-ERCO"),
                                      ("va", "PJM", "US-MIDA-PJM", "US-MIDA-PJM")):
        carbon = load_series("carbon_intensity_2022", ba).reindex(hours).to_numpy() / 1000.0
        np.testing.assert_allclose(signals["carbon"][site].to_numpy(), carbon, rtol=1e-12)
        price = load_series("price_2022", market).reindex(hours).to_numpy()
        np.testing.assert_allclose(signals["import_price"][site].to_numpy(), price, rtol=1e-12)
        # temperature is interpolated between its hourly readings: an hour's mean is the mean of its two ends
        readings = load_series("temperature_2022", weather)
        temperature = 0.5 * (readings.reindex(hours).to_numpy()
                             + readings.reindex(hours + pd.Timedelta(hours=1)).to_numpy())
        np.testing.assert_allclose(signals["temperature"][site].to_numpy(), temperature, rtol=1e-12)
        pv = load_series("pv_availability_2022", weather).reindex(hours).to_numpy()
        np.testing.assert_allclose(signals["pv"][site].to_numpy(), pv, rtol=1e-12, atol=1e-12)
    # demand: the request-rate trace (10-min windows) averaged per hour, times the class scale
    for klass in scenario.inference_classes:
        assert klass.demand_req_per_s.kind == "data"
        assert klass.demand_req_per_s.dataset == "llm_request_rate" and klass.demand_req_per_s.cyclic
    assert signals["demand"].to_numpy().min() > 0  # language_m_large has no collection gaps


def test_us_3site_latency_is_the_azure_matrix(loaded):
    latency = loaded["us-3site"].latency_ms
    matrix = load_latency_matrix()
    site_region = {"ca": "West US", "tx": "South Central US", "va": "East US"}
    user_region = {"us-west": "West US", "us-central": "South Central US", "us-east": "East US"}
    for user, azure_user in user_region.items():
        for site, azure_site in site_region.items():
            expected = 3.0 if azure_user == azure_site else matrix.loc[azure_user, azure_site]
            assert latency[user][site] == expected


@pytest.mark.parametrize("name", NAMES)
def test_every_class_has_a_few_feasible_sites(loaded, name):
    fleet = build_fleet(loaded[name])
    counts = fleet.route_feasible.sum(axis=1)
    assert ((counts >= 1) & (counts <= fleet.n_sites)).all()
    assert counts.min() >= 1  # every class has at least one route within its latency limit
    if name == "us-3site":
        assert {1, 2, 3} <= set(counts.tolist())
    elif name == "fleet-10":
        assert counts.min() == 1 and 2 <= counts.max() <= 4
    else:
        # realtime: the campuses of its own metro and nothing farther than them; batch: >= 8
        scenario = loaded[name]
        site_names = [s.name for s in scenario.sites]
        region_of = np.array([s.region for s in scenario.sites])
        for k, klass in enumerate(scenario.inference_classes):
            if klass.name.startswith("realtime-"):
                assert fleet.route_feasible[k, region_of == klass.origin].all()
                metro = np.array(site_names)[region_of == klass.origin]
                assert klass.latency_limit_ms >= max(scenario.latency_ms[klass.origin][s] for s in metro)
            else:
                assert klass.name.startswith("batch-") and counts[k] >= 8


@pytest.mark.parametrize("name", NAMES)
def test_peak_demand_is_a_share_of_serving_capacity(loaded, name):
    scenario = loaded[name]
    fleet = build_fleet(scenario)
    demand = run_signals(scenario)["demand"]
    peak_fraction = demand.sum(axis=1).max() / fleet.serving_capacity_req_per_s.sum()
    assert 0.3 <= peak_fraction <= 0.9
    # no class asks for more than its reachable sites can serve
    assert (demand.max().to_numpy() <= fleet.route_feasible @ fleet.serving_capacity_req_per_s).all()


@pytest.mark.parametrize("name", NAMES)
def test_full_load_fits_the_power_capacity(loaded, name):
    """Every GPU busy at 1.1 kW plus idle power, at the run's hottest hour, fits each site."""
    scenario = loaded[name]
    fleet = build_fleet(scenario)
    temperature = run_signals(scenario)["temperature"].to_numpy().T
    full_it_mw = fleet.idle_power_mw + fleet.gpus * 1.1e-3
    facility_mw = full_it_mw[:, None] * fleet.pue(temperature)
    assert (facility_mw <= fleet.power_capacity_mw[:, None] + 1e-9).all()
    if name == "fleet-50":
        # grid-constrained campuses: the grid and the generator together carry full load
        assert (fleet.import_limit_mw <= fleet.power_capacity_mw).all()
        supply_mw = fleet.import_limit_mw + fleet.generator_max_mw
        assert (facility_mw <= supply_mw[:, None] + 1e-9).all()
    else:
        assert (fleet.import_limit_mw == fleet.power_capacity_mw).all()
    assert ((fleet.export_limit_mw >= 0.2 * fleet.power_capacity_mw)
            & (fleet.export_limit_mw <= 0.5 * fleet.power_capacity_mw)).all()


@pytest.mark.parametrize("name", NAMES)
def test_carbon_budget_binds_mildly(loaded, name):
    """The budget lies between 40 % and 100 % of an all-grid estimate of the run's emissions:
    idle + inference + the job population's mean training load (arrival rate x mean GPUs x
    mean duration x 1.1 kW), times PUE 1.2, at the GPU-weighted mean carbon intensity.
    Local PV and wind bring the real need below the estimate, so a budget under 100 % can bind."""
    scenario = loaded[name]
    fleet = build_fleet(scenario)
    signals = run_signals(scenario)
    population = scenario.job_population
    assert population is not None and population.gpus_weights is not None
    step_h = scenario.run.control_interval_minutes / 60.0
    mean_gpus = np.dot(population.gpus_weights, population.gpus_choices) / sum(population.gpus_weights)
    mean_duration_h = (population.duration_h_min + population.duration_h_max) / 2
    training_mw = population.arrival_rate_per_h * mean_gpus * mean_duration_h * population.power_kw_per_gpu / 1e3
    inference_mw = signals["demand"].to_numpy() @ fleet.class_energy_mw_per_req_s
    carbon_t_per_mwh = signals["carbon"].to_numpy() @ (fleet.gpus / fleet.gpus.sum())
    it_mw = fleet.idle_power_mw.sum() + training_mw + inference_mw
    all_grid_t = float((it_mw * 1.2 * carbon_t_per_mwh).sum() * step_h)
    budget = scenario.carbon.budget_tco2
    assert budget is not None and scenario.carbon.price_usd_per_tco2 > 0
    assert 0.4 * all_grid_t < budget < all_grid_t


def test_generator_writes_identical_files(tmp_path):
    completed = subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path)],
                               capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    assert completed.returncode == 0, completed.stderr
    for name in NAMES:
        written = (tmp_path / f"{name}.toml").read_bytes()
        shipped = (REPO_ROOT / "scenarios" / "library" / f"{name}.toml").read_bytes()
        assert written == shipped, f"{name}.toml differs from what the generator writes; rerun it"
