"""Hand-computed optima of tiny windows: each decision and the exact objective worked out on paper."""

from __future__ import annotations

import numpy as np
import pytest
from reference_model import make_class, make_site, solve_window, tiny_window

from optimizer.window import RunningJobs
from scenarios.schema import Battery, CarbonPolicy, Generator, TrainingJob


def benefit(solved) -> float:
    assert solved.kpis["benefit_usd"] == pytest.approx(-solved.result.objective, rel=1e-9, abs=1e-6)
    return -solved.result.objective


# --- (a) one job, one site ----------------------------------------------------------------------

def job(value: float, *, power=2.0, duration=2, release=0, deadline=4, name="j") -> TrainingJob:
    return TrainingJob(name=name, gpus=100, power_mw=power, duration_h=duration, release_h=release,
                       deadline_h=deadline, value_usd=value)


# energy cost of the job: PUE * P * d * dt * (price + carbon price * ci) = 1.25 * 2 * 2 * (50 + 40 * 0.5) = 350;
# idle: 1.25 * 0.4 MW * 4 h * 70 = 140
@pytest.mark.parametrize(("value", "starts", "expected"), [(351.0, True, 351 - 350 - 140), (349.0, False, -140.0)])
def test_job_starts_iff_its_value_exceeds_its_energy_cost(value, starts, expected):
    w = tiny_window(4, sites=[make_site(price=50.0, carbon_g_per_kwh=500.0, pue=1.25, idle_mw=0.4)],
                    jobs=[job(value)], carbon=CarbonPolicy(price_usd_per_tco2=40.0))
    solved = solve_window(w)
    assert len(solved.plan.start_job) == int(starts)
    assert benefit(solved) == pytest.approx(expected, abs=1e-6)
    assert solved.kpis["emissions_tco2"] == pytest.approx((0.4 * 4 + 2 * 2 * starts) * 1.25 * 0.5)


def test_job_starts_at_the_cheapest_feasible_time():
    # starts 0..3 cost (90+90), (90+30), (30+30), (30+60) per MW*PUE: step 2 wins
    w = tiny_window(5, sites=[make_site(price=[90, 90, 30, 30, 60], pue=1.25)], jobs=[job(1000.0, deadline=5)])
    solved = solve_window(w)
    assert solved.plan.start_step.tolist() == [2] and solved.plan.start_site.tolist() == [0]
    assert benefit(solved) == pytest.approx(1000 - 1.25 * 2 * (30 + 30))
    assert solved.plan.import_mw[0].tolist() == pytest.approx([0, 0, 2.5, 2.5, 0])


def test_energy_past_the_window_pays_the_tail_price():
    # released at the last step, so it can only run 1 step inside and 1 step past the window:
    # 1.25 * 2 * 50 inside + 2 * 1 h * tail price 80 * mean PUE 1.25 past
    w = tiny_window(3, sites=[make_site(price=50.0, pue=1.25)], jobs=[job(1000.0, release=2, deadline=10)],
                    tail_price=80.0)
    solved = solve_window(w)
    assert solved.plan.start_step.tolist() == [2]
    assert solved.kpis["tail_energy_cost_usd"] == pytest.approx(200.0)
    assert benefit(solved) == pytest.approx(1000 - 125 - 200)


def test_job_with_no_feasible_start_is_not_started():
    w = tiny_window(4, sites=[make_site(price=0.0)], jobs=[job(1000.0, duration=3, release=2, deadline=4)])
    solved = solve_window(w)
    assert solved.model.variable_blocks["Job-start"].size == 0
    assert benefit(solved) == 0.0


def test_running_job_is_a_fixed_load_for_its_remaining_steps():
    w = tiny_window(3, sites=[make_site(price=[10, 20, 40])])
    w = w.with_changes(running=RunningJobs(("r",), np.array([0]), np.array([10.0]), np.array([1.5]),
                                           np.array([2])))
    solved = solve_window(w)
    assert solved.plan.import_mw[0].tolist() == pytest.approx([1.5, 1.5, 0.0])
    assert benefit(solved) == pytest.approx(-1.5 * (10 + 20))


