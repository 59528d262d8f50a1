"""Every constraint family of SPEC §4, checked on solved plans (paper-day and random small windows)
against quantities recomputed from the plan, not from the model's own rows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from reference_model import ABS_USD, coarse_windows, small_windows, solve_window

from optimizer.accounting import balance_residual_mw
from optimizer.model import ModelOptions
from optimizer.window import coarsen

TOL = 1e-5  # solver feasibility tolerances are ~1e-6 on rows with coefficients up to a few
OPTIONS = {
    "joint": ModelOptions(),
    "always": ModelOptions(exclusivity="always"),
    "no-battery": ModelOptions(battery=False),
    "no-routing": ModelOptions(routing="home"),
    "no-carbon": ModelOptions(carbon_budget=False),
}


def check_solution(w, solved, options: ModelOptions) -> None:
    """Assert the read-back plan (and the raw solution) satisfies every family."""
    fleet, plan, T, dt = w.fleet, solved.plan, w.n_steps, w.dt  # dt: (T,) step lengths (variable resolution)
    x, model = solved.result.x, solved.model
    assert model.max_violation(x) <= TOL

    # power balance at every (s, t), with the load recomputed from the plan's starts and routing
    assert np.abs(balance_residual_mw(w, plan)).max() <= TOL

    # battery: SOC dynamics and bounds; no battery flows elsewhere
    has_battery = np.zeros(fleet.n_sites, bool)
    has_battery[solved.index.battery_sites] = True
    for s in np.flatnonzero(has_battery):
        before = np.concatenate([[w.soc_initial_mwh[s]], plan.soc_mwh[s, :-1]])
        expected = (before + fleet.battery_charge_efficiency[s] * dt * plan.charge_mw[s]
                    - dt / fleet.battery_discharge_efficiency[s] * plan.discharge_mw[s])
        np.testing.assert_allclose(plan.soc_mwh[s], expected, atol=TOL)
        assert (plan.soc_mwh[s] >= fleet.soc_min_mwh[s] - TOL).all()
        assert (plan.soc_mwh[s] <= fleet.soc_max_mwh[s] + TOL).all()
        assert (plan.charge_mw[s] <= fleet.battery_charge_mw[s] + TOL).all()
        assert (plan.discharge_mw[s] <= fleet.battery_discharge_mw[s] + TOL).all()
    assert not plan.charge_mw[~has_battery].any() and not plan.discharge_mw[~has_battery].any()

    # training jobs: integral starts, each job at most once, at an eligible site, inside [release, deadline]
    # (job times count base steps; a model step starts at base step w.step_offset)
    starts = x[model.variable_blocks["Job-start"]]
    np.testing.assert_allclose(starts, np.round(starts), atol=TOL)
    jobs, begin = w.jobs, w.step_offset[plan.start_step]
    assert len(set(plan.start_job.tolist())) == len(plan.start_job)
    assert jobs.eligible[plan.start_job, plan.start_site].all()
    assert (begin >= jobs.release_step[plan.start_job]).all()
    assert (begin + jobs.duration_steps[plan.start_job] <= jobs.deadline_step[plan.start_job]).all()
    assert (plan.start_step <= T - 1).all()

    # GPUs: the model's GPU rows hold exactly the plan's use (a started job occupies its whole contiguous run)
    training_gpus, _ = plan.training_load(w)
    running_gpus, _ = w.running_load()
    inference_gpus = plan.served_req_per_s.sum(axis=0) / fleet.throughput_req_per_s_per_gpu[:, None]
    gpu_rows = (model.matrix @ x)[model.row_blocks["Site-gpus"]]
    np.testing.assert_allclose(gpu_rows, inference_gpus + training_gpus, rtol=1e-7, atol=1e-4)  # GPUs: 100s
    assert (inference_gpus + training_gpus + running_gpus <= fleet.gpus[:, None] + 1e-4).all()

    # facility power, grid limits, renewables, generator limits
    assert (plan.facility_load_mw(w) <= fleet.power_capacity_mw[:, None] + TOL).all()
    assert (plan.import_mw <= fleet.import_limit_mw[:, None] + TOL).all()
    assert (plan.export_mw <= fleet.export_limit_mw[:, None] + TOL).all()
    if not options.export:
        assert not plan.export_mw.any()
    assert (plan.renewable_used_mw <= w.pv_available_mw + w.wind_available_mw + TOL).all()
    assert (plan.generator_mw <= fleet.generator_max_mw[:, None] * plan.generator_on + TOL).all()
    assert (plan.generator_mw >= fleet.generator_min_mw[:, None] * plan.generator_on - TOL).all()

    # inference: only latency-feasible (or home) routes carry traffic; served <= demand
    allowed = fleet.route_feasible.copy()
    if options.routing == "home":
        allowed[:] = False
        allowed[np.arange(fleet.n_classes), fleet.home_site] = True
    assert not plan.served_req_per_s[~allowed].any()
    assert (plan.served_req_per_s >= 0).all()
    assert (plan.served_req_per_s.sum(axis=1) <= w.demand_req_per_s + TOL).all()

    # carbon: emissions from the plan, the priced budget overrun
    emissions = ((w.carbon_t_per_mwh * plan.import_mw * dt).sum()
                 + (fleet.generator_emission_t_per_mwh[:, None] * plan.generator_mw * dt).sum())
    kpis = solved.kpis
    assert kpis["emissions_tco2"] == pytest.approx(emissions, rel=1e-9, abs=1e-9)
    if w.carbon_budget_tco2 is not None:
        overrun = max(emissions - w.carbon_budget_tco2, 0.0)
        assert kpis["budget_penalty_usd"] == pytest.approx(w.carbon_violation_penalty_usd_per_tco2 * overrun, abs=1e-5)
        if options.carbon_budget:
            assert solved.column("Carbon-excess")[0] == pytest.approx(overrun, abs=TOL)
    if not options.carbon_budget or w.carbon_budget_tco2 is None:
        assert "Carbon-budget" not in model.row_blocks

    # the objective is the common accounting (no-carbon: the model does not see the overrun the accounting charges)
    unseen = 0.0 if options.carbon_budget else kpis["budget_penalty_usd"]
    assert -solved.result.objective == pytest.approx(kpis["benefit_usd"] + unseen, rel=1e-6, abs=ABS_USD)


@pytest.mark.parametrize("name", list(OPTIONS))
def test_paper_day_solution_satisfies_every_family(paper_day, name):
    check_solution(paper_day, solve_window(paper_day, OPTIONS[name]), OPTIONS[name])


def test_paper_day_genrich_solution_satisfies_every_family(paper_day_genrich):
    check_solution(paper_day_genrich, solve_window(paper_day_genrich), ModelOptions())


def test_coarsened_paper_day_solution_satisfies_every_family(paper_day):
    coarse = coarsen(paper_day, 6, 3)  # 6 hourly steps, then 3-hour steps
    assert coarse.n_steps == 12 and coarse.dt.tolist() == [1.0] * 6 + [3.0] * 6
    check_solution(coarse, solve_window(coarse), ModelOptions())


def test_paper_day_carbon_budget_is_not_exceeded_by_the_joint_plan(paper_day):
    solved = solve_window(paper_day)
    assert solved.kpis["emissions_tco2"] <= paper_day.carbon_budget_tco2 + 1e-6


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_windows(negative_prices=True, high_export=True))
def test_random_window_solution_satisfies_every_family(w):
    check_solution(w, solve_window(w), ModelOptions())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(coarse_windows(negative_prices=True, high_export=True))
def test_random_variable_resolution_window_solution_satisfies_every_family(w):
    check_solution(w, solve_window(w), ModelOptions())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_windows())
def test_random_window_ablations_satisfy_every_family(w):
    for name in ("no-battery", "no-routing", "no-carbon"):
        check_solution(w, solve_window(w, OPTIONS[name]), OPTIONS[name])
