"""The stochastic MPC: one two-stage MILP over forecast scenarios, first interval shared.

Every interval the controller forecasts every signal as the deterministic MPC does, draws N
joint scenarios of them (:func:`forecasts.scenarios.draw_scenarios`: demand, PV, wind, prices,
carbon intensity and temperature, correlated across lead times, sites and signals), builds the
deterministic window model once per scenario (:func:`optimizer.model.build_model`, each with its
own columns) and solves them as one block-diagonal MILP (the *extensive form* of the two-stage
stochastic program, Birge & Louveaux, *Introduction to Stochastic Programming*, 2011, ch. 3):

    min  (1 − λ) Σ_n p_n L_n + λ CVaR_α(L) + c_viol excess
    s.t. each scenario's window constraints on its own columns x_n
         non-anticipativity: x_n[first interval] = x_0[first interval]  for every n

with ``L_n = c_n'x_n + offset_n = −benefit_n`` the scenario's loss (the deterministic objective on
that scenario's series) and ``p_n`` its probability.

* **First stage** (one value for all scenarios, what the plant is told now): job starts at the
  first step, the routing *shares* of each class (served_n[k, s, 0] = share[k, s] · D_n[k, 0]:
  the plant splits the demand that arrives by shares, and each scenario has its own demand),
  battery charge and discharge, generator output and commitment. **Recourse** (per scenario):
  everything later, and in the first interval the grid import/export and renewable use, which
  the plant does not set but settles as the residual of the balance
  (:func:`simulator.plant.close_balance`).
* **Carbon budget** (``budget``): ``expected`` (default) — the window's paced budget limits the
  *expected* emissions, ``Σ_n p_n E_n − excess ≤ B``, one soft excess at the violation penalty;
  ``scenario`` — each scenario keeps its own soft budget row and excess, so the program pays the
  *expected excess* ``Σ_n p_n c_viol (E_n − B)⁺`` (an integrated chance constraint: it limits how
  far, weighted by probability, the budget is broken, not only its mean).
* **Risk** (``risk``): ``neutral`` — expected loss; ``cvar`` — ``(1 − λ)·E[L] + λ·CVaR_α(L)`` in the
  linear form of Rockafellar & Uryasev (2000): ``CVaR_α = min_η η + Σ_n p_n u_n / (1 − α)``,
  ``u_n ≥ L_n − η``, ``u_n ≥ 0`` (the mean loss of the worst 1 − α of the scenarios).

Identical scenarios are merged first (their probabilities summed), so zero forecast error gives
the deterministic MPC's model itself. The solve uses the deterministic MPC's method (LP
relax-and-fix with HiGHS), the shared first-interval starts kept whole in its restrictions
(:func:`optimizer.heuristic.tie_restrictions`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from forecasts import Forecaster
from forecasts.plugin import UserCodeFailed, is_users_class
from forecasts.scenarios import SCENARIO_SOURCES, ScenarioSet, draw_scenarios, merge_duplicates
from optimizer.control import Observation, Setpoints, derived_export_price, refuse_non_finite
from optimizer.heuristic import solve_window
from optimizer.matrix import CanonicalModel
from optimizer.model import ModelIndex, ModelOptions, build_model
from optimizer.mpc import MPCController, WindowPlan
from optimizer.plan import Plan, read_plan
from optimizer.solvers import SolveOptions, SolveResult
from optimizer.variants import InfeasibleWindow
from optimizer.window import WindowInputs
from scenarios.arrays import SIGNALS
from scenarios.timebase import whole_steps


@dataclass(frozen=True)
class StochasticOptions:
    """Settings of the stochastic MPC (written ``mpc-stochastic:scenarios=10,risk=cvar,...``; the
    controller registry, :mod:`simulator.controllers`, parses them).

    ``scenarios``: how many are drawn (N); ``source``: ``auto``/``model``/``quantiles``
    (:func:`forecasts.scenarios.draw_scenarios`); ``risk``: ``neutral`` or ``cvar``;
    ``cvar_weight`` λ in [0, 1] and ``cvar_alpha`` α in [0, 1) of the CVaR term
    (α = 0: the plain expectation); ``budget``:
    ``expected`` or ``scenario`` (see the module docstring); ``recourse``: ``lp`` relaxes the
    integrality of every decision after the first interval (the first interval's job starts and
    generator commitments stay binary), ``mip`` keeps it; ``recourse_step_hours``: the scenarios'
    steps after the MPC's ``fine_hours`` (0 = the MPC's own grid). Both apply only when two or more
    distinct scenarios are left; ``merge``: merge identical scenarios (off only for ablations:
    ``source=point,merge=false`` keeps N copies of the point forecast, so the approximations of
    ``recourse`` and ``recourse_step_hours`` are measured without any scenario spread)."""

    scenarios: int = 10
    source: str = "auto"
    risk: Literal["neutral", "cvar"] = "neutral"
    cvar_weight: float = 0.5
    cvar_alpha: float = 0.9
    budget: Literal["expected", "scenario"] = "expected"
    recourse: Literal["lp", "mip"] = "lp"
    recourse_step_hours: float = 3.0
    merge: bool = True

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.scenarios <= 200:
            problems.append(f"scenarios must be a whole number in [1, 200], got {self.scenarios}")
        if self.source not in SCENARIO_SOURCES:
            problems.append(f"source must be one of {'|'.join(SCENARIO_SOURCES)}, got {self.source!r}")
        if self.risk not in ("neutral", "cvar"):
            problems.append(f"risk must be neutral or cvar, got {self.risk!r}")
        if not 0.0 <= self.cvar_weight <= 1.0:
            problems.append(f"cvar_weight must lie in [0, 1], got {self.cvar_weight:g}")
        if not 0.0 <= self.cvar_alpha < 1.0:
            problems.append(f"cvar_alpha must lie in [0, 1), got {self.cvar_alpha:g}")
        if self.budget not in ("expected", "scenario"):
            problems.append(f"budget must be expected or scenario, got {self.budget!r}")
        if self.recourse not in ("lp", "mip"):
            problems.append(f"recourse must be lp or mip, got {self.recourse!r}")
        if not self.recourse_step_hours >= 0:
            problems.append(f"recourse_step_hours must be 0 (control resolution) or positive, got "
                            f"{self.recourse_step_hours:g}")
        if problems:
            raise ValueError("mpc-stochastic: " + "; ".join(problems))


@dataclass
class StochasticModel:
    """The extensive form over N scenario windows and where everything lives in it.

    ``offsets[n]``: first column of scenario n's block; ``indexes[n]``/``blocks[n]``: its model
    index and variable blocks (global column numbers); ``links`` (L, 2): column pairs held equal
    by the non-anticipativity rows; ``first_stage[name]`` (N, m): the first-interval columns of
    each scenario, family by family; ``shares`` (R,): the shared routing-share columns;
    ``carbon_excess``: the column of the expected budget's excess (empty without one);
    ``loss_matrix`` (N, cols) and ``loss_offset`` (N,): each scenario's loss is ``loss_matrix @ x + loss_offset``;
    ``tied_starts`` (first-interval starts, N): positions in the Job-start block of one decision."""

    model: CanonicalModel
    index: ModelIndex
    indexes: list[ModelIndex]
    blocks: list[dict[str, np.ndarray]]
    offsets: np.ndarray
    probability: np.ndarray
    links: np.ndarray
    first_stage: dict[str, np.ndarray]
    shares: np.ndarray
    tied_starts: np.ndarray
    loss_matrix: sp.csr_matrix
    loss_offset: np.ndarray
    carbon_excess: np.ndarray

    def plans(self, windows: list[WindowInputs], x: np.ndarray) -> list[Plan]:
        """Each scenario's plan read from a solution ``x``."""
        return [read_plan(w, ix, blocks, x) for w, ix, blocks in zip(windows, self.indexes, self.blocks, strict=True)]

    def scenario_losses(self, x: np.ndarray) -> np.ndarray:
        """(N,) each scenario's loss L_n = −benefit_n (its own objective, budget excess aside)."""
        return np.asarray(self.loss_matrix @ x) + self.loss_offset