# --- (b) one battery, a cheap step then an expensive step ---------------------------------------

@pytest.mark.parametrize(("initial", "charge", "soc", "expected"), [
    # charge 1 MW at 20 (+2 degradation) stores 0.9 MWh worth 0.9 * 30 = 27 at the end: charge at the power
    # limit (4 MW) -> soc 5 + 3.6; discharging 1 MW at 100 (-2) uses 1/0.8 = 1.25 MWh worth 37.5: discharge the
    # whole 3 MW idle load -> soc 8.6 - 3.75. Benefit: -20*7 - 2*(4+3) + 30*(4.85 - 5)
    (0.5, 4.0, [8.6, 4.85], -20 * 7 - 2 * 7 + 30 * (4.85 - 5)),
    # from soc 8 the SOC bound (9) limits charging to 1/0.9 MW
    (0.8, 1 / 0.9, [9.0, 5.25], -20 * (3 + 1 / 0.9) - 2 * (1 / 0.9 + 3) + 30 * (5.25 - 8)),
])
def test_battery_arbitrage_with_efficiencies_degradation_and_terminal_value(initial, charge, soc, expected):
    battery = Battery(energy_capacity_mwh=10, charge_power_mw=4, discharge_power_mw=4, charge_efficiency=0.9,
                      discharge_efficiency=0.8, soc_min_fraction=0.1, soc_max_fraction=0.9,
                      initial_soc_fraction=initial, degradation_cost_usd_per_mwh=2, terminal_value_usd_per_mwh=30)
    solved = solve_window(tiny_window(2, sites=[make_site(price=[20, 100], idle_mw=3.0, battery=battery)]))
    plan = solved.plan
    assert plan.charge_mw[0].tolist() == pytest.approx([charge, 0.0], abs=1e-7)
    assert plan.discharge_mw[0].tolist() == pytest.approx([0.0, 3.0], abs=1e-7)
    assert plan.soc_mwh[0].tolist() == pytest.approx(soc, abs=1e-7)
    assert plan.import_mw[0].tolist() == pytest.approx([3.0 + charge, 0.0], abs=1e-7)
    assert benefit(solved) == pytest.approx(expected, abs=1e-6)


def test_battery_terminal_value_defaults_to_mean_import_price_times_discharge_efficiency():
    battery = Battery(energy_capacity_mwh=10, charge_power_mw=4, discharge_power_mw=4, discharge_efficiency=0.8)
    w = tiny_window(2, sites=[make_site(price=[20, 100], battery=battery)])
    assert w.battery_terminal_value_usd_per_mwh.tolist() == pytest.approx([60 * 0.8])


# --- (c) one class, two sites -------------------------------------------------------------------

def routing_window(latency_limit_ms: float):
    # s0: expensive (100), far (30 ms), large; s1: cheap (20), near (5 ms), 1000 GPUs x 2 req/s = 2000 req/s
    sites = [make_site("s0", price=100.0, gpus=10000, throughput=2.0),
             make_site("s1", price=20.0, gpus=1000, throughput=2.0)]
    demand = make_class(demand=3000.0, latency_limit_ms=latency_limit_ms, energy_wh=0.5, value_per_1k=1.0,
                        penalty_per_1k=0.5)
    return tiny_window(2, sites=sites, classes=[demand], latency_ms={"r0": {"s0": 30.0, "s1": 5.0}})


def test_inference_fills_the_cheap_site_first_then_the_other():
    solved = solve_window(routing_window(50.0))
    assert solved.index.route_site.tolist() == [0, 1]
    served = solved.plan.served_req_per_s[0]
    assert served[1].tolist() == pytest.approx([2000, 2000]) and served[0].tolist() == pytest.approx([1000, 1000])
    # per step: value 3000 req/s * 3600 s * 0.001 USD; energy 0.5 Wh/req = 0.0018 MW per req/s
    per_step = 3000 * 3.6 - 2000 * 0.0018 * 20 - 1000 * 0.0018 * 100
    assert benefit(solved) == pytest.approx(2 * per_step)


