"""LP relax-and-fix: a fast, gap-certified primal solution for windows with many job starts.

Measured on this model (../shared/research/solvers.md §8 and benchmarks/): the LP relaxation of
the time-indexed job formulation is tight (within ~0.1 % of the optimum on ``fleet-10``), but
HiGHS spends most of its time finding a good incumbent. So:

1. solve the LP relaxation: its objective is a valid bound;
2. keep, for every job, only its start with the largest LP value (jobs whose LP starts sum to
   less than ``min_mass`` keep none), still optional (0/1), and solve that restricted MIP —
   it has one start binary per job plus the few mode/commitment binaries, and is always
   feasible (starting no job is); if its gap is too big, a second restricted MIP also keeps
   every start in the LP's support;
3. the gap against the LP bound certifies the plan; if the gap exceeds the target, the full MIP
   is solved in the time that is left (with the restricted solution as a complete MIP start on
   Gurobi; HiGHS is solved cold, see :func:`relax_and_fix`) and the better plan is kept.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from optimizer.matrix import CanonicalModel
from optimizer.model import ModelIndex
from optimizer.solvers import SolveOptions, SolveResult, solve

#: LP value above which a job start joins the second, wider restricted MIP (see :func:`relax_and_fix`)
SUPPORT_THRESHOLD = 0.01


def lp_restrictions(lp_starts: np.ndarray, start_job: np.ndarray, min_mass: float = 0.5) -> list[np.ndarray]:
    """The job-start sets of the restricted MIPs, narrowest first, from the LP's start values.

    1. each job's start with the largest LP value (jobs whose LP starts sum to less than
       ``min_mass`` keep none);
    2. that set plus every start with an LP value above :data:`SUPPORT_THRESHOLD` (the LP's
       support): still a small MIP, and the one that closes the gap where a job's LP mass is
       split between starts (measured on fleet-10, noisy forecasts: restricted gaps of 0.8-2.4 %
       with the first set, 0.03-0.18 % with the second).
    Returns boolean masks over the starts; the second is omitted when it equals the first.
    """
    best = np.zeros(len(lp_starts), bool)
    if len(lp_starts):
        # best start of each job: sort by (job, -value) and take the first of each job
        order = np.lexsort((-lp_starts, start_job))
        first = np.r_[True, start_job[order][1:] != start_job[order][:-1]]
        mass = np.bincount(start_job, weights=lp_starts, minlength=start_job.max() + 1)
        best_starts = order[first]
        best[best_starts[mass[start_job[best_starts]] >= min_mass]] = True
    wide = best | (lp_starts > SUPPORT_THRESHOLD)
    return [best] if np.array_equal(wide, best) else [best, wide]


def tie_restrictions(masks: list[np.ndarray], tied: np.ndarray | None) -> list[np.ndarray]:
    """The masks of :func:`lp_restrictions` with each group of tied starts kept whole: ``tied``
    (G, n) holds positions in the Job-start block that are one decision (a stochastic program's
    shared first-interval starts, tied by equality rows); a start of a group kept in any copy is
    kept in every copy, else the ties would force it to zero everywhere."""
    if tied is None or not len(tied):
        return masks
    out = []
    for mask in masks:
        kept = mask.copy()
        kept[tied] = mask[tied].any(axis=1, keepdims=True)
        out.append(kept)
    return out


def relax_and_fix(
    model: CanonicalModel, index: ModelIndex, options: SolveOptions, min_mass: float = 0.5,
    tied: np.ndarray | None = None,
) -> SolveResult:
    """Solve ``model`` by LP relax-and-fix, finishing with the full MIP only if the gap is too big.

    The LP relaxation gives the bound; restricted MIPs over the job starts of
    :func:`lp_restrictions` (narrowest first) give plans, each certified against that bound; the
    first within ``options.mip_gap`` is returned. If none is, the full MIP runs in the time left
    and the better plan is kept. Each restricted MIP is always feasible (starting no job is).
    ``tied``: groups of starts that are one decision (:func:`tie_restrictions`).
    Returns a :class:`SolveResult` whose ``bound`` is the LP bound (or the full MIP's, if tighter).
    """
    began = time.perf_counter()
    starts = model.variable_blocks["Job-start"]
    relaxation = solve(replace(model, col_integer=np.zeros_like(model.col_integer)), options)
    if not relaxation.has_solution:
        relaxation.wall_s = time.perf_counter() - began
        relaxation.message = f"LP relaxation: {relaxation.status}"
        return relaxation
    bound = relaxation.objective
    assert relaxation.x is not None  # has_solution
    result: SolveResult | None = None
    for stage, chosen in enumerate(
            tie_restrictions(lp_restrictions(relaxation.x[starts], index.start_job, min_mass), tied), start=1):
        upper = model.col_upper.copy()
        upper[starts[~chosen]] = 0.0
        left = max(options.time_limit_s - (time.perf_counter() - began), 1.0)
        restricted = solve(replace(model, col_upper=upper), replace(options, time_limit_s=left))
        if not restricted.has_solution:
            if result is None:
                restricted.wall_s = time.perf_counter() - began
                restricted.message = f"restricted MIP: {restricted.status}"
                return restricted
            continue
        gap = max((restricted.objective - bound) / max(abs(restricted.objective), 1e-9), 0.0)
        if result is None or restricted.objective < result.objective:
            result = replace(restricted, bound=bound, gap=gap, status="optimal", rows=model.n_rows,
                             cols=model.n_cols, binaries=model.n_integer, nonzeros=model.n_nonzeros,
                             message=f"relax-and-fix: LP bound, restricted MIP {stage} "
                                     f"({int(chosen.sum())} job starts kept)")
        if result.gap <= options.mip_gap:
            break
    assert result is not None
    wall = time.perf_counter() - began
    result.wall_s = wall
    if result.gap <= options.mip_gap:
        return result
    remaining = options.time_limit_s - wall
    if remaining < 1.0:
        result.status = "time_limit"
        return result
    # Gurobi takes the restricted plan as a MIP start; HiGHS 1.16 does not (with a start it returned
    # the start's x next to another objective, and measured on us-3site windows a start did not
    # shorten the solve), and the better of the two plans is kept anyway.
    start = result.x if options.solver == "gurobi" else None
    full = solve(model, replace(options, time_limit_s=remaining), start=start)
    full_bound = full.bound if np.isfinite(full.bound) else -np.inf
    full_is_better = full.has_solution and full.objective < result.objective
    best = replace(full if full_is_better else result, bound=max(bound, full_bound), wall_s=time.perf_counter() - began,
                   status=full.status if full.status in ("optimal", "time_limit") else "time_limit")
    best.gap = max((best.objective - best.bound) / max(abs(best.objective), 1e-9), 0.0)
    kept = "full MIP" if full_is_better else "restricted"
    best.message = f"relax-and-fix start, then full MIP ({full.message}); kept the {kept} plan"
    return best


def solve_window(
    model: CanonicalModel, index: ModelIndex, options: SolveOptions, tied: np.ndarray | None = None
) -> SolveResult:
    """Solve a window's model with the method the options ask for (see :class:`SolveOptions`);
    ``tied``: groups of job starts that are one decision (:func:`tie_restrictions`)."""
    starts = model.variable_blocks["Job-start"]
    free_starts = int(((model.col_upper[starts] - model.col_lower[starts]) > 0.5).sum())
    method = options.method
    if method == "auto":
        method = "relax-and-fix" if free_starts and options.solver == "highs" else "mip"
    if method == "relax-and-fix" and free_starts:
        return relax_and_fix(model, index, options, tied=tied)
    return solve(model, options)
