"""Solver backends: HiGHS (highspy, the default) and Gurobi (gurobipy's matrix API).

Both receive the same :class:`~optimizer.matrix.CanonicalModel`. A Gurobi licence refusal
(the pip licence admits at most 2,000 variables and 2,000 constraints) becomes a
:class:`SolverUnavailable` with one line of explanation; ``solver="auto"`` then uses HiGHS.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, TypedDict

import numpy as np

from optimizer.defaults import SOLVER_NAMES, SolverName
from optimizer.matrix import CanonicalModel

if TYPE_CHECKING:
    import highspy

GUROBI_PIP_LIMIT = 2000


class SolverUnavailable(RuntimeError):
    """The requested solver cannot solve this model here (not installed, licence refused)."""


@dataclass(frozen=True)
class SolveOptions:
    solver: SolverName = "highs"
    time_limit_s: float = 60.0
    mip_gap: float = 1e-4
    threads: int = 1  # measured: a second HiGHS thread was slower and non-deterministic on 2 cores
    seed: int = 0
    verbose: bool = False
    # hard wall-clock deadline (s) enforced by an interrupt callback: HiGHS can overrun its own
    # time_limit inside root cut loops; None = only the solver's time limit
    deadline_s: float | None = None
    # "auto": LP relax-and-fix first (see optimizer.heuristic) when HiGHS meets free job-start
    # binaries, the plain MIP otherwise; "mip": always the plain MIP
    method: Literal["auto", "mip", "relax-and-fix"] = "auto"


@dataclass
class SolveResult:
    """What every solve reports (SPEC §4)."""

    solver: str
    status: str  # "optimal", "time_limit", "infeasible", "unbounded", "error", "licence"
    has_solution: bool
    x: np.ndarray | None
    objective: float  # minimisation objective incl. offset (= -benefit); nan without solution
    bound: float
    gap: float
    wall_s: float
    rows: int
    cols: int
    binaries: int
    nonzeros: int
    message: str = ""
    dropped_binaries: dict[str, str] = field(default_factory=dict)
    fallback_from: str | None = None

    @property
    def benefit_usd(self) -> float:
        return -self.objective

    def summary(self) -> dict[str, object]:
        return {
            "solver": self.solver, "status": self.status, "objective_benefit_usd": -self.objective,
            "bound_benefit_usd": -self.bound, "gap": self.gap, "wall_s": self.wall_s, "rows": self.rows,
            "cols": self.cols, "binaries": self.binaries, "nonzeros": self.nonzeros,
            "dropped_binaries": "; ".join(f"{k}: {v}" for k, v in self.dropped_binaries.items()),
            "fallback_from": self.fallback_from or "", "message": self.message,
        }


class ModelSize(TypedDict):
    """The size fields of a :class:`SolveResult`."""

    rows: int
    cols: int
    binaries: int
    nonzeros: int


def _size(model: CanonicalModel) -> ModelSize:
    return {"rows": model.n_rows, "cols": model.n_cols, "binaries": model.n_integer, "nonzeros": model.n_nonzeros}


def _relative_gap(objective: float, bound: float) -> float:
    if not np.isfinite(objective) or not np.isfinite(bound):
        return float("inf")
    return abs(objective - bound) / max(abs(objective), 1e-9)


_highs_banner_shown = False


def _new_highs() -> highspy.Highs:
    """A Highs instance; the first one in a process prints a banner on the C stdout, which we
    silence so that command output stays a clean table (the version is in run manifests)."""
    global _highs_banner_shown
    import highspy

    if _highs_banner_shown:
        return highspy.Highs()
    _highs_banner_shown = True
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            return highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def _ctrl_c_stops() -> Iterator[threading.Event]:
    """Make Ctrl-C stop a HiGHS solve and then raise :class:`KeyboardInterrupt`.

    During ``h.run()`` the only Python code that runs is the interrupt callbacks; a
    KeyboardInterrupt raised there is swallowed by HiGHS (status "Solve error"), and the run
    would go on with a fallback decision. So while the solve runs, SIGINT only sets the yielded
    event (the callbacks then ask HiGHS to stop), and the interrupt is raised again afterwards.
    Outside the main thread (no signal handlers there) SIGINT is left alone.
    """
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):  # Ctrl-C is ignored here (a worker process): keep it so
        yield interrupted
        return
    signal.signal(signal.SIGINT, lambda signum, frame: interrupted.set())
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted.is_set():
        raise KeyboardInterrupt


def solve_highs(model: CanonicalModel, options: SolveOptions, start: np.ndarray | None = None) -> SolveResult:
    """Solve with HiGHS through highspy's ``passModel`` (one CSC matrix)."""
    import highspy

    h = _new_highs()
    h.setOptionValue("output_flag", bool(options.verbose))
    h.setOptionValue("time_limit", float(options.time_limit_s))
    h.setOptionValue("mip_rel_gap", float(options.mip_gap))
    h.setOptionValue("threads", int(options.threads))
    h.setOptionValue("random_seed", int(options.seed))
    lp = highspy.HighsLp()
    lp.num_col_ = model.n_cols
    lp.num_row_ = model.n_rows
    lp.col_cost_ = model.col_cost
    lp.col_lower_ = model.col_lower
    lp.col_upper_ = model.col_upper
    lp.row_lower_ = model.row_lower
    lp.row_upper_ = model.row_upper
    lp.offset_ = model.objective_offset
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = model.matrix.indptr.astype(np.int32)
    lp.a_matrix_.index_ = model.matrix.indices.astype(np.int32)
    lp.a_matrix_.value_ = model.matrix.data
    if model.n_integer:
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous for flag in model.col_integer
        ]
    began = time.perf_counter()
    stop_at = began + options.deadline_s if options.deadline_s is not None else float("inf")
    with _ctrl_c_stops() as interrupted:

        def interrupt(event: highspy.HighsCallbackEvent) -> None:
            if interrupted.is_set() or time.perf_counter() > stop_at:
                event.interrupt()

        h.cbSimplexInterrupt += interrupt
        h.cbIpmInterrupt += interrupt
        h.cbMipInterrupt += interrupt
        h.passModel(lp)
        if start is not None and model.n_integer:
            h.setSolution(model.n_cols, np.arange(model.n_cols, dtype=np.int32), np.asarray(start, dtype=float))
        h.run()
    wall = time.perf_counter() - began
    status = h.getModelStatus()
    status_text = h.modelStatusToString(status).lower()
    info = h.getInfo()
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    x = np.asarray(h.getSolution().col_value) if has_solution else None
    # The objective is recomputed from x: with a MIP start, HiGHS 1.16 has been seen to report the
    # optimum's objective next to the start's x (tests/test_optimizer_solvers.py).
    objective = model.objective(x) if x is not None else float("nan")
    reported = info.objective_function_value
    if start is not None and has_solution and abs(objective - reported) > 1e-6 * (1.0 + abs(reported)):
        cold = solve_highs(model, replace(options, time_limit_s=max(options.time_limit_s - wall, 1.0)))
        cold.wall_s += wall
        cold.message = f"{cold.message} (MIP start discarded: the returned point missed its objective)"
        return cold
    if model.n_integer:
        bound = info.mip_dual_bound
        gap = _relative_gap(objective, bound) if has_solution else float("inf")
    else:
        bound, gap = objective, 0.0
    mapped = {
        highspy.HighsModelStatus.kOptimal: "optimal",
        highspy.HighsModelStatus.kTimeLimit: "time_limit",
        highspy.HighsModelStatus.kInfeasible: "infeasible",
        highspy.HighsModelStatus.kUnbounded: "unbounded",
        highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible",
        highspy.HighsModelStatus.kInterrupt: "time_limit",
    }.get(status, "error")
    return SolveResult("highs", mapped, has_solution, x, objective, bound, gap, wall,
                       message=status_text, **_size(model))


