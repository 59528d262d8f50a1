"""The hindsight bound of a run (SPEC §7: regret): an upper bound on any controller's benefit.

One offline MILP over the whole run with everything a clairvoyant operator would know: the
*realised* signals at the plant's tick (not averaged to the control interval) and every job that
will be submitted. Its feasible set contains every trajectory the plant can realise, and it is
valued by the same ledger (:mod:`optimizer.ledger`) as the run, so no controller can beat it:

* the grid is the plant tick (5 min): demand, renewables, prices, carbon and PUE vary per tick
  exactly as the plant sees them;
* jobs start only at control instants (as in the plant), from the first one at or after their
  release to the last one at which they can still meet their deadline (the plant drops a job
  that cannot); durations are exact -- a job's last tick is run only in part
  (``JobBatch.last_step_share``), as the plant's phase-weighted tick records have it;
* within a tick the plant may charge in one phase and discharge in the next, import and export
  in different phases, or run a generator for part of the tick, so the tick means of its flows
  need not satisfy the exclusivity binaries or an on/off commitment, only their convex hull
  (e.g. ``import / L_imp + export / L_exp <= 1``): the bound keeps the mode and commitment
  variables continuous in [0, 1] (a relaxation, ``ModelOptions.relax_modes``); like the plant,
  it exports only at a non-negative export price;
* the run's end follows the ledger's convention (jobs running at the end earn their reward pro
  rata) and the battery's terminal value is the run's (:class:`simulator.accounting.AccountingConstants`).

The solver returns a best plan and a dual bound (HiGHS ``mip_dual_bound``, or the LP bound of
relax-and-fix). The dual bound is the yardstick::

    hindsight_bound_usd        solver's dual bound: no plan -- and no run -- can exceed it
    hindsight_plan_benefit_usd the best plan found (a lower bound on the hindsight optimum)
    regret_usd                 hindsight_bound_usd - realised benefit  (>= 0)
    regret_gap_usd             hindsight_bound_usd - hindsight_plan_benefit_usd: the true regret
                               against the hindsight optimum lies in [regret - gap, regret]

Caveat: a run whose plant records unmet load (``unmet_energy_mwh > 0``, physics the caps cannot
supply) is outside the model's feasible set; its regret is then not guaranteed non-negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.accounting import account
from optimizer.heuristic import solve_window
from optimizer.model import ModelOptions, build_model
from optimizer.plan import Plan, read_plan
from optimizer.solvers import SolveOptions
from optimizer.window import WindowInputs, job_batch, window_inputs
from scenarios.arrays import Fleet
from scenarios.schema import Scenario
from scenarios.timebase import minutes_to_hours, whole_steps
from simulator.accounting import AccountingConstants
from simulator.processes import RealisedSignals, Submission

DEFAULT_BOUND_OPTIONS = SolveOptions(time_limit_s=600.0, mip_gap=1e-3)


@dataclass
class BoundResult:
    """The hindsight bound: dual bound and best plan (USD), the solve's status, gap and time."""

    bound_usd: float
    plan_benefit_usd: float
    kpis: dict[str, float]
    status: str
    gap: float
    wall_s: float
    window: WindowInputs
    plan: Plan

    def summary(self) -> dict[str, object]:
        """The run KPIs it adds (see the module docstring for their meaning)."""
        return {"hindsight_bound_usd": self.bound_usd, "hindsight_plan_benefit_usd": self.plan_benefit_usd,
                "hindsight_status": self.status, "hindsight_gap": self.gap, "hindsight_wall_s": self.wall_s,
                "hindsight_plan_emissions_tco2": self.kpis["emissions_tco2"]}


def tick_window(
    scenario: Scenario, fleet: Fleet, realised: RealisedSignals, submissions: list[Submission], run_hours: float,
    constants: AccountingConstants,
) -> WindowInputs:
    """The whole run as one window on the plant's tick, realised signals, every submitted job with
    its exact duration, ending with the run, valued with the run's terminal battery value."""
    tick_h = realised.tick_hours
    n = whole_steps(run_hours, tick_h)
    first = realised.run_offset
    signals = {name: frame.iloc[first:first + n] for name, frame in realised.frames.items()}
    jobs = job_batch([s.job for s in submissions], fleet, 0.0, tick_h, exact=True)
    w = window_inputs(scenario, signals, fleet=fleet, jobs=jobs, step_hours=tick_h)
    return w.with_changes(ends_run=True, battery_terminal_value_usd_per_mwh=np.asarray(
        constants.battery_terminal_value_usd_per_mwh, dtype=float))


