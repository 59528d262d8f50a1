"""No simultaneous import/export or charge/discharge, with binaries only where they can matter (SPEC §4)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from reference_model import TIGHT, make_site, small_windows, solve_window, tiny_window, within_gap

from optimizer.model import ModelOptions, build_model, exclusivity_needs
from optimizer.solvers import solve
from scenarios.schema import Battery

ALWAYS = ModelOptions(exclusivity="always")


def binary_positions(solved_or_model, row_block: str, column_block: str) -> set[tuple[int, int]]:
    """(site, step) of the flow column each exclusivity row of ``row_block`` restricts."""
    model = solved_or_model
    if row_block not in model.row_blocks:
        return set()
    flows = model.variable_blocks[column_block]  # (n, T) with n sites or battery/export sites
    rows = model.matrix.tocsr()[model.row_blocks[row_block]]
    position = {int(c): divmod(i, flows.shape[1]) for i, c in enumerate(flows.ravel())}
    return {position[int(c)] for c in rows.indices if int(c) in position}


def expected_needs(w) -> tuple[np.ndarray, np.ndarray]:
    """(S, T) where the binaries can matter, from the data: export above import (both limits > 0); for the
    battery, a step at or before one where burning energy pays (a negative import price with an import
    limit > 0, or a generator minimum output above the fixed facility load), or every step when the
    terminal value is negative. Written as a loop, independently of the model's vectorised rule."""
    f = w.fleet
    both = (f.import_limit_mw > 0) & (f.export_limit_mw > 0)
    grid = (w.export_price_usd_per_mwh > w.import_price_usd_per_mwh + 1e-9) & both[:, None]
    fixed = w.pue * (f.idle_power_mw[:, None] + w.running_load()[1])
    S, T = grid.shape
    battery = np.zeros((S, T), bool)
    for s in range(S):
        for t in range(T):
            later = range(t, T)
            negative_price = f.import_limit_mw[s] > 0 and any(w.import_price_usd_per_mwh[s, u] < 0 for u in later)
            generator_surplus = f.has_generator[s] and any(f.generator_min_mw[s] > fixed[s, u] + 1e-9 for u in later)
            battery[s, t] = negative_price or generator_surplus or w.battery_terminal_value_usd_per_mwh[s] < 0
    return grid, battery


def assert_no_simultaneous_flows(solved) -> None:
    plan = solved.plan
    # up to what a binary within the 1e-6 integrality tolerance lets through
    assert np.minimum(plan.import_mw, plan.export_mw).max(initial=0.0) <= 1e-5
    assert np.minimum(plan.charge_mw, plan.discharge_mw).max(initial=0.0) <= 1e-5


def test_paper_day_drops_grid_and_battery_binaries(paper_day):
    model, index = build_model(paper_day)
    assert index.kept_binaries["Grid-mode"] == 0 and "Grid-mode" in index.dropped_binaries
    assert "Grid-mode" not in model.variable_blocks or model.variable_blocks["Grid-mode"].size == 0
    # east-dc's generator has a minimum output, but it is below the site's idle load at every step,
    # so it never leaves a surplus that the battery would have to burn
    east = paper_day.fleet.site_names.index("east-dc")
    assert paper_day.fleet.generator_min_mw[east] > 0
    assert index.kept_binaries["Battery-mode"] == 0 and "Battery-mode" in index.dropped_binaries


