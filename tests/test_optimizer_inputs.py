"""Window inputs and bad input: step conversion of jobs, inconsistent windows, unknown variants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from reference_model import RUN_START, make_scenario, make_site, make_window, tiny_window

from optimizer.variants import VARIANTS, InfeasibleWindow, run_variant
from optimizer.window import RunningJobs, job_batch, offline_inputs, window_inputs
from scenarios import build_fleet, load_builtin, nominal_signals
from scenarios.schema import TrainingJob


def test_energy_only_with_a_naive_start_beyond_the_grid_connection_is_an_infeasible_window():
    # the naive rule starts the 4 MW job at release (the 10 MW facility has room); the grid gives 2 MW
    job = TrainingJob(name="big", gpus=100, power_mw=4.0, duration_h=2, release_h=0, deadline_h=3, value_usd=1.0)
    w = tiny_window(3, sites=[make_site(import_limit_mw=2.0, capacity_mw=10.0)], jobs=[job])
    with pytest.raises(InfeasibleWindow) as error:
        run_variant(w, "energy-only")
    message = str(error.value)
    assert "\n" not in message and message.startswith("energy-only:") and "import limits" in message
    assert run_variant(w, "joint").plan.start_job.size == 0  # the joint model simply does not start it


def test_running_jobs_beyond_the_grid_connection_are_an_infeasible_window():
    w = tiny_window(2, sites=[make_site(import_limit_mw=2.0, capacity_mw=10.0)])
    w = w.with_changes(running=RunningJobs(("r",), np.array([0]), np.array([10.0]), np.array([5.0]), np.array([2])))
    with pytest.raises(InfeasibleWindow, match="^joint: the solver found no solution"):
        run_variant(w, "joint")


def test_unknown_variant_names_the_valid_ones():
    w = tiny_window(2, sites=[make_site()])
    with pytest.raises(ValueError, match="unknown variant 'jiont'") as error:
        run_variant(w, "jiont")
    assert all(name in str(error.value) for name in VARIANTS)


def test_job_batch_rounds_to_steps_without_breaking_release_or_latest_start():
    scenario = make_scenario([make_site("a", gpus=1000), make_site("b", gpus=100)])
    fleet = build_fleet(scenario)
    jobs = [
        TrainingJob(name="j", gpus=500, power_mw=1, duration_h=1.2, release_h=3.5, deadline_h=9.7, value_usd=1),
        TrainingJob(name="k", gpus=50, power_mw=1, duration_h=1, release_h=0, deadline_h=4, value_usd=1, sites=["b"]),
    ]
    batch = job_batch(jobs, fleet, window_start_h=2.0, step_hours=0.5)  # window starts 2 h after the run
    assert batch.duration_steps.tolist() == [3, 2]  # 1.2 h -> 3 half-hours (rounded up)
    assert batch.release_step.tolist() == [3, 0]  # 1.5 h after the window start; a past release -> 0
    # latest start: the last step boundary at or before deadline - duration in exact hours
    # (j: 7.7 - 1.2 = 6.5 h -> step 13; k: 2 - 1 = 1 h -> step 2); deadline_step = latest start + duration_steps
    latest_start = batch.deadline_step - batch.duration_steps
    assert latest_start.tolist() == [13, 2] and batch.deadline_step.tolist() == [16, 4]
    # j needs 500 GPUs: not eligible at b (100 GPUs); k only at b
    assert batch.eligible.tolist() == [[True, False], [False, True]]
    assert batch.subset(np.array([False, True])).names == ("k",)


def test_window_inputs_carry_units_and_defaults():
    site = make_site(price=[40, 60], carbon_g_per_kwh=[200, 400], pue=1.2, pv_mw=10.0, pv=[0.5, 0.25])
    w = tiny_window(2, sites=[site])
    assert w.step_hours == 1.0 and w.n_steps == 2 and w.time_index[0] == RUN_START
    np.testing.assert_allclose(w.carbon_t_per_mwh, [[0.2, 0.4]])  # g/kWh -> t/MWh
    np.testing.assert_allclose(w.pv_available_mw, [[5.0, 2.5]])
    np.testing.assert_allclose(w.export_price_usd_per_mwh, [[20.0, 30.0]])  # make_site's fraction 0.5
    # tail price: mean (import + carbon price x intensity) x mean PUE; carbon price 0 here
    np.testing.assert_allclose(w.tail_energy_price_usd_per_mwh, [50.0 * 1.2])


def test_offline_inputs_cover_the_run_at_the_control_interval_or_a_given_step():
    scenario = load_builtin("paper-day")
    assert offline_inputs(scenario).n_steps == 24
    half_hourly = offline_inputs(scenario, step_hours=0.5)
    assert half_hourly.n_steps == 48 and half_hourly.step_hours == 0.5
    assert half_hourly.jobs.duration_steps.tolist() == (2 * offline_inputs(scenario).jobs.duration_steps).tolist()


def test_one_step_window_keeps_its_step_length():
    """Regression (fixed in 79b4734): a one-step window used to get a 1 h step whatever its real step."""
    scenario = make_scenario([make_site()], step_hours=0.25)
    signals = nominal_signals(scenario, pd.Timestamp(RUN_START), 1, 0.25)
    assert window_inputs(scenario, signals).step_hours == 0.25
    assert window_inputs(scenario, signals, step_hours=0.5).step_hours == 0.5  # explicit wins
    signals = {name: frame.set_axis(pd.DatetimeIndex(list(frame.index))) for name, frame in signals.items()}
    assert signals["import_price"].index.freq is None
    with pytest.raises(ValueError, match="one-step window needs step_hours"):
        window_inputs(scenario, signals)


def test_window_of_several_steps_reads_its_step_from_the_index():
    assert make_window(make_scenario([make_site()], step_hours=0.25), 3).step_hours == 0.25
