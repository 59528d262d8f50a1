"""What the closed loop records, as named records, and the :class:`Recorder` that keeps them.

One :class:`TickRecord` per plant tick (time averages over the tick's phases), one row of the
solver log and one routing snapshot per control step, one :class:`EventRecord` per event, one
:class:`PlanRecord` per plan a controller returned. :meth:`Recorder.raw_run` turns them into the
arrays of a :class:`RawRun`, which :func:`simulator.run.build_frames` turns into tidy frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from scenarios.arrays import Fleet
from scenarios.schema import TrainingJob
from scenarios.timebase import RunClock
from simulator.plant import EPS, Flows


@dataclass
class JobRecord:
    """The life of one submitted training job (hours after the run start; NaN: not reached)."""

    submitted_h: float
    job: TrainingJob
    site: int = -1
    start_h: float = np.nan
    end_h: float = np.nan
    status: str = "never-started"  # running, completed, late, dropped


class TickRecord(NamedTuple):
    """One plant tick at every site: time averages over its phases (arrays of shape (S,))."""

    flows: Flows
    it_load_mw: np.ndarray
    gpus_training: np.ndarray
    soc_mwh: np.ndarray  # at the tick's end
    generator_on_h: np.ndarray | None  # None: one phase (on for the whole tick wherever it generates)
    served_req_per_s: np.ndarray | None  # (K, S); None: the requests followed the routing shares
    dropped_req_per_s: np.ndarray | None  # (K, S); None: as above


class EventRecord(NamedTuple):
    """A discrete event: job submitted/started/completed/dropped, start refused, generator
    started, battery at an SOC limit, a site starting to leave load unsupplied (``load_unmet``,
    with the MW and why) and supplying it all again (``load_met``), a non-finite forecast refused
    before the solver (``forecast_refused``, fleet-wide), quantile scenarios filled with the point
    forecast where the quantiles were NaN (``scenarios_point_filled``, once per run)."""

    time_h: float
    site: str  # "" for fleet-wide events
    kind: str
    detail: str


class PlanRecord(NamedTuple):
    """A plan a controller returned at ``time_h`` (kept for plotting and diagnosis), with the
    window it was solved over when the controller gave it (None otherwise)."""

    time_h: float
    plan: object
    window: object = None


@dataclass(frozen=True)
class PlantInputs:
    """The realised exogenous inputs of every tick of the run: (n_ticks, S) per site, demand (n_ticks, K)."""

    demand_req_per_s: np.ndarray
    renewable_mw: np.ndarray
    import_price_usd_per_mwh: np.ndarray
    export_price_usd_per_mwh: np.ndarray
    carbon_t_per_mwh: np.ndarray
    pue: np.ndarray
    base_load_mw: np.ndarray  # exogenous site load beside PUE x IT, never shed
    export_cap_mw: np.ndarray  # the export limit where exporting pays (price >= 0), else 0
    it_capacity_mw: np.ndarray  # IT MW the facility capacity allows at the tick's PUE
    # what one MWh imported costs: price + carbon price x intensity, USD/MWh; < 0: importing pays,
    # and the plant follows the controller's import set-point (simulator.plant, rule 2)
    import_cost_usd_per_mwh: np.ndarray


@dataclass
class RawRun:
    """Everything the loop recorded, as arrays (turned into frames by :func:`simulator.run.build_frames`)."""

    run_start: pd.Timestamp
    clock: RunClock
    inputs: PlantInputs
    ticks: dict[str, np.ndarray]  # (n_ticks, S) per recorded column
    served_req_per_s: np.ndarray  # (n_ticks, K, S)
    dropped_req_per_s: np.ndarray  # (n_ticks, K, S)
    shares: np.ndarray  # (n_control, K, S)
    jobs: list[JobRecord]
    solver_log: list[dict[str, object]]
    events: list[EventRecord]
    plans: list[PlanRecord] = field(default_factory=list)


class Recorder:
    """Keeps the loop's records; the one place the loop writes to."""

    def __init__(self, fleet: Fleet, run_start: pd.Timestamp, clock: RunClock, inputs: PlantInputs) -> None:
        self.fleet, self.run_start, self.clock, self.inputs = fleet, run_start, clock, inputs
        S, K = fleet.n_sites, fleet.n_classes
        # appending a record per tick is cheaper than writing a dozen array rows per tick
        self.ticks: list[TickRecord | None] = [None] * clock.n_ticks
        self.shares = np.zeros((clock.n_control, K, S))
        self.unassigned = np.zeros((clock.n_control, K))
        self.events: list[EventRecord] = []
        self.solver_log: list[dict[str, object]] = []
        self.plans: list[PlanRecord] = []
        self._emissions_t_per_tick = inputs.carbon_t_per_mwh * clock.tick_h  # x import, summed lazily
        self._generator_emission_t = fleet.generator_emission_t_per_mwh * clock.tick_h
        self._emissions_counted_ticks = 0
        self._cumulative_emissions = 0.0

    def event(self, time_h: float, site: int | None, kind: str, detail: str = "") -> None:
        """Record an event at ``site`` (an index; None for the fleet)."""
        self.events.append(EventRecord(time_h, self.fleet.site_names[site] if site is not None else "", kind, detail))

    def emissions_before(self, tick: int) -> float:
        """tCO2 emitted by imports and generators in ticks ``0 .. tick - 1`` (all recorded)."""
        lo = self._emissions_counted_ticks
        if tick > lo:
            records = [r for r in self.ticks[lo:tick] if r is not None]
            imports = np.array([r.flows.import_ for r in records])
            generation = np.array([r.flows.generator for r in records])
            self._cumulative_emissions += float((self._emissions_t_per_tick[lo:tick] * imports).sum()
                                                + (generation * self._generator_emission_t).sum())
            self._emissions_counted_ticks = tick
        return self._cumulative_emissions

    def raw_run(self, jobs: list[JobRecord]) -> RawRun:
        """The records as arrays: (n_ticks, S) per column, served and dropped (n_ticks, K, S)."""
        records: list[TickRecord] = [r for r in self.ticks if r is not None]
        n, S, K = self.clock.n_ticks, self.fleet.n_sites, self.fleet.n_classes
        if len(records) != n:
            raise RuntimeError(f"the loop recorded {len(records)} of {n} ticks")
        zeros = np.zeros(S)
        tick_h = self.clock.tick_h

        def stack(values: list) -> np.ndarray:
            return np.array(values, dtype=float).reshape(n, S)

        columns = {
            "it_load_mw": stack([r.it_load_mw for r in records]),
            "renewable_used_mw": stack([r.flows.renewable_used for r in records]),
            "import_mw": stack([r.flows.import_ for r in records]),
            "export_mw": stack([r.flows.export for r in records]),
            "charge_mw": stack([r.flows.charge for r in records]),
            "discharge_mw": stack([r.flows.discharge for r in records]),
            "soc_mwh": stack([r.soc_mwh for r in records]),
            "generator_mw": stack([r.flows.generator for r in records]),
            "gpus_training": stack([r.gpus_training for r in records]),
            "unmet_load_mw": stack([zeros if r.flows.unmet is None else r.flows.unmet for r in records]),
        }
        columns["facility_load_mw"] = self.inputs.pue * columns["it_load_mw"]
        columns["base_load_mw"] = self.inputs.base_load_mw
        on_h = stack([zeros if r.generator_on_h is None else r.generator_on_h for r in records])
        single = np.array([r.generator_on_h is None for r in records])
        columns["generator_on_h"] = np.where(single[:, None], tick_h * (columns["generator_mw"] > EPS), on_h)
        # ticks where every site had room: the requests followed the shares exactly
        step = np.arange(n) // self.clock.ticks_per_control
        demand = self.inputs.demand_req_per_s
        served = self.shares[step] * demand[:, :, None]
        dropped = np.zeros((n, K, S))
        if K:
            dropped[:, np.arange(K), self.fleet.home_site] = self.unassigned[step] * demand
        for i, r in enumerate(records):
            if r.served_req_per_s is not None:
                served[i], dropped[i] = r.served_req_per_s, r.dropped_req_per_s
        return RawRun(
            run_start=self.run_start, clock=self.clock, inputs=self.inputs, ticks=columns, served_req_per_s=served,
            dropped_req_per_s=dropped,
            shares=self.shares, jobs=jobs, solver_log=self.solver_log, events=self.events, plans=self.plans,
        )
