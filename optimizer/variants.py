"""Model variants (SPEC §4): the joint model, the two one-sided baselines and the ablations.

Every variant produces a :class:`~optimizer.plan.Plan` on the same window, valued by the one
:func:`~optimizer.accounting.account` (with the joint model's carbon budget and prices), so
benefits compare like for like and the joint model, optimal for that accounting, is never
beaten by more than its MIP gap.

* ``joint`` -- everything optimised together.
* ``compute-only`` -- job starts and routing optimised as if all energy came from the grid at the
  import price, within the grid connection's limit (no carbon price or budget, no local assets);
  the energy side then runs
  passively (:func:`passive_dispatch`): renewables first, grid for the rest, battery idle, no
  export (surplus renewables are curtailed).
* ``energy-only`` -- workload fixed by a naive rule (:func:`naive_workload`): each job starts at
  its release (or the first later step with room) at its first eligible site with room;
  inference goes to its nearest feasible site up to the GPUs left, the rest is dropped; the
  energy dispatch is then optimised.
* ``no-battery``, ``no-routing`` (each class only at its nearest site), ``no-carbon`` (the
  budget removed from the model; the accounting still charges its violation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.accounting import account
from optimizer.heuristic import solve_window
from optimizer.model import ModelOptions, build_model
from optimizer.plan import Plan, read_plan
from optimizer.solvers import SolveOptions, SolveResult
from optimizer.window import WindowInputs, non_finite_input

VARIANTS: dict[str, str] = {
    "joint": "compute and energy optimised together",
    "compute-only": "workload optimised at grid prices; passive energy side",
    "energy-only": "naive workload; energy dispatch optimised",
    "no-battery": "joint without batteries",
    "no-routing": "joint with each class served only at its nearest site",
    "no-carbon": "joint without the carbon budget",
}


class InfeasibleWindow(ValueError):
    """The window's model has no feasible solution (inconsistent input)."""


class NonFiniteWindow(InfeasibleWindow):
    """The window holds NaN or an infinity (refused before the solver sees it)."""


@dataclass
class VariantResult:
    variant: str
    plan: Plan
    kpis: dict[str, float]
    solve: SolveResult


def _solve_plan(
    w: WindowInputs, options: ModelOptions, solve_options: SolveOptions, what: str
) -> tuple[Plan, SolveResult]:
    problem = non_finite_input(w)
    if problem is not None:
        raise NonFiniteWindow(f"{what}: the window's input is not finite: {problem}; not solved")
    model, index = build_model(w, options)
    result = solve_window(model, index, solve_options)
    result.dropped_binaries = dict(index.dropped_binaries)
    if result.x is None:  # no solution
        raise InfeasibleWindow(
            f"{what}: the solver found no solution (status {result.status}); "
            "check capacities, import limits and job windows"
        )
    return read_plan(w, index, model.variable_blocks, result.x), result


def passive_dispatch(w: WindowInputs, plan: Plan) -> Plan:
    """Passive energy side for a given workload: renewables first, then the grid up to its limit,
    then the generator (if any) within its limits; surplus renewables are curtailed (exporting is
    a market decision a passive energy side does not take; only a generator's minimum output that
    nothing else absorbs is exported). The battery stays idle at its initial SOC. Load that
    none of this covers is shed from inference at the site (served rate reduced)."""
    fleet = w.fleet
    load = plan.site_load_mw(w)
    renewable = w.pv_available_mw + w.wind_available_mw
    used = np.minimum(renewable, load)
    imports = np.minimum(load - used, fleet.import_limit_mw[:, None])
    deficit = load - used - imports
    # a generator held at its minimum output above the deficit hands the surplus back by lower
    # imports, then less renewable use, then export; where even that cannot absorb it, it stays off
    absorbable = imports + used + fleet.export_limit_mw[:, None]
    short = ((deficit > 1e-9) & fleet.has_generator[:, None]
             & (fleet.generator_min_mw[:, None] - deficit <= absorbable + 1e-9))
    generator = np.where(short, np.clip(np.maximum(deficit, fleet.generator_min_mw[:, None]), 0.0,
                                        fleet.generator_max_mw[:, None]), 0.0)
    surplus = np.maximum(generator - deficit, 0.0)
    backed_off = np.minimum(imports, surplus)
    imports -= backed_off
    curtailed = np.minimum(used, surplus - backed_off)
    used -= curtailed
    forced_export = surplus - backed_off - curtailed
    deficit = np.maximum(deficit - generator, 0.0)
    served = plan.served_req_per_s.copy()
    if (deficit > 1e-9).any():
        # shed inference at the short site-steps (facility MW -> requests/s)
        inference_mw = np.einsum("kst,k->st", served, fleet.class_energy_mw_per_req_s) * w.pue
        keep = np.clip(1.0 - deficit / np.maximum(inference_mw, 1e-12), 0.0, 1.0)
        served *= np.where(deficit > 1e-9, keep, 1.0)[None, :, :]
    exports = forced_export
    return Plan(
        plan.start_job, plan.start_site, plan.start_step, served, used, imports, exports,
        np.zeros_like(used), np.zeros_like(used), np.repeat(w.soc_initial_mwh[:, None], w.n_steps, axis=1),
        generator, (generator > 1e-9).astype(float),
    )


