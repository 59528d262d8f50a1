"""The array-built model against the term-by-term gurobipy reference (tests/reference_model.py): same
optimum, same size (less the tight formulation's running-sum indicators). Catches indexing mistakes
(site/step swaps, a wrong cover, a missing offset)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from reference_model import (
    ABS_USD,
    TIGHT,
    coarse_windows,
    reference_model,
    requires_gurobi,
    small_windows,
    solve_window,
)

from optimizer.model import ModelOptions
from optimizer.window import coarsen

pytestmark = requires_gurobi
QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]  # the Gurobi env is shared on purpose

OPTIONS = {
    "joint": ModelOptions(),
    "always": ModelOptions(exclusivity="always"),
    "no-battery": ModelOptions(battery=False),
    "no-routing": ModelOptions(routing="home"),
    "no-carbon": ModelOptions(carbon_budget=False),
    "no-local-assets": ModelOptions(generator=False, renewables=False, export=False),
    "straightforward": ModelOptions(formulation="straightforward"),
}


def assert_same_model(w, options: ModelOptions, env) -> None:
    solved = solve_window(w, options, TIGHT)
    reference = reference_model(w, options, env)
    reference.Params.MIPGap = 1e-9
    reference.optimize()
    assert reference.Status == 2  # GRB.OPTIMAL
    model = solved.model
    # the tight formulation adds one running indicator (a column and its defining row) per possible running step
    running = model.variable_blocks["Job-running"].size if "Job-running" in model.variable_blocks else 0
    assert (model.row_blocks["Job-running-sum"].size if running else 0) == running
    if options.formulation == "straightforward":
        assert "Job-running" not in model.variable_blocks
    assert (reference.NumVars, reference.NumConstrs, reference.NumIntVars) == (
        model.n_cols - running, model.n_rows - running, model.n_integer)
    # the reference maximises the benefit written out term by term; the array model minimises -benefit
    assert reference.ObjVal == pytest.approx(-solved.result.objective, rel=1e-6, abs=ABS_USD)
    unseen = 0.0 if options.carbon_budget else solved.kpis["budget_penalty_usd"]
    assert reference.ObjVal == pytest.approx(solved.kpis["benefit_usd"] + unseen, rel=1e-6, abs=ABS_USD)
    reference.dispose()


@pytest.mark.parametrize("name", list(OPTIONS))
def test_paper_day_matches_the_reference_model(paper_day, gurobi_env, name):
    assert_same_model(paper_day, OPTIONS[name], gurobi_env)


def test_paper_day_genrich_matches_the_reference_model(paper_day_genrich, gurobi_env):
    assert_same_model(paper_day_genrich, ModelOptions(), gurobi_env)


def test_coarsened_paper_day_matches_the_reference_model(paper_day, gurobi_env):
    assert_same_model(coarsen(paper_day, 6, 3), ModelOptions(), gurobi_env)


@settings(max_examples=25, deadline=None, suppress_health_check=QUIET)
@given(small_windows(negative_prices=True, high_export=True))
def test_small_windows_match_the_reference_model(gurobi_env, w):
    for name in ("joint", "always", "straightforward"):
        assert_same_model(w, OPTIONS[name], gurobi_env)


@settings(max_examples=15, deadline=None, suppress_health_check=QUIET)
@given(coarse_windows(negative_prices=True, high_export=True))
def test_variable_resolution_windows_match_the_reference_model(gurobi_env, w):
    assert_same_model(w, ModelOptions(), gurobi_env)


@settings(max_examples=10, deadline=None, suppress_health_check=QUIET)
@given(small_windows())
def test_small_windows_match_the_reference_model_for_the_ablations(gurobi_env, w):
    for name in ("no-battery", "no-routing", "no-carbon"):
        assert_same_model(w, OPTIONS[name], gurobi_env)