def _first_interval_columns(m: CanonicalModel, ix: ModelIndex) -> dict[str, np.ndarray]:
    """The first-stage columns of one scenario model, by family (local column numbers)."""
    starts = m.variable_blocks["Job-start"]
    return {
        "Job-start": starts[ix.start_step == 0],
        "Battery-charge": m.variable_blocks["Battery-charge"][:, 0],
        "Battery-discharge": m.variable_blocks["Battery-discharge"][:, 0],
        "Generator-output": m.variable_blocks["Generator-output"][:, 0],
        "Generator-on": m.variable_blocks["Generator-on"][:, 0],
    }


def build_stochastic_model(
    windows: list[WindowInputs], probability: np.ndarray, options: StochasticOptions | None = None
) -> StochasticModel:
    """Assemble the extensive form of the scenario windows (see the module docstring).

    ``windows`` share the fleet, the jobs, the state and the grid of steps, and differ only in their
    series; ``probability`` (N,) sums to 1. Raises ValueError when the windows do not fit together.
    """
    o = StochasticOptions() if options is None else options
    p = np.asarray(probability, dtype=float)
    if len(windows) != len(p) or not len(windows) or abs(p.sum() - 1.0) > 1e-9:
        raise ValueError("build_stochastic_model needs one probability per window, summing to 1")
    n_scen = len(windows)
    # one scenario: the deterministic window model itself (its own budget row; no shares, no CVaR)
    single = n_scen == 1
    model_options = ModelOptions(carbon_budget=single or o.budget == "scenario")
    built = [build_model(w, model_options) for w in windows]
    first = built[0][1]
    for _, ix in built[1:]:
        if not (np.array_equal(ix.start_job, first.start_job) and np.array_equal(ix.start_step, first.start_step)
                and np.array_equal(ix.start_site, first.start_site)):
            raise ValueError("scenario windows must have the same jobs and grid of steps")
    sizes = np.array([m.n_cols for m, _ in built])
    offsets = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    matrices: list[sp.spmatrix] = [m.matrix for m, _ in built]
    cost = [p[n] * m.col_cost for n, (m, _) in enumerate(built)]
    lower = [m.col_lower for m, _ in built]
    upper = [m.col_upper for m, _ in built]
    integer = [m.col_integer for m, _ in built]
    row_lower = [m.row_lower for m, _ in built]
    row_upper = [m.row_upper for m, _ in built]
    offset = float(sum(p[n] * m.objective_offset for n, (m, _) in enumerate(built)))
    n_cols = int(sizes.sum())
    extra_rows: list[tuple[np.ndarray, np.ndarray, float, float]] = []  # (cols, values, lower, upper) per row

    def add_columns(count: int, lo: float, hi: float, c: float | np.ndarray, is_int: bool = False) -> np.ndarray:
        nonlocal n_cols
        cols = np.arange(n_cols, n_cols + count)
        lower.append(np.full(count, lo))
        upper.append(np.full(count, hi))
        cost.append(np.broadcast_to(np.asarray(c, dtype=float), (count,)).copy())
        integer.append(np.full(count, is_int))
        n_cols += count
        return cols

    # non-anticipativity: first-interval set-points equal to scenario 0's
    first_stage: dict[str, np.ndarray] = {}
    local = [_first_interval_columns(m, ix) for m, ix in built]
    links = []
    for name in local[0]:
        stacked = np.stack([local[n][name] + offsets[n] for n in range(n_scen)])  # (N, m)
        first_stage[name] = stacked
        for n in range(1, n_scen):
            links.append(np.stack([stacked[0], stacked[n]], axis=1))
    link_pairs = np.concatenate(links) if links else np.zeros((0, 2), np.int64)
    for a, b in link_pairs:
        extra_rows.append((np.array([a, b]), np.array([1.0, -1.0]), 0.0, 0.0))
    # routing: served_n[r, 0] = share[r] * D_n[k_r, 0]
    route_class = first.route_class
    shares = add_columns(0 if single else len(route_class), 0.0, 1.0, 0.0)
    route_cols = []
    for n, (m, _) in enumerate(built if not single else ()):
        served0 = m.variable_blocks["Route-served"][:, 0] + offsets[n]
        route_cols.append(served0)
        demand0 = windows[n].demand_req_per_s[route_class, 0]
        for r in range(len(route_class)):
            extra_rows.append((np.array([served0[r], shares[r]]), np.array([1.0, -demand0[r]]), 0.0, 0.0))
    first_stage["Route-served"] = np.stack(route_cols) if route_cols else (
        built[0][0].variable_blocks["Route-served"][:, 0][None, :])
    # carbon budget on the expected emissions
    budget = windows[0].carbon_budget_tco2
    excess = np.zeros(0, np.int64)
    if o.budget == "expected" and budget is not None and not single:
        excess = add_columns(1, 0.0, np.inf, windows[0].carbon_violation_penalty_usd_per_tco2)
        cols_parts, vals_parts = [excess], [np.array([-1.0])]
        for n, (m, ix) in enumerate(built):
            w = windows[n]
            dt = w.dt[None, :]
            cols_parts.append(m.variable_blocks["Grid-import"].ravel() + offsets[n])
            vals_parts.append((p[n] * w.carbon_t_per_mwh * dt).ravel())
            gen = m.variable_blocks["Generator-output"]
            ef = w.fleet.generator_emission_t_per_mwh[ix.generator_sites][:, None]
            cols_parts.append(gen.ravel() + offsets[n])
            vals_parts.append(np.broadcast_to(p[n] * ef * dt, gen.shape).ravel())
        extra_rows.append((np.concatenate(cols_parts), np.concatenate(vals_parts), -np.inf, float(budget)))
    # scenario losses (own objective only), for CVaR and for reporting
    loss_cols = [np.arange(sizes[n]) + offsets[n] for n in range(n_scen)]
    loss_vals = [m.col_cost for m, _ in built]
    scenario_offsets = [m.objective_offset for m, _ in built]
    if o.risk == "cvar" and o.cvar_weight > 0 and not single:
        weight, alpha = o.cvar_weight, o.cvar_alpha
        for n in range(n_scen):
            cost[n] = cost[n] * (1.0 - weight)
        offset *= 1.0 - weight
        eta = add_columns(1, -np.inf, np.inf, weight)
        u = add_columns(n_scen, 0.0, np.inf, weight * p / (1.0 - alpha))
        for n in range(n_scen):
            nz = loss_vals[n] != 0
            extra_rows.append((np.r_[loss_cols[n][nz], eta, u[n]], np.r_[loss_vals[n][nz], -1.0, -1.0],
                               -np.inf, -scenario_offsets[n]))
    if o.recourse == "lp" and n_scen > 1:
        first_integer = np.concatenate([first_stage["Job-start"].ravel(), first_stage["Generator-on"].ravel()])
        for n in range(n_scen):
            keep = np.zeros(sizes[n], bool)
            mine = (first_integer >= offsets[n]) & (first_integer < offsets[n] + sizes[n])
            keep[first_integer[mine] - offsets[n]] = True
            integer[n] = integer[n] & keep
    # assemble
    base = sp.block_diag(matrices, format="csr")
    base.resize((base.shape[0], n_cols))
    rows_i, cols_i, vals_i, lo_r, hi_r = [], [], [], [], []
    for i, (cols, vals, lo, hi) in enumerate(extra_rows):
        rows_i.append(np.full(len(cols), i))
        cols_i.append(cols)
        vals_i.append(vals)
        lo_r.append(lo)
        hi_r.append(hi)
    extra = sp.csr_matrix(
        (np.concatenate(vals_i) if vals_i else np.zeros(0),
         (np.concatenate(rows_i) if rows_i else np.zeros(0, np.int64),
          np.concatenate(cols_i) if cols_i else np.zeros(0, np.int64))),
        shape=(len(extra_rows), n_cols))
    matrix = sp.vstack([base, extra], format="csc")
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    variable_blocks = {name: np.concatenate([m.variable_blocks[name].ravel() + offsets[n]
                                             for n, (m, _) in enumerate(built)])
                       for name in built[0][0].variable_blocks}
    row_blocks = {"Non-anticipativity": np.arange(len(link_pairs)) + base.shape[0]}
    model = CanonicalModel(
        matrix=matrix, col_lower=np.concatenate(lower), col_upper=np.concatenate(upper),
        col_cost=np.concatenate(cost), col_integer=np.concatenate(integer),
        row_lower=np.r_[np.concatenate(row_lower), np.array(lo_r, dtype=float)],
        row_upper=np.r_[np.concatenate(row_upper), np.array(hi_r, dtype=float)],
        objective_offset=offset, variable_blocks=variable_blocks, row_blocks=row_blocks,
    )
    # the combined index the relax-and-fix heuristic groups starts by: one job per (scenario, job)
    n_jobs = max(windows[0].jobs.n_jobs, 1)
    empty = np.zeros(0, np.int64)
    index = ModelIndex(empty, empty, np.concatenate([ix.start_job + n * n_jobs for n, (_, ix) in enumerate(built)]),
                       empty, empty, empty, empty, empty)
    n_starts = len(first.start_job)
    first_positions = np.flatnonzero(first.start_step == 0)
    tied = first_positions[:, None] + n_starts * np.arange(n_scen)[None, :]  # (first-step starts, N)
    blocks = [{name: cols + offsets[n] for name, cols in m.variable_blocks.items()} for n, (m, _) in enumerate(built)]
    loss_matrix = sp.csr_matrix(
        (np.concatenate(loss_vals), (np.repeat(np.arange(n_scen), sizes), np.concatenate(loss_cols))),
        shape=(n_scen, n_cols))
    return StochasticModel(model, index, [ix for _, ix in built], blocks, offsets, p, link_pairs, first_stage,
                           shares, tied, loss_matrix, np.array(scenario_offsets), excess)


