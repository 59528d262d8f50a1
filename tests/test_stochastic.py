"""The stochastic MPC (optimizer/stochastic.py) and its scenarios (forecasts/scenarios.py).

Zero forecast error gives the deterministic MPC's decisions; the solved extensive form keeps the
first interval's decisions identical across scenarios; scenarios reproduce under a seed, follow
the common random numbers and carry the forecaster's stated spread and lead correlation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasts import HistoryView, make_forecaster
from forecasts.scenarios import Dependence, draw_scenarios, merge_duplicates, quantile_values, standard_paths
from optimizer.model import build_model
from optimizer.solvers import SolveOptions, solve
from optimizer.stochastic import (
    StochasticMPCController,
    StochasticOptions,
    build_stochastic_model,
    solve_stochastic,
)
from optimizer.variants import run_variant
from scenarios import load_builtin
from simulator import make_controller, simulate
from simulator.controllers import ControllerSpecError

TIGHT = SolveOptions(mip_gap=1e-7, time_limit_s=60.0)


# --------------------------------------------------------------------------------------------
# scenarios

def truth_frame(seed: int = 0, keys: tuple[str, ...] = ("a", "b", "c"), hours: int = 24 * 5) -> pd.DataFrame:
    index = pd.date_range("2022-07-01", periods=hours, freq="h", tz="UTC")
    rng = np.random.default_rng(seed)
    return pd.DataFrame(50.0 + 10.0 * rng.standard_normal((hours, len(keys))), index=index, columns=list(keys))


def forecasts_of(forecaster, truth: dict[str, pd.DataFrame], issue: pd.Timestamp, steps: int = 24) -> dict:
    out = {}
    for signal, frame in truth.items():
        forecaster.bind_truth(signal, frame)
        out[signal] = forecaster.forecast(signal, HistoryView(frame, issue), issue, pd.Timedelta("1h"), steps)
    return out


ISSUE = pd.Timestamp("2022-07-02T00:00Z")


def test_scenarios_reproduce_under_a_seed_and_differ_across_seeds_and_issue_times():
    truth = {"import_price": truth_frame(1), "carbon": truth_frame(2)}
    forecaster = make_forecaster("noisy:sigma_24h=0.3", seed=5)
    fc = forecasts_of(forecaster, truth, ISSUE)
    first = draw_scenarios(forecaster, fc, 6, seed=5)
    again = draw_scenarios(forecaster, fc, 6, seed=5)
    other_seed = draw_scenarios(forecaster, fc, 6, seed=6)
    later = forecasts_of(forecaster, truth, ISSUE + pd.Timedelta("1h"))
    other_time = draw_scenarios(forecaster, later, 6, seed=5)
    assert first.source == "model"
    np.testing.assert_array_equal(first.array("import_price"), again.array("import_price"))
    assert not np.allclose(first.array("import_price"), other_seed.array("import_price"))
    # a later issue: new draws (compare the errors on the overlapping targets)
    error_first = first.array("import_price")[:, 1:] - fc["import_price"].values.to_numpy()[None, 1:]
    error_later = other_time.array("import_price")[:, :-1] - later["import_price"].values.to_numpy()[None, :-1]
    assert not np.allclose(error_first, error_later)


def test_scenarios_follow_common_random_numbers():
    """A scenario depends only on (seed, issue time, forecast, error model): not on the order the
    signals are drawn in, nor on other draws before; more scenarios keep the first ones; and the
    scenario errors are not the forecaster's own error (its streams are separate)."""
    truth = {"import_price": truth_frame(1), "carbon": truth_frame(2), "demand": truth_frame(3)}
    forecaster = make_forecaster("noisy:sigma_24h=0.3", seed=5)
    fc = forecasts_of(forecaster, truth, ISSUE)
    six = draw_scenarios(forecaster, fc, 6, seed=5)
    draw_scenarios(forecaster, fc, 3, seed=9)  # an unrelated draw in between
    reordered = draw_scenarios(forecaster, dict(reversed(list(fc.items()))), 10, seed=5)
    for signal in truth:
        np.testing.assert_array_equal(six.array(signal), reordered.array(signal)[:6])
    # the scenario errors are not the forecaster's realised errors (that would leak the truth)
    point = fc["import_price"].values
    realised = point.to_numpy() - truth["import_price"].loc[point.index].to_numpy()
    for n in range(6):
        scenario_error = six.array("import_price")[n] - fc["import_price"].values.to_numpy()
        assert abs(np.corrcoef(scenario_error.ravel(), realised.ravel())[0, 1]) < 0.9