def hindsight_bound(
    scenario: Scenario, fleet: Fleet, realised: RealisedSignals, submissions: list[Submission], run_hours: float,
    constants: AccountingConstants, solve_options: SolveOptions | None = None, start_minutes: float | None = None,
) -> BoundResult:
    """Solve the run in hindsight on the tick grid (see the module docstring). Jobs start every
    ``start_minutes`` (default: the control interval; a finer interval gives a looser bound that
    still holds for runs controlled at that interval). Raises
    :class:`optimizer.variants.InfeasibleWindow` when the solver finds no plan."""
    from optimizer.variants import InfeasibleWindow

    options = DEFAULT_BOUND_OPTIONS if solve_options is None else solve_options
    w = tick_window(scenario, fleet, realised, submissions, run_hours, constants)
    start_minutes = scenario.run.control_interval_minutes if start_minutes is None else start_minutes
    every = whole_steps(minutes_to_hours(start_minutes), realised.tick_hours)
    model, index = build_model(w, ModelOptions(start_every=every, relax_modes=True))
    result = solve_window(model, index, options)
    if result.x is None:
        raise InfeasibleWindow(f"hindsight bound: the solver found no plan (status {result.status})")
    plan = read_plan(w, index, model.variable_blocks, result.x)
    kpis = account(w, plan)
    # the plan's value is the model's own (its objective at x): the ledger's reading of the plan
    # rounds the relaxed on/off variables, which changes the no-load cost (found by the issue-12 tester)
    plan_value = -result.objective
    bound = -result.bound if np.isfinite(result.bound) else float("inf")
    return BoundResult(max(bound, plan_value), plan_value, kpis, result.status, result.gap, result.wall_s, w, plan)


def plan_from_run(w: WindowInputs, frames: dict[str, pd.DataFrame]) -> Plan:
    """A realised run's records as a :class:`Plan` on its tick window ``w`` (:func:`tick_window`):
    its starts (at their tick), served inference and tick-mean energy flows. Valued by
    :func:`optimizer.accounting.account` it gives the run's realised benefit -- the check that the
    two accountings share one ledger and that the run lies in the bound's model."""
    fleet, T = w.fleet, w.n_steps
    S, K = fleet.n_sites, fleet.n_classes
    ticks, routing, jobs = frames["ticks"], frames["routing"], frames["jobs"]

    def site(column: str) -> np.ndarray:
        return ticks[column].to_numpy(dtype=float).reshape(T, S).T

    started = jobs[np.isfinite(jobs["start_h"].to_numpy(dtype=float))]
    job_index = {name: j for j, name in enumerate(w.jobs.names)}
    site_index = {name: s for s, name in enumerate(fleet.site_names)}
    class_index = {name: k for k, name in enumerate(fleet.class_names)}
    served = np.zeros((K, S, T))
    if len(routing):
        k = routing["class"].map(class_index).to_numpy(dtype=np.int64)
        s = routing["site"].map(site_index).to_numpy(dtype=np.int64)
        t = np.repeat(np.arange(T), len(routing) // T)
        np.add.at(served, (k, s, t), routing["served_req_per_s"].to_numpy(dtype=float))
    return Plan(
        start_job=started["job"].map(job_index).to_numpy(dtype=np.int64),
        start_site=started["site"].map(site_index).to_numpy(dtype=np.int64),
        start_step=np.rint(started["start_h"].to_numpy(dtype=float) / w.step_hours).astype(np.int64),
        served_req_per_s=served, renewable_used_mw=site("renewable_used_mw"), import_mw=site("import_mw"),
        export_mw=site("export_mw"), charge_mw=site("charge_mw"), discharge_mw=site("discharge_mw"),
        soc_mwh=site("soc_mwh"), generator_mw=site("generator_mw"),
        generator_on=site("generator_on_h") / w.step_hours,
    )