def solve_stochastic(
    windows: list[WindowInputs], probability: np.ndarray, options: StochasticOptions | None = None,
    solve_options: SolveOptions | None = None,
) -> tuple[StochasticModel, SolveResult, list[Plan]]:
    """Build and solve the extensive form; returns (the model, the solve, each scenario's plan).
    Raises :class:`InfeasibleWindow` when the solver finds no solution."""
    sm = build_stochastic_model(windows, probability, options)
    result, plans = solve_model(sm, windows, solve_options or SolveOptions())
    return sm, result, plans


def solve_model(
    sm: StochasticModel, windows: list[WindowInputs], solve_options: SolveOptions
) -> tuple[SolveResult, list[Plan]]:
    """Solve a built extensive form with the deterministic MPC's method (relax-and-fix with HiGHS,
    the shared first-interval starts kept whole); returns (the solve, each scenario's plan).
    Raises :class:`InfeasibleWindow` when the solver finds no solution."""
    result = solve_window(sm.model, sm.index, solve_options, tied=sm.tied_starts)
    if result.x is None:
        raise InfeasibleWindow(f"mpc-stochastic: the solver found no solution (status {result.status})")
    return result, sm.plans(windows, result.x)


class StochasticMPCController(MPCController):
    """Rolling-horizon two-stage stochastic MILP over forecast scenarios (module docstring)."""

    def __init__(self, forecaster: Forecaster, options: StochasticOptions | None = None, seed: int = 0,
                 **mpc_options: object) -> None:
        """``seed`` keys the scenario streams (pass the run's seed); ``mpc_options`` are
        :class:`~optimizer.mpc.MPCController`'s (horizon, solve options, resolution)."""
        super().__init__(forecaster, variant="joint", **mpc_options)  # type: ignore[arg-type]
        self.options = StochasticOptions() if options is None else options
        self.seed = int(seed)
        self.name = "mpc-stochastic"
        self._expected_import: np.ndarray | None = None
        #: decisions whose quantile scenarios took the point forecast where a quantile was NaN
        self.point_filled_decisions = 0
        self._note: str | None = None

    def config(self) -> dict[str, object]:
        o = self.options
        return {**super().config(), "name": self.name, "scenarios": o.scenarios, "scenario_source": o.source,
                "risk": o.risk, "cvar_weight": o.cvar_weight, "cvar_alpha": o.cvar_alpha, "budget": o.budget,
                "recourse": o.recourse, "recourse_step_hours": o.recourse_step_hours, "merge": o.merge,
                "scenario_seed": self.seed, "point_filled_decisions": self.point_filled_decisions}

    def scenario_set(self, observation: Observation, steps: int) -> ScenarioSet:
        """The forecasts of every signal over ``steps`` intervals and N scenarios around them
        (duplicates merged); a contractual export price follows each scenario's import price."""
        step = pd.Timedelta(hours=observation.interval_h)
        forecasts = {
            signal: self.forecaster.forecast(signal, observation.history[signal], observation.time, step, steps)
            for signal in SIGNALS
        }
        point = {signal: f.values for signal, f in forecasts.items()}
        # as the MPC: a contractual export price is derived first (its own forecast is not used)
        point["export_price"] = derived_export_price(self.scenario, point["import_price"], point["export_price"])
        refuse_non_finite(self.forecaster, point)
        try:
            drawn = draw_scenarios(self.forecaster, forecasts, self.options.scenarios, seed=self.seed,
                                   source=self.options.source)
        except ValueError as error:  # a user's forecaster without the quantiles source=quantiles needs
            if not is_users_class(self.forecaster):
                raise
            raise UserCodeFailed(f"mpc-stochastic: {error}") from None
        if drawn.filled:
            self.point_filled_decisions += 1
            if self.point_filled_decisions == 1 and self.options.source == "quantiles":
                self._note = (f"source=quantiles: {drawn.filled} scenario values took the point forecast of "
                              f"{self.forecaster.spec!r}, whose quantiles were NaN there (first decision; the count "
                              "of such decisions is point_filled_decisions in the manifest)")
        for path in drawn.paths:
            path["export_price"] = derived_export_price(self.scenario, path["import_price"], path["export_price"])
        return merge_duplicates(drawn) if self.options.merge else drawn

    def scenario_windows(self, observation: Observation) -> tuple[list[WindowInputs], np.ndarray]:
        """One window per (merged) scenario and the scenarios' probabilities."""
        steps = self.window_steps(observation)
        drawn = self.scenario_set(observation, steps)
        factor = None
        if drawn.n_scenarios > 1 and self.options.recourse_step_hours > 0:
            factor = max(self._coarse_factor(), whole_steps(self.options.recourse_step_hours, observation.interval_h))
        windows = [self.window_from_signals(observation, path, steps, factor) for path in drawn.paths]
        return windows, drawn.probability

    def plan_window(self, observation: Observation) -> WindowPlan:
        """Scenario windows, their extensive form and its solve; the plan returned is scenario 0's
        (its first interval is every scenario's). Raises :class:`InfeasibleWindow` without a plan."""
        began = time.perf_counter()
        windows, probability = self.scenario_windows(observation)
        sm = build_stochastic_model(windows, probability, self.options)
        built = time.perf_counter() - began
        result, plans = solve_model(sm, windows, self.solve_options)
        self._expected_import = np.einsum("n,ns->s", probability, np.array([p.import_mw[:, 0] for p in plans]))
        return WindowPlan(windows[0], plans[0], result, built, {"scenarios": len(windows)})

    def decide(self, observation: Observation) -> Setpoints:
        """The MPC's decision; the grid import set-point (followed by the plant only where importing
        pays) is the scenarios' expected first-interval import, as import is recourse here."""
        self._expected_import = None
        self._note = None
        setpoints = super().decide(observation)
        if self._note:
            setpoints.log["scenario_note"] = self._note
        if self._expected_import is not None and setpoints.log.get("fallback") == "":
            setpoints.import_mw = self._expected_import
        return setpoints
