"""Backends: HiGHS and Gurobi agree on the same canonical model; licence refusal and fallback; bad names;
the MIP-start guard and the relax-and-fix heuristic's gap certificate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_model import (
    ABS_USD,
    coarse_windows,
    make_site,
    requires_gurobi,
    small_windows,
    tiny_window,
    within_gap,
)

from optimizer.heuristic import relax_and_fix
from optimizer.model import ModelOptions, build_model
from optimizer.solvers import GUROBI_PIP_LIMIT, SolveOptions, SolverUnavailable, solve
from scenarios.schema import Battery

GAP = SolveOptions().mip_gap


def solve_both(model, gap: float = GAP):
    return (solve(model, SolveOptions(solver="highs", mip_gap=gap)),
            solve(model, SolveOptions(solver="gurobi", mip_gap=gap)))


def assert_agree(highs, gurobi, model, gap: float = GAP) -> None:
    for result in (highs, gurobi):
        assert result.status == "optimal" and result.has_solution
        assert model.max_violation(result.x) <= 1e-5
        assert result.objective == pytest.approx(model.objective(result.x), rel=1e-9, abs=1e-6)
        assert (result.rows, result.cols, result.binaries, result.nonzeros) == (
            model.n_rows, model.n_cols, model.n_integer, model.n_nonzeros)
    assert within_gap(highs.objective, gurobi.objective, gap)
    # each solver's incumbent is no better than the other's proven bound (minimisation)
    assert highs.objective >= gurobi.bound - 1e-6 * abs(gurobi.bound) - ABS_USD
    assert gurobi.objective >= highs.bound - 1e-6 * abs(highs.bound) - ABS_USD


def oversized_model():
    """An LP with more than 2,000 variables: one battery site over 450 hourly steps."""
    battery = Battery(energy_capacity_mwh=4, charge_power_mw=1, discharge_power_mw=1)
    w = tiny_window(450, sites=[make_site(price=[10, 80] * 12, idle_mw=1.0, battery=battery)])
    model, _ = build_model(w)
    assert model.n_cols > GUROBI_PIP_LIMIT
    return model


@pytest.mark.parametrize("scenario", ["paper_day", "paper_day_genrich"])
def test_paper_day_fits_the_gurobi_pip_licence(request, scenario):
    for options in (ModelOptions(), ModelOptions(exclusivity="always")):
        model, _ = build_model(request.getfixturevalue(scenario), options)
        assert model.n_cols <= GUROBI_PIP_LIMIT and model.n_rows <= GUROBI_PIP_LIMIT


@requires_gurobi
@pytest.mark.parametrize("scenario", ["paper_day", "paper_day_genrich"])
@pytest.mark.parametrize("exclusivity", ["auto", "always"])
def test_highs_and_gurobi_agree_on_paper_day(request, scenario, exclusivity):
    model, _ = build_model(request.getfixturevalue(scenario), ModelOptions(exclusivity=exclusivity))
    assert_agree(*solve_both(model), model)


@requires_gurobi
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_windows(negative_prices=True, high_export=True))
def test_highs_and_gurobi_agree_on_small_windows(w):
    model, _ = build_model(w)
    assert_agree(*solve_both(model, 1e-9), model, 1e-9)


@requires_gurobi
def test_gurobi_refuses_a_model_above_the_licence_limit_with_a_one_line_message():
    with pytest.raises(SolverUnavailable) as refusal:
        solve(oversized_model(), SolveOptions(solver="gurobi"))
    message = str(refusal.value)
    assert "\n" not in message and "licence" in message and "2,000" in message


@requires_gurobi
def test_auto_falls_back_to_highs_above_the_licence_limit_and_says_so():
    model = oversized_model()
    result = solve(model, SolveOptions(solver="auto"))
    assert result.solver == "highs" and result.fallback_from == "gurobi"
    assert "licence" in result.message and result.summary()["fallback_from"] == "gurobi"
    assert result.status == "optimal" and model.max_violation(result.x) <= 1e-6


@requires_gurobi
def test_auto_uses_gurobi_when_the_licence_allows(paper_day):
    model, _ = build_model(paper_day)
    result = solve(model, SolveOptions(solver="auto"))
    assert result.solver == "gurobi" and result.fallback_from is None


def test_unknown_solver_name_is_a_value_error():
    model, _ = build_model(tiny_window(2, sites=[make_site()]))
    with pytest.raises(ValueError, match="cplex.*highs, gurobi or auto"):
        solve(model, SolveOptions(solver="cplex"))


@pytest.mark.parametrize("solver", ["highs", pytest.param("gurobi", marks=requires_gurobi)])
def test_infeasible_model_reports_no_solution(solver):
    # a 5 MW idle load behind a 2 MW grid connection, nothing else
    model, _ = build_model(tiny_window(2, sites=[make_site(idle_mw=5.0, import_limit_mw=2.0)]))
    result = solve(model, SolveOptions(solver=solver))
    assert not result.has_solution and result.x is None and result.status == "infeasible"
    assert np.isnan(result.objective)


@pytest.mark.parametrize("solver", ["highs", pytest.param("gurobi", marks=requires_gurobi)])
def test_lp_without_binaries_reports_zero_gap(solver):
    model, _ = build_model(tiny_window(2, sites=[make_site(idle_mw=1.0)]))
    assert model.n_integer == 0
    result = solve(model, SolveOptions(solver=solver))
    assert result.gap == 0.0 and result.objective == pytest.approx(2 * 50.0)


def test_highs_solution_attains_its_objective_when_given_a_mip_start():
    """Regression (fixed in 79b4734): with this start HiGHS 1.16 presolve returned the start's x (objective 1)
    next to the optimum's objective (0); solve_highs now recomputes the objective and re-solves cold."""
    from dataclasses import replace

    from scenarios.schema import Generator, TrainingJob

    generator = Generator(p_min_mw=1, p_max_mw=5, fuel_cost_usd_per_mwh=10)
    site = make_site(price=[0, 0, 1], idle_mw=1, capacity_mw=3.5, import_limit_mw=3.5, export_limit_mw=3,
                     export_price=0, generator=generator)
    job = TrainingJob(name="j", gpus=50, power_mw=2.0, duration_h=1, release_h=0, deadline_h=1, value_usd=1.0)
    model, _ = build_model(tiny_window(3, sites=[site], jobs=[job]))
    upper = model.col_upper.copy()
    upper[model.variable_blocks["Job-start"]] = 0.0
    without_job = solve(replace(model, col_upper=upper))  # a feasible start: objective 1 (idle at price 1)
    assert without_job.objective == pytest.approx(1.0)
    result = solve(model, SolveOptions(solver="highs"), start=without_job.x)
    assert result.objective == pytest.approx(0.0, abs=1e-9)  # the optimum: start the job
    assert model.objective(result.x) == pytest.approx(result.objective, abs=1e-9)
    assert result.x[model.variable_blocks["Job-start"]] == pytest.approx([1.0])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(small_windows(negative_prices=True, high_export=True), coarse_windows()))
def test_relax_and_fix_plan_is_feasible_and_its_gap_certificate_is_true(w):
    model, index = build_model(w)
    exact = solve(model, SolveOptions(mip_gap=1e-9))
    result = relax_and_fix(model, index, SolveOptions())
    assert result.has_solution and model.max_violation(result.x) <= 1e-5
    assert result.objective == pytest.approx(model.objective(result.x), rel=1e-9, abs=1e-6)
    assert result.bound <= exact.objective + 1e-6 * abs(exact.objective) + ABS_USD  # a valid bound
    assert result.objective >= exact.objective - 1e-6 * abs(exact.objective) - ABS_USD
    # the certified gap holds against the true optimum, and meets the target
    assert result.objective - exact.objective <= result.gap * abs(result.objective) + ABS_USD
    assert result.gap <= SolveOptions().mip_gap
