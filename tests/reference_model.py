"""Test-only helpers for the optimizer: tiny windows built in Python, a hypothesis strategy for
small random windows, one solve-and-read-back helper, and a *reference model*: the MILP of
SPEC §4 written term by term with gurobipy's modelling API, to cross-check the array builder.

The builders make a real :class:`scenarios.schema.Scenario` (so validation and unit
conversion are exercised) and turn it into a window with the optimizer's own
``window_inputs(scenario, nominal_signals(...))``. Series are given as the window's values, one
per step; they are padded to a daily profile.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hypothesis import strategies as st

from optimizer.accounting import account
from optimizer.matrix import CanonicalModel
from optimizer.model import SECONDS_PER_HOUR, ModelIndex, ModelOptions, build_model, exclusivity_needs
from optimizer.plan import Plan, read_plan
from optimizer.solvers import SolveOptions, SolveResult, solve
from optimizer.window import RunningJobs, WindowInputs, coarsen, window_inputs
from scenarios.arrays import nominal_signals
from scenarios.schema import (
    Battery,
    CarbonPolicy,
    Cooling,
    Generator,
    GridConnection,
    InferenceClass,
    Region,
    RunSettings,
    Scenario,
    Site,
    TrainingJob,
)
from scenarios.series import InlineSeries

RUN_START = pd.Timestamp("2024-03-01T00:00:00Z")
TIGHT = SolveOptions(mip_gap=1e-9)
# objectives of different solves agree to their gaps plus this: what feasibility (~1e-6) and integrality
# (Gurobi 1e-5: a commitment binary at 1e-5 lets a generator run 1e-5 x p_max) tolerances can gain
ABS_USD = 1e-3
HAS_GUROBI = importlib.util.find_spec("gurobipy") is not None
# the skip is for machines without gurobipy; where it is installed every Gurobi test runs
requires_gurobi = pytest.mark.skipif(not HAS_GUROBI, reason="gurobipy is not installed")


# --- tiny windows -------------------------------------------------------------------------------

def profile(values: float | list[float], step_hours: float = 1.0) -> InlineSeries:
    """A daily profile whose first values are ``values`` (the window's steps), padded with the last."""
    values = [float(v) for v in np.atleast_1d(values)]
    per_day = int(round(24.0 / step_hours))
    return InlineSeries(values=values + [values[-1]] * (per_day - len(values)), step_minutes=step_hours * 60.0)


def make_site(
    name: str = "s0", region: str = "r0", *, step_hours: float = 1.0, price: float | list[float] = 50.0,
    export_price: float | list[float] | None = None, carbon_g_per_kwh: float | list[float] = 0.0,
    gpus: int = 1000, throughput: float = 1.0, idle_mw: float = 0.0, capacity_mw: float = 100.0, pue: float = 1.0,
    temperature_c: float | list[float] = 20.0, pue_per_degc: float = 0.0, import_limit_mw: float = 100.0,
    export_limit_mw: float = 0.0, pv_mw: float = 0.0, pv: float | list[float] = 0.0,
    battery: Battery | None = None, generator: Generator | None = None,
) -> Site:
    """One site with a flat-by-default microgrid; PUE = pue + pue_per_degc * (temperature - 20)."""
    return Site(
        name=name, region=region, gpus=gpus, throughput_req_per_s_per_gpu=throughput, idle_power_mw=idle_mw,
        power_capacity_mw=capacity_mw,
        cooling=Cooling(pue_at_reference=pue, reference_temperature_c=20.0, pue_per_degc=pue_per_degc,
                        pue_min=1.0, pue_max=3.0),
        ambient_temperature_c=profile(temperature_c, step_hours), pv_capacity_mw=pv_mw,
        pv_availability=profile(pv, step_hours), battery=battery, generator=generator,
        grid=GridConnection(
            import_limit_mw=import_limit_mw, export_limit_mw=export_limit_mw,
            import_price_usd_per_mwh=profile(price, step_hours),
            export_price_usd_per_mwh=None if export_price is None else profile(export_price, step_hours),
            export_price_fraction=0.5, carbon_intensity_g_per_kwh=profile(carbon_g_per_kwh, step_hours),
        ),
    )


def make_class(name: str = "k0", origin: str = "r0", *, step_hours: float = 1.0, demand: float | list[float] = 0.0,
               latency_limit_ms: float = 50.0, energy_wh: float = 0.5, value_per_1k: float = 1.0,
               penalty_per_1k: float = 0.0) -> InferenceClass:
    return InferenceClass(name=name, origin=origin, latency_limit_ms=latency_limit_ms, energy_per_request_wh=energy_wh,
                          value_usd_per_1k_requests=value_per_1k, unserved_penalty_usd_per_1k_requests=penalty_per_1k,
                          demand_req_per_s=profile(demand, step_hours))


def make_scenario(
    sites: list[Site], *, regions: tuple[str, ...] = ("r0",), latency_ms: dict | None = None,
    classes: list[InferenceClass] = (), jobs: list[TrainingJob] = (), carbon: CarbonPolicy | None = None,
    step_hours: float = 1.0, tail_price: float | None = None,
) -> Scenario:
    """A one-day scenario starting at :data:`RUN_START`; latency defaults to 5 ms everywhere."""
    latency_ms = latency_ms or {r: {s.name: 5.0 for s in sites} for r in regions}
    return Scenario(
        name="tiny", run=RunSettings(start=RUN_START.to_pydatetime(), days=1, plant_tick_minutes=step_hours * 60.0,
                                     control_interval_minutes=step_hours * 60.0, horizon_hours=24.0),
        sites=list(sites), regions=[Region(name=r) for r in regions], latency_ms=latency_ms,
        inference_classes=list(classes), jobs=list(jobs), carbon=carbon or CarbonPolicy(),
        tail_energy_price_usd_per_mwh=tail_price,
    )


def make_window(scenario: Scenario, n_steps: int) -> WindowInputs:
    """The first ``n_steps`` control intervals of the scenario as one window."""
    step_hours = scenario.run.control_interval_minutes / 60.0
    return window_inputs(scenario, nominal_signals(scenario, RUN_START, n_steps, step_hours))


def tiny_window(n_steps: int, step_hours: float = 1.0, **scenario_args: object) -> WindowInputs:
    return make_window(make_scenario(step_hours=step_hours, **scenario_args), n_steps)


# --- solving ------------------------------------------------------------------------------------

@dataclass
class Solved:
    model: CanonicalModel
    index: ModelIndex
    result: SolveResult
    plan: Plan
    kpis: dict[str, float]

    def column(self, block: str) -> np.ndarray:
        """Solution values of one variable block, shaped as the block."""
        return self.result.x[self.model.variable_blocks[block]]


def solve_window(w: WindowInputs, options: ModelOptions | None = None,
                 solve_options: SolveOptions = TIGHT) -> Solved:
    model, index = build_model(w, options)
    result = solve(model, solve_options)
    assert result.has_solution, result.message
    plan = read_plan(w, index, model.variable_blocks, result.x)
    return Solved(model, index, result, plan, account(w, plan))


def within_gap(a: float, b: float, gap: float = 1e-4) -> bool:
    """Two optima of the same problem, each solved to relative gap ``gap``, agree (up to the solvers'
    tolerances: 1e-6 relative, :data:`ABS_USD` absolute)."""
    return abs(a - b) <= 1.01 * max(gap, 1e-6) * max(abs(a), abs(b)) + ABS_USD


# --- random small windows (hypothesis) ----------------------------------------------------------

@st.composite
def small_windows(draw, negative_prices: bool = False, high_export: bool = False,
                  generator_minimum: bool = True) -> WindowInputs:
    """1-3 sites, 1-2 regions, 0-2 classes, 0-3 jobs, 0-2 running jobs, 2-6 steps of 1 h or 30 min.

    Always feasible: facility capacity and import limit cover idle and running load at the highest
    PUE (1.55). ``negative_prices``: import prices may be negative; ``high_export``: export prices
    drawn independently (may exceed import); ``generator_minimum``: generators may have p_min > 0.
    """
    dt = draw(st.sampled_from([1.0, 0.5]))
    T = draw(st.integers(2, 6))
    n_sites, n_regions = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    regions = tuple(f"r{i}" for i in range(n_regions))
    price_low = -40.0 if negative_prices else 0.0

    def series(low: float, high: float) -> list[float]:
        return draw(st.lists(st.floats(low, high).map(lambda v: round(v, 2)), min_size=T, max_size=T))

    sites = []
    for i in range(n_sites):
        idle = draw(st.floats(0.0, 3.0))
        pue = draw(st.floats(1.0, 1.4))
        price = series(price_low, 150.0)
        battery = None
        if draw(st.booleans()):
            low, high = sorted(draw(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=2)))
            battery = Battery(
                energy_capacity_mwh=draw(st.floats(1.0, 20.0)), charge_power_mw=draw(st.floats(0.5, 5.0)),
                discharge_power_mw=draw(st.floats(0.5, 5.0)), charge_efficiency=draw(st.floats(0.8, 1.0)),
                discharge_efficiency=draw(st.floats(0.8, 1.0)), soc_min_fraction=low, soc_max_fraction=high,
                initial_soc_fraction=draw(st.floats(low, high)), degradation_cost_usd_per_mwh=draw(st.floats(0.5, 10)),
                terminal_value_usd_per_mwh=draw(st.none() | st.floats(0.0, 100.0)),
            )
        generator = None
        if draw(st.booleans()):
            p_max = draw(st.floats(1.0, 6.0))
            generator = Generator(
                p_min_mw=draw(st.floats(0.0, p_max)) if generator_minimum else 0.0, p_max_mw=p_max,
                fuel_cost_usd_per_mwh=draw(st.floats(10.0, 150.0)),
                no_load_cost_usd_per_h=draw(st.sampled_from([0.0, 20.0])) if generator_minimum else 0.0,
                emission_factor_t_per_mwh=draw(st.floats(0.0, 0.8)),
            )
        # high_export: drawn on its own (may exceed import); otherwise at most the import price at every step
        export = series(price_low, 150.0) if high_export else [p - draw(st.floats(0.0, 30.0)) for p in price]
        sites.append(make_site(
            f"s{i}", draw(st.sampled_from(regions)), step_hours=dt, price=price, export_price=export,
            carbon_g_per_kwh=series(0.0, 600.0), gpus=draw(st.integers(100, 2000)),
            throughput=draw(st.floats(1.0, 4.0)), idle_mw=idle, pue=pue, temperature_c=series(10.0, 35.0),
            pue_per_degc=0.01, capacity_mw=(idle + 1) * 1.6 + draw(st.floats(0.0, 25.0)),
            import_limit_mw=(idle + 1) * 1.6 + draw(st.floats(0.0, 25.0)),
            export_limit_mw=draw(st.sampled_from([0.0, 3.0])),
            pv_mw=draw(st.sampled_from([0.0, 5.0])), pv=series(0.0, 1.0), battery=battery, generator=generator,
        ))
    latency = {r: {s.name: draw(st.floats(1.0, 60.0)) for s in sites} for r in regions}
    classes = []
    for k in range(draw(st.integers(0, 2))):
        origin = draw(st.sampled_from(regions))
        classes.append(make_class(
            f"k{k}", origin, step_hours=dt, demand=series(0.0, 3000.0),
            latency_limit_ms=min(latency[origin].values()) + draw(st.floats(0.0, 50.0)),
            energy_wh=draw(st.floats(0.1, 1.0)), value_per_1k=draw(st.floats(0.0, 1.0)),
            penalty_per_1k=draw(st.floats(0.0, 1.0)),
        ))
    jobs = []
    for j in range(draw(st.integers(0, 3))):
        duration = draw(st.integers(1, 3))
        release = draw(st.integers(0, T - 1))
        names = [s.name for s in sites]
        jobs.append(TrainingJob(
            name=f"j{j}", gpus=draw(st.integers(50, 1500)), power_mw=draw(st.floats(0.3, 4.0)),
            duration_h=duration * dt, release_h=release * dt,
            deadline_h=(release + duration + draw(st.integers(0, 4))) * dt, value_usd=draw(st.floats(0.0, 2000.0)),
            sites=draw(st.none() | st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True)),
        ))
    carbon = CarbonPolicy(budget_tco2=draw(st.none() | st.floats(0.0, 20.0)), price_usd_per_tco2=draw(st.floats(0, 80)),
                          violation_penalty_usd_per_tco2=draw(st.floats(50.0, 1000.0)))
    scenario = make_scenario(sites, regions=regions, latency_ms=latency, classes=classes, jobs=jobs, carbon=carbon,
                             step_hours=dt, tail_price=draw(st.none() | st.floats(0.0, 200.0)))
    w = make_window(scenario, T)
    n_running = draw(st.integers(0, 2))  # each at most 0.5 MW and 50 GPUs: within the margins above
    running = RunningJobs(
        names=tuple(f"r{i}" for i in range(n_running)),
        site=np.array([draw(st.integers(0, n_sites - 1)) for _ in range(n_running)], dtype=np.int64),
        gpus=np.full(n_running, 50.0),
        power_mw=np.array([draw(st.floats(0.1, 0.5)) for _ in range(n_running)]),
        remaining_steps=np.array([draw(st.integers(1, T + 2)) for _ in range(n_running)], dtype=np.int64),
    )
    return w.with_changes(running=running)