def test_model_scenarios_have_the_forecasters_spread_mean_and_lead_correlation():
    truth = {"import_price": truth_frame(1)}
    forecaster = make_forecaster("noisy:sigma_24h=0.4,rho=0.8,quantiles=0.1/0.9", seed=2)
    fc = forecasts_of(forecaster, truth, ISSUE)
    drawn = draw_scenarios(forecaster, fc, 2000, seed=3)
    values = drawn.array("import_price")  # (N, H, K); prices are not clipped
    point = fc["import_price"].values.to_numpy()
    # antithetic pairs: the scenarios' mean is the point forecast exactly
    np.testing.assert_allclose(values.mean(axis=0), point, atol=1e-9)
    # the spread is the one the forecaster's own quantiles state: q90 - q10 = 2 * 1.2816 * spread
    quantiles = fc["import_price"].quantiles
    stated = (quantiles[0.9] - quantiles[0.1]).to_numpy() / (2 * 1.2815515655446004)
    np.testing.assert_allclose(values.std(axis=0), stated, rtol=0.1)
    # AR(1) along the lead axis: errors one hour apart correlate by rho
    z = (values - point[None]) / stated[None]
    lag1 = np.mean([np.corrcoef(z[:, i, 0], z[:, i + 1, 0])[0, 1] for i in range(4, 20)])
    assert lag1 == pytest.approx(0.8, abs=0.05)


def test_site_and_signal_correlation_follow_the_dependence():
    z = standard_paths(seed=1, signals={"pv": ("a", "b"), "wind": ("a",)}, issue_ns=0, step_ns=3_600 * 10**9,
                       horizon=3, n_scenarios=4000,
                       dependence={"pv": Dependence(0.9, 0.6, 0.3), "wind": Dependence(0.9, 0.6, 0.3)})
    same_signal = np.corrcoef(z["pv"][:, 0, 0], z["pv"][:, 0, 1])[0, 1]
    across = np.corrcoef(z["pv"][:, 0, 0], z["wind"][:, 0, 0])[0, 1]
    assert same_signal == pytest.approx(0.6, abs=0.05)
    assert across == pytest.approx(0.3, abs=0.05)


@given(st.floats(-3, 3), st.floats(0.1, 50), st.floats(-100, 100))
@settings(max_examples=50, deadline=None)
def test_quantile_sampling_is_exact_for_gaussian_quantiles(z, spread, centre):
    levels = np.array([0.1, 0.5, 0.9])
    from forecasts.base import gaussian_quantile

    quantiles = np.array([centre + gaussian_quantile(q) * spread for q in levels])[:, None, None]
    sampled = quantile_values(levels, quantiles, np.full((1, 1, 1), z))
    assert sampled[0, 0, 0] == pytest.approx(centre + z * spread, rel=1e-9, abs=1e-9)


def test_quantile_source_keeps_the_forecasters_marginals():
    truth = {"import_price": truth_frame(1)}
    forecaster = make_forecaster("noisy:sigma_24h=0.4,quantiles=0.1/0.5/0.9", seed=2)
    fc = forecasts_of(forecaster, truth, ISSUE)
    model = draw_scenarios(forecaster, fc, 8, seed=3, source="model")
    quant = draw_scenarios(forecaster, fc, 8, seed=3, source="quantiles",
                           dependence=Dependence(*forecaster.error_dependence("import_price")))
    # Gaussian quantiles and the same normal scores: the two sources agree
    np.testing.assert_allclose(quant.array("import_price"), model.array("import_price"), rtol=1e-9, atol=1e-6)
    assert quant.source == "quantiles"


def test_a_forecaster_without_error_gives_copies_that_merge_into_one():
    truth = {"import_price": truth_frame(1)}
    forecaster = make_forecaster("perfect")
    fc = forecasts_of(forecaster, truth, ISSUE)
    drawn = draw_scenarios(forecaster, fc, 7, seed=1)
    assert drawn.source == "point"
    merged = merge_duplicates(drawn)
    assert merged.n_scenarios == 1
    assert merged.probability.tolist() == pytest.approx([1.0])
    with pytest.raises(ValueError, match="source 'model'"):
        draw_scenarios(forecaster, fc, 3, seed=1, source="model")


# --------------------------------------------------------------------------------------------
# the controller