def _gurobi_error(error: Exception) -> SolverUnavailable:
    code = getattr(error, "errno", None)
    if code == 10010:
        return SolverUnavailable(
            "Gurobi refused the model: it exceeds the size-limited pip licence (at most 2,000 variables and "
            "2,000 constraints); use --solver highs or install a full Gurobi licence"
        )
    if code in (10009, 10032):
        return SolverUnavailable(f"Gurobi licence problem (error {code}): {error}")
    return SolverUnavailable(f"Gurobi failed (error {code}): {error}")


def solve_gurobi(model: CanonicalModel, options: SolveOptions, start: np.ndarray | None = None) -> SolveResult:
    """Solve with Gurobi through ``addMVar`` + ``addMConstr`` on the same CSC matrix."""
    try:
        import gurobipy as gp
        from gurobipy import GRB
    except ImportError:
        raise SolverUnavailable("gurobipy is not installed: pip install 'aidc[gurobi]' or use --solver highs") from None
    csr = model.matrix.tocsr()
    try:
        env = gp.Env(empty=True)
        env.setParam("OutputFlag", int(options.verbose))
        env.start()
        g = gp.Model(env=env)
        g.Params.TimeLimit = options.time_limit_s
        g.Params.MIPGap = options.mip_gap
        g.Params.Threads = options.threads
        g.Params.Seed = options.seed
        vtype = np.where(model.col_integer, GRB.INTEGER, GRB.CONTINUOUS)
        lower = np.where(np.isfinite(model.col_lower), model.col_lower, -GRB.INFINITY)
        upper = np.where(np.isfinite(model.col_upper), model.col_upper, GRB.INFINITY)
        var = g.addMVar(model.n_cols, lb=lower, ub=upper, obj=model.col_cost, vtype=vtype)
        g.ObjCon = model.objective_offset
        lo, hi = model.row_lower, model.row_upper
        equal = np.isfinite(lo) & np.isfinite(hi) & (lo == hi)
        for mask, sense, rhs in (
            (equal, "=", lo),
            (~equal & np.isfinite(hi), "<", hi),
            (~equal & np.isfinite(lo), ">", lo),
        ):
            if mask.any():
                g.addMConstr(csr[mask], var, sense, rhs[mask])
        if start is not None:
            var.Start = np.asarray(start, dtype=float)  # type: ignore[assignment]  # gurobipy's stub types Start as float
        began = time.perf_counter()
        g.optimize()
        wall = time.perf_counter() - began
    except gp.GurobiError as error:
        raise _gurobi_error(error) from None
    if g.Status == GRB.INTERRUPTED:  # Ctrl-C: Gurobi stops and returns; the user asked to stop
        raise KeyboardInterrupt
    has_solution = g.SolCount > 0
    x = np.asarray(var.X) if has_solution else None
    objective = g.ObjVal if has_solution else float("nan")
    is_mip = model.n_integer > 0
    bound = g.ObjBound if is_mip else objective
    gap = (g.MIPGap if is_mip else 0.0) if has_solution else float("inf")
    mapped = {GRB.OPTIMAL: "optimal", GRB.TIME_LIMIT: "time_limit", GRB.INFEASIBLE: "infeasible",
              GRB.INF_OR_UNBD: "infeasible", GRB.UNBOUNDED: "unbounded"}.get(g.Status, "error")
    g.dispose()
    env.dispose()
    return SolveResult("gurobi", mapped, has_solution, x, objective, bound, gap, wall,
                       message=f"gurobi status {mapped}", **_size(model))


def solve(model: CanonicalModel, options: SolveOptions | None = None, start: np.ndarray | None = None) -> SolveResult:
    """Solve with the requested backend. ``auto`` tries Gurobi, falling back to HiGHS on any refusal."""
    options = SolveOptions() if options is None else options
    if options.solver == "highs":
        return solve_highs(model, options, start)
    if options.solver == "gurobi":
        return solve_gurobi(model, options, start)
    if options.solver != "auto":
        choices = f"{', '.join(SOLVER_NAMES[:-1])} or {SOLVER_NAMES[-1]}"
        raise ValueError(f"unknown solver {options.solver!r}; choose {choices}")
    try:
        return solve_gurobi(model, options, start)
    except SolverUnavailable as refusal:
        result = solve_highs(model, options, start)
        result.fallback_from = "gurobi"
        result.message = f"{result.message}; gurobi unavailable: {refusal}"
        return result
