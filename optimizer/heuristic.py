"""LP relax-and-fix: a fast, gap-certified primal solution for windows with many job starts.

Measured on this model (../shared/research/solvers.md §8 and benchmarks/): the LP relaxation of
the time-indexed job formulation is tight (within ~0.1 % of the optimum on ``fleet-10``), but
HiGHS spends most of its time finding a good incumbent. So:

1. solve the LP relaxation: its objective is a valid bound;
2. keep, for every job, only its start with the largest LP value (jobs whose LP starts sum to
   less than ``min_mass`` keep none), still optional (0/1), and solve that restricted MIP —
   it has one start binary per job plus the few mode/commitment binaries, and is always
   feasible (starting no job is);
3. its gap against the LP bound certifies the plan; if the gap exceeds the target, the full MIP
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


def relax_and_fix(
    model: CanonicalModel, index: ModelIndex, options: SolveOptions, min_mass: float = 0.5,
    support: float | None = None,
) -> SolveResult:
    """Solve ``model`` by LP relax-and-fix, finishing with the full MIP only if the gap is too big."""
    began = time.perf_counter()
    starts = model.variable_blocks["Job-start"]
    relaxation = solve(replace(model, col_integer=np.zeros_like(model.col_integer)), options)
    if not relaxation.has_solution:
        relaxation.wall_s = time.perf_counter() - began
        relaxation.message = f"LP relaxation: {relaxation.status}"
        return relaxation
    bound = relaxation.objective
    assert relaxation.x is not None  # has_solution
    lp_starts = relaxation.x[starts]
    chosen = np.zeros(len(starts), bool)
    if len(starts):
        # best start of each job: sort by (job, -value) and take the first of each job
        order = np.lexsort((-lp_starts, index.start_job))
        first = np.r_[True, index.start_job[order][1:] != index.start_job[order][:-1]]
        mass = np.bincount(index.start_job, weights=lp_starts, minlength=index.start_job.max() + 1)
        best_starts = order[first]
        chosen[best_starts[mass[index.start_job[best_starts]] >= min_mass]] = True
        if support is not None:
            chosen |= lp_starts > support
    upper = model.col_upper.copy()
    upper[starts[~chosen]] = 0.0
    restricted_options = replace(options, time_limit_s=max(options.time_limit_s - (time.perf_counter() - began), 1.0))
    restricted = solve(replace(model, col_upper=upper), restricted_options)
    wall = time.perf_counter() - began
    if not restricted.has_solution:
        restricted.wall_s = wall
        restricted.message = f"restricted MIP: {restricted.status}"
        return restricted
    gap = (restricted.objective - bound) / max(abs(restricted.objective), 1e-9)
    result = replace(restricted, bound=bound, gap=max(gap, 0.0), wall_s=wall, status="optimal",
                     rows=model.n_rows, cols=model.n_cols, binaries=model.n_integer, nonzeros=model.n_nonzeros,
                     message=f"relax-and-fix: LP bound, {int(chosen.sum())} job starts kept")
    if result.gap <= options.mip_gap:
        return result
    remaining = options.time_limit_s - wall
    if remaining < 1.0:
        result.status = "time_limit"
        return result
    # Gurobi takes the restricted plan as a MIP start; HiGHS 1.16 does not (with a start it returned
    # the start's x next to another objective), and the better of the two plans is kept anyway.
    start = restricted.x if options.solver == "gurobi" else None
    full = solve(model, replace(options, time_limit_s=remaining), start=start)
    full_bound = full.bound if np.isfinite(full.bound) else -np.inf
    full_is_better = full.has_solution and full.objective < result.objective
    best = replace(full if full_is_better else result, bound=max(bound, full_bound), wall_s=time.perf_counter() - began,
                   status=full.status if full.status in ("optimal", "time_limit") else "time_limit")
    best.gap = max((best.objective - best.bound) / max(abs(best.objective), 1e-9), 0.0)
    kept = "full MIP" if full_is_better else "restricted"
    best.message = f"relax-and-fix start, then full MIP ({full.message}); kept the {kept} plan"
    return best


def solve_window(model: CanonicalModel, index: ModelIndex, options: SolveOptions) -> SolveResult:
    """Solve a window's model with the method the options ask for (see :class:`SolveOptions`)."""
    starts = model.variable_blocks["Job-start"]
    free_starts = int(((model.col_upper[starts] - model.col_lower[starts]) > 0.5).sum())
    method = options.method
    if method == "auto":
        method = "relax-and-fix" if free_starts and options.solver == "highs" else "mip"
    if method == "relax-and-fix" and free_starts:
        return relax_and_fix(model, index, options)
    return solve(model, options)
