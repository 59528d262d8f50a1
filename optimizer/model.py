"""The joint compute-power MILP (SPEC §4), assembled as arrays.

Notation: sites s, classes k, jobs j, steps t = 0..T-1 of length dt hours; feasible routes
r = (k, s) with latency(origin_k, s) <= limit_k; job starts x[j,s,tau] only for eligible sites
and ``release_j <= tau <= min(deadline_j - d_j, T-1)``. ``cover(j,s,tau -> s,t)`` is 1 when a job
started at tau runs at t (tau <= t < tau + d_j).

The builder calls one ``define_*`` function per family; each states its constraint. The model
is a minimisation of ``-benefit``; its objective offset makes ``-objective`` equal the benefit
that :mod:`optimizer.accounting` computes from the read-back decisions. The whole objective,
each term added by the family named on its right::

    max  sum_{j,s,tau} (R_{j,s,tau} - tail_{j,s,tau}) x[j,s,tau]              define_job_starts
       + sum_{r,t} (v_k + pi_k) 3600 dt_t y[r,t] - sum_{k,t} pi_k 3600 dt_t D[k,t]  define_routes
       - sum_{s,t} (c_imp[s,t] + p_CO2 ci[s,t]) dt_t imp[s,t]
       + sum_{e,t} c_exp[e,t] dt_t exp[e,t]                                    define_grid
       - sum_{b,t} c_deg[b] dt_t (ch[b,t] + dis[b,t])
       + sum_b v_term[b] (soc[b,T-1] - soc0[b])                                define_batteries
       - sum_{g,t} ((c_fuel[g] + p_CO2 ef[g]) dt_t gen[g,t] + c_noload[g] dt_t on[g,t])  define_generators
       - c_viol excess                                                         define_carbon_budget

Symbols and the attributes they read (``fleet`` = :class:`scenarios.Fleet`, ``w`` = the window):

====================  ==========================================================
V_j, P_j, g_j, d_j    ``w.jobs.value_usd``, ``.power_mw``, ``.gpus``, ``.duration_steps``
R_{j,s,tau}           V_j, pro rata of the share run inside when the window ends the run (``w.ends_run``);
                      :func:`optimizer.ledger.start_values`
tail_{j,s,tau}        P_j x steps past the window x dt x ``w.tail_energy_price_usd_per_mwh`` (0 when
                      ``w.ends_run``)
v_k, pi_k, D[k,t]     ``fleet.class_value_usd_per_req``, ``.class_penalty_usd_per_req``, ``w.demand_req_per_s``
c_imp, c_exp, ci      ``w.import_price_usd_per_mwh``, ``w.export_price_usd_per_mwh``, ``w.carbon_t_per_mwh``
p_CO2, c_viol         ``w.carbon_price_usd_per_tco2``, ``w.carbon_violation_penalty_usd_per_tco2``
eta_c, eta_d          ``fleet.battery_charge_efficiency``, ``fleet.battery_discharge_efficiency``
c_deg, v_term, soc0   ``fleet.battery_degradation_usd_per_mwh``, ``w.battery_terminal_value_usd_per_mwh``,
                      ``w.soc_initial_mwh``
c_fuel, c_noload, ef  ``fleet.generator_fuel_usd_per_mwh``, ``.generator_no_load_usd_per_h``,
                      ``.generator_emission_t_per_mwh``
L_imp, L_exp          ``fleet.import_limit_mw``, ``fleet.export_limit_mw``
====================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from optimizer.ledger import start_values
from optimizer.matrix import CanonicalModel, LinearModel
from optimizer.window import WindowInputs

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class ModelOptions:
    """Switches for the variants (SPEC §4) and for the formulation."""

    battery: bool = True
    generator: bool = True
    renewables: bool = True
    export: bool = True
    routing: Literal["free", "home"] = "free"
    carbon_budget: bool = True
    fixed_starts: np.ndarray | None = None  # (n, 3) int rows (job, site, step): only these starts, forced
    fixed_served_req_per_s: np.ndarray | None = None  # (K, S, T) routing fixed by a rule
    exclusivity: Literal["auto", "always"] = "auto"  # "always": every exclusivity/commitment binary kept
    # "tight": running-sum job formulation and binaries only where they matter; "straightforward":
    # every start covers its steps directly in each capacity and balance row, and every binary is
    # kept (the formulation the speed-up is measured against)
    formulation: Literal["tight", "straightforward"] = "tight"
    # jobs may start only at base steps that are multiples of this (the plant starts jobs only at
    # control instants; the hindsight bound on the tick grid uses ticks per control interval)
    start_every: int = 1
    # the hindsight bound's relaxation: exclusivity and commitment variables continuous in [0, 1]
    # (their convex hull; within a tick the plant may charge in one phase and discharge in the
    # next, or run its generator for part of the tick, and such tick means lie in the hull only)
    relax_modes: bool = False


@dataclass
class ModelIndex:
    """Where each decision lives in the column vector, plus what was dropped and why."""

    route_class: np.ndarray
    route_site: np.ndarray
    start_job: np.ndarray
    start_site: np.ndarray
    start_step: np.ndarray
    battery_sites: np.ndarray
    generator_sites: np.ndarray
    export_sites: np.ndarray
    generator_on_sites: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # training load terms: column, site, step and job of each (job running at site s in step t) term
    train_col: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    train_site: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    train_step: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    train_job: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    train_share: np.ndarray = field(default_factory=lambda: np.zeros(0))  # share of the step run (1 on uniform grids)
    dropped_binaries: dict[str, str] = field(default_factory=dict)
    kept_binaries: dict[str, int] = field(default_factory=dict)


def _expand_ranges(first: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups g with ranges first[g] .. first[g]+count[g]-1: (group of each item, item value)."""
    group = np.repeat(np.arange(len(count)), count)
    within = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    return group, first[group] + within


