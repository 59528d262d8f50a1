"""KPIs per site and per inference class next to the fleet totals, from a run's recorded frames.

:func:`kpis_by` turns the per-tick frames of a :class:`~simulator.results.RunResult` (``ticks``,
``routing``, ``jobs``) and the accounting constants of its manifest into one tidy frame, one row
per site, per inference class and one for the fleet:

* ``by`` -- ``"site"``, ``"class"`` or ``"fleet"``; ``name`` -- the site, the class, or ``"fleet"``;
* one column per KPI, with the unit in its name (NaN where a KPI does not apply to the row: a
  class has no energy, a site no demand of its own).

Every additive KPI of the site rows sums to the fleet row, and the class rows sum to it too for
the inference KPIs; the fleet row equals the run's fleet KPIs (:func:`simulator.accounting.realised_kpis`)
of the same name. The parts of the benefit that belong to no site (carbon-budget penalty, tail
energy, terminal battery value) are left to the fleet KPIs in ``kpis.json``.

Definitions (``dt`` = the plant tick in hours, sums over ticks):

* energy: ``facility_energy_mwh`` (PUE x IT), ``base_load_energy_mwh``, ``energy_import_mwh``,
  ``energy_export_mwh``, ``generator_mwh``, ``unmet_energy_mwh`` = sum(MW) x dt;
* money: ``import_cost_usd`` = sum(price x import) x dt, ``export_revenue_usd``, ``fuel_cost_usd``
  (fuel x output x dt + no-load cost x hours on), ``battery_degradation_usd``
  (cost per MWh x (charge + discharge) x dt), ``carbon_cost_usd`` = carbon price x emissions,
  ``inference_value_usd`` / ``unserved_penalty_usd`` (value / penalty per request x requests),
  ``job_reward_usd`` (jobs completed, or running at the end pro rata, at the site they ran);
* emissions: ``emissions_tco2`` = ``emissions_import_tco2`` (intensity x import x dt) +
  ``emissions_generator_tco2`` (emission factor x output x dt);
* renewables: ``renewable_available_mwh``, ``renewable_used_mwh``,
  ``renewable_self_consumption_mwh`` = sum(max(used - export, 0)) x dt and its ``_fraction`` of
  the available energy, ``curtailment_mwh`` = available - used;
* battery: ``battery_throughput_mwh`` = (charge + discharge) x dt and
  ``battery_equivalent_full_cycles`` = throughput / (2 x energy capacity) (NaN without a battery;
  the fleet's uses the fleet's capacity);
* inference: ``inference_demand_mreq`` (classes and fleet), ``inference_served_mreq``,
  ``inference_dropped_mreq`` (a site's dropped requests are those routed there or, unassigned, to
  the class's nearest site), ``inference_served_fraction``, ``mean_rtt_ms`` (round-trip time of
  the requests served, weighted by requests);
* jobs: ``jobs_started`` (at the site), ``jobs_completed``, ``jobs_late``, ``jobs_running_at_end``;
  the fleet row also counts ``jobs_submitted``, ``jobs_dropped`` and ``jobs_never_started``
  (jobs that never reached a site).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from optimizer.ledger import reward_share
from optimizer.model import SECONDS_PER_HOUR

#: KPIs whose site rows (and class rows, where present) add up to the fleet row
ADDITIVE = (
    "facility_energy_mwh", "base_load_energy_mwh", "energy_import_mwh", "energy_export_mwh", "generator_mwh",
    "unmet_energy_mwh", "import_cost_usd", "export_revenue_usd", "fuel_cost_usd", "battery_degradation_usd",
    "carbon_cost_usd", "emissions_tco2", "emissions_import_tco2", "emissions_generator_tco2",
    "renewable_available_mwh", "renewable_used_mwh", "renewable_self_consumption_mwh", "curtailment_mwh",
    "battery_throughput_mwh", "inference_value_usd", "unserved_penalty_usd", "inference_served_mreq",
    "inference_dropped_mreq", "job_reward_usd", "jobs_started", "jobs_completed", "jobs_late",
    "jobs_running_at_end",
)
#: columns of the frame in order (after ``by`` and ``name``)
COLUMNS = (
    *ADDITIVE[:10], "carbon_cost_usd", "emissions_tco2", "emissions_import_tco2", "emissions_generator_tco2",
    "renewable_available_mwh", "renewable_used_mwh", "renewable_self_consumption_mwh",
    "renewable_self_consumption_fraction", "curtailment_mwh", "battery_throughput_mwh",
    "battery_equivalent_full_cycles", "inference_value_usd", "unserved_penalty_usd", "inference_demand_mreq",
    "inference_served_mreq", "inference_dropped_mreq", "inference_served_fraction", "mean_rtt_ms",
    "job_reward_usd", "jobs_submitted", "jobs_started", "jobs_completed", "jobs_late", "jobs_running_at_end",
    "jobs_dropped", "jobs_never_started",
)


def _per(keys: pd.Series, values: np.ndarray, names: list[str]) -> np.ndarray:
    """Sum of ``values`` per name of ``names`` (rows labelled by ``keys``), in that order."""
    sums = pd.Series(values, dtype=float).groupby(keys.to_numpy()).sum()
    return sums.reindex(names, fill_value=0.0).to_numpy(dtype=float)


def kpis_by(ticks: pd.DataFrame, routing: pd.DataFrame, jobs: pd.DataFrame,
            manifest: Mapping[str, Any]) -> pd.DataFrame:
    """The tidy per-site, per-class and fleet KPI frame (module docstring) of one run.

    ``manifest`` is the run manifest: its ``accounting`` constants (tick length, site and class
    names, costs per unit, latencies, carbon price) and ``plant.battery.energy_capacity_mwh``.
    Raises ``KeyError`` when the manifest lacks the accounting constants.
    """
    c = manifest["accounting"]
    sites, classes = list(c["site_names"]), list(c["class_names"])
    dt = float(c["tick_hours"])
    S = len(sites)
    frame: dict[str, np.ndarray] = {}

    def site_sum(values: np.ndarray | pd.Series) -> np.ndarray:
        return _per(ticks["site"], np.asarray(values, dtype=float), sites)

    def per_site_constant(key: str) -> np.ndarray:
        return np.asarray(c[key], dtype=float) if len(c.get(key, [])) == S else np.zeros(S)

    col = {name: ticks[name].to_numpy(dtype=float) if name in ticks else np.zeros(len(ticks)) for name in (
        "facility_load_mw", "base_load_mw", "import_mw", "export_mw", "generator_mw", "generator_on_h",
        "unmet_load_mw", "import_price_usd_per_mwh", "export_price_usd_per_mwh", "carbon_t_per_mwh", "charge_mw",
        "discharge_mw", "renewable_available_mw", "renewable_used_mw")}
    site_of_row = pd.Index(sites).get_indexer(ticks["site"])
    fuel = per_site_constant("fuel_usd_per_mwh")[site_of_row]
    no_load = per_site_constant("no_load_usd_per_h")[site_of_row]
    emission_factor = per_site_constant("emission_t_per_mwh")[site_of_row]
    degradation = per_site_constant("degradation_usd_per_mwh")[site_of_row]
    frame["facility_energy_mwh"] = site_sum(col["facility_load_mw"] * dt)
    frame["base_load_energy_mwh"] = site_sum(col["base_load_mw"] * dt)
    frame["energy_import_mwh"] = site_sum(col["import_mw"] * dt)
    frame["energy_export_mwh"] = site_sum(col["export_mw"] * dt)
    frame["generator_mwh"] = site_sum(col["generator_mw"] * dt)
    frame["unmet_energy_mwh"] = site_sum(col["unmet_load_mw"] * dt)
    frame["import_cost_usd"] = site_sum(col["import_price_usd_per_mwh"] * col["import_mw"] * dt)
    frame["export_revenue_usd"] = site_sum(col["export_price_usd_per_mwh"] * col["export_mw"] * dt)
    frame["fuel_cost_usd"] = site_sum(fuel * col["generator_mw"] * dt + no_load * col["generator_on_h"])
    throughput = (col["charge_mw"] + col["discharge_mw"]) * dt
    frame["battery_degradation_usd"] = site_sum(degradation * throughput)
    frame["emissions_import_tco2"] = site_sum(col["carbon_t_per_mwh"] * col["import_mw"] * dt)
    frame["emissions_generator_tco2"] = site_sum(emission_factor * col["generator_mw"] * dt)
    frame["emissions_tco2"] = frame["emissions_import_tco2"] + frame["emissions_generator_tco2"]
    frame["carbon_cost_usd"] = float(c.get("carbon_price_usd_per_tco2", 0.0)) * frame["emissions_tco2"]
    frame["renewable_available_mwh"] = site_sum(col["renewable_available_mw"] * dt)
    frame["renewable_used_mwh"] = site_sum(col["renewable_used_mw"] * dt)
    frame["renewable_self_consumption_mwh"] = site_sum(
        np.maximum(col["renewable_used_mw"] - col["export_mw"], 0.0) * dt)
    frame["curtailment_mwh"] = frame["renewable_available_mwh"] - frame["renewable_used_mwh"]
    frame["battery_throughput_mwh"] = site_sum(throughput)
    capacity = _battery_capacity(manifest, sites)

    # inference, from the routing frame: per (class, site) row
    requests = SECONDS_PER_HOUR * dt / 1e6  # M requests per req/s over one tick
    class_index = pd.Index(classes)
    site_index = pd.Index(sites)
    if len(routing):
        k = class_index.get_indexer(routing["class"])
        s = site_index.get_indexer(routing["site"])
        served = routing["served_req_per_s"].to_numpy(dtype=float)
        dropped = routing["dropped_req_per_s"].to_numpy(dtype=float)
    else:
        k = s = np.zeros(0, np.int64)
        served = dropped = np.zeros(0)
    value = np.asarray(c.get("value_usd_per_req", []), dtype=float)
    penalty = np.asarray(c.get("penalty_usd_per_req", []), dtype=float)
    latency = np.asarray(c.get("latency_ms", []), dtype=float).reshape(len(classes), S) if classes else np.zeros((0, S))
    row_value = value[k] * served * requests * 1e6 if len(k) else np.zeros(0)
    row_penalty = penalty[k] * dropped * requests * 1e6 if len(k) else np.zeros(0)
    row_latency = latency[k, s] * served if len(k) else np.zeros(0)

    def by_site(values: np.ndarray) -> np.ndarray:
        return np.bincount(s, weights=values, minlength=S).astype(float) if len(s) else np.zeros(S)

    def by_class(values: np.ndarray) -> np.ndarray:
        K = len(classes)
        return np.bincount(k, weights=values, minlength=K).astype(float) if len(k) else np.zeros(K)

    frame["inference_value_usd"] = by_site(row_value)
    frame["unserved_penalty_usd"] = by_site(row_penalty)
    frame["inference_served_mreq"] = by_site(served * requests)
    frame["inference_dropped_mreq"] = by_site(dropped * requests)
    site_latency = by_site(row_latency * requests)

    # jobs, at the site they were placed
    job_site = jobs["site"].astype(str).to_numpy() if len(jobs) else np.zeros(0, dtype=object)
    status = jobs["status"].astype(str).to_numpy() if len(jobs) else np.zeros(0, dtype=object)
    reward = jobs["value_usd"].to_numpy(dtype=float) if len(jobs) else np.zeros(0)
    earned = np.isin(status, ("completed", "late", "running"))
    placed = pd.Series(job_site)
    # the ledger's run-end convention: a job running at the end earns its reward pro rata
    share = (reward_share(jobs["start_h"].to_numpy(dtype=float), jobs["duration_h"].to_numpy(dtype=float),
                          float(c.get("run_hours", np.inf))) if len(jobs) else np.zeros(0))
    frame["job_reward_usd"] = _per(placed, np.where(earned, reward * np.nan_to_num(share), 0.0), sites)
    frame["jobs_started"] = _per(placed, np.isin(status, ("completed", "late", "running")).astype(float), sites)
    frame["jobs_completed"] = _per(placed, (status == "completed").astype(float), sites)
    frame["jobs_late"] = _per(placed, (status == "late").astype(float), sites)
    frame["jobs_running_at_end"] = _per(placed, (status == "running").astype(float), sites)

    site_rows = pd.DataFrame({"by": "site", "name": sites, **frame})
    site_rows["renewable_self_consumption_fraction"] = _ratio(frame["renewable_self_consumption_mwh"],
                                                              frame["renewable_available_mwh"])
    site_rows["battery_equivalent_full_cycles"] = _ratio(frame["battery_throughput_mwh"], 2 * capacity)
    site_rows["inference_served_fraction"] = np.nan  # a site has no demand of its own
    site_rows["mean_rtt_ms"] = _ratio(site_latency, frame["inference_served_mreq"])

    class_served, class_dropped = by_class(served * requests), by_class(dropped * requests)
    class_rows = pd.DataFrame({
        "by": "class", "name": classes,
        "inference_value_usd": by_class(row_value), "unserved_penalty_usd": by_class(row_penalty),
        "inference_demand_mreq": class_served + class_dropped,
        "inference_served_mreq": class_served, "inference_dropped_mreq": class_dropped,
        "inference_served_fraction": _ratio(class_served, class_served + class_dropped),
        "mean_rtt_ms": _ratio(by_class(row_latency * requests), class_served),
    })

    fleet = {key: float(np.sum(values)) for key, values in frame.items()}
    fleet["renewable_self_consumption_fraction"] = float(_ratio(fleet["renewable_self_consumption_mwh"],
                                                                fleet["renewable_available_mwh"]))
    fleet["battery_equivalent_full_cycles"] = float(_ratio(fleet["battery_throughput_mwh"],
                                                           2 * np.nansum(capacity)))
    demand = fleet["inference_served_mreq"] + fleet["inference_dropped_mreq"]
    fleet["inference_demand_mreq"] = demand
    fleet["inference_served_fraction"] = float(_ratio(fleet["inference_served_mreq"], demand))
    fleet["mean_rtt_ms"] = float(_ratio(site_latency.sum(), fleet["inference_served_mreq"]))
    fleet["jobs_submitted"] = float(len(jobs))
    fleet["jobs_dropped"] = float((status == "dropped").sum())
    fleet["jobs_never_started"] = float((status == "never-started").sum())
    fleet_row = pd.DataFrame([{"by": "fleet", "name": "fleet", **fleet}])

    out = pd.concat([site_rows, class_rows, fleet_row], ignore_index=True)
    out = out.reindex(columns=["by", "name", *COLUMNS])
    for name in COLUMNS:
        out[name] = out[name].astype(float)
    out["by"] = out["by"].astype(str)
    out["name"] = out["name"].astype(str)
    return out


def _ratio(numerator: np.ndarray | float, denominator: np.ndarray | float) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is not positive."""
    num, den = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den > 0)


