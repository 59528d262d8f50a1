"""The plant follows the controller's grid set-point where importing pays (issue 12, item 5).

At a negative import price (net of carbon) an economical plan imports and curtails renewables;
the plant's "renewables first" rule alone would use the renewables and import nothing. With
perfect forecasts and no noise the realised run must then match the hindsight bound.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reference_model import make_site, solve_window, tiny_window
from test_optimizer_exclusivity import ALWAYS, assert_no_simultaneous_flows
from test_simulator import assert_invariants, rule_fixture, site_arrays

import optimizer.model as model_module
from optimizer.model import ModelOptions, exclusivity_needs
from scenarios import parse_scenario
from scenarios.schema import Battery
from simulator import make_controller, simulate
from simulator.plant import close_balance

HOURS = np.arange(24)
PV = np.clip(np.sin(np.pi * (HOURS - 6) / 12), 0.0, None).round(3).tolist()
NEGATIVE_HOURS = range(9, 15)
PRICE = [-40.0 if h in NEGATIVE_HOURS else 60.0 for h in HOURS]


def negative_price_day(carbon_g_per_kwh: float = 0.0, carbon_price: float = 0.0) -> dict:
    """One small site, one day, no noise, PV and a negative import price from 09:00 to 15:00."""
    return {
        "name": "negative-price", "run": {"start": "2022-06-13T00:00:00Z", "days": 1},
        "noise": {"enabled": False}, "carbon": {"price_usd_per_tco2": carbon_price},
        "sites": [{
            "name": "site", "region": "here", "gpus": 100, "throughput_req_per_s_per_gpu": 1.0,
            "idle_power_mw": 2.0, "power_capacity_mw": 10.0, "pv_capacity_mw": 8.0, "pv_availability": PV,
            "grid": {"import_limit_mw": 20.0, "export_limit_mw": 10.0, "import_price_usd_per_mwh": PRICE,
                     "export_price_fraction": 0.7, "carbon_intensity_g_per_kwh": carbon_g_per_kwh},
        }],
        "regions": [{"name": "here"}], "latency_ms": {"here": {"site": 0.0}},
    }


def test_at_a_negative_price_the_plant_imports_and_curtails_as_the_plan_says():
    scenario = parse_scenario(negative_price_day())
    result = simulate(scenario, make_controller("mpc", scenario), bound=True)
    assert_invariants(scenario, result)
    imports = site_arrays(result, "import_mw")[:, 0]
    load = site_arrays(result, "facility_load_mw")[:, 0]
    curtailed = site_arrays(result, "curtailed_mw")[:, 0]
    hour = np.arange(len(imports)) // 12
    paid = np.isin(hour, list(NEGATIVE_HOURS))
    # paid to import: the whole load comes from the grid, the PV is curtailed
    assert np.allclose(imports[paid], load[paid])
    assert np.allclose(curtailed[paid], site_arrays(result, "renewable_available_mw")[:, 0][paid])
    # at a positive price the rules still put the PV first
    pv_hours = ~paid & (site_arrays(result, "renewable_available_mw")[:, 0] > 0)
    assert (site_arrays(result, "renewable_used_mw")[:, 0][pv_hours] > 0).all()
    # perfect forecasts, no noise, hour-constant signals: the plant realises the bound's plan
    # (before the fix: regret 576 USD, the PV used instead of paid imports)
    assert result.kpis["regret_usd"] == pytest.approx(0.0, abs=1e-6 * abs(result.kpis["hindsight_bound_usd"]))


def test_a_carbon_price_that_outweighs_the_negative_price_keeps_renewables_first():
    # -40 USD/MWh + 100 USD/t x 0.5 t/MWh = +10 USD/MWh: importing costs, the plant uses the PV
    scenario = parse_scenario(negative_price_day(carbon_g_per_kwh=500.0, carbon_price=100.0))
    result = simulate(scenario, make_controller("mpc", scenario))
    assert_invariants(scenario, result)
    hour = np.arange(len(result.ticks)) // 12
    paid = np.isin(hour, list(NEGATIVE_HOURS))
    used = site_arrays(result, "renewable_used_mw")[:, 0]
    available = site_arrays(result, "renewable_available_mw")[:, 0]
    wanted = np.minimum(site_arrays(result, "facility_load_mw")[:, 0], available)
    assert np.allclose(used[paid], wanted[paid])


def test_the_import_floor_is_followed_up_to_the_load_and_stops_export():
    battery, generator, grid = rule_fixture(import_limit=5.0, export_limit=2.0)
    one = np.ones(1)

    def close(load: float, renewable: float, floor: float):
        return close_balance(load * one, load * one, renewable * one, battery.idle, battery.idle, generator.idle,
                             battery, 1 / 12, generator, grid.import_limit_mw, grid.export_cap_mw(one),
                             import_floor_mw=floor * one)

    flows = close(3.0, 4.0, 3.0)  # all from the grid, the PV curtailed, nothing exported
    assert (flows.import_[0], flows.renewable_used[0], flows.export[0]) == (3.0, 0.0, 0.0)
    flows = close(3.0, 4.0, 8.0)  # never more than the load (and the limit)
    assert (flows.import_[0], flows.renewable_used[0]) == (3.0, 0.0)
    flows = close(6.0, 4.0, 2.0)  # the set-point, then renewables
    assert (flows.import_[0], flows.renewable_used[0]) == (2.0, 4.0)
    flows = close(8.0, 4.0, 2.0)  # more load than planned: the rules add imports up to the limit
    assert (flows.import_[0], flows.renewable_used[0]) == (4.0, 4.0)


def test_the_set_point_is_followed_only_where_importing_pays():
    _, _, grid = rule_fixture(import_limit=5.0)
    grid.set_command(np.array([3.0]))
    assert grid.import_floor_mw(np.array([10.0])) is None
    assert grid.import_floor_mw(np.array([-1.0])).tolist() == [3.0]
    grid.set_command(np.array([9.0]))  # clipped to the limit
    assert grid.import_floor_mw(np.array([-1.0])).tolist() == [5.0]
    grid.set_command(None)
    assert grid.import_floor_mw(np.array([-1.0])) is None


@settings(max_examples=200, deadline=None)
@given(load=st.floats(0, 12), renewable=st.floats(0, 8), floor=st.floats(0, 10), charge=st.floats(0, 1),
       discharge=st.floats(0, 1), export_price=st.sampled_from([-5.0, 0.0, 30.0]))
@example(load=1.0, renewable=3.0, floor=1e-9, charge=0.0, discharge=0.0, export_price=30.0)  # found by hypothesis
def test_the_balance_stays_exact_when_following_the_import(load, renewable, floor, charge, discharge, export_price):
    battery, generator, grid = rule_fixture(import_limit=5.0, export_limit=2.0)
    one = np.ones(1)
    flows = close_balance(load * one, load * one, renewable * one, charge * one, discharge * one, generator.idle,
                          battery, 1 / 12, generator, grid.import_limit_mw, grid.export_cap_mw(export_price * one),
                          import_floor_mw=floor * one)
    shed = 0.0 if flows.shed is None else flows.shed[0]
    unmet = 0.0 if flows.unmet is None else flows.unmet[0]
    supply = flows.renewable_used[0] + flows.discharge[0] + flows.generator[0] + flows.import_[0] + unmet
    assert supply == pytest.approx(load - shed + flows.charge[0] + flows.export[0], abs=1e-9)
    assert -1e-12 <= flows.import_[0] <= 5.0 + 1e-12
    assert flows.renewable_used[0] <= renewable + 1e-12
    assert min(flows.import_[0], flows.export[0]) <= 1e-12  # never both at once


def test_a_terminal_value_derived_from_a_negative_mean_price_keeps_the_battery_binaries(monkeypatch):
    """Issue 12's case: a negative mean import price gives a negative terminal value, so burning
    energy in the battery pays; without the binaries the plan charged 2 MW and discharged 4 MW in
    one hour and reported more than the feasible optimum (2,564.36 vs 2,539.50 USD)."""
    battery = Battery(energy_capacity_mwh=8, charge_power_mw=2, discharge_power_mw=4, charge_efficiency=0.9,
                      discharge_efficiency=0.9, soc_min_fraction=0.0, soc_max_fraction=1.0, initial_soc_fraction=0.5,
                      degradation_cost_usd_per_mwh=0.0)  # terminal value derived from the window's prices
    w = tiny_window(4, sites=[make_site(price=[-30, -10, 20, -60], idle_mw=3.0, battery=battery)])
    assert w.battery_terminal_value_usd_per_mwh[0] < 0  # 0.9 x mean(-20) = -18 USD/MWh
    _, battery_needed, _ = exclusivity_needs(w, ModelOptions())
    assert battery_needed.all()
    auto, always = solve_window(w), solve_window(w, ALWAYS)
    assert -auto.result.objective == pytest.approx(-always.result.objective, rel=1e-9, abs=1e-6)
    assert_no_simultaneous_flows(auto)
    # the binaries bind: dropped, the model burns energy and reports more than is feasible
    monkeypatch.setattr(model_module, "exclusivity_needs",
                        lambda w, o: (np.zeros((1, 4), bool), np.zeros((1, 4), bool), {}))
    burning = solve_window(w)
    assert -burning.result.objective > -always.result.objective + 1.0
    assert np.minimum(burning.plan.charge_mw, burning.plan.discharge_mw).max() > 0.1