def test_battery_binaries_kept_before_a_later_negative_price_where_burning_pays(monkeypatch):
    """Burning energy at step 0 (charging and discharging at once while PV covers the load) empties
    the battery for the negative price of step 1. A rule keeping binaries only at negative-price
    steps lets the model do that; with the binaries kept up to the negative price it cannot."""
    battery = Battery(energy_capacity_mwh=4, charge_power_mw=4, discharge_power_mw=4, charge_efficiency=0.9,
                      discharge_efficiency=0.9, soc_min_fraction=0.0, soc_max_fraction=1.0,
                      initial_soc_fraction=1.0, degradation_cost_usd_per_mwh=0.0, terminal_value_usd_per_mwh=0.0)
    w = tiny_window(2, sites=[make_site(price=[50, -200], idle_mw=1.0, pv_mw=10.0, pv=[1.0, 0.0],
                                        import_limit_mw=10.0, battery=battery)])
    _, battery_needed, _ = exclusivity_needs(w, ModelOptions())
    assert battery_needed.tolist() == [[True, True]]
    auto, always = solve_window(w), solve_window(w, ALWAYS)
    assert within_gap(auto.result.objective, always.result.objective, 1e-7)
    assert_no_simultaneous_flows(auto)
    # the binary at step 0 binds: with a binary at the negative-price step only, the model burns energy
    # at step 0 and reports a benefit no physical battery can reach
    import optimizer.model as model_module

    grid_needed = np.zeros((1, 2), bool)
    monkeypatch.setattr(model_module, "exclusivity_needs",
                        lambda w, o: (grid_needed, np.array([[False, True]]), {}))
    burning = solve_window(w)
    assert -burning.result.objective > -always.result.objective + 1.0
    assert min(burning.plan.charge_mw[0, 0], burning.plan.discharge_mw[0, 0]) > 0.1


def test_negative_terminal_value_keeps_battery_binaries_everywhere():
    # a negative terminal value arises when it is derived from a negative mean import price
    battery = Battery(energy_capacity_mwh=4, charge_power_mw=1, discharge_power_mw=1)
    w = tiny_window(3, sites=[make_site(price=[50, 40, 30], idle_mw=1.0, battery=battery)])
    w = replace(w, battery_terminal_value_usd_per_mwh=np.array([-30.0]))
    _, battery_needed, _ = exclusivity_needs(w, ModelOptions())
    assert battery_needed.all()
    auto, always = solve_window(w), solve_window(w, ALWAYS)
    assert within_gap(auto.result.objective, always.result.objective, 1e-7)
    assert_no_simultaneous_flows(auto)


def test_paper_day_optimum_is_the_same_with_all_binaries(paper_day):
    dropped, kept = solve_window(paper_day), solve_window(paper_day, ALWAYS)
    assert kept.model.n_integer > dropped.model.n_integer
    assert within_gap(dropped.result.objective, kept.result.objective, 1e-7)
    assert_no_simultaneous_flows(dropped)


def test_binaries_kept_exactly_where_export_pays_or_up_to_a_negative_import_price():
    battery = Battery(energy_capacity_mwh=4, charge_power_mw=1, discharge_power_mw=1)
    sites = [
        # export above import at steps 1 and 3; negative import price at step 2
        make_site("s0", price=[50, 20, -10, 30], export_price=[40, 25, -20, 35], export_limit_mw=2.0,
                  idle_mw=1.0, battery=battery),
        # export would pay at every step but there is no export connection; negative price at step 0
        make_site("s1", price=[-5, 50, 50, 50], export_price=[90, 90, 90, 90], idle_mw=1.0, battery=battery),
    ]
    w = tiny_window(4, sites=sites)
    grid, battery_needed, _ = exclusivity_needs(w, ModelOptions())
    assert np.argwhere(grid).tolist() == [[0, 1], [0, 3]]
    # s0: up to its negative price at step 2; s1: at its negative price, its first step
    assert np.argwhere(battery_needed).tolist() == [[0, 0], [0, 1], [0, 2], [1, 0]]
    solved = solve_window(w)
    assert solved.index.kept_binaries == {"Grid-mode": 2, "Battery-mode": 4, "Generator-on": 0}
    assert binary_positions(solved.model, "Grid-mode-import", "Grid-import") == {(0, 1), (0, 3)}
    assert binary_positions(solved.model, "Grid-mode-export", "Grid-export") == {(0, 1), (0, 3)}  # s0 = export row 0
    assert binary_positions(solved.model, "Battery-mode-charge", "Battery-charge") == {(0, 0), (0, 1), (0, 2), (1, 0)}
    assert_no_simultaneous_flows(solved)
    # at the negative price the battery is worth filling: it charges (and does not discharge) at both sites
    assert solved.plan.charge_mw[0, 2] > 0 and solved.plan.charge_mw[1, 0] > 0


