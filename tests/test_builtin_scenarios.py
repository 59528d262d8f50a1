"""The built-in scenarios us-3site and fleet-10: they load, have the stated sizes, use the real
data they claim, are internally consistent, and are exactly what their generator writes."""

from __future__ import annotations

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
NAMES = ("us-3site", "fleet-10")


@pytest.fixture(scope="module")
def loaded() -> dict[str, scenarios.Scenario]:
    return {name: load_scenario(name) for name in NAMES}


def run_signals(scenario: scenarios.Scenario) -> dict[str, pd.DataFrame]:
    step_h = scenario.run.control_interval_minutes / 60.0
    n_steps = int(round(scenario.run.days * 24 / step_h))
    return nominal_signals(scenario, pd.Timestamp(scenario.run.start), n_steps, step_h)


def test_both_are_listed_builtins():
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
    assert counts.min() == 1 and counts.max() >= 2
    if name == "us-3site":
        assert {1, 2, 3} <= set(counts.tolist())
    else:
        assert counts.max() <= 4


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