def _battery_capacity(manifest: Mapping[str, Any], sites: list[str]) -> np.ndarray:
    """(S,) energy capacity (MWh) per site from the manifest's plant configuration (0: no battery)."""
    capacity = manifest.get("plant", {}).get("battery", {}).get("energy_capacity_mwh", {})
    return np.array([float(capacity.get(site, 0.0) or 0.0) for site in sites])


#: rows of the ``--by`` tables: (column of the kpis_by frame, label with unit, format)
BY_KPIS = (
    ("facility_energy_mwh", "facility energy (MWh)", "{:,.1f}"),
    ("base_load_energy_mwh", "base load (MWh)", "{:,.1f}"),
    ("energy_import_mwh", "imported (MWh)", "{:,.1f}"),
    ("energy_export_mwh", "exported (MWh)", "{:,.1f}"),
    ("generator_mwh", "generator (MWh)", "{:,.1f}"),
    ("unmet_energy_mwh", "unmet load (MWh)", "{:,.1f}"),
    ("import_cost_usd", "import cost (USD)", "{:,.0f}"),
    ("export_revenue_usd", "export revenue (USD)", "{:,.0f}"),
    ("fuel_cost_usd", "fuel cost (USD)", "{:,.0f}"),
    ("battery_degradation_usd", "battery wear (USD)", "{:,.0f}"),
    ("carbon_cost_usd", "carbon cost (USD)", "{:,.0f}"),
    ("emissions_tco2", "emissions (tCO2)", "{:,.1f}"),
    ("renewable_available_mwh", "renewables available (MWh)", "{:,.1f}"),
    ("renewable_self_consumption_fraction", "renewables used on site", "{:.1%}"),
    ("curtailment_mwh", "curtailed (MWh)", "{:,.1f}"),
    ("battery_throughput_mwh", "battery throughput (MWh)", "{:,.1f}"),
    ("battery_equivalent_full_cycles", "battery equivalent full cycles", "{:.2f}"),
    ("inference_value_usd", "inference value (USD)", "{:,.0f}"),
    ("unserved_penalty_usd", "unserved penalty (USD)", "{:,.0f}"),
    ("inference_demand_mreq", "inference demand (M req)", "{:,.1f}"),
    ("inference_served_mreq", "inference served (M req)", "{:,.1f}"),
    ("inference_dropped_mreq", "inference dropped (M req)", "{:,.2f}"),
    ("inference_served_fraction", "inference served", "{:.2%}"),
    ("mean_rtt_ms", "mean RTT served (ms)", "{:.1f}"),
    ("job_reward_usd", "job rewards (USD)", "{:,.0f}"),
    ("jobs_submitted", "jobs submitted", "{:.0f}"),
    ("jobs_started", "jobs started", "{:.0f}"),
    ("jobs_completed", "jobs completed", "{:.0f}"),
    ("jobs_late", "jobs late", "{:.0f}"),
    ("jobs_running_at_end", "jobs running at end", "{:.0f}"),
    ("jobs_dropped", "jobs dropped (queued)", "{:.0f}"),
    ("jobs_never_started", "jobs never started", "{:.0f}"),
)


def by_table(kpis_by: pd.DataFrame, by: str) -> str:
    """KPIs as rows, the sites (or classes) and the fleet as columns; rows that apply to none are left out."""
    rows = kpis_by[kpis_by["by"].isin([by, "fleet"])]
    names = list(rows["name"])
    header = ["KPI", *names]
    body = []
    for key, label, fmt in BY_KPIS:
        if key not in rows.columns:
            continue
        values = rows[key].to_numpy(dtype=float)
        if not (values == values).any():  # NaN everywhere: not a KPI of this breakdown
            continue
        body.append([label, *(fmt.format(v) if v == v else "-" for v in values)])
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join([row[0].ljust(widths[0]), *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:],
                                                                                            strict=True))])
                     for row in [header, *body])