def test_kept_binaries_bind_relaxing_them_lets_simultaneous_flows_pay():
    # step 1: export (60) above import (20); with the binary the 1 MW load is imported and nothing exported
    w = tiny_window(2, sites=[make_site(price=[50, 20], export_price=[40, 60], export_limit_mw=2.0, idle_mw=1.0)])
    solved = solve_window(w)
    assert solved.index.kept_binaries["Grid-mode"] == 1
    assert solved.plan.import_mw[0].tolist() == pytest.approx([1, 1]) and not solved.plan.export_mw.any()
    assert -solved.result.objective == pytest.approx(-(50 + 20))
    # the LP relaxation is strictly better: with 0 < z < 1 it imports 1 + e and exports e at step 1, where
    # e = 2 (1 - z) and 1 + e = 100 z, so e = 1.98 / 1.02; the binary is what forbids that
    relaxed = solve(replace(solved.model, col_integer=np.zeros(solved.model.n_cols, bool)), TIGHT)
    exported = 1.98 / 1.02
    assert -relaxed.objective == pytest.approx(-50 - 20 * (1 + exported) + 60 * exported)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_windows(generator_minimum=False))
def test_binaries_dropped_where_they_cannot_matter_and_optimum_unchanged(w):
    auto, always = solve_window(w), solve_window(w, ALWAYS)
    assert auto.index.kept_binaries["Grid-mode"] == 0 and auto.index.kept_binaries["Battery-mode"] == 0
    assert {"Grid-mode", "Battery-mode"} <= set(auto.index.dropped_binaries)
    assert auto.index.kept_binaries["Generator-on"] == 0
    assert auto.model.n_integer == auto.model.variable_blocks["Job-start"].size
    assert within_gap(auto.result.objective, always.result.objective, 1e-7)
    assert_no_simultaneous_flows(auto)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_windows(negative_prices=True, high_export=True))
def test_no_simultaneous_flows_with_binaries_decided_by_exclusivity_needs(w):
    solved = solve_window(w)
    grid, battery = expected_needs(w)
    export_sites, battery_sites = solved.index.export_sites, solved.index.battery_sites
    assert binary_positions(solved.model, "Grid-mode-import", "Grid-import") == {
        (int(s), int(t)) for s, t in np.argwhere(grid) if s in export_sites}
    expected_battery = {(int(b), int(t)) for b, s in enumerate(battery_sites) for t in np.flatnonzero(battery[s])}
    assert binary_positions(solved.model, "Battery-mode-charge", "Battery-charge") == expected_battery
    # raw solution where binaries exist, read-back plan everywhere
    x = solved.result.x
    imports, exports = x[solved.model.variable_blocks["Grid-import"]], x[solved.model.variable_blocks["Grid-export"]]
    for e, s in enumerate(export_sites):
        assert (np.minimum(imports[s], exports[e])[grid[s]] <= 1e-5).all()
    assert_no_simultaneous_flows(solved)
    always = solve_window(w, ALWAYS)
    assert within_gap(solved.result.objective, always.result.objective, 1e-7)


def test_reason_for_a_dropped_binary_family_does_not_say_it_was_kept(paper_day):
    """Regression (fixed in 79b4734): the reason used to read 'kept at N site-steps'."""
    # no-battery on paper-day: the generator minimum makes battery binaries 'needed' at east-dc, but there is no
    # battery in the model, so none is kept; same for a negative price at a site without a battery
    _, index = build_model(paper_day, ModelOptions(battery=False))
    assert index.kept_binaries["Battery-mode"] == 0
    assert not index.dropped_binaries["Battery-mode"].startswith("kept")
    _, index = build_model(tiny_window(2, sites=[make_site(price=[-10, 20])]))
    assert index.kept_binaries["Battery-mode"] == 0
    assert not index.dropped_binaries["Battery-mode"].startswith("kept")