def test_route_beyond_the_latency_limit_does_not_exist_and_excess_is_dropped_at_the_penalty():
    solved = solve_window(routing_window(20.0))
    assert solved.index.route_site.tolist() == [1]
    assert solved.model.variable_blocks["Route-served"].shape == (1, 2)
    assert solved.plan.served_req_per_s[0, 0].tolist() == [0.0, 0.0]
    assert solved.plan.served_req_per_s[0, 1].tolist() == pytest.approx([2000, 2000])
    per_step = 2000 * 3.6 - 1000 * 3.6 * 0.5 - 2000 * 0.0018 * 20
    assert solved.kpis["unserved_penalty_usd"] == pytest.approx(2 * 1000 * 3.6 * 0.5)
    assert benefit(solved) == pytest.approx(2 * per_step)


# --- (d) generator with a minimum output and a no-load cost -------------------------------------

def test_generator_runs_only_when_it_beats_the_grid_including_no_load_cost():
    # 4 MW load: generator 4 * 30 + 50 = 170 vs import 4 * 60 = 240 (on) and 4 * 40 = 160 (off)
    generator = Generator(p_min_mw=2, p_max_mw=5, fuel_cost_usd_per_mwh=30, no_load_cost_usd_per_h=50,
                          emission_factor_t_per_mwh=0.5)
    solved = solve_window(tiny_window(2, sites=[make_site(price=[60, 40], idle_mw=4.0, generator=generator)]))
    assert solved.index.generator_on_sites.tolist() == [0]
    assert solved.plan.generator_mw[0].tolist() == pytest.approx([4, 0])
    assert solved.plan.generator_on[0].tolist() == [1, 0]
    assert solved.kpis["emissions_generator_tco2"] == pytest.approx(2.0)
    assert benefit(solved) == pytest.approx(-170 - 160)


@pytest.mark.parametrize(("export_limit", "generator_mw", "expected"), [
    (0.0, 0.0, -2 * 1000.0),  # minimum 2 MW above the 1 MW load and nowhere to put the surplus: off
    (5.0, 2.0, -2 * (2 * 30 + 50 - 1 * 10)),  # surplus exported at 10: on at exactly its minimum
])
def test_generator_minimum_output_above_the_load(export_limit, generator_mw, expected):
    generator = Generator(p_min_mw=2, p_max_mw=5, fuel_cost_usd_per_mwh=30, no_load_cost_usd_per_h=50)
    site = make_site(price=1000.0, export_price=10.0, idle_mw=1.0, export_limit_mw=export_limit, generator=generator)
    solved = solve_window(tiny_window(2, sites=[site]))
    assert solved.plan.generator_mw[0].tolist() == pytest.approx([generator_mw] * 2, abs=1e-7)
    assert benefit(solved) == pytest.approx(expected)


# --- carbon budget ------------------------------------------------------------------------------

@pytest.mark.parametrize(("penalty", "generator_mw", "excess", "expected"), [
    # import beyond the budget costs 50 + 0.5 t * 100 = 100 > clean generator 70: cover the excess with it
    (100.0, 1.0, 0.0, -(2 * 70 + 2 * 50)),
    # at 30/t import costs 65 < 70: import everything, pay the 1 t overrun
    (30.0, 0.0, 1.0, -(4 * 50 + 30)),
])
def test_carbon_budget_overrun_is_priced_at_the_penalty(penalty, generator_mw, excess, expected):
    generator = Generator(p_min_mw=0, p_max_mw=1, fuel_cost_usd_per_mwh=70, emission_factor_t_per_mwh=0.0)
    w = tiny_window(2, sites=[make_site(price=50.0, carbon_g_per_kwh=500.0, idle_mw=2.0, generator=generator)],
                    carbon=CarbonPolicy(budget_tco2=1.0, violation_penalty_usd_per_tco2=penalty))
    solved = solve_window(w)
    assert solved.plan.generator_mw[0].tolist() == pytest.approx([generator_mw] * 2, abs=1e-7)
    assert solved.column("Carbon-excess").tolist() == pytest.approx([excess], abs=1e-7)
    assert solved.kpis["budget_penalty_usd"] == pytest.approx(penalty * excess, abs=1e-6)
    assert benefit(solved) == pytest.approx(expected)