def define_job_starts(m: LinearModel, w: WindowInputs, o: ModelOptions, ix: ModelIndex) -> np.ndarray:
    """Job-start binaries x[j,s,tau] and at most one start per job:  sum_{s,tau} x[j,s,tau] <= 1.

    With ``fixed_starts`` only the given (j, s, tau) exist, with x = 1. A start is worth
    :func:`optimizer.ledger.start_values`: in a window ending with the run, its reward pro rata of
    the share run inside; otherwise its full reward less the tail energy past the window,
    ``P_j * (tau + d_j - T) * dt * tail_price_s``. Job times
    count base steps; on a variable-resolution grid a start can only fall on a model step's start.
    """
    jobs = w.jobs
    if o.fixed_starts is not None and len(o.fixed_starts):
        fixed = np.asarray(o.fixed_starts, dtype=np.int64)
        start_job, start_site, start_step = fixed[:, 0], fixed[:, 1], fixed[:, 2]
        lower = 1.0
    elif o.fixed_starts is not None or jobs.n_jobs == 0:
        start_job = start_site = start_step = np.zeros(0, np.int64)
        lower = 0.0
    else:
        offset = w.step_offset
        pair_job, pair_site = np.nonzero(jobs.eligible)
        latest = (jobs.deadline_step - jobs.duration_steps)[pair_job]
        valid = (offset[None, :] >= jobs.release_step[pair_job][:, None]) & (offset[None, :] <= latest[:, None])
        if o.start_every > 1:
            valid &= (offset % o.start_every == 0)[None, :]
        pair, start_step = np.nonzero(valid)  # grouped per (job, site), steps increasing
        start_job, start_site = pair_job[pair], pair_site[pair]
        lower = 0.0
    ix.start_job, ix.start_site, ix.start_step = start_job, start_site, start_step
    reward, tail_cost = start_values(w, start_job, start_site, start_step)
    x = m.add_variables("Job-start", (len(start_job),), lower, 1.0, cost=-(reward - tail_cost), integer=True)
    rows = m.add_constraints("Job-once", (jobs.n_jobs,), upper=1.0)
    m.add_coefficients(rows[start_job], x, 1.0)
    return x


