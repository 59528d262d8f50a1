"""A scenario compiled into numpy arrays: what the optimizer and the plant compute with.

:class:`Fleet` holds the static data, one array entry per site / region / class, with absent
batteries and generators as zero-capacity entries. :func:`nominal_signals` evaluates the
scenario's series on a time grid: the "truth before noise" that the simulator perturbs and the
offline study uses directly. Carbon intensity is converted here, once, from gCO2/kWh to
tCO2/MWh (1 g/kWh = 1 kg/MWh = 1e-3 t/MWh).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scenarios.schema import Scenario
from scenarios.series import SIGNAL_RULES, resolve_series
from scenarios.signals import SIGNALS

G_PER_KWH_TO_T_PER_MWH = 1e-3
WH_PER_REQ_TO_MW_PER_REQ_S = 3600.0 / 1e6  # (req/s) x Wh/req x 3600 s/h = Wh/h; / 1e6 -> MW



@dataclass(frozen=True)
class Fleet:
    """Static arrays of a scenario. Shapes: (S,) sites, (R,) regions, (K,) classes."""

    site_names: tuple[str, ...]
    region_names: tuple[str, ...]
    class_names: tuple[str, ...]
    site_region: np.ndarray  # (S,) region index of each site
    gpus: np.ndarray
    throughput_req_per_s_per_gpu: np.ndarray
    idle_power_mw: np.ndarray
    power_capacity_mw: np.ndarray
    pue_at_reference: np.ndarray
    reference_temperature_c: np.ndarray
    pue_per_degc: np.ndarray
    pue_min: np.ndarray
    pue_max: np.ndarray
    pv_capacity_mw: np.ndarray  # already scaled by generation_scale
    wind_capacity_mw: np.ndarray
    battery_energy_mwh: np.ndarray  # 0 where no battery
    battery_charge_mw: np.ndarray
    battery_discharge_mw: np.ndarray
    battery_charge_efficiency: np.ndarray
    battery_discharge_efficiency: np.ndarray
    soc_min_mwh: np.ndarray
    soc_max_mwh: np.ndarray
    soc_initial_mwh: np.ndarray
    battery_degradation_usd_per_mwh: np.ndarray
    battery_terminal_value_usd_per_mwh: np.ndarray  # NaN = use window mean import price
    has_generator: np.ndarray  # bool
    generator_min_mw: np.ndarray
    generator_max_mw: np.ndarray
    generator_fuel_usd_per_mwh: np.ndarray
    generator_no_load_usd_per_h: np.ndarray
    generator_emission_t_per_mwh: np.ndarray
    import_limit_mw: np.ndarray
    export_limit_mw: np.ndarray
    latency_ms: np.ndarray  # (R, S)
    class_origin: np.ndarray  # (K,) region index
    class_latency_limit_ms: np.ndarray
    class_energy_mw_per_req_s: np.ndarray  # IT MW per request/s served
    class_value_usd_per_req: np.ndarray
    class_penalty_usd_per_req: np.ndarray
    route_feasible: np.ndarray  # (K, S) bool: latency(origin_k, s) <= limit_k
    home_site: np.ndarray  # (K,) nearest feasible site of each class (ties: lowest latency, first)

    @property
    def n_sites(self) -> int:
        return len(self.site_names)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def serving_capacity_req_per_s(self) -> np.ndarray:
        """(S,) requests/s a site serves with all its GPUs."""
        return self.gpus * self.throughput_req_per_s_per_gpu

    def pue(self, temperature_c: np.ndarray) -> np.ndarray:
        """PUE for ambient temperatures shaped (S, T) (see :class:`scenarios.schema.Cooling`)."""
        raw = self.pue_at_reference[:, None] + self.pue_per_degc[:, None] * (
            temperature_c - self.reference_temperature_c[:, None]
        )
        return np.clip(raw, self.pue_min[:, None], self.pue_max[:, None])


def build_fleet(scenario: Scenario) -> Fleet:
    """Compile the static part of a (validated) scenario into arrays."""
    sites = scenario.sites
    regions = [r.name for r in scenario.regions]
    classes = scenario.inference_classes

    def site_array(getter: Callable[[Any], float | None], default: float = 0.0) -> np.ndarray:
        return np.array([getter(s) if getter(s) is not None else default for s in sites], dtype=float)

    battery = [s.battery for s in sites]
    generator = [s.generator for s in sites]

    def battery_array(attribute: str, absent: float = 0.0) -> np.ndarray:
        return np.array([getattr(b, attribute) if b is not None else absent for b in battery], dtype=float)

    def generator_array(attribute: str) -> np.ndarray:
        return np.array([getattr(g, attribute) if g is not None else 0.0 for g in generator], dtype=float)

    energy = battery_array("energy_capacity_mwh")
    terminal = np.array(
        [b.terminal_value_usd_per_mwh if b is not None and b.terminal_value_usd_per_mwh is not None else np.nan
         for b in battery]
    )
    latency = np.array([[scenario.latency_ms[r][s.name] for s in sites] for r in regions], dtype=float)
    origin = np.array([regions.index(k.origin) for k in classes], dtype=np.int64)
    limit = np.array([k.latency_limit_ms for k in classes], dtype=float)
    feasible = latency[origin, :] <= limit[:, None] if classes else np.zeros((0, len(sites)), dtype=bool)
    masked = np.where(feasible, latency[origin, :], np.inf) if classes else np.zeros((0, len(sites)))
    home = np.argmin(masked, axis=1) if classes else np.zeros(0, dtype=np.int64)
    return Fleet(
        site_names=tuple(s.name for s in sites),
        region_names=tuple(regions),
        class_names=tuple(k.name for k in classes),
        site_region=np.array([regions.index(s.region) for s in sites], dtype=np.int64),
        gpus=site_array(lambda s: s.gpus),
        throughput_req_per_s_per_gpu=site_array(lambda s: s.throughput_req_per_s_per_gpu),
        idle_power_mw=site_array(lambda s: s.idle_power_mw),
        power_capacity_mw=site_array(lambda s: s.power_capacity_mw),
        pue_at_reference=site_array(lambda s: s.cooling.pue_at_reference),
        reference_temperature_c=site_array(lambda s: s.cooling.reference_temperature_c),
        pue_per_degc=site_array(lambda s: s.cooling.pue_per_degc),
        pue_min=site_array(lambda s: s.cooling.pue_min),
        pue_max=site_array(lambda s: s.cooling.pue_max),
        pv_capacity_mw=site_array(lambda s: s.pv_capacity_mw) * scenario.generation_scale,
        wind_capacity_mw=site_array(lambda s: s.wind_capacity_mw) * scenario.generation_scale,
        battery_energy_mwh=energy,
        battery_charge_mw=battery_array("charge_power_mw"),
        battery_discharge_mw=battery_array("discharge_power_mw"),
        battery_charge_efficiency=battery_array("charge_efficiency", 1.0),
        battery_discharge_efficiency=battery_array("discharge_efficiency", 1.0),
        soc_min_mwh=battery_array("soc_min_fraction") * energy,
        soc_max_mwh=battery_array("soc_max_fraction") * energy,
        soc_initial_mwh=battery_array("initial_soc_fraction") * energy,
        battery_degradation_usd_per_mwh=battery_array("degradation_cost_usd_per_mwh"),
        battery_terminal_value_usd_per_mwh=terminal,
        has_generator=np.array([g is not None for g in generator]),
        generator_min_mw=generator_array("p_min_mw"),
        generator_max_mw=generator_array("p_max_mw"),
        generator_fuel_usd_per_mwh=generator_array("fuel_cost_usd_per_mwh"),
        generator_no_load_usd_per_h=generator_array("no_load_cost_usd_per_h"),
        generator_emission_t_per_mwh=generator_array("emission_factor_t_per_mwh"),
        import_limit_mw=site_array(lambda s: s.grid.import_limit_mw),
        export_limit_mw=site_array(lambda s: s.grid.export_limit_mw),
        latency_ms=latency,
        class_origin=origin,
        class_latency_limit_ms=limit,
        class_energy_mw_per_req_s=np.array([k.energy_per_request_wh for k in classes], dtype=float)
        * WH_PER_REQ_TO_MW_PER_REQ_S,
        class_value_usd_per_req=np.array([k.value_usd_per_1k_requests for k in classes], dtype=float) / 1000.0,
        class_penalty_usd_per_req=np.array([k.unserved_penalty_usd_per_1k_requests for k in classes], dtype=float)
        / 1000.0,
        route_feasible=feasible,
        home_site=home,
    )


def time_index(start: pd.Timestamp, n_steps: int, step_hours: float) -> pd.DatetimeIndex:
    """Interval start times of a regular UTC grid."""
    return pd.date_range(pd.Timestamp(start), periods=n_steps, freq=pd.Timedelta(hours=step_hours))


def base_load_mw(scenario: Scenario, start: pd.Timestamp, n_steps: int, step_hours: float) -> pd.DataFrame:
    """Each site's exogenous load ``base_load_mw`` on a grid (index: interval starts, columns: sites), MW.

    Step means by the ``hold`` rule, like the signals. It is a declared schedule: the simulator
    adds no noise to it and controllers know it as given (no forecast error).
    """
    start = pd.Timestamp(start)
    run_start = pd.Timestamp(scenario.run.start)
    columns = {
        site.name: resolve_series(site.base_load_mw, start, n_steps, step_hours, run_start,
                                  site.longitude_deg, rule=SIGNAL_RULES["base_load"])
        for site in scenario.sites
    }
    return pd.DataFrame(columns, index=time_index(start, n_steps, step_hours), columns=[s.name for s in scenario.sites])


def nominal_signals(
    scenario: Scenario, start: pd.Timestamp, n_steps: int, step_hours: float
) -> dict[str, pd.DataFrame]:
    """The scenario's series on a grid, one DataFrame per signal (see :data:`SIGNALS`).

    Columns are site names (class names for ``demand``); the index holds interval starts.
    ``carbon`` is in tCO2/MWh; availabilities are per-unit (multiply by the fleet's scaled
    capacities for MW).
    """
    start = pd.Timestamp(start)
    run_start = pd.Timestamp(scenario.run.start)
    index = time_index(start, n_steps, step_hours)

    def evaluate(spec: object, longitude: float | None, signal: str = "import_price") -> np.ndarray:
        return resolve_series(spec, start, n_steps, step_hours, run_start, longitude,  # type: ignore[arg-type]  # a series field
                              rule=SIGNAL_RULES[signal])

    by_site: dict[str, dict[str, np.ndarray]] = {name: {} for name in SIGNALS if name != "demand"}
    for site in scenario.sites:
        lon = site.longitude_deg
        price = evaluate(site.grid.import_price_usd_per_mwh, lon)
        export = (
            evaluate(site.grid.export_price_usd_per_mwh, lon)
            if site.grid.export_price_usd_per_mwh is not None
            else site.grid.export_price_fraction * price
        )
        by_site["pv"][site.name] = np.clip(evaluate(site.pv_availability, lon), 0.0, 1.0)
        by_site["wind"][site.name] = np.clip(evaluate(site.wind_availability, lon), 0.0, 1.0)
        by_site["import_price"][site.name] = price
        by_site["export_price"][site.name] = export
        by_site["carbon"][site.name] = evaluate(site.grid.carbon_intensity_g_per_kwh, lon) * G_PER_KWH_TO_T_PER_MWH
        by_site["temperature"][site.name] = evaluate(site.ambient_temperature_c, lon, "temperature")
    longitude = {region.name: region.longitude_deg for region in scenario.regions}
    demand = {
        k.name: np.clip(evaluate(k.demand_req_per_s, longitude[k.origin]), 0.0, None)
        for k in scenario.inference_classes
    }
    frames = {name: pd.DataFrame(columns, index=index) for name, columns in by_site.items()}
    frames["demand"] = pd.DataFrame(demand, index=index, columns=[k.name for k in scenario.inference_classes])
    return {name: frames[name] for name in SIGNALS}