@st.composite
def coarse_windows(draw, **window_options: bool) -> WindowInputs:
    """A :func:`small_windows` window made variable-resolution: its first steps kept, the rest merged
    two or three at a time (:func:`optimizer.window.coarsen`)."""
    w = draw(small_windows(**window_options))
    return coarsen(w, draw(st.integers(1, w.n_steps - 1)), draw(st.integers(2, 3)))


# --- the reference model ------------------------------------------------------------------------

def reference_model(w: WindowInputs, o: ModelOptions | None = None, env: object = None):
    """SPEC §4 term by term in gurobipy (maximise benefit), with the builder's exclusivity decisions.

    Returns the (unsolved) ``gurobipy.Model``. A job covers the steps it runs directly (the
    "straightforward" formulation), so sizes equal the array model's with
    ``formulation="straightforward"`` or on a variable-resolution window, and the "tight" one's less
    its running-sum columns and rows. Step t lasts dt[t] = counts[t] base steps; job times count base
    steps. Fixed workloads and unlimited import are not supported here.
    """
    import gurobipy as gp
    from gurobipy import GRB

    o = o or ModelOptions()
    assert o.fixed_starts is None and o.fixed_served_req_per_s is None
    f, jobs, T, base = w.fleet, w.jobs, w.n_steps, w.step_hours
    S, K, J = f.n_sites, f.n_classes, jobs.n_jobs
    counts = [int(c) for c in w.counts]
    first = [sum(counts[:t]) for t in range(T)]  # first base step of each step
    n_base = sum(counts)
    dt = [c * base for c in counts]
    steps, sites = range(T), range(S)
    grid_needed, battery_needed, _ = exclusivity_needs(w, o)
    m = gp.Model("reference", env=env)

    # training jobs: x[j,s,tau] for eligible s and steps tau starting in [release, deadline - d] (base steps)
    starts = [(j, s, tau) for j in range(J) for s in sites if jobs.eligible[j, s] for tau in steps
              if jobs.release_step[j] <= first[tau] <= jobs.deadline_step[j] - jobs.duration_steps[j]]
    x = m.addVars(starts, vtype=GRB.BINARY, name="x")
    m.addConstrs((x.sum(j, "*", "*") <= 1 for j in range(J)), name="once")

    def share(j, tau, t):
        """Share of step t the run of job j started at step tau fills (1 inside, 0 outside)."""
        begin, end = first[tau], min(first[tau] + jobs.duration_steps[j], n_base)
        return max(0, min(end, first[t] + counts[t]) - max(begin, first[t])) / counts[t]

    def tail_mwh(j, tau):
        return jobs.power_mw[j] * max(first[tau] + jobs.duration_steps[j] - n_base, 0) * base

    busy_gpus, busy_mw = np.zeros((S, T)), np.zeros((S, T))  # running jobs, averaged over each step
    for site, gpus, power, remaining in zip(w.running.site, w.running.gpus, w.running.power_mw,
                                            w.running.remaining_steps, strict=True):
        for t in steps:
            on_steps = max(0, min(remaining, first[t] + counts[t]) - first[t])
            busy_gpus[site, t] += gpus * on_steps / counts[t]
            busy_mw[site, t] += power * on_steps / counts[t]

    # inference on latency-feasible routes (only the home site with routing = "home")
    if o.routing == "home":
        routes = [(k, int(f.home_site[k])) for k in range(K)]
    else:
        routes = [(k, s) for k in range(K) for s in sites if f.route_feasible[k, s]]
    y = m.addVars([(k, s, t) for k, s in routes for t in steps], name="y",
                  ub=[w.demand_req_per_s[k, t] for k, s in routes for t in steps])
    m.addConstrs((y.sum(k, "*", t) <= w.demand_req_per_s[k, t] for k in range(K) for t in steps), name="demand")

    def starts_at(s, t):
        return [(j, tau, share(j, tau, t)) for j, s2, tau in starts if s2 == s and share(j, tau, t) > 0]

    m.addConstrs((gp.quicksum(y[k, s2, t] / f.throughput_req_per_s_per_gpu[s] for k, s2 in routes if s2 == s)
                  + gp.quicksum(jobs.gpus[j] * part * x[j, s, tau] for j, tau, part in starts_at(s, t))
                  <= f.gpus[s] - busy_gpus[s, t] for s in sites for t in steps), name="gpus")
    it_mw = {(s, t): f.idle_power_mw[s] + busy_mw[s, t]
             + gp.quicksum(f.class_energy_mw_per_req_s[k] * y[k, s2, t] for k, s2 in routes if s2 == s)
             + gp.quicksum(jobs.power_mw[j] * part * x[j, s, tau] for j, tau, part in starts_at(s, t))
             for s in sites for t in steps}
    m.addConstrs((w.pue[s, t] * it_mw[s, t] <= f.power_capacity_mw[s] for s in sites for t in steps), name="power")

    # energy side
    available = w.pv_available_mw + w.wind_available_mw if o.renewables else np.zeros((S, T))
    ren = m.addVars(sites, steps, ub=[available[s, t] for s in sites for t in steps], name="ren")
    imp = m.addVars(sites, steps, ub=[f.import_limit_mw[s] for s in sites for t in steps], name="imp")
    export_sites = [s for s in sites if o.export and f.export_limit_mw[s] > 0]
    exp = m.addVars(export_sites, steps, ub=[f.export_limit_mw[s] for s in export_sites for t in steps], name="exp")
    grid_modes = [(s, t) for s in export_sites for t in steps if grid_needed[s, t]]
    z = m.addVars(grid_modes, vtype=GRB.BINARY, name="z")
    m.addConstrs((imp[s, t] <= f.import_limit_mw[s] * z[s, t] for s, t in grid_modes), name="z_imp")
    m.addConstrs((exp[s, t] <= f.export_limit_mw[s] * (1 - z[s, t]) for s, t in grid_modes), name="z_exp")

    bat = [s for s in sites if o.battery and f.battery_energy_mwh[s] > 0]
    ch = m.addVars(bat, steps, ub=[f.battery_charge_mw[s] for s in bat for t in steps], name="ch")
    dis = m.addVars(bat, steps, ub=[f.battery_discharge_mw[s] for s in bat for t in steps], name="dis")
    soc = m.addVars(bat, steps, lb=[f.soc_min_mwh[s] for s in bat for t in steps],
                    ub=[f.soc_max_mwh[s] for s in bat for t in steps], name="soc")
    m.addConstrs((soc[s, t] == (soc[s, t - 1] if t else w.soc_initial_mwh[s])
                  + f.battery_charge_efficiency[s] * dt[t] * ch[s, t]
                  - dt[t] / f.battery_discharge_efficiency[s] * dis[s, t] for s in bat for t in steps), name="soc")
    battery_modes = [(s, t) for s in bat for t in steps if battery_needed[s, t]]
    u = m.addVars(battery_modes, vtype=GRB.BINARY, name="u")
    m.addConstrs((ch[s, t] <= f.battery_charge_mw[s] * u[s, t] for s, t in battery_modes), name="u_ch")
    m.addConstrs((dis[s, t] <= f.battery_discharge_mw[s] * (1 - u[s, t]) for s, t in battery_modes), name="u_dis")

    gens = [s for s in sites if o.generator and f.has_generator[s]]
    gen = m.addVars(gens, steps, ub=[f.generator_max_mw[s] for s in gens for t in steps], name="gen")
    every_binary = o.exclusivity == "always" or o.formulation == "straightforward"
    committed = [s for s in gens if every_binary or f.generator_min_mw[s] > 0 or f.generator_no_load_usd_per_h[s] > 0]
    on = m.addVars(committed, steps, vtype=GRB.BINARY, name="on")
    m.addConstrs((gen[s, t] <= f.generator_max_mw[s] * on[s, t] for s in committed for t in steps), name="gen_max")
    m.addConstrs((gen[s, t] >= f.generator_min_mw[s] * on[s, t] for s in committed for t in steps), name="gen_min")

    m.addConstrs((ren[s, t] + imp[s, t] + (dis[s, t] if s in bat else 0) + (gen[s, t] if s in gens else 0)
                  == w.pue[s, t] * it_mw[s, t] + (ch[s, t] if s in bat else 0) + (exp[s, t] if s in export_sites else 0)
                  for s in sites for t in steps), name="balance")

    emissions = (gp.quicksum(dt[t] * w.carbon_t_per_mwh[s, t] * imp[s, t] for s in sites for t in steps)
                 + gp.quicksum(dt[t] * f.generator_emission_t_per_mwh[s] * gen[s, t] for s in gens for t in steps))
    excess = 0.0
    if w.carbon_budget_tco2 is not None and o.carbon_budget:
        excess = m.addVar(name="excess")
        m.addConstr(emissions - excess <= w.carbon_budget_tco2, name="budget")

    requests = [SECONDS_PER_HOUR * h for h in dt]  # requests per (req/s) in each step
    benefit = (
        gp.quicksum((jobs.value_usd[j] - tail_mwh(j, tau) * w.tail_energy_price_usd_per_mwh[s]) * x[j, s, tau]
                    for j, s, tau in starts)
        + gp.quicksum(f.class_value_usd_per_req[k] * requests[t] * y[k, s, t] for k, s in routes for t in steps)
        - gp.quicksum(f.class_penalty_usd_per_req[k] * requests[t] * (w.demand_req_per_s[k, t] - y.sum(k, "*", t))
                      for k in range(K) for t in steps)
        - gp.quicksum(dt[t] * w.import_price_usd_per_mwh[s, t] * imp[s, t] for s in sites for t in steps)
        + gp.quicksum(dt[t] * w.export_price_usd_per_mwh[s, t] * exp[s, t] for s in export_sites for t in steps)
        - gp.quicksum(dt[t] * f.generator_fuel_usd_per_mwh[s] * gen[s, t] for s in gens for t in steps)
        - gp.quicksum(dt[t] * f.generator_no_load_usd_per_h[s] * on[s, t] for s in committed for t in steps)
        - gp.quicksum(dt[t] * f.battery_degradation_usd_per_mwh[s] * (ch[s, t] + dis[s, t]) for s in bat for t in steps)
        - w.carbon_price_usd_per_tco2 * emissions
        - w.carbon_violation_penalty_usd_per_tco2 * excess
        + gp.quicksum(w.battery_terminal_value_usd_per_mwh[s] * (soc[s, T - 1] - w.soc_initial_mwh[s]) for s in bat)
    )
    m.setObjective(benefit, GRB.MAXIMIZE)
    return m