def define_job_running(m: LinearModel, w: WindowInputs, o: ModelOptions, ix: ModelIndex, x: np.ndarray) -> None:
    """Where job j runs at site s in step t, as terms of the capacity and balance rows.

    Tight: a running indicator per (j, s, t) inside the job's possible run, defined by the
    running sum  on[j,s,t] = on[j,s,t-1] + x[j,s,t] - x[j,s,t-d_j]  (on before the first start = 0).
    It is the same polytope as summing the starts that cover t, but each start appears in two
    rows instead of d_j rows of every family: about 5x fewer non-zeros on a 15-min grid. With exact
    durations (``JobBatch.last_step_share``) the running sum covers the whole steps and the start
    enters its last, partial step directly with the share run (all coefficients positive: a first
    version with a -(1 - share) correction on the running indicator met a HiGHS 1.16 presolve that
    returned a wrong optimum and dual bound).
    Straightforward (and on variable-resolution grids): the starts themselves,
    ``cover(j,s,tau -> t) = 1`` for tau <= t < tau + d_j, or the share of a coarse step the run fills.
    """
    T = w.n_steps
    duration = w.jobs.duration_steps[ix.start_job]
    if o.formulation == "straightforward" or not w.is_uniform:
        position, step, share = w.start_coverage(ix.start_job, ix.start_step)
        ix.train_col, ix.train_site, ix.train_step = x[position], ix.start_site[position], step
        ix.train_job, ix.train_share = ix.start_job[position], share
        return
    # exact durations: a start covers ``full`` whole steps by the running sum, then runs ``part`` of
    # the next step (a direct term x * part; every coefficient stays positive)
    shares = w.jobs.last_step_share
    part = np.zeros(len(ix.start_job)) if shares is None else shares[ix.start_job]
    part = np.where(part < 1.0, part, 0.0)
    full = duration - (part > 0)
    keep = full > 0
    start_job, start_site, start_step, xs, full_kept = (
        ix.start_job[keep], ix.start_site[keep], ix.start_step[keep], x[keep], full[keep])
    # starts are grouped per (job, site) in increasing step order (see define_job_starts)
    pair_key = start_job * w.fleet.n_sites + start_site
    first_of_pair = np.r_[True, pair_key[1:] != pair_key[:-1]] if len(pair_key) else np.zeros(0, bool)
    pair_first = np.flatnonzero(first_of_pair)
    pair_count = np.diff(np.r_[pair_first, len(pair_key)])
    pair_job, pair_site = start_job[pair_first], start_site[pair_first]
    pair_start = start_step[pair_first]
    pair_d = full_kept[pair_first]
    pair_last_start = start_step[pair_first + pair_count - 1]  # starts need not be consecutive
    pair_last = np.minimum(pair_last_start + pair_d - 1, T - 1)
    pair_length = pair_last - pair_start + 1
    pair_of_on, on_step = _expand_ranges(pair_start, pair_length)
    on = m.add_variables("Job-running", (len(on_step),), 0.0, 1.0)
    rows = m.add_constraints("Job-running-sum", (len(on_step),), 0.0, 0.0)
    m.add_coefficients(rows, on, 1.0)
    continuing = on_step > pair_start[pair_of_on]  # on[t-1] is the previous column of the same pair
    m.add_coefficients(rows[continuing], on[np.flatnonzero(continuing) - 1], -1.0)
    # x[t] enters row t; x[t] leaves row t + d
    start_pair = np.cumsum(first_of_pair) - 1
    first_on_of_pair = np.r_[0, np.cumsum(pair_length)[:-1]]
    enter_row = first_on_of_pair[start_pair] + (start_step - pair_start[start_pair])
    m.add_coefficients(rows[enter_row], xs, -1.0)
    leave_offset = start_step + full_kept - pair_start[start_pair]
    leaves = leave_offset < pair_length[start_pair]
    m.add_coefficients(rows[first_on_of_pair[start_pair][leaves] + leave_offset[leaves]], xs[leaves], 1.0)
    partial = (part > 0) & (ix.start_step + full < T)
    ix.train_col = np.r_[on, x[partial]]
    ix.train_site = np.r_[pair_site[pair_of_on], ix.start_site[partial]]
    ix.train_step = np.r_[on_step, (ix.start_step + full)[partial]]
    ix.train_job = np.r_[pair_job[pair_of_on], ix.start_job[partial]]
    ix.train_share = np.r_[np.ones(len(on)), part[partial]]