def naive_workload(w: WindowInputs) -> tuple[np.ndarray, np.ndarray]:
    """The energy-only baseline's workload: (fixed starts (n, 3) job/site/step, served (K, S, T)).

    Jobs in release order start at the first step from their release at which the first
    eligible site (in scenario order) has the GPUs and facility power for the whole run;
    inference then goes to each class's nearest feasible site up to the GPUs and power left,
    spilling to the next-nearest feasible site (the plant's real-time rule); the rest is dropped.
    """
    if not w.is_uniform:
        raise ValueError("the naive workload rule needs a uniform grid (no variable-resolution horizon)")
    fleet, T = w.fleet, w.n_steps
    running_gpus, running_power = w.running_load()
    free_gpus = fleet.gpus[:, None] - running_gpus
    free_it_mw = fleet.power_capacity_mw[:, None] / w.pue - fleet.idle_power_mw[:, None] - running_power
    jobs = w.jobs
    starts = []
    for j in np.argsort(jobs.release_step, kind="stable"):
        last = min(jobs.deadline_step[j] - jobs.duration_steps[j], T - 1)
        placed = False
        for step in range(jobs.release_step[j], last + 1):
            span = slice(step, min(step + jobs.duration_steps[j], T))
            for site in np.flatnonzero(jobs.eligible[j]):
                if (free_gpus[site, span] >= jobs.gpus[j]).all() and (free_it_mw[site, span] >= jobs.power_mw[j]).all():
                    free_gpus[site, span] -= jobs.gpus[j]
                    free_it_mw[site, span] -= jobs.power_mw[j]
                    starts.append((j, site, step))
                    placed = True
                    break
            if placed:
                break
    served = np.zeros((fleet.n_classes, fleet.n_sites, T))
    for k in range(fleet.n_classes):  # a handful of classes: nearest feasible site first, spill to the next
        remaining = w.demand_req_per_s[k].copy()
        origin_latency = fleet.latency_ms[fleet.class_origin[k]]
        for site in sorted(np.flatnonzero(fleet.route_feasible[k]), key=lambda s: origin_latency[s]):
            energy = fleet.class_energy_mw_per_req_s[k]
            room = np.minimum(free_gpus[site] * fleet.throughput_req_per_s_per_gpu[site],
                              np.maximum(free_it_mw[site], 0.0) / energy)
            take = np.clip(np.minimum(remaining, room), 0.0, None)
            served[k, site] = take
            remaining -= take
            free_gpus[site] -= take / fleet.throughput_req_per_s_per_gpu[site]
            free_it_mw[site] -= take * energy
    return np.array(starts, dtype=np.int64).reshape(-1, 3), served


def run_variant(w: WindowInputs, variant: str, solve_options: SolveOptions | None = None) -> VariantResult:
    """Decide the window with one variant and value it with the common accounting."""
    solve_options = SolveOptions() if solve_options is None else solve_options
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    if variant == "compute-only":
        grid_only = ModelOptions(battery=False, generator=False, renewables=False, export=False,
                                 carbon_budget=False)
        carbon_blind = w.without_carbon_price()  # nor in the tail price of jobs running past the window
        workload, result = _solve_plan(carbon_blind, grid_only, solve_options, variant)
        plan = passive_dispatch(w, workload)
    elif variant == "energy-only":
        starts, served = naive_workload(w)
        options = ModelOptions(fixed_starts=starts, fixed_served_req_per_s=served)
        plan, result = _solve_plan(w, options, solve_options, variant)
    else:
        options = {
            "joint": ModelOptions(),
            "no-battery": ModelOptions(battery=False),
            "no-routing": ModelOptions(routing="home"),
            "no-carbon": ModelOptions(carbon_budget=False),
        }[variant]
        plan, result = _solve_plan(w, options, solve_options, variant)
    return VariantResult(variant, plan, account(w, plan), result)
