"""The plant: data centers, batteries, generators and grid connections, and the real-time rules.

Each component is a plain class over the whole fleet -- entry ``s`` of every array is site ``s``,
an absent battery or generator is a zero-capacity entry (as in :class:`scenarios.Fleet`) -- so
one tick is a handful of numpy operations however many sites there are. Each reports its static
``config()`` for the run manifest; what changes per tick is recorded by :mod:`simulator.tick`.
Nothing here imports simpy or a solver: the closed loop (:mod:`simulator._engine`) drives these
classes, grouped in a :class:`Plant`.

Real-time rules (SPEC §5) within a tick, given the controller's set-points:

1. **Inference** (:meth:`DataCenter.route`): each class's *realised* demand is split by the
   routing shares (routes beyond the latency limit are never used; the unassigned share is
   dropped by decision). A site over its serving capacity -- GPUs not used by training x
   throughput, or facility power ``PUE x IT <= capacity`` -- spills its excess (every class in
   proportion) to the other latency-feasible sites with room, nearest to the class's origin
   first; what finds no room is dropped and counted.
2. **Power balance** (:func:`close_balance`), per site: load = PUE(T) x IT, at most the
   facility's ``power_capacity_mw`` (what PUE x IT asks beyond it -- idle and training load on a
   tick hotter than planned -- is not supplied: recorded as unmet load, with a ``load_unmet``
   event, by :mod:`simulator.tick`), plus the base load. Where importing
   pays -- a negative realised import price net of carbon (price + carbon price x intensity
   < 0) -- the controller's import set-point is followed first (up to the load still to cover),
   so the renewables it displaces are curtailed as the plan says and nothing is exported. Then
   renewables cover the load (and the commanded charge); the battery and the generator follow their
   set-points within limits; the grid import closes the balance within its limit; a remaining
   deficit cancels charging, then discharges the battery further (within power and SOC limits),
   then raises or starts the generator, then sheds inference at the site (counted as dropped);
   anything left is recorded as ``unmet_load_mw``. A surplus is exported within the export
   limit (only at a non-negative export price), the rest of the renewables is curtailed; a
   committed surplus that cannot go anywhere backs off the discharge, then the generator to its
   minimum, then charges the battery, then switches the generator off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scenarios.arrays import Fleet
from scenarios.schema import TrainingJob

EPS = 1e-9


def _site_list(fleet: Fleet, values: np.ndarray) -> dict[str, float]:
    return {name: float(value) for name, value in zip(fleet.site_names, values, strict=True)}


@dataclass
class RunningTraining:
    """A training job running at a site (times in hours after the run start)."""

    job: TrainingJob
    site: int
    start_h: float
    end_h: float


class DataCenter:
    """The IT side of every site: GPUs shared by training and inference, PUE, facility capacity."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        S, K = fleet.n_sites, fleet.n_classes
        self.gpus = fleet.gpus.astype(float)
        self.throughput = fleet.throughput_req_per_s_per_gpu
        self.idle_mw = fleet.idle_power_mw
        self.capacity_mw = fleet.power_capacity_mw
        self.energy_mw_per_req_s = fleet.class_energy_mw_per_req_s
        self.feasible = fleet.route_feasible
        self.home = fleet.home_site
        # spill order of each class: feasible sites by latency from the class's origin
        latency = fleet.latency_ms[fleet.class_origin] if K else np.zeros((0, S))
        self.spill_order = [
            [int(s) for s in np.flatnonzero(self.feasible[k])[np.argsort(latency[k, self.feasible[k]], kind="stable")]]
            for k in range(K)
        ]
        self.running: dict[str, RunningTraining] = {}
        self.training_gpus = np.zeros(S)
        self.training_mw = np.zeros(S)
        self._per_gpu_req = 1.0 / self.throughput
        self._throughput_list = self.throughput.tolist()
        self._per_gpu_req_list = self._per_gpu_req.tolist()
        self._energy_list = self.energy_mw_per_req_s.tolist()
        self._refresh()
        shares = np.zeros((K, S))
        shares[np.arange(K), self.home] = 1.0
        self.set_routing(shares)

    def config(self) -> dict[str, object]:
        """Static configuration per site (for the run manifest)."""
        f = self.fleet
        return {
            "gpus": _site_list(f, f.gpus),
            "throughput_req_per_s_per_gpu": _site_list(f, f.throughput_req_per_s_per_gpu),
            "idle_power_mw": _site_list(f, f.idle_power_mw), "power_capacity_mw": _site_list(f, f.power_capacity_mw),
        }

    # --- training ------------------------------------------------------------------------------
    def start_refusal(self, job: TrainingJob, site: int, pue: np.ndarray) -> str | None:
        """Why ``job`` cannot start at ``site`` now (None if it can): eligibility, GPUs, facility power."""
        name = self.fleet.site_names[site]
        if job.sites is not None and name not in job.sites:
            return f"{name} is not eligible"
        if self.training_gpus[site] + job.gpus > self.gpus[site] + EPS:
            return f"{name} has {self.gpus[site] - self.training_gpus[site]:g} GPUs free, the job needs {job.gpus}"
        facility = (self.idle_mw[site] + self.training_mw[site] + job.power_mw) * pue[site]
        if facility > self.capacity_mw[site] + EPS:
            return f"{name} would draw {facility:.2f} MW of {self.capacity_mw[site]:g} MW capacity"
        return None

    def start(self, job: TrainingJob, site: int, now_h: float) -> RunningTraining:
        running = RunningTraining(job, site, now_h, now_h + job.duration_h)
        self.running[job.name] = running
        # new arrays, not in-place updates: records of earlier phases keep references to the old ones
        self.training_gpus = self.training_gpus.copy()
        self.training_mw = self.training_mw.copy()
        self.training_gpus[site] += job.gpus
        self.training_mw[site] += job.power_mw
        self._refresh()
        return running

    def complete(self, name: str) -> RunningTraining:
        running = self.running.pop(name)
        self.training_gpus = self.training_gpus.copy()
        self.training_mw = self.training_mw.copy()
        self.training_gpus[running.site] -= running.job.gpus
        self.training_mw[running.site] -= running.job.power_mw
        if not self.running:  # no drift from repeated += / -=
            self.training_gpus[:] = 0.0
            self.training_mw[:] = 0.0
        self._refresh()
        return running

    def _refresh(self) -> None:
        self.free_gpus = self.gpus - self.training_gpus
        self.base_it_mw = self.idle_mw + self.training_mw  # IT load besides inference
        self.next_completion_h = min((r.end_h for r in self.running.values()), default=np.inf)

    # --- inference -----------------------------------------------------------------------------
    def set_routing(self, shares: np.ndarray) -> None:
        """Routing shares (K, S) from the controller: clipped to [0, 1], infeasible routes removed,
        rows scaled down to sum at most 1."""
        K, S = self.feasible.shape
        shares = np.nan_to_num(np.asarray(shares, dtype=float).reshape(K, S))
        shares = np.where(self.feasible, np.clip(shares, 0.0, 1.0), 0.0)
        rows = shares.sum(axis=1)
        shares[rows > 1.0] /= rows[rows > 1.0, None]
        self.shares = shares
        # demand @ matrix = (GPUs needed (S,), inference IT MW (S,)) of the routed requests
        self._route_matrix = np.hstack([shares * self._per_gpu_req[None, :],
                                        shares * self.energy_mw_per_req_s[:, None]])
        self.unassigned_share = np.clip(1.0 - shares.sum(axis=1), 0.0, 1.0)  # (K,): dropped by decision
        self._has_unassigned = bool((self.unassigned_share > EPS).any())

    def route(self, demand: np.ndarray, it_room_mw: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None,
                                                                         np.ndarray]:
        """Served and dropped requests/s (K, S) and the inference IT MW (S,) (rule 1).

        ``it_room_mw`` is the IT power the facility capacity leaves for inference. ``dropped[k, s]``
        counts the requests of class ``k`` routed to ``s`` that found no room anywhere, and the
        unassigned share of a class at its nearest site. When every site has room the requests
        follow the shares exactly and (None, None, IT MW) is returned: see :meth:`follow_shares`.
        """
        S = len(self.gpus)
        need = demand @ self._route_matrix
        if max((need[:S] - self.free_gpus).tolist() + (need[S:] - it_room_mw).tolist(), default=0.0) <= EPS:
            return None, None, need[S:]
        served, dropped = self._spill(*self.follow_shares(demand), need[:S], need[S:], it_room_mw)
        return served, dropped, self.energy_mw_per_req_s @ served

    def follow_shares(self, demand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(served, dropped) when every site has room: the shares of the demand, the unassigned
        share dropped at each class's nearest site."""
        served = self.shares * demand[:, None]
        dropped = np.zeros_like(served)
        if self._has_unassigned:
            dropped[np.arange(len(demand)), self.home] = self.unassigned_share * demand
        return served, dropped

    def _spill(self, routed: np.ndarray, dropped: np.ndarray, gpu_need: np.ndarray, it_need: np.ndarray,
               it_room: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gpu_room = np.maximum(self.free_gpus, 0.0)
        it_room = np.maximum(it_room, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            keep = np.minimum(np.where(gpu_need > 0, gpu_room / gpu_need, 1.0),
                              np.where(it_need > 0, it_room / it_need, 1.0))
        keep = np.clip(keep, 0.0, 1.0)
        served = routed * keep[None, :]
        excess = routed - served
        classes, sites = np.nonzero(excess > EPS)
        if not len(classes):
            return served, dropped
        # the spill is sequential (each take shrinks the room left): Python floats, the same
        # IEEE double arithmetic as numpy scalars at a fraction of their cost per operation
        gpu_left = (gpu_room - served.sum(axis=0) * self._per_gpu_req).tolist()
        it_left = (it_room - self.energy_mw_per_req_s @ served).tolist()
        throughput, per_gpu_req, energy = self._throughput_list, self._per_gpu_req_list, self._energy_list
        served_rows, dropped_rows, excess_rows = served.tolist(), dropped.tolist(), excess.tolist()
        for k, s in zip(classes.tolist(), sites.tolist(), strict=True):
            remaining = excess_rows[k][s]
            energy_k = energy[k]
            for target in self.spill_order[k]:
                if target == s or remaining <= EPS:
                    continue
                room = min(gpu_left[target] * throughput[target], it_left[target] / energy_k)
                take = min(remaining, max(room, 0.0))
                if take > 0:
                    served_rows[k][target] += take
                    gpu_left[target] -= take * per_gpu_req[target]
                    it_left[target] -= take * energy_k
                    remaining -= take
            dropped_rows[k][s] += remaining
        return np.array(served_rows, dtype=float), np.array(dropped_rows, dtype=float)


class Battery:
    """The batteries of every site: SOC(t + h) = SOC(t) + eta_c ch h - dis h / eta_d within bounds."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        S = fleet.n_sites
        self.present = fleet.battery_energy_mwh > 0
        self.charge_max_mw = np.where(self.present, fleet.battery_charge_mw, 0.0)
        self.discharge_max_mw = np.where(self.present, fleet.battery_discharge_mw, 0.0)
        self.eta_charge = fleet.battery_charge_efficiency
        self.inverse_eta_discharge = 1.0 / fleet.battery_discharge_efficiency
        self.soc_min_mwh = fleet.soc_min_mwh
        self.soc_max_mwh = fleet.soc_max_mwh
        self.soc_mwh = fleet.soc_initial_mwh.copy()
        self._below_max_mwh = self.soc_max_mwh - EPS
        self._above_min_mwh = self.soc_min_mwh + EPS
        self.idle = np.zeros(S)
        self.idle.flags.writeable = False
        self._maybe_at_bound = True  # False only while every SOC is known to be strictly inside its bounds
        self.set_commands(self.idle, self.idle)

    def config(self) -> dict[str, object]:
        """Static configuration per site (for the run manifest)."""
        f = self.fleet
        return {
            "energy_capacity_mwh": _site_list(f, f.battery_energy_mwh),
            "charge_power_mw": _site_list(f, f.battery_charge_mw),
            "discharge_power_mw": _site_list(f, f.battery_discharge_mw), "soc_min_mwh": _site_list(f, f.soc_min_mwh),
            "soc_max_mwh": _site_list(f, f.soc_max_mwh), "soc_initial_mwh": _site_list(f, f.soc_initial_mwh),
            "charge_efficiency": _site_list(f, f.battery_charge_efficiency),
            "discharge_efficiency": _site_list(f, f.battery_discharge_efficiency),
        }


    def set_commands(self, charge_mw: np.ndarray, discharge_mw: np.ndarray) -> None:
        """Set-points within power limits, netted to one direction."""
        net = (np.clip(np.nan_to_num(charge_mw), 0.0, self.charge_max_mw)
               - np.clip(np.nan_to_num(discharge_mw), 0.0, self.discharge_max_mw))
        self.charge_setpoint = np.maximum(net, 0.0)
        self.discharge_setpoint = np.maximum(-net, 0.0)
        self.commanded = bool(np.abs(net).max() > EPS) if len(net) else False

    def commands(self) -> tuple[np.ndarray, np.ndarray]:
        """The set-points, zero where the SOC already sits at the bound they push towards."""
        if not self.commanded:
            return self.idle, self.idle
        if not self._maybe_at_bound:
            return self.charge_setpoint, self.discharge_setpoint
        below_max = self.soc_mwh < self._below_max_mwh
        above_min = self.soc_mwh > self._above_min_mwh
        if all(below_max.tolist()) and all(above_min.tolist()):
            self._maybe_at_bound = False
            return self.charge_setpoint, self.discharge_setpoint
        charge = np.where(below_max, self.charge_setpoint, 0.0)
        discharge = np.where(above_min, self.discharge_setpoint, 0.0)
        if max(charge.tolist() + discharge.tolist()) <= 0.0:
            return self.idle, self.idle  # the identity lets the rules and advance() skip the battery
        return charge, discharge

    def reactive_caps(
        self, charge_mw: np.ndarray, discharge_mw: np.ndarray, hours: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Largest charge and discharge the real-time rules may use for ``hours`` without crossing an
        SOC bound (never below the commanded values, which end their phase at the bound instead)."""
        charge_room = (self.soc_max_mwh - self.soc_mwh) / (self.eta_charge * hours)
        discharge_room = (self.soc_mwh - self.soc_min_mwh) / (self.inverse_eta_discharge * hours)
        return (np.minimum(self.charge_max_mw, np.maximum(charge_mw, np.maximum(charge_room, 0.0))),
                np.minimum(self.discharge_max_mw, np.maximum(discharge_mw, np.maximum(discharge_room, 0.0))))

    def advance(self, charge_mw: np.ndarray, discharge_mw: np.ndarray, hours: float) -> float:
        """Move the SOC along these flows for ``hours`` or until the first battery reaches a bound;
        returns the hours actually advanced."""
        if charge_mw is self.idle and discharge_mw is self.idle:
            return hours
        rate = self.eta_charge * charge_mw - discharge_mw * self.inverse_eta_discharge
        soc = self.soc_mwh + hours * rate
        if max((soc - self.soc_max_mwh).tolist() + (self.soc_min_mwh - soc).tolist(), default=0.0) <= EPS:
            self.soc_mwh = soc
            return hours
        with np.errstate(divide="ignore", invalid="ignore"):
            to_bound = np.where(rate > EPS, (self.soc_max_mwh - self.soc_mwh) / rate,
                                np.where(rate < -EPS, (self.soc_mwh - self.soc_min_mwh) / -rate, np.inf))
        hours = max(min(hours, float(to_bound.min())), 0.0)
        self.soc_mwh = np.clip(self.soc_mwh + hours * rate, self.soc_min_mwh, self.soc_max_mwh)
        self._maybe_at_bound = True
        return hours


class Generator:
    """The dispatchable generators of every site: off, or p_min <= output <= p_max when on."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.present = fleet.has_generator.astype(bool)
        self.min_mw = np.where(self.present, fleet.generator_min_mw, 0.0)
        self.max_mw = np.where(self.present, fleet.generator_max_mw, 0.0)
        self.on = np.zeros(fleet.n_sites, dtype=bool)
        self.idle = np.zeros(fleet.n_sites)
        self.idle.flags.writeable = False
        self.set_command(self.idle)

    def config(self) -> dict[str, object]:
        """Static configuration per site (for the run manifest)."""
        f = self.fleet
        return {"p_min_mw": _site_list(f, f.generator_min_mw), "p_max_mw": _site_list(f, f.generator_max_mw),
                "fuel_cost_usd_per_mwh": _site_list(f, f.generator_fuel_usd_per_mwh),
                "emission_factor_t_per_mwh": _site_list(f, f.generator_emission_t_per_mwh)}


    def set_command(self, output_mw: np.ndarray) -> None:
        """The commanded output within limits: 0 (off) or clip(set-point, p_min, p_max)."""
        output_mw = np.nan_to_num(np.asarray(output_mw, dtype=float))
        setpoint = np.where(self.present & (output_mw > EPS), np.clip(output_mw, self.min_mw, self.max_mw), 0.0)
        self.setpoint = setpoint if setpoint.any() else self.idle  # the identity lets the rules skip it


class GridConnection:
    """The grid connections of every site: import and export within their limits."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.import_limit_mw = fleet.import_limit_mw
        self.export_limit_mw = fleet.export_limit_mw
        self.import_setpoint: np.ndarray | None = None

    def set_command(self, import_mw: np.ndarray | None) -> None:
        """The controller's import set-point within ``[0, import_limit_mw]`` (None: none given)."""
        if import_mw is None:
            self.import_setpoint = None
            return
        setpoint = np.clip(np.nan_to_num(np.asarray(import_mw, dtype=float)), 0.0, self.import_limit_mw)
        self.import_setpoint = setpoint if any_positive(setpoint) else None

    def import_floor_mw(self, import_cost_usd_per_mwh: np.ndarray) -> np.ndarray | None:
        """The import the plant follows this tick: the set-point where importing pays (a negative
        cost net of carbon), 0 elsewhere; None when it is 0 everywhere."""
        if self.import_setpoint is None or min(import_cost_usd_per_mwh.tolist(), default=0.0) >= 0.0:
            return None
        floor = np.where(import_cost_usd_per_mwh < 0.0, self.import_setpoint, 0.0)
        return floor if any_positive(floor) else None

    def config(self) -> dict[str, object]:
        """Static configuration per site (for the run manifest)."""
        return {"import_limit_mw": _site_list(self.fleet, self.import_limit_mw),
                "export_limit_mw": _site_list(self.fleet, self.export_limit_mw)}


    def export_cap_mw(self, export_price_usd_per_mwh: np.ndarray) -> np.ndarray:
        """Export limit where exporting pays (price >= 0), else 0; any shape ending in sites."""
        return np.where(export_price_usd_per_mwh >= 0.0, self.export_limit_mw, 0.0)


@dataclass(frozen=True)
class Plant:
    """The plant's components over the whole fleet."""

    datacenter: DataCenter
    battery: Battery
    generator: Generator
    grid: GridConnection

    @classmethod
    def of(cls, fleet: Fleet) -> Plant:
        """Every component of ``fleet`` in its initial state."""
        return cls(DataCenter(fleet), Battery(fleet), Generator(fleet), GridConnection(fleet))

    def config(self) -> dict[str, object]:
        """Static configuration of every component (for the run manifest)."""
        return {"datacenter": self.datacenter.config(), "battery": self.battery.config(),
                "generator": self.generator.config(), "grid": self.grid.config()}


@dataclass
class Flows:
    """Power flows of one phase of a tick, MW per site. Balance:
    renewable_used + discharge + generator + import + unmet = (load - shed) + charge + export."""

    renewable_used: np.ndarray
    import_: np.ndarray
    export: np.ndarray
    charge: np.ndarray
    discharge: np.ndarray
    generator: np.ndarray
    shed: np.ndarray | None  # facility MW of inference shed (None: nothing shed)
    unmet: np.ndarray | None  # facility MW of load nothing could supply (None: all supplied)
    started: np.ndarray | None  # bool: generators started by the real-time rules (None: none)


def any_positive(values: np.ndarray) -> bool:
    """Any entry above EPS (a Python reduction: for a few sites ~5x cheaper than ndarray.max)."""
    return bool(len(values)) and max(values.tolist()) > EPS


def close_balance(
    load_mw: np.ndarray, sheddable_mw: np.ndarray, renewable_mw: np.ndarray,
    charge_mw: np.ndarray, discharge_mw: np.ndarray, generator_mw: np.ndarray,
    battery: Battery, hours: float, generator: Generator, import_limit_mw: np.ndarray, export_cap_mw: np.ndarray,
    generator_allowed: np.ndarray | None = None, import_floor_mw: np.ndarray | None = None,
) -> Flows:
    """Close every site's power balance for ``hours`` by the real-time rules (module docstring, rule 2).

    ``charge_mw``, ``discharge_mw`` and ``generator_mw`` are the commanded values (within their
    limits); what the rules add to the battery's flows stays within its SOC bounds for ``hours``.
    ``export_cap_mw`` is the export limit where exporting is allowed (0 elsewhere).
    ``import_floor_mw`` (None: 0) is the controller's import set-point where importing pays
    (:meth:`GridConnection.import_floor_mw`): up to the load (and commanded charge) still to cover,
    it is imported before renewables are used, so the renewables it displaces are curtailed;
    a site importing under it does not export.
    """
    c, d, g = charge_mw, discharge_mw, generator_mw
    residual = load_mw  # what renewables and the grid must cover; < 0: committed surplus
    if c is not battery.idle or d is not battery.idle:
        residual = residual + c - d
    if g is not generator.idle:
        residual = residual - g
    if import_floor_mw is not None:  # follow the set-point first; renewables close the rest
        followed = np.minimum(np.minimum(import_floor_mw, import_limit_mw), np.maximum(residual, 0.0))
        followed = np.where(followed > EPS, followed, 0.0)  # a negligible set-point does not block export
        residual = residual - followed
        export_cap_mw = np.where(followed > EPS, 0.0, export_cap_mw)
    ren = np.minimum(np.maximum(residual, 0.0), renewable_mw)
    residual = residual - ren
    if import_floor_mw is not None:
        imp = np.minimum(np.maximum(residual, 0.0), import_limit_mw - followed) + followed
        residual = residual - (imp - followed)
    else:
        imp = np.minimum(np.maximum(residual, 0.0), import_limit_mw)
        residual = residual - imp
    shed = unmet = started = None
    if any_positive(residual):
        deficit = np.maximum(residual, 0.0)
        take = np.minimum(deficit, c)  # cancel charging
        c = c - take
        residual = residual - take
        _, discharge_cap = battery.reactive_caps(charge_mw, discharge_mw, hours)
        take = np.minimum(np.maximum(residual, 0.0), np.maximum(discharge_cap - d, 0.0))  # discharge more
        d = d + take
        residual = residual - take
        short = (residual > EPS) & generator.present
        if generator_allowed is not None:
            short &= generator_allowed
        if short.any():
            target = np.where(short, np.clip(g + residual, generator.min_mw, generator.max_mw), g)
            started = short & (g <= EPS) & ~generator.on
            residual = residual - (target - g)
            g = target
            # a generator started at its minimum may overshoot: give back imports, then renewables
            back = np.minimum(np.maximum(-residual, 0.0), imp) * short
            imp = imp - back
            residual = residual + back
            back = np.minimum(np.maximum(-residual, 0.0), ren) * short
            ren = ren - back
            residual = residual + back
        shed = np.minimum(np.maximum(residual, 0.0), sheddable_mw)
        residual = residual - shed
        unmet = np.maximum(residual, 0.0)
        residual = residual - unmet
    surplus = np.maximum(-residual, 0.0)  # committed supply beyond the load
    exp = np.minimum(export_cap_mw, surplus + (renewable_mw - ren))
    from_committed = np.minimum(exp, surplus)
    ren = ren + (exp - from_committed)
    surplus = surplus - from_committed
    if any_positive(surplus):
        take = np.minimum(surplus, d)  # back off the discharge
        d = d - take
        surplus = surplus - take
        take = np.minimum(surplus, np.where(g > EPS, g - generator.min_mw, 0.0))  # generator to its minimum
        g = g - take
        surplus = surplus - take
        charge_cap, _ = battery.reactive_caps(charge_mw, discharge_mw, hours)
        take = np.minimum(surplus, np.maximum(charge_cap - c, 0.0))  # absorb in the battery
        c = c + take
        surplus = surplus - take
        stuck = surplus > EPS  # only a generator held at its minimum: switch it off and close again
        if stuck.any():
            allowed = ~stuck if generator_allowed is None else generator_allowed & ~stuck
            return close_balance(load_mw, sheddable_mw, renewable_mw, charge_mw, discharge_mw,
                                 np.where(stuck, 0.0, generator_mw), battery, hours, generator,
                                 import_limit_mw, export_cap_mw, allowed, import_floor_mw)
    return Flows(ren, imp, exp, c, d, g, shed, unmet, started)