def define_routes(m: LinearModel, w: WindowInputs, o: ModelOptions, ix: ModelIndex) -> np.ndarray:
    """Served inference y[r,t] >= 0 on feasible routes and  sum_s y[k,s,t] <= D[k,t].

    Routes that break the latency limit are never created; with ``routing = "home"`` each class
    has only its nearest feasible site. Unserved demand D - sum_s y is penalised.
    """
    fleet, T = w.fleet, w.n_steps
    feasible = fleet.route_feasible.copy()
    if o.routing == "home":
        feasible[:] = False
        feasible[np.arange(fleet.n_classes), fleet.home_site] = True
    route_class, route_site = np.nonzero(feasible)
    ix.route_class, ix.route_site = route_class, route_site
    demand = w.demand_req_per_s
    requests_per_step = SECONDS_PER_HOUR * w.dt  # (T,)
    gain = (fleet.class_value_usd_per_req + fleet.class_penalty_usd_per_req)[route_class][:, None] * requests_per_step
    if o.fixed_served_req_per_s is not None:
        served = o.fixed_served_req_per_s[route_class, route_site, :]
        y = m.add_variables("Route-served", (len(route_class), T), served, served, cost=-gain)
    else:
        y = m.add_variables("Route-served", (len(route_class), T), 0.0, demand[route_class, :], cost=-gain)
    rows = m.add_constraints("Class-demand", (fleet.n_classes, T), upper=demand)
    m.add_coefficients(rows[route_class, :], y, 1.0)
    m.objective_offset += float((fleet.class_penalty_usd_per_req[:, None] * demand * requests_per_step).sum())
    return y


def define_gpu_capacity(m: LinearModel, w: WindowInputs, ix: ModelIndex, x: np.ndarray, y: np.ndarray) -> None:
    """sum_k y[k,s,t] / throughput_s + sum_{j,tau} g_j cover(j,s,tau->t) x <= G_s - running GPUs[s,t]."""
    fleet = w.fleet
    running_gpus, _ = w.running_load()
    rows = m.add_constraints("Site-gpus", (fleet.n_sites, w.n_steps), upper=fleet.gpus[:, None] - running_gpus)
    m.add_coefficients(rows[ix.route_site, :], y, 1.0 / fleet.throughput_req_per_s_per_gpu[ix.route_site][:, None])
    m.add_coefficients(rows[ix.train_site, ix.train_step], ix.train_col, w.jobs.gpus[ix.train_job] * ix.train_share)


def _it_load_terms(w: WindowInputs, ix: ModelIndex, x: np.ndarray, y: np.ndarray) -> list[tuple]:
    """Facility-power coefficients of the variable IT load: PUE[s,t] * (e_k y + P_j cover x)."""
    fleet = w.fleet
    energy = fleet.class_energy_mw_per_req_s[ix.route_class][:, None]
    site, step = ix.train_site, ix.train_step
    return [
        ((ix.route_site[:, None], np.arange(w.n_steps)[None, :]), y, w.pue[ix.route_site, :] * energy),
        ((site, step), ix.train_col, w.pue[site, step] * w.jobs.power_mw[ix.train_job] * ix.train_share),
    ]


def fixed_facility_load_mw(w: WindowInputs) -> np.ndarray:
    """(S, T) facility MW that does not depend on decisions: PUE * (idle + running jobs)."""
    _, running_power = w.running_load()
    return w.pue * (w.fleet.idle_power_mw[:, None] + running_power)


def define_power_capacity(m: LinearModel, w: WindowInputs, ix: ModelIndex, x: np.ndarray, y: np.ndarray) -> None:
    """PUE[s,t] * (idle_s + running[s,t] + sum_k e_k y[k,s,t] + sum_j P_j cover x) <= capacity_s."""
    fleet = w.fleet
    rows = m.add_constraints("Site-power", (fleet.n_sites, w.n_steps),
                             upper=fleet.power_capacity_mw[:, None] - fixed_facility_load_mw(w))
    for (site, step), cols, values in _it_load_terms(w, ix, x, y):
        m.add_coefficients(rows[site, step], cols, values)


