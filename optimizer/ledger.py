"""The ledger: the one definition of every benefit term and of emissions, for plans and for runs.

Both accountings -- :func:`optimizer.accounting.account` (a plan over a window) and
:func:`simulator.accounting.realised_kpis` (a realised run from its tick records) -- reduce what
they value to the same :class:`Flows` on their own time grid and call :func:`ledger`; the MILP's
objective (:mod:`optimizer.model`) values job starts with :func:`start_values`. So a term is
written once::

    benefit = job rewards + inference value - unserved penalty - import cost + export revenue
              - fuel and no-load cost - battery degradation - carbon price x emissions
              - budget-violation penalty - tail energy of started jobs + terminal battery value

    emissions = sum(ci x import x dt) + sum(ef x generation x dt)   [tCO2]

**The run's end (one convention everywhere).** A run -- or a window that ends where the run
ends (the offline study, the hindsight bound, the MPC's last windows) -- is valued over its span
only: energy, cost and emissions after the end are outside it, and a training job still running
at the end earns its reward *pro rata*, ``value x (time run inside the span) / duration``
(:func:`reward_share`). Starting a job in the last hour therefore earns an hour's share of its
reward for an hour's energy, exactly as it would in the middle of the run, and a run's benefit
is additive over time (the first day of a two-day run is valued like a one-day run). Only a
window that ends *before* the run's end (an MPC window mid-run) values a started job at its full
reward less its energy past the window at the tail price: that energy will be bought later in
the same run. The battery's state of charge at the end is valued at the terminal value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.window import WindowInputs

BENEFIT_PARTS = (
    "job_reward_usd", "inference_value_usd", "unserved_penalty_usd", "import_cost_usd", "export_revenue_usd",
    "fuel_cost_usd", "battery_degradation_usd", "carbon_cost_usd", "budget_penalty_usd", "tail_energy_cost_usd",
    "battery_terminal_value_usd",
)
COST_PARTS = frozenset({
    "unserved_penalty_usd", "import_cost_usd", "fuel_cost_usd", "battery_degradation_usd", "carbon_cost_usd",
    "budget_penalty_usd", "tail_energy_cost_usd",
})


def reward_share(start_h: np.ndarray, duration_h: np.ndarray, end_h: float) -> np.ndarray:
    """Share of each started job's reward earned inside a span ending at ``end_h`` (the run-end
    convention): ``clip((end_h - start_h) / duration_h, 0, 1)``; 1 for a job that finishes inside.
    Shapes (n,); times in hours on one clock."""
    start = np.asarray(start_h, dtype=float)
    duration = np.maximum(np.asarray(duration_h, dtype=float), 1e-12)
    return np.clip((end_h - start) / duration, 0.0, 1.0)


def start_values(
    w: WindowInputs, start_job: np.ndarray, start_site: np.ndarray, start_step: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(reward USD, tail energy cost USD), shapes (n,), of starting job ``start_job[i]`` at site
    ``start_site[i]`` in model step ``start_step[i]`` of window ``w``.

    A window that ends with the run (``w.ends_run``) prorates the reward by the share of the job's
    exact duration run inside the window and charges no tail; any other window earns the full
    reward and charges the energy past its end, ``P_j x hours past the end x tail price_s``.
    """
    jobs = w.jobs
    begin = w.step_offset[start_step]
    duration = w.jobs.exact_duration_steps[start_job]
    value = jobs.value_usd[start_job]
    if w.ends_run:
        return value * reward_share(begin, duration, float(w.n_base_steps)), np.zeros(len(start_job))
    past = np.maximum(begin + duration - w.n_base_steps, 0.0)
    return value, jobs.power_mw[start_job] * past * w.step_hours * w.tail_energy_price_usd_per_mwh[start_site]


