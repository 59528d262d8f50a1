"""Variants (SPEC §4): each one's defining restriction, the joint model's dominance under the common
accounting, and the offline study's findings (the product's headline result)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from reference_model import ABS_USD, TIGHT, make_class, make_site, small_windows, tiny_window

from optimizer.accounting import balance_residual_mw
from optimizer.heuristic import relax_and_fix
from optimizer.model import build_model
from optimizer.offline import study_findings
from optimizer.plan import empty_plan
from optimizer.solvers import SolveOptions, solve
from optimizer.variants import VARIANTS, InfeasibleWindow, naive_workload, passive_dispatch, run_variant
from scenarios.schema import Battery, CarbonPolicy, Generator, TrainingJob

SCENARIOS = ["paper-day", "paper-day-genrich"]


def window_of(request, name):
    return request.getfixturevalue(name.replace("-", "_"))


@pytest.mark.parametrize("name", SCENARIOS)
def test_joint_is_at_least_every_variant_within_its_gap(offline_tables, name):
    table = offline_tables[name]
    assert set(table.index) == set(VARIANTS) and (table["status"] == "optimal").all()
    joint = table.loc["joint"]
    tolerance = max(joint["gap"], 1e-6) * abs(joint["benefit_usd"]) + 1e-6
    assert (table["benefit_usd"] <= joint["benefit_usd"] + tolerance).all()
    # and strictly above the two one-sided baselines
    assert joint["benefit_usd"] > table.loc[["compute-only", "energy-only"], "benefit_usd"].max()


def test_study_findings_all_hold(offline_tables):
    findings = study_findings(offline_tables["paper-day"], offline_tables["paper-day-genrich"])
    assert len(findings) == 6
    assert [text for text, holds, numbers in findings if not holds] == []


@pytest.mark.parametrize("name", SCENARIOS)
def test_energy_only_plan_uses_exactly_the_naive_workload(request, name):
    w = window_of(request, name)
    starts, served = naive_workload(w)
    result = run_variant(w, "energy-only")
    chosen = np.column_stack([result.plan.start_job, result.plan.start_site, result.plan.start_step])
    assert sorted(map(tuple, chosen.tolist())) == sorted(map(tuple, starts.tolist()))
    np.testing.assert_allclose(result.plan.served_req_per_s, served, atol=1e-7)
    assert np.abs(balance_residual_mw(w, result.plan)).max() <= 1e-6


def test_naive_workload_starts_at_release_when_there_is_room_and_fills_the_nearest_site_first():
    sites = [make_site("near", gpus=1000, throughput=2.0), make_site("far", gpus=1000, throughput=2.0)]
    jobs = [TrainingJob(name="a", gpus=800, power_mw=1, duration_h=2, release_h=0, deadline_h=6, value_usd=1),
            TrainingJob(name="b", gpus=900, power_mw=1, duration_h=1, release_h=0, deadline_h=6, value_usd=1,
                        sites=["near"])]
    w = tiny_window(4, sites=sites, jobs=jobs, classes=[make_class(demand=1000.0)],
                    latency_ms={"r0": {"near": 5.0, "far": 20.0}})
    starts, served = naive_workload(w)
    # a: release, first site; b (only "near"): waits for a to finish
    assert starts.tolist() == [[0, 0, 0], [1, 0, 2]]
    # inference: near has 200 GPUs (400 req/s) left during a, 100 (200 req/s) during b, 1000 after
    np.testing.assert_allclose(served[0, 0], [400, 400, 200, 1000])
    np.testing.assert_allclose(served[0, 1], [600, 600, 800, 0])


@pytest.mark.parametrize("name", SCENARIOS)
def test_compute_only_leaves_batteries_idle_and_exports_nothing(request, name):
    w = window_of(request, name)
    plan = run_variant(w, "compute-only").plan
    assert not plan.charge_mw.any() and not plan.discharge_mw.any() and not plan.export_mw.any()
    np.testing.assert_allclose(plan.soc_mwh, np.repeat(w.soc_initial_mwh[:, None], w.n_steps, axis=1))
    # renewables first, the grid for the rest
    load = plan.facility_load_mw(w)
    np.testing.assert_allclose(plan.renewable_used_mw, np.minimum(w.pv_available_mw + w.wind_available_mw, load))
    assert np.abs(balance_residual_mw(w, plan)).max() <= 1e-6


@pytest.mark.parametrize("name", SCENARIOS)
def test_no_routing_serves_each_class_only_at_its_home_site(request, name):
    w = window_of(request, name)
    plan = run_variant(w, "no-routing").plan
    home = np.zeros_like(w.fleet.route_feasible)
    home[np.arange(w.fleet.n_classes), w.fleet.home_site] = True
    assert not plan.served_req_per_s[~home].any() and plan.served_req_per_s[home].any()


def test_no_battery_leaves_batteries_idle(paper_day):
    plan = run_variant(paper_day, "no-battery").plan
    assert not plan.charge_mw.any() and not plan.discharge_mw.any()


def test_no_carbon_ignores_the_budget_but_its_accounting_charges_the_overrun():
    # 2 MW for 2 h at 0.5 t/MWh = 2 t against a 1 t budget; a clean 70 USD/MWh generator avoids the overrun
    generator = Generator(p_min_mw=0, p_max_mw=1, fuel_cost_usd_per_mwh=70, emission_factor_t_per_mwh=0.0)
    w = tiny_window(2, sites=[make_site(price=50.0, carbon_g_per_kwh=500.0, idle_mw=2.0, generator=generator)],
                    carbon=CarbonPolicy(budget_tco2=1.0, violation_penalty_usd_per_tco2=100.0))
    joint, blind = run_variant(w, "joint"), run_variant(w, "no-carbon")
    assert joint.kpis["emissions_tco2"] == pytest.approx(1.0) and joint.kpis["budget_penalty_usd"] == pytest.approx(0)
    assert blind.kpis["emissions_tco2"] == pytest.approx(2.0)
    assert blind.kpis["budget_penalty_usd"] == pytest.approx(100.0)
    assert blind.kpis["benefit_usd"] == pytest.approx(-200 - 100)
    assert joint.kpis["benefit_usd"] == pytest.approx(-2 * 70 - 2 * 50)
    assert -blind.solve.objective == pytest.approx(-200.0)  # what the blind model believed


def test_variant_results_report_the_dropped_binaries(paper_day):
    result = run_variant(paper_day, "joint")
    assert "Grid-mode" in result.solve.dropped_binaries


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_windows())
def test_joint_is_at_least_every_restricted_variant_on_small_windows(w):
    exact = SolveOptions(mip_gap=1e-9, method="mip")
    joint = run_variant(w, "joint", exact).kpis["benefit_usd"]
    for variant in ("energy-only", "no-battery", "no-routing", "no-carbon"):
        try:
            other = run_variant(w, variant, exact).kpis["benefit_usd"]
        except InfeasibleWindow:
            assert variant == "energy-only"  # the naive workload may not fit the grid connection
            continue
        assert other <= joint + 1e-6 * abs(joint) + ABS_USD


def test_relax_and_fix_is_certified_within_the_gap_on_paper_day(paper_day):
    model, index = build_model(paper_day)
    exact = solve(model, TIGHT)
    result = relax_and_fix(model, index, SolveOptions())
    assert result.has_solution and model.max_violation(result.x) <= 1e-6
    assert result.bound <= exact.objective + 1e-6 * abs(exact.objective)
    assert result.gap <= SolveOptions().mip_gap
    assert model.objective(result.x) <= exact.objective + result.gap * abs(result.objective) + 1e-6


# --- regressions: bugs these tests found, fixed in 79b4734 ---------------------------------------

def relax_and_fix_trap():
    """Two sites; the job (2 MW) fits only at s1 (s0's facility is 1 MW). The LP splits the start 0.5/0.5 and
    relax-and-fix keeps the s0 start, so it falls back to the full MIP with that (job-less) solution as start."""
    generator = Generator(p_min_mw=1, p_max_mw=5, fuel_cost_usd_per_mwh=10)
    battery = Battery(energy_capacity_mwh=1, charge_power_mw=1, discharge_power_mw=1, charge_efficiency=1,
                      discharge_efficiency=0.875, soc_min_fraction=0, soc_max_fraction=0, initial_soc_fraction=0,
                      degradation_cost_usd_per_mwh=1)
    sites = [make_site("s0", price=0, capacity_mw=1, import_limit_mw=1),
             make_site("s1", price=[0, 0, 1], idle_mw=1, capacity_mw=3.5, import_limit_mw=3.5, export_limit_mw=3,
                       export_price=0, generator=generator, battery=battery)]
    job = TrainingJob(name="j", gpus=50, power_mw=2.0, duration_h=1, release_h=0, deadline_h=1, value_usd=1.0)
    return tiny_window(3, sites=sites, jobs=[job])


@pytest.mark.parametrize("stages", ["both", "narrowest only"])
def test_joint_plan_attains_the_benefit_its_solve_reports(stages, monkeypatch):
    """Used to certify a job-less plan as optimal (HiGHS MIP start returned the start's x). The second
    restricted MIP (the LP's support) now finds the s1 start; with the narrowest set alone the full MIP
    runs, as it did when the bug was found."""
    import optimizer.heuristic as heuristic

    if stages == "narrowest only":
        narrowest = heuristic.lp_restrictions
        monkeypatch.setattr(heuristic, "lp_restrictions", lambda *args: narrowest(*args)[:1])
    w = relax_and_fix_trap()
    result = run_variant(w, "joint")
    expected = "relax-and-fix: LP bound, restricted MIP 2" if stages == "both" else "relax-and-fix start, then full MIP"
    assert result.solve.message.startswith(expected)
    assert result.kpis["benefit_usd"] == pytest.approx(-result.solve.objective, abs=1e-6)
    assert result.kpis["benefit_usd"] == pytest.approx(0.0, abs=1e-6)  # start the job at s1 (value 1, idle cost 1)


def test_compute_only_plan_respects_the_grid_connection():
    """compute-only used to plan with unlimited import and leave the job unpowered (benefit above joint)."""
    job = TrainingJob(name="j", gpus=100, power_mw=4.0, duration_h=2, release_h=0, deadline_h=3, value_usd=1000.0)
    w = tiny_window(3, sites=[make_site(price=50.0, import_limit_mw=2.0, capacity_mw=10.0)], jobs=[job])
    joint, compute_only = run_variant(w, "joint"), run_variant(w, "compute-only")
    assert np.abs(balance_residual_mw(w, compute_only.plan)).max() <= 1e-6
    assert compute_only.kpis["benefit_usd"] <= joint.kpis["benefit_usd"] + 1e-6


def test_passive_dispatch_exports_a_generator_minimum_that_nothing_else_absorbs():
    """Regression (fixed in 79b4734): the surplus of a generator held at its minimum used to vanish."""
    # 1 MW load, 0.5 MW grid connection, generator minimum 2 MW: imports backed off, 1 MW exported
    generator = Generator(p_min_mw=2, p_max_mw=4, fuel_cost_usd_per_mwh=10)
    w = tiny_window(2, sites=[make_site(price=50.0, idle_mw=1.0, import_limit_mw=0.5, export_limit_mw=2.0,
                                        generator=generator)])
    plan = passive_dispatch(w, empty_plan(w))
    assert np.abs(balance_residual_mw(w, plan)).max() <= 1e-9
    assert plan.generator_mw.tolist() == [[2.0, 2.0]] and plan.export_mw.tolist() == [[1.0, 1.0]]
    assert not plan.import_mw.any()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_windows())
def test_compute_only_plan_balances_and_never_beats_joint_on_small_windows(w):
    exact = SolveOptions(mip_gap=1e-9, method="mip")
    joint = run_variant(w, "joint", exact).kpis["benefit_usd"]
    compute_only = run_variant(w, "compute-only", exact)
    assert np.abs(balance_residual_mw(w, compute_only.plan)).max() <= 1e-5
    assert compute_only.kpis["benefit_usd"] <= joint + 1e-6 * abs(joint) + ABS_USD


def test_lp_restrictions_narrowest_first_then_the_lp_support():
    from optimizer.heuristic import SUPPORT_THRESHOLD, lp_restrictions

    # job 0 splits 0.6 / 0.4 between two starts; job 1 has 0.3 of mass (below min_mass): keeps none in the
    # first set; job 2 is integral
    values = np.array([0.6, 0.4, 0.2, 0.1, 1.0, 0.0, SUPPORT_THRESHOLD / 2])
    jobs = np.array([0, 0, 1, 1, 2, 2, 2])
    best, wide = lp_restrictions(values, jobs)
    assert best.tolist() == [True, False, False, False, True, False, False]
    assert wide.tolist() == [True, True, True, True, True, False, False]
    # an integral LP gives one set only
    only = lp_restrictions(np.array([1.0, 0.0, 0.0, 1.0]), np.array([0, 0, 1, 1]))
    assert len(only) == 1 and only[0].tolist() == [True, False, False, True]