def exclusivity_needs(w: WindowInputs, o: ModelOptions) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Where no-simultaneous-flow binaries can matter, decided from the data.

    * Grid (import and export at once): pays only when export_price > import_price, so a
      binary is kept exactly at those (s, t) (with both limits positive). Elsewhere netting the
      two flows never lowers the benefit (the read-back nets them).
    * Battery (charge and discharge at once burns energy through the losses): netting the two
      flows at (s, t) keeps the battery's net power and leaves more energy stored from t on.
      That energy can be taken out again at no loss at any later step tau -- by charging less
      and buying, burning or using less there (less import, renewables curtailed, less generator
      output above its minimum) -- unless at some tau >= t burning energy pays: the import price
      is negative (importing earns money), or the generator's minimum output exceeds the load
      that is always there (PUE x (idle + running jobs)), or the battery's terminal value is
      negative (energy left at the end costs). So a binary is kept at (s, t) exactly when such a
      tau exists at s, and everywhere when the terminal value is negative.
    Returns (grid_needed (S,T), battery_needed (S,T), reasons for what was dropped).
    """
    fleet = w.fleet
    S, T = fleet.n_sites, w.n_steps
    if o.relax_modes:  # kept everywhere, as continuous z (define_grid, define_batteries): the convex hull
        return np.ones((S, T), bool), np.ones((S, T), bool), {}
    if o.exclusivity == "always" or o.formulation == "straightforward":
        return np.ones((S, T), bool), np.ones((S, T), bool), {}
    # 1e-9 USD/MWh: prices equal up to the rounding of series averaging give no arbitrage worth a binary
    grid = (w.export_price_usd_per_mwh > w.import_price_usd_per_mwh + 1e-9) & (
        (fleet.import_limit_mw > 0) & (fleet.export_limit_mw > 0)
    )[:, None]
    generator_min = np.where(fleet.has_generator & o.generator, fleet.generator_min_mw, 0.0)
    burning_pays = (
        ((w.import_price_usd_per_mwh < 0) & (fleet.import_limit_mw > 0)[:, None])
        | (generator_min[:, None] > fixed_facility_load_mw(w) + 1e-9)
    )
    # "at some step tau >= t": a reversed cumulative or along time
    battery = np.logical_or.accumulate(burning_pays[:, ::-1], axis=1)[:, ::-1]
    battery |= (w.battery_terminal_value_usd_per_mwh < 0)[:, None]
    reasons = {
        "Grid-mode": "export price never above import price at a site that can import and export",
        "Battery-mode": "burning energy never pays: no negative import price, generator minimum within the fixed "
                        "load, terminal value not negative",
    }
    return grid, battery, reasons


def _define_exclusive_flows(
    m: LinearModel, name: str, first: tuple[str, np.ndarray, np.ndarray], second: tuple[str, np.ndarray, np.ndarray],
    integer: bool = True,
) -> np.ndarray:
    """One mode binary z per given pair of flow columns:  a <= L_a z,  b <= L_b (1 - z).

    ``first`` and ``second`` are (label, columns, limits), one entry per binary. ``integer=False``
    keeps z continuous: the convex hull a / L_a + b / L_b <= 1, which the tick means of flows that
    alternate within a tick still satisfy (the hindsight bound's ``relax_modes``)."""
    (first_label, first_cols, first_limit), (second_label, second_cols, second_limit) = first, second
    z = m.add_variables(name, (len(first_cols),), 0.0, 1.0, integer=integer)
    if len(z):
        rows = m.add_constraints(f"{name}-{first_label}", (len(z),), upper=0.0)
        m.add_coefficients(rows, first_cols, 1.0)
        m.add_coefficients(rows, z, -first_limit)
        rows = m.add_constraints(f"{name}-{second_label}", (len(z),), upper=second_limit)
        m.add_coefficients(rows, second_cols, 1.0)
        m.add_coefficients(rows, z, second_limit)
    return z


def define_renewables(m: LinearModel, w: WindowInputs, o: ModelOptions) -> np.ndarray:
    """Renewable power used, curtailment free:  0 <= ren[s,t] <= pv[s,t] + wind[s,t]  (0 without renewables)."""
    renewable = (w.pv_available_mw + w.wind_available_mw) if o.renewables else np.zeros((w.fleet.n_sites, w.n_steps))
    return m.add_variables("Renewable-used", (w.fleet.n_sites, w.n_steps), 0.0, renewable)


def define_grid(
    m: LinearModel, w: WindowInputs, o: ModelOptions, ix: ModelIndex, grid_needed: np.ndarray, dropped_reason: str
) -> tuple[np.ndarray, np.ndarray]:
    """Grid import and export at each site, and where they could coincide one mode binary:

        0 <= imp[s,t] <= L_imp[s],   0 <= exp[e,t] <= L_exp[e]   (export only at sites with L_exp > 0)
        imp <= L_imp z,  exp <= L_exp (1 - z),  z[e,t] in {0, 1}   where ``grid_needed[s,t]``

    Cost per step: (c_imp[s,t] + p_CO2 ci[s,t]) dt imp - c_exp[s,t] dt exp. ``dropped_reason`` is
    recorded when no mode binary is kept. Returns (imp, exp).
    """
    fleet, T = w.fleet, w.n_steps
    dt = w.dt[None, :]  # (1, T) step lengths, hours
    import_limit = fleet.import_limit_mw
    imp = m.add_variables("Grid-import", (fleet.n_sites, T), 0.0, import_limit[:, None],
                          cost=(w.import_price_usd_per_mwh + w.carbon_price_usd_per_tco2 * w.carbon_t_per_mwh) * dt)
    export_sites = np.flatnonzero(fleet.export_limit_mw > 0) if o.export else np.zeros(0, np.int64)
    ix.export_sites = export_sites
    export_limit = np.broadcast_to(fleet.export_limit_mw[export_sites][:, None], (len(export_sites), T))
    if o.relax_modes:  # the hindsight bound: the plant exports only at a non-negative price (Grid.export_cap_mw)
        export_limit = np.where(w.export_price_usd_per_mwh[export_sites] >= 0.0, export_limit, 0.0)
    exp = m.add_variables("Grid-export", (len(export_sites), T), 0.0, export_limit,
                          cost=-w.export_price_usd_per_mwh[export_sites] * dt)
    grid_pairs = np.argwhere(grid_needed[export_sites]) if len(export_sites) else np.zeros((0, 2), np.int64)
    e_row, t = grid_pairs[:, 0], grid_pairs[:, 1]
    site = export_sites[e_row]
    z = _define_exclusive_flows(m, "Grid-mode", ("import", imp[site, t], import_limit[site]),
                                ("export", exp[e_row, t], fleet.export_limit_mw[site]), integer=not o.relax_modes)
    ix.kept_binaries["Grid-mode"] = len(z)
    if len(grid_pairs) == 0:
        ix.dropped_binaries["Grid-mode"] = dropped_reason
    return imp, exp


def define_batteries(
    m: LinearModel, w: WindowInputs, o: ModelOptions, ix: ModelIndex, battery_needed: np.ndarray, dropped_reason: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Battery charge, discharge and state of charge at sites with a battery:

        soc[b,t] = soc[b,t-1] + eta_c dt ch[b,t] - dt / eta_d dis[b,t],   soc[b,-1] = soc0[b]
        soc_min <= soc <= soc_max,   0 <= ch <= P_ch,   0 <= dis <= P_dis
        ch <= P_ch u,  dis <= P_dis (1 - u),  u[b,t] in {0, 1}   where ``battery_needed[s,t]``

    Cost: degradation c_deg dt (ch + dis); the SOC left at the window's end is worth
    v_term (soc[b,T-1] - soc0[b]) (the offset holds the soc0 term). ``dropped_reason`` is recorded
    when no mode binary is kept. Returns (ch, dis, soc).
    """
    fleet, T = w.fleet, w.n_steps
    dt = w.dt[None, :]  # (1, T) step lengths, hours
    battery_sites = np.flatnonzero(fleet.battery_energy_mwh > 0) if o.battery else np.zeros(0, np.int64)
    ix.battery_sites = battery_sites
    B = len(battery_sites)
    degradation = fleet.battery_degradation_usd_per_mwh[battery_sites][:, None] * dt
    ch = m.add_variables("Battery-charge", (B, T), 0.0, fleet.battery_charge_mw[battery_sites][:, None],
                         cost=degradation)
    dis = m.add_variables("Battery-discharge", (B, T), 0.0, fleet.battery_discharge_mw[battery_sites][:, None],
                          cost=degradation)
    terminal_value = w.battery_terminal_value_usd_per_mwh[battery_sites]
    soc_cost = np.zeros((B, T))
    soc_cost[:, -1] = -terminal_value
    soc = m.add_variables("Battery-soc", (B, T), fleet.soc_min_mwh[battery_sites][:, None],
                          fleet.soc_max_mwh[battery_sites][:, None], cost=soc_cost)
    m.objective_offset += float((terminal_value * w.soc_initial_mwh[battery_sites]).sum())
    rhs = np.zeros((B, T))
    rhs[:, 0] = w.soc_initial_mwh[battery_sites]
    rows = m.add_constraints("Battery-soc-balance", (B, T), rhs, rhs)
    m.add_coefficients(rows, soc, 1.0)
    m.add_coefficients(rows[:, 1:], soc[:, :-1], -1.0)
    m.add_coefficients(rows, ch, -fleet.battery_charge_efficiency[battery_sites][:, None] * dt)
    m.add_coefficients(rows, dis, dt / fleet.battery_discharge_efficiency[battery_sites][:, None])
    battery_pairs = np.argwhere(battery_needed[battery_sites]) if B else np.zeros((0, 2), np.int64)
    b, t = battery_pairs[:, 0], battery_pairs[:, 1]
    site = battery_sites[b]
    u = _define_exclusive_flows(m, "Battery-mode", ("charge", ch[b, t], fleet.battery_charge_mw[site]),
                                ("discharge", dis[b, t], fleet.battery_discharge_mw[site]),
                                integer=not o.relax_modes)
    ix.kept_binaries["Battery-mode"] = len(u)
    if len(battery_pairs) == 0:
        ix.dropped_binaries["Battery-mode"] = dropped_reason
    return ch, dis, soc


def define_generators(
    m: LinearModel, w: WindowInputs, o: ModelOptions, ix: ModelIndex
) -> tuple[np.ndarray, np.ndarray]:
    """Generator output and commitment at sites with a generator:

        p_min[g] on[g,t] <= gen[g,t] <= p_max[g] on[g,t],   on[g,t] in {0, 1}

    (0 <= gen <= p_max without the binary when p_min = 0 and there is no no-load cost, unless
    every binary is kept). Cost: (c_fuel + p_CO2 ef) dt gen + c_noload dt on. Returns (gen, on).
    """
    fleet, T = w.fleet, w.n_steps
    dt = w.dt[None, :]  # (1, T) step lengths, hours
    generator_sites = np.flatnonzero(fleet.has_generator) if o.generator else np.zeros(0, np.int64)
    ix.generator_sites = generator_sites
    pmin = fleet.generator_min_mw[generator_sites]
    pmax = fleet.generator_max_mw[generator_sites]
    gen = m.add_variables("Generator-output", (len(generator_sites), T), 0.0, pmax[:, None],
                          cost=(fleet.generator_fuel_usd_per_mwh[generator_sites]
                                + w.carbon_price_usd_per_tco2 * fleet.generator_emission_t_per_mwh[generator_sites]
                                )[:, None] * dt)
    needs_on = (pmin > 0) | (fleet.generator_no_load_usd_per_h[generator_sites] > 0)
    if o.exclusivity == "always" or o.formulation == "straightforward":
        needs_on[:] = True
    on_sites = np.flatnonzero(needs_on)
    ix.generator_on_sites = generator_sites[on_sites]
    on = m.add_variables("Generator-on", (len(on_sites), T), 0.0, 1.0,
                         cost=fleet.generator_no_load_usd_per_h[generator_sites[on_sites]][:, None] * dt,
                         integer=not o.relax_modes)
    if len(on_sites):
        rows = m.add_constraints("Generator-max", (len(on_sites), T), upper=0.0)
        m.add_coefficients(rows, gen[on_sites], 1.0)
        m.add_coefficients(rows, on, -pmax[on_sites][:, None])
        rows = m.add_constraints("Generator-min", (len(on_sites), T), lower=0.0)
        m.add_coefficients(rows, gen[on_sites], 1.0)
        m.add_coefficients(rows, on, -pmin[on_sites][:, None])
    ix.kept_binaries["Generator-on"] = int(on.size)
    if len(generator_sites) and not len(on_sites):
        ix.dropped_binaries["Generator-on"] = "no minimum output and no no-load cost"
    return gen, on


def define_energy_assets(
    m: LinearModel, w: WindowInputs, o: ModelOptions, ix: ModelIndex
) -> dict[str, np.ndarray]:
    """The energy side, one family after the other (:func:`define_renewables`, :func:`define_grid`,
    :func:`define_batteries`, :func:`define_generators`); returns their columns by short name
    (``ren``, ``imp``, ``exp``, ``ch``, ``dis``, ``soc``, ``gen``, ``on``) for the balance rows."""
    grid_needed, battery_needed, reasons = exclusivity_needs(w, o)
    cols: dict[str, np.ndarray] = {"ren": define_renewables(m, w, o)}
    cols["imp"], cols["exp"] = define_grid(m, w, o, ix, grid_needed, reasons.get("Grid-mode", "no export at any site"))
    cols["ch"], cols["dis"], cols["soc"] = define_batteries(m, w, o, ix, battery_needed,
                                                           reasons.get("Battery-mode", "no battery"))
    cols["gen"], cols["on"] = define_generators(m, w, o, ix)
    return cols


def define_nodal_balance(
    m: LinearModel, w: WindowInputs, ix: ModelIndex, x: np.ndarray, y: np.ndarray, cols: dict[str, np.ndarray]
) -> None:
    """ren + gen + dis + imp - ch - exp - PUE (e y + P cover x) = PUE (idle + running) + base   for all (s, t).

    ``base`` is the site's exogenous load (``Site.base_load_mw``), beside IT x PUE.
    """
    S, T = w.fleet.n_sites, w.n_steps
    rhs = fixed_facility_load_mw(w) + w.base_load
    rows = m.add_constraints("Site-balance", (S, T), rhs, rhs)
    m.add_coefficients(rows, cols["ren"], 1.0)
    m.add_coefficients(rows, cols["imp"], 1.0)
    m.add_coefficients(rows[ix.export_sites], cols["exp"], -1.0)
    m.add_coefficients(rows[ix.battery_sites], cols["dis"], 1.0)
    m.add_coefficients(rows[ix.battery_sites], cols["ch"], -1.0)
    m.add_coefficients(rows[ix.generator_sites], cols["gen"], 1.0)
    for (site, step), columns, values in _it_load_terms(w, ix, x, y):
        m.add_coefficients(rows[site, step], columns, -values)


def define_carbon_budget(
    m: LinearModel, w: WindowInputs, o: ModelOptions, ix: ModelIndex, cols: dict[str, np.ndarray]
) -> None:
    """E - excess <= budget, excess >= 0 at the violation penalty (soft: the model is never infeasible),
    with emissions E = dt sum(ci[s,t] imp[s,t]) + dt sum(ef_s gen[s,t]). (The carbon *price* is
    already in the import and generator costs.)"""
    if w.carbon_budget_tco2 is None or not o.carbon_budget:
        return
    dt = w.dt[None, :]
    ef = w.fleet.generator_emission_t_per_mwh[ix.generator_sites][:, None]
    excess = m.add_variables("Carbon-excess", (1,), 0.0, np.inf, cost=w.carbon_violation_penalty_usd_per_tco2)
    row = m.add_constraints("Carbon-budget", (1,), upper=w.carbon_budget_tco2)
    m.add_coefficients(row[0], cols["imp"], w.carbon_t_per_mwh * dt)
    m.add_coefficients(row[0], cols["gen"], np.broadcast_to(ef * dt, cols["gen"].shape))
    m.add_coefficients(row[0], excess, -1.0)


def build_model(w: WindowInputs, options: ModelOptions | None = None) -> tuple[CanonicalModel, ModelIndex]:
    """Assemble the window's MILP from its families; returns the model and its index."""
    o = ModelOptions() if options is None else options
    m = LinearModel()
    empty = np.zeros(0, np.int64)
    ix = ModelIndex(empty, empty, empty, empty, empty, empty, empty, empty)
    x = define_job_starts(m, w, o, ix)
    define_job_running(m, w, o, ix, x)
    y = define_routes(m, w, o, ix)
    define_gpu_capacity(m, w, ix, x, y)
    define_power_capacity(m, w, ix, x, y)
    cols = define_energy_assets(m, w, o, ix)
    define_nodal_balance(m, w, ix, x, y, cols)
    define_carbon_budget(m, w, o, ix, cols)
    return m.finish(), ix
