"""The perfect-information bound of a run (SPEC §7: regret).

One offline MILP over the whole run with everything a clairvoyant operator would know: the
*realised* signals (averaged to the control interval) and every job that will be submitted,
each at its real release time (latest starts as in :func:`optimizer.window.job_batch`).
It is the joint model (:func:`optimizer.variants.run_variant`)
on :func:`optimizer.window.window_inputs` over the run, valued by the optimizer's accounting.

``regret = bound benefit - realised benefit``. The bound lives on the control grid: it sees
interval means of demand and renewables (not their within-interval variation), rounds job
durations up to whole intervals and releases up to the next interval, and ignores the plant's
real-time rules. It therefore approximates the tick-level optimum rather than bounding it
exactly; a small negative regret is possible.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from optimizer.plan import Plan
from optimizer.solvers import SolveOptions
from optimizer.variants import run_variant
from optimizer.window import WindowInputs, job_batch, window_inputs
from scenarios.arrays import Fleet
from scenarios.schema import Scenario
from scenarios.timebase import minutes_to_hours
from simulator.processes import Submission

DEFAULT_BOUND_OPTIONS = SolveOptions(time_limit_s=600.0, mip_gap=1e-3)


@dataclass
class BoundResult:
    benefit_usd: float
    kpis: dict[str, float]
    status: str
    gap: float
    wall_s: float
    window: WindowInputs
    plan: Plan

    def summary(self) -> dict[str, object]:
        return {"bound_benefit_usd": self.benefit_usd, "bound_status": self.status, "bound_gap": self.gap,
                "bound_wall_s": self.wall_s, "bound_emissions_tco2": self.kpis["emissions_tco2"]}


def perfect_information_bound(
    scenario: Scenario, fleet: Fleet, run_signals: dict[str, pd.DataFrame], submissions: list[Submission],
    solve_options: SolveOptions | None = None,
) -> BoundResult:
    """Solve the whole run as one window on realised data with all submitted jobs known."""
    options = DEFAULT_BOUND_OPTIONS if solve_options is None else solve_options
    step_hours = minutes_to_hours(scenario.run.control_interval_minutes)
    jobs = job_batch([s.job for s in submissions], fleet, 0.0, step_hours)
    w = window_inputs(scenario, run_signals, fleet=fleet, jobs=jobs)
    result = run_variant(w, "joint", options)
    return BoundResult(result.kpis["benefit_usd"], result.kpis, result.solve.status, result.solve.gap,
                       result.solve.wall_s, w, result.plan)
