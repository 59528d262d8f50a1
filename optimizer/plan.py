"""Decisions of a window as labelled arrays, read back from a solution or set by a rule.

A :class:`Plan` is solver-independent: the MILP fills it (:func:`read_plan`), the passive and
naive rules of the baselines fill it too, and :mod:`optimizer.accounting` values all of them
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.model import ModelIndex
from optimizer.window import WindowInputs


@dataclass
class Plan:
    """Decisions over a window. (S, T) arrays are MW (SOC: MWh at the end of each step)."""

    start_job: np.ndarray  # (n,) job index of each chosen start
    start_site: np.ndarray
    start_step: np.ndarray
    served_req_per_s: np.ndarray  # (K, S, T)
    renewable_used_mw: np.ndarray
    import_mw: np.ndarray
    export_mw: np.ndarray
    charge_mw: np.ndarray
    discharge_mw: np.ndarray
    soc_mwh: np.ndarray
    generator_mw: np.ndarray
    generator_on: np.ndarray

    def training_load(self, w: WindowInputs) -> tuple[np.ndarray, np.ndarray]:
        """(S, T) GPUs and IT MW of the jobs this plan starts (window part only)."""
        S, T = w.fleet.n_sites, w.n_steps
        gpus, power = np.zeros((S, T)), np.zeros((S, T))
        position, step, share = w.start_coverage(self.start_job, self.start_step)
        site, job = self.start_site[position], self.start_job[position]
        np.add.at(gpus, (site, step), w.jobs.gpus[job] * share)
        np.add.at(power, (site, step), w.jobs.power_mw[job] * share)
        return gpus, power

    def it_load_mw(self, w: WindowInputs) -> np.ndarray:
        """(S, T) IT power: idle + running jobs + started jobs + inference."""
        _, running = w.running_load()
        _, training = self.training_load(w)
        inference = np.einsum("kst,k->st", self.served_req_per_s, w.fleet.class_energy_mw_per_req_s)
        return w.fleet.idle_power_mw[:, None] + running + training + inference

    def facility_load_mw(self, w: WindowInputs) -> np.ndarray:
        """(S, T) data-centre load PUE x IT, MW (the base load is beside it: :meth:`site_load_mw`)."""
        return w.pue * self.it_load_mw(w)

    def site_load_mw(self, w: WindowInputs) -> np.ndarray:
        """(S, T) everything the site's supply must cover: PUE x IT + base load, MW."""
        return self.facility_load_mw(w) + w.base_load

    def starts_frame(self, w: WindowInputs) -> pd.DataFrame:
        """One row per started job: job, site, start time, end time."""
        times = w.time_index
        duration_h = w.jobs.duration_steps[self.start_job] * w.step_hours
        start = times[self.start_step] if len(self.start_step) else pd.DatetimeIndex([], tz="UTC")
        return pd.DataFrame({
            "job": [w.jobs.names[j] for j in self.start_job],
            "site": [w.fleet.site_names[s] for s in self.start_site],
            "start_time": start,
            "end_time": start + pd.to_timedelta(duration_h, unit="h"),
            "gpus": w.jobs.gpus[self.start_job],
            "power_mw": w.jobs.power_mw[self.start_job],
            "value_usd": w.jobs.value_usd[self.start_job],
        })

    def site_frame(self, w: WindowInputs) -> pd.DataFrame:
        """Tidy per-site, per-step frame of the energy decisions and loads."""
        S, T = w.fleet.n_sites, w.n_steps
        columns = {
            "it_load_mw": self.it_load_mw(w), "facility_load_mw": self.facility_load_mw(w),
            "base_load_mw": w.base_load,
            "renewable_available_mw": w.pv_available_mw + w.wind_available_mw,
            "renewable_used_mw": self.renewable_used_mw, "import_mw": self.import_mw, "export_mw": self.export_mw,
            "charge_mw": self.charge_mw, "discharge_mw": self.discharge_mw, "soc_mwh": self.soc_mwh,
            "generator_mw": self.generator_mw, "import_price_usd_per_mwh": w.import_price_usd_per_mwh,
            "carbon_t_per_mwh": w.carbon_t_per_mwh, "pue": w.pue,
        }
        frame = pd.DataFrame({name: values.reshape(S * T) for name, values in columns.items()})
        frame.insert(0, "time", np.tile(w.time_index, S))
        frame.insert(0, "site", np.repeat(w.fleet.site_names, T))
        return frame

    def routing_frame(self, w: WindowInputs) -> pd.DataFrame:
        """Tidy (class, site, time) frame of served requests/s, feasible routes only."""
        k, s = np.nonzero(w.fleet.route_feasible)
        T = w.n_steps
        return pd.DataFrame({
            "class": np.repeat(np.array(w.fleet.class_names, dtype=object)[k], T),
            "site": np.repeat(np.array(w.fleet.site_names, dtype=object)[s], T),
            "time": np.tile(w.time_index, len(k)),
            "served_req_per_s": self.served_req_per_s[k, s, :].reshape(-1),
        })


def empty_plan(w: WindowInputs) -> Plan:
    """All-zero decisions (SOC held at its initial value)."""
    S, T, K = w.fleet.n_sites, w.n_steps, w.fleet.n_classes
    zeros = np.zeros((S, T))
    none = np.zeros(0, np.int64)
    return Plan(none, none, none, np.zeros((K, S, T)), zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy(),
                zeros.copy(), np.repeat(w.soc_initial_mwh[:, None], T, axis=1), zeros.copy(), zeros.copy())


def read_plan(w: WindowInputs, ix: ModelIndex, blocks: dict[str, np.ndarray], x: np.ndarray) -> Plan:
    """Map a solution vector back onto labelled decisions.

    Simultaneous import and export where no grid binary was kept are netted (SPEC §4: there the
    export price is at or below the import price, so netting never lowers the benefit).
    """
    plan = empty_plan(w)
    chosen = x[blocks["Job-start"]] > 0.5
    plan.start_job, plan.start_site = ix.start_job[chosen], ix.start_site[chosen]
    plan.start_step = ix.start_step[chosen]
    plan.served_req_per_s[ix.route_class, ix.route_site, :] = np.maximum(x[blocks["Route-served"]], 0.0)
    plan.renewable_used_mw = np.maximum(x[blocks["Renewable-used"]], 0.0)
    imports = np.maximum(x[blocks["Grid-import"]], 0.0)
    exports = np.zeros_like(imports)
    exports[ix.export_sites] = np.maximum(x[blocks["Grid-export"]], 0.0)
    overlap = np.minimum(imports, exports)
    plan.import_mw, plan.export_mw = imports - overlap, exports - overlap
    plan.charge_mw[ix.battery_sites] = np.maximum(x[blocks["Battery-charge"]], 0.0)
    plan.discharge_mw[ix.battery_sites] = np.maximum(x[blocks["Battery-discharge"]], 0.0)
    plan.soc_mwh[ix.battery_sites] = x[blocks["Battery-soc"]]
    plan.generator_mw[ix.generator_sites] = np.maximum(x[blocks["Generator-output"]], 0.0)
    plan.generator_on[ix.generator_sites] = (plan.generator_mw[ix.generator_sites] > 1e-6).astype(float)
    plan.generator_on[ix.generator_on_sites] = np.round(x[blocks["Generator-on"]])
    return plan