@dataclass(frozen=True)
class Prices:
    """The static valuation of a fleet: shapes (K,) per inference class, (S,) per site."""

    value_usd_per_req: np.ndarray
    penalty_usd_per_req: np.ndarray
    fuel_usd_per_mwh: np.ndarray
    no_load_usd_per_h: np.ndarray
    emission_t_per_mwh: np.ndarray
    degradation_usd_per_mwh: np.ndarray
    battery_present: np.ndarray  # bool
    terminal_value_usd_per_mwh: np.ndarray
    carbon_price_usd_per_tco2: float
    budget_tco2: float | None
    violation_penalty_usd_per_tco2: float


@dataclass(frozen=True)
class Flows:
    """What a plan or a run did on its time grid: (S, T) rates in MW, ``dt_h`` (T,) step lengths
    in hours (or a scalar), per-class request totals (K,), and the job terms already summed."""

    dt_h: np.ndarray | float
    import_mw: np.ndarray
    export_mw: np.ndarray
    generator_mw: np.ndarray
    generator_on_h: np.ndarray  # (S, T) hours the generator was on in each step
    charge_mw: np.ndarray
    discharge_mw: np.ndarray
    import_price_usd_per_mwh: np.ndarray
    export_price_usd_per_mwh: np.ndarray
    carbon_t_per_mwh: np.ndarray
    served_requests: np.ndarray  # (K,) requests served
    dropped_requests: np.ndarray  # (K,) requests not served
    soc_initial_mwh: np.ndarray  # (S,)
    soc_end_mwh: np.ndarray  # (S,)
    job_reward_usd: float
    tail_energy_cost_usd: float


def emissions_tco2(flows: Flows, prices: Prices) -> tuple[float, float]:
    """(grid import, generators) emissions in tCO2: ``sum(ci x import x dt)``, ``sum(ef x gen x dt)``."""
    dt = np.asarray(flows.dt_h, dtype=float)
    from_import = float((flows.carbon_t_per_mwh * flows.import_mw * dt).sum())
    from_generators = float((prices.emission_t_per_mwh[:, None] * flows.generator_mw * dt).sum())
    return from_import, from_generators


def ledger(flows: Flows, prices: Prices) -> dict[str, float]:
    """``benefit_usd``, its :data:`BENEFIT_PARTS` (costs as positive numbers) and the emissions
    (``emissions_tco2``, ``emissions_import_tco2``, ``emissions_generator_tco2``), USD and tCO2."""
    dt = np.asarray(flows.dt_h, dtype=float)
    from_import, from_generators = emissions_tco2(flows, prices)
    emissions = from_import + from_generators
    budget = prices.budget_tco2
    present = np.asarray(prices.battery_present, dtype=bool)
    parts = {
        "job_reward_usd": float(flows.job_reward_usd),
        "inference_value_usd": float((prices.value_usd_per_req * flows.served_requests).sum()),
        "unserved_penalty_usd": float((prices.penalty_usd_per_req * flows.dropped_requests).sum()),
        "import_cost_usd": float((flows.import_price_usd_per_mwh * flows.import_mw * dt).sum()),
        "export_revenue_usd": float((flows.export_price_usd_per_mwh * flows.export_mw * dt).sum()),
        "fuel_cost_usd": float((prices.fuel_usd_per_mwh[:, None] * flows.generator_mw * dt).sum()
                               + (prices.no_load_usd_per_h[:, None] * flows.generator_on_h).sum()),
        "battery_degradation_usd": float(
            (prices.degradation_usd_per_mwh[:, None] * (flows.charge_mw + flows.discharge_mw) * dt).sum()),
        "carbon_cost_usd": prices.carbon_price_usd_per_tco2 * emissions,
        "budget_penalty_usd": (
            prices.violation_penalty_usd_per_tco2 * max(emissions - budget, 0.0) if budget is not None else 0.0
        ),
        "tail_energy_cost_usd": float(flows.tail_energy_cost_usd),
        "battery_terminal_value_usd": float((prices.terminal_value_usd_per_mwh
                                             * (flows.soc_end_mwh - flows.soc_initial_mwh))[present].sum()),
    }
    benefit = sum(-value if name in COST_PARTS else value for name, value in parts.items())
    return {"benefit_usd": float(benefit), **parts, "emissions_tco2": emissions,
            "emissions_import_tco2": from_import, "emissions_generator_tco2": from_generators}