class Recording(StochasticMPCController):
    """The stochastic MPC, keeping each decision's scenario windows and probabilities."""

    def __init__(self, base: StochasticMPCController) -> None:
        super().__init__(base.forecaster, base.options, seed=base.seed, solve_options=base.solve_options,
                         shrink_at_run_end=False)
        self.seen: list = []

    def scenario_windows(self, observation):
        windows, probability = super().scenario_windows(observation)
        self.seen.append((windows, probability))
        return windows, probability


def first_starts(plan) -> set[tuple[int, int]]:
    """(job, site) of the starts a plan makes in its first interval."""
    now = plan.start_step == 0
    return set(zip(plan.start_job[now].tolist(), plan.start_site[now].tolist(), strict=True))


@pytest.fixture(scope="module")
def us3site():
    return load_builtin("us-3site")


@pytest.fixture(scope="module")
def noisy_windows(us3site):
    """Scenario windows of a few real decisions on us-3site (noisy forecasts, 5 scenarios)."""
    base = make_controller("mpc-stochastic:scenarios=5", us3site, forecast="noisy:sigma_24h=0.5", seed=4)
    controller = Recording(base)
    simulate(us3site, controller, days=0.125, seed=4)
    return controller.seen


@pytest.mark.parametrize("forecast", ["perfect", "noisy:sigma_24h=0"])
def test_zero_forecast_error_gives_the_deterministic_mpcs_decisions(us3site, forecast):
    runs = {name: simulate(us3site, make_controller(name, us3site, forecast=forecast, seed=2), days=0.25, seed=2)
            for name in ("mpc", "mpc-stochastic:scenarios=6")}
    deterministic, stochastic = runs["mpc"], runs["mpc-stochastic:scenarios=6"]
    # the same model (built through the extensive form's assembly: equal up to rounding)
    np.testing.assert_allclose(stochastic.solver_log["objective_benefit_usd"],
                               deterministic.solver_log["objective_benefit_usd"], rtol=1e-12)
    assert stochastic.kpis["benefit_usd"] == pytest.approx(deterministic.kpis["benefit_usd"], rel=1e-12)
    pd.testing.assert_frame_equal(stochastic.ticks, deterministic.ticks, check_exact=False, rtol=1e-9, atol=1e-9)


def test_identical_scenarios_solved_as_a_stochastic_program_give_the_deterministic_optimum(noisy_windows):
    """Unmerged copies of one window (full integrality): same optimum, same first-interval set-points."""
    w = noisy_windows[2][0][0]
    deterministic = run_variant(w, "joint", TIGHT)
    sm, result, plans = solve_stochastic([w, w, w], np.full(3, 1 / 3), StochasticOptions(recourse="mip"), TIGHT)
    assert result.objective == pytest.approx(deterministic.solve.objective, rel=1e-6)
    for plan in plans:
        for name in ("charge_mw", "discharge_mw", "generator_mw"):
            np.testing.assert_allclose(getattr(plan, name)[:, 0], getattr(deterministic.plan, name)[:, 0], atol=1e-5)
        assert first_starts(plan) == first_starts(deterministic.plan)


@pytest.mark.parametrize("options", [StochasticOptions(), StochasticOptions(recourse="mip", budget="scenario"),
                                     StochasticOptions(risk="cvar", cvar_weight=0.7)])
def test_non_anticipativity_holds_in_the_solved_model(noisy_windows, options):
    windows, probability = noisy_windows[2]
    assert len(windows) == 5
    assert not np.allclose(windows[0].import_price_usd_per_mwh, windows[1].import_price_usd_per_mwh)
    sm, result, plans = solve_stochastic(windows, probability, options, SolveOptions())
    x = result.x
    assert len(sm.links)
    np.testing.assert_allclose(x[sm.links[:, 0]], x[sm.links[:, 1]], atol=1e-6)
    for name in ("charge_mw", "discharge_mw", "generator_mw"):
        first = np.array([getattr(plan, name)[:, 0] for plan in plans])
        np.testing.assert_allclose(first, first[0][None].repeat(len(plans), 0), atol=1e-6)
    starts = [first_starts(p) for p in plans]
    assert all(s == starts[0] for s in starts)
    # routing: one share per (class, site) applied to each scenario's own demand
    shares = [p.served_req_per_s[:, :, 0] / np.maximum(w.demand_req_per_s[:, 0:1], 1e-12)
              for p, w in zip(plans, windows, strict=True)]
    for share in shares[1:]:
        np.testing.assert_allclose(share, shares[0], atol=1e-6)
    # and later decisions do adapt to their scenario (the program is not one plan in disguise)
    later = np.array([p.import_mw[:, 4:].sum() for p in plans])
    assert np.ptp(later) > 1e-3


