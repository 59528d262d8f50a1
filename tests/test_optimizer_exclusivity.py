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
    """(S, T) where the binaries can matter, from the data: export above import (both limits > 0); a negative
    import price (import limit > 0) or a generator with a minimum output at the site."""
    f = w.fleet
    both = (f.import_limit_mw > 0) & (f.export_limit_mw > 0)
    grid = (w.export_price_usd_per_mwh > w.import_price_usd_per_mwh) & both[:, None]
    forced = (w.import_price_usd_per_mwh < 0) & (f.import_limit_mw > 0)[:, None]
    battery = forced | (f.has_generator & (f.generator_min_mw > 0))[:, None]
    return grid, battery


def assert_no_simultaneous_flows(solved) -> None:
    plan = solved.plan
    # up to what a binary within the 1e-6 integrality tolerance lets through
    assert np.minimum(plan.import_mw, plan.export_mw).max(initial=0.0) <= 1e-5
    assert np.minimum(plan.charge_mw, plan.discharge_mw).max(initial=0.0) <= 1e-5


def test_paper_day_drops_grid_binaries_and_keeps_battery_binaries_only_at_the_generator_site(paper_day):
    model, index = build_model(paper_day)
    assert index.kept_binaries["Grid-mode"] == 0 and "Grid-mode" in index.dropped_binaries
    assert "Grid-mode" not in model.variable_blocks or model.variable_blocks["Grid-mode"].size == 0
    east = paper_day.fleet.site_names.index("east-dc")  # the only generator with a minimum output
    assert index.kept_binaries["Battery-mode"] == paper_day.n_steps
    battery_row = list(index.battery_sites).index(east)
    assert binary_positions(model, "Battery-mode-charge", "Battery-charge") == {
        (battery_row, t) for t in range(paper_day.n_steps)}


def test_paper_day_optimum_is_the_same_with_all_binaries(paper_day):
    dropped, kept = solve_window(paper_day), solve_window(paper_day, ALWAYS)
    assert kept.model.n_integer > dropped.model.n_integer
    assert within_gap(dropped.result.objective, kept.result.objective, 1e-7)
    assert_no_simultaneous_flows(dropped)


def test_binaries_kept_exactly_where_export_pays_or_import_price_is_negative():
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
    assert np.argwhere(battery_needed).tolist() == [[0, 2], [1, 0]]
    solved = solve_window(w)
    assert solved.index.kept_binaries == {"Grid-mode": 2, "Battery-mode": 2, "Generator-on": 0}
    assert binary_positions(solved.model, "Grid-mode-import", "Grid-import") == {(0, 1), (0, 3)}
    assert binary_positions(solved.model, "Grid-mode-export", "Grid-export") == {(0, 1), (0, 3)}  # s0 = export row 0
    assert binary_positions(solved.model, "Battery-mode-charge", "Battery-charge") == {(0, 2), (1, 0)}
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
