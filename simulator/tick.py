"""The plant tick: one tick of every site, in phases, by the real-time rules of :mod:`simulator.plant`.

A tick is split into phases at the exact time a job completes or a battery following its
set-point reaches an SOC bound (it stops there and the rest of the tick is closed by the other
sources); a generator started by the real-time rules starts at the start of its phase. The
tick's :class:`~simulator.records.TickRecord` holds the time averages over its phases.

Plain Python and numpy over sites; the closed loop (:mod:`simulator._engine`) calls
:meth:`PlantTick.begin`, then :meth:`PlantTick.phase` until it reports the tick's last phase,
with :meth:`PlantTick.follow_soc_limits` between phases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from scenarios.timebase import RunClock
from simulator.plant import EPS, Flows, Plant, any_positive, close_balance
from simulator.records import PlantInputs, Recorder, TickRecord
from simulator.workload import Workload


class Phase(NamedTuple):
    """One phase of a tick: its length and what held during it (arrays of shape (S,))."""

    length_h: float
    flows: Flows
    it_load_mw: np.ndarray
    gpus_training: np.ndarray


@dataclass(slots=True)
class TickState:
    """The tick in progress: its inputs, the battery commands still followed, the phases so far."""

    index: int
    start_h: float
    pue: np.ndarray
    served: np.ndarray | None
    dropped: np.ndarray | None
    inference_it_mw: np.ndarray
    sheddable_mw: np.ndarray
    charge_cmd: np.ndarray
    discharge_cmd: np.ndarray
    generator_cmd: np.ndarray
    renewable_mw: np.ndarray
    base_load_mw: np.ndarray
    export_cap_mw: np.ndarray
    import_floor_mw: np.ndarray | None  # the import set-point followed where importing pays (None: none)
    beyond_capacity: bool  # PUE x IT may ask more than a facility's capacity this tick
    elapsed_h: float = 0.0
    phases: list[Phase] = field(default_factory=list)


class PlantTick:
    """Advances the plant tick by tick and records each tick."""

    def __init__(self, clock: RunClock, inputs: PlantInputs, plant: Plant, workload: Workload, recorder: Recorder,
                 max_phases: int) -> None:
        self.clock, self.inputs, self.plant = clock, inputs, plant
        self.workload, self.recorder = workload, recorder
        self.max_phases = max_phases  # a safeguard against endless splitting by float rounding
        self._has_generators = bool(plant.generator.present.any())
        self._generator_was_on = bool(plant.generator.on.any())
        self._unmet = np.zeros(len(plant.datacenter.capacity_mw), dtype=bool)  # sites leaving load unsupplied
        self._any_unmet = False

    def begin(self, i: int) -> TickState:
        """Start tick ``i``: route the tick's inference demand (rule 1), take the set-points."""
        dc, battery = self.plant.datacenter, self.plant.battery
        inputs = self.inputs
        pue = inputs.pue[i]
        it_room = inputs.it_capacity_mw[i] - dc.base_it_mw
        served, dropped, inference_it = dc.route(inputs.demand_req_per_s[i], it_room)
        charge_cmd, discharge_cmd = battery.commands()
        # inference is routed within the room; only idle and training load beyond the capacity (no
        # room at all) can exceed it, and completions within the tick only lower that load
        beyond_capacity = min(it_room.tolist(), default=0.0) < -EPS
        return TickState(i, i * self.clock.tick_h, pue, served, dropped, inference_it, pue * inference_it,
                         charge_cmd, discharge_cmd, self.plant.generator.setpoint, inputs.renewable_mw[i],
                         inputs.base_load_mw[i], inputs.export_cap_mw[i],
                         self.plant.grid.import_floor_mw(inputs.import_cost_usd_per_mwh[i]), beyond_capacity)

    def phase(self, state: TickState) -> bool:
        """Close the balance (rule 2) until the next job completion, SOC bound or the tick's end;
        True for the tick's last phase (the tick is then recorded)."""
        dc, battery, generator = self.plant.datacenter, self.plant.battery, self.plant.generator
        dt = self.clock.tick_h
        now = state.start_h + state.elapsed_h
        if dc.next_completion_h <= now + EPS:
            self.workload.complete_due(now)
        remaining = dt - state.elapsed_h
        it_load = dc.base_it_mw + state.inference_it_mw
        facility = state.pue * it_load
        # the facility never draws more than its capacity: what PUE x IT asks beyond it (idle and
        # training load on a hot tick; inference was already routed within it) is not supplied
        over_capacity = False
        if state.beyond_capacity:
            over = facility - dc.capacity_mw
            over_capacity = any_positive(over)
            if over_capacity:
                over = np.maximum(over, 0.0)
                facility = facility - over
        flows = close_balance(facility + state.base_load_mw, state.sheddable_mw, state.renewable_mw,
                              state.charge_cmd, state.discharge_cmd, state.generator_cmd, battery, remaining,
                              generator, self.plant.grid.import_limit_mw, state.export_cap_mw,
                              import_floor_mw=state.import_floor_mw)
        if over_capacity:
            flows.unmet = over if flows.unmet is None else flows.unmet + over
        if flows.unmet is not None or self._any_unmet:
            self._note_unmet(now, flows.unmet, over if over_capacity else None)
        length = battery.advance(flows.charge, flows.discharge, min(remaining, dc.next_completion_h - now))
        # nothing to do when no generator runs or ran: the rules hand back the idle array untouched
        if self._has_generators and (flows.generator is not generator.idle or self._generator_was_on):
            on = flows.generator > EPS
            if True in (on & ~generator.on).tolist():
                for site in np.flatnonzero(on & ~generator.on):
                    rule = flows.started is not None and flows.started[site]
                    self.recorder.event(now, int(site), "generator_started", "real-time rule" if rule else "set-point")
            generator.on = on
            self._generator_was_on = True in on.tolist()
        state.phases.append(Phase(length, flows, it_load, dc.training_gpus))
        state.elapsed_h += length
        last = state.elapsed_h >= dt - EPS or len(state.phases) >= self.max_phases
        if last:  # record before the loop yields: the controller at the tick's end sees it
            self.recorder.ticks[state.index] = self._record(state)
        return last

    def _note_unmet(self, now_h: float, unmet_mw: np.ndarray | None, over_capacity_mw: np.ndarray | None) -> None:
        """A ``load_unmet`` event where a site starts leaving load unsupplied (the MW and why), a
        ``load_met`` event where it supplies its whole load again."""
        unmet = np.zeros(len(self._unmet)) if unmet_mw is None else unmet_mw
        now_unmet = unmet > EPS
        capacity = self.plant.datacenter.capacity_mw
        for site in np.flatnonzero(now_unmet & ~self._unmet):
            if over_capacity_mw is not None and over_capacity_mw[site] > EPS:
                why = (f"PUE x IT asks {capacity[site] + over_capacity_mw[site]:.3f} MW of a "
                       f"{capacity[site]:g} MW facility capacity")
            else:
                why = "the grid, battery, generator and renewables are short within their limits"
            self.recorder.event(now_h, int(site), "load_unmet", f"{unmet[site]:.3f} MW not supplied: {why}")
        for site in np.flatnonzero(self._unmet & ~now_unmet):
            self.recorder.event(now_h, int(site), "load_met", "the whole load is supplied again")
        self._unmet = now_unmet
        self._any_unmet = bool(now_unmet.any())

    def phase_end_h(self, state: TickState, last: bool) -> float:
        """When the phase just closed ends (hours after the run start)."""
        return (state.index + 1) * self.clock.tick_h if last else state.start_h + state.elapsed_h

    def follow_soc_limits(self, state: TickState) -> None:
        """A battery that reached an SOC bound stops following its set-point for the rest of the tick."""
        new_charge, new_discharge = self.plant.battery.commands()
        new_charge = np.minimum(new_charge, state.charge_cmd)
        new_discharge = np.minimum(new_discharge, state.discharge_cmd)
        for site in np.flatnonzero((new_charge < state.charge_cmd) | (new_discharge < state.discharge_cmd)):
            self.recorder.event(state.start_h + state.elapsed_h, int(site), "soc_limit",
                                "full" if state.charge_cmd[site] > 0 else "empty")
        state.charge_cmd, state.discharge_cmd = new_charge, new_discharge

    def _record(self, state: TickState) -> TickRecord:
        phases, pue, served, dropped = state.phases, state.pue, state.served, state.dropped
        inference_it = state.inference_it_mw
        generator_on_h: np.ndarray | None
        if len(phases) == 1:
            _, flows, it_load, gpus_training = phases[0]
            generator_on_h = None  # the tick's length wherever the generator runs
        else:
            weights = np.array([p.length_h for p in phases]) / self.clock.tick_h
            flows = _weighted(phases, weights)
            it_load = sum(w * p.it_load_mw for w, p in zip(weights, phases, strict=True))
            gpus_training = sum(w * p.gpus_training for w, p in zip(weights, phases, strict=True))
            generator_on_h = np.zeros(len(pue))
            for p in phases:
                generator_on_h = generator_on_h + p.length_h * (p.flows.generator > EPS)
        if flows.shed is not None and any_positive(flows.shed):  # inference shed: served requests fall in proportion
            if served is None:
                served, dropped = self.plant.datacenter.follow_shares(self.inputs.demand_req_per_s[state.index])
            with np.errstate(divide="ignore", invalid="ignore"):
                fraction = np.clip(np.where(inference_it > 0, flows.shed / (pue * inference_it), 0.0), 0.0, 1.0)
            lost = served * fraction[None, :]
            served = served - lost
            dropped = lost if dropped is None else dropped + lost
            it_load = it_load - inference_it * fraction
        return TickRecord(flows, it_load, gpus_training, self.plant.battery.soc_mwh, generator_on_h, served, dropped)


def _weighted(phases: list[Phase], weights: np.ndarray) -> Flows:
    """Time-weighted mean of the phases' flows."""

    def mean(attribute: str) -> np.ndarray:
        parts = [w * getattr(p.flows, attribute) for w, p in zip(weights, phases, strict=True)
                 if getattr(p.flows, attribute) is not None]
        return sum(parts) if parts else np.zeros(len(phases[0].flows.import_))

    return Flows(
        mean("renewable_used"), mean("import_"), mean("export"), mean("charge"), mean("discharge"),
        mean("generator"), mean("shed"), mean("unmet"), None,
    )