def test_expected_budget_and_cvar_objective_are_what_the_docs_say(noisy_windows):
    windows, probability = noisy_windows[2]
    budget = 0.8 * windows[0].carbon_budget_tco2
    windows = [w.with_changes(carbon_budget_tco2=budget) for w in windows]
    options = StochasticOptions(risk="cvar", cvar_weight=1.0, cvar_alpha=0.6, recourse="mip")
    sm, result, plans = solve_stochastic(windows, probability, options, TIGHT)
    emissions = []
    for w, plan in zip(windows, plans, strict=True):
        ef = w.fleet.generator_emission_t_per_mwh[:, None]
        emissions.append(float((w.carbon_t_per_mwh * plan.import_mw * w.dt).sum()
                               + (ef * plan.generator_mw * w.dt).sum()))
    # the expected emissions meet the budget up to the one excess, which is no more than it must be
    assert "Carbon-excess" not in sm.model.variable_blocks  # no scenario has a budget row of its own
    expected = float(np.dot(probability, emissions))
    excess = float(result.x[sm.carbon_excess][0])
    assert expected - excess <= budget + 1e-6
    assert excess == pytest.approx(max(expected - budget, 0.0), abs=1e-5)
    # with λ = 1 the objective is the CVaR of the scenario losses at the solution (+ the excess penalty)
    losses = sm.scenario_losses(result.x)
    order = np.argsort(-losses)
    tail, cvar = 1 - options.cvar_alpha, 0.0
    left = tail
    for n in order:
        take = min(probability[n], left)
        cvar += take * losses[n]
        left -= take
    cvar /= tail
    penalty = windows[0].carbon_violation_penalty_usd_per_tco2 * excess
    assert result.objective == pytest.approx(cvar + penalty, rel=1e-5)


def test_options_parse_and_refuse_bad_values(us3site):
    def options(spec: str) -> StochasticOptions:
        controller = make_controller(spec, us3site, forecast="noisy", seed=3)
        assert isinstance(controller, StochasticMPCController) and controller.seed == 3
        return controller.options

    assert options("mpc-stochastic") == StochasticOptions()
    assert options("mpc-stochastic:scenarios=20,risk=cvar,cvar_alpha=0.95") == StochasticOptions(
        scenarios=20, risk="cvar", cvar_alpha=0.95)
    assert options("mpc-stochastic:source=point,merge=false") == StochasticOptions(source="point", merge=False)
    for bad, message in (("merge=maybe", "merge"), ("source=guess", "source"), ("scenarios=0", "scenarios must"),
                         ("risk=max", "risk"), ("colour=red", "unknown option"), ("cvar_alpha=1", "cvar_alpha must"),
                         ("scenarios=many", "scenarios")):
        with pytest.raises(ControllerSpecError, match=message):
            make_controller(f"mpc-stochastic:{bad}", us3site)
    with pytest.raises(ControllerSpecError, match="unknown option"):
        make_controller("mpc:scenarios=3", us3site)


def test_single_scenario_model_is_the_deterministic_model(noisy_windows):
    w = noisy_windows[0][0][0]
    sm = build_stochastic_model([w], np.ones(1))
    model, _ = build_model(w)
    assert (sm.model.matrix != model.matrix).nnz == 0
    np.testing.assert_array_equal(sm.model.col_cost, model.col_cost)
    assert solve(sm.model).objective == pytest.approx(solve(model).objective, rel=1e-12)


def test_aidc_compare_runs_the_stochastic_mpc_beside_the_mpc(capsys):
    from simulator.cli import main

    code = main(["compare", "us-3site", "--controllers", "mpc,mpc-stochastic:scenarios=3",
                 "--forecast", "noisy:sigma_24h=0.3", "--seeds", "1", "--days", "0.125"])
    out = capsys.readouterr().out
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("KPI"))
    assert header.split()[1:] == ["mpc", "mpc-stochastic:scenarios=3"]
    assert main(["compare", "us-3site", "--controllers", "mpc-stochastic:scenarios=0", "--days", "0.125"]) == 2
    assert "scenarios must be" in capsys.readouterr().err
