"""Write the built-in scenarios ``us-3site``, ``fleet-10`` and ``fleet-50`` (``scenarios/library``) reproducibly.

Provenance documentation, like ``make_data_slices.py``: every number in the three TOML files is
either written here with the reason it was chosen, or derived here from the shipped data
(:mod:`scenarios.datasets`) and a seeded :func:`numpy.random.default_rng`. Rerunning the script
gives byte-identical files (``tests/test_builtin_scenarios.py`` checks that). Run it from the
repository root::

    .venv/bin/python benchmarks/make_builtin_scenarios.py [--out scenarios/library]

Derived numbers:

* **Latency** (region -> site, round trip, ms) comes from Microsoft's Azure inter-region P50
  RTT matrix (:func:`scenarios.datasets.load_latency_matrix`, row = the user's region, column =
  the site's region), with the mapping of each place to an Azure region written below. Two
  places in the same Azure region get ``INTRA_REGION_MS`` (the matrix's own diagonal is an
  assumed 1 ms). In ``fleet-10`` and ``fleet-50`` the places are cities (``fleet-50``: campuses
  a few km from them), not Azure regions, so the fibre round trip from each place to its Azure
  region is added (``ACCESS_MS_PER_KM``).
* **Inference demand**: each class's shape is scaled so that its mean over the run is its share
  of the total, and the common total is chosen so that the *peak* of the summed demand (at the
  run's control interval) is ``PEAK_DEMAND_FRACTION`` of the fleet's serving capacity
  (GPUs x throughput).
* **Power capacity** per site: full load (idle + 1.1 kW on every GPU) times the PUE at the
  hottest hour of the run, with a 2 % margin, but at least 1.6 MW per 1,000 GPUs.
* **Carbon budget**: ``BUDGET_FRACTION`` (``fleet-50``: ``FLEET50_BUDGET_FRACTION``) of the
  emissions of a business-as-usual fleet at its *expected* load (inference at each class's
  nearest feasible site, the job population's mean GPU-hours spread over sites in proportion to
  GPUs), with local PV and wind used first and the rest imported (no battery, no generator, no
  shifting). Measured against imports *without* renewables (the plain "all on grid power"
  estimate) such a budget would not bind at all, because the sites' PV and wind cover a large
  share of the energy. Each fraction is calibrated so the budget binds the scenario's offline
  joint optimum by about 5 %.
"""

from __future__ import annotations

import argparse
import math
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from scenarios import build_fleet, nominal_signals, parse_scenario
from scenarios.datasets import load_latency_matrix, load_series, load_sites
from scenarios.schema import Scenario

REPO_ROOT = Path(__file__).resolve().parents[1]
LIBRARY = REPO_ROOT / "scenarios" / "library"

INTRA_REGION_MS = 3.0  # metro round trip between two places served by the same Azure region
# Fibre round trip per km of great-circle distance: 2 ways x 1.5 route factor / 200 km per ms.
ACCESS_MS_PER_KM = 2 * 1.5 / 200.0
GPU_POWER_KW = 1.1  # IT power of a busy GPU incl. its share of host, network and storage
IDLE_MW_PER_1K_GPUS = 0.25  # IT power of an idle GPU fleet: hosts, network, storage
THROUGHPUT_REQ_PER_S_PER_GPU = 2.0
PEAK_DEMAND_FRACTION = 0.6  # peak total inference demand / fleet serving capacity
# Carbon budget / business-as-usual estimate. Calibrated on fleet-10: its offline joint optimum
# without a budget emits about 0.84 x the estimate (420 of 506 t), so 0.8 binds by about 5 %.
BUDGET_FRACTION = 0.8
CARBON_PRICE_USD_PER_TCO2 = 30.0
GPU_CHOICES = [256, 512, 1024, 2048, 4096]
GPU_WEIGHTS = [0.35, 0.3, 0.2, 0.1, 0.05]  # most jobs are fine-tunes and evaluations
VALUE_USD_PER_GPU_H = (0.4, 1.5)
JOB_SITE_HEADROOM = 2  # fleet-50: a job is eligible only where it takes at most half of the GPUs

# Azure region locations (latitude, longitude) as listed by `az account list-locations`.
AZURE_LOCATION = {
    "West US": (37.783, -122.417),
    "West US 2": (47.233, -119.852),
    "South Central US": (29.4167, -98.5),
    "North Central US": (41.8819, -87.6278),
    "East US": (37.3719, -79.8164),
    "Canada Central": (43.653, -79.383),
    "Germany West Central": (50.1109, 8.6821),
    "UK South": (50.941, -0.799),
    "Southeast Asia": (1.283, 103.833),
    "Australia East": (-33.86, 151.2094),
    "Australia Southeast": (-37.8136, 144.9631),
    "Brazil South": (-23.55, -46.633),
    "South Africa North": (-25.7313, 28.2184),
    "Korea Central": (37.5665, 126.978),
    "Central India": (18.5822, 73.9197),
    "Japan East": (35.68, 139.77),
}


# --------------------------------------------------------------------------------------------
# TOML text: hand-written so the files keep their comments and a stable layout
# --------------------------------------------------------------------------------------------


def toml_value(value) -> str:
    """One TOML value; floats keep at most 6 decimals, dicts become inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(round(value, 6))
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def line(key: str, value, comment: str = "") -> str:
    text = f"{key} = {toml_value(value)}"
    return f"{text}  # {comment}" if comment else text


def comments(text: str) -> list[str]:
    return [f"# {row}".rstrip() for row in text.strip("\n").split("\n")]


def sig(value: float, digits: int = 4) -> float:
    """Round to significant digits, so the files show readable numbers."""
    return float(f"{value:.{digits}g}")


# --------------------------------------------------------------------------------------------
# Shared derivations
# --------------------------------------------------------------------------------------------


def data(dataset: str, key: str, **extra) -> dict:
    return {"kind": "data", "dataset": dataset, "key": key, **extra}


def weather_series(weather_key: str) -> dict[str, tuple[dict, str]]:
    return {
        "ambient_temperature_c": (data("temperature_2022", weather_key), f"ERA5 2 m temperature, {weather_key}"),
        "pv_availability": (data("pv_availability_2022", weather_key), "clear-sky x cloud cover (derived)"),
        "wind_availability": (data("wind_availability_2022", weather_key), "10 m wind -> power curve (derived)"),
    }


def great_circle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def azure_rtt_ms(source: str, destination: str) -> float:
    if source == destination:
        return INTRA_REGION_MS
    return float(load_latency_matrix().loc[source, destination])


@dataclass(frozen=True)
class SiteSpec:
    """What is chosen by hand for a site; capacities in the files are derived from it."""

    name: str
    region: str
    latitude_deg: float
    longitude_deg: float
    weather: str  # weather site code of the shipped data
    gpus: int
    cooling: dict
    pv_mw: float
    wind_mw: float
    battery_mwh: float
    battery_c_rate: float  # charge/discharge power per MWh of capacity
    price: tuple[dict, str]  # series, comment
    carbon: tuple[dict, str]
    generator: dict | None = None
    note: str = ""
    import_limit_share: float | None = None  # of the power capacity; None = the layout's share


@dataclass(frozen=True)
class ClassSpec:
    name: str
    origin: str
    latency_limit_ms: float
    energy_per_request_wh: float
    value_usd_per_1k: float
    penalty_fraction: float  # unserved penalty / value
    share: float  # of the total mean demand
    shape: dict  # demand series with scale 1 (data) or mean 1 (generated)
    note: str = ""


def pue_at(cooling: dict, temperature_c: np.ndarray) -> np.ndarray:
    raw = cooling["pue_at_reference"] + cooling["pue_per_degc"] * (temperature_c - cooling["reference_temperature_c"])
    return np.clip(raw, cooling["pue_min"], cooling["pue_max"])


def power_capacity_mw(site: SiteSpec, start: pd.Timestamp, days: float) -> float:
    """Full IT load at the hottest hour of the run, times its PUE, +2 %, at least 1.6 MW/1k GPUs."""
    temperature = load_series("temperature_2022", site.weather)
    in_run = temperature[(temperature.index >= start) & (temperature.index < start + pd.Timedelta(days=days))]
    full_it_mw = site.gpus * (IDLE_MW_PER_1K_GPUS + GPU_POWER_KW) / 1000.0
    needed = full_it_mw * float(pue_at(site.cooling, in_run.to_numpy()).max()) * 1.02
    return math.ceil(max(needed, 1.6 * site.gpus / 1000.0) * 2) / 2  # up to 0.5 MW


def demand_scales(classes: list[ClassSpec], capacity_req_per_s: float, start: pd.Timestamp,
                  n_steps: int, step_h: float, longitude: dict[str, float]) -> dict[str, float]:
    """Per class: the data `scale` or generated `mean` that gives the shares and the peak target."""
    from scenarios.series import DataSeries, GeneratedSeries, resolve_series

    unit: dict[str, np.ndarray] = {}
    for klass in classes:
        spec = DataSeries(**klass.shape) if klass.shape["kind"] == "data" else GeneratedSeries(**klass.shape)
        values = resolve_series(spec, start, n_steps, step_h, longitude_deg=longitude[klass.origin])
        unit[klass.name] = klass.share * values / values.mean()  # mean = share
    total_at_unit = sum(unit.values())
    mean_total = PEAK_DEMAND_FRACTION * capacity_req_per_s / float(np.max(total_at_unit))
    scales = {}
    for klass in classes:
        if klass.shape["kind"] == "data":
            spec = DataSeries(**klass.shape)
            raw_mean = resolve_series(spec, start, n_steps, step_h).mean()
            scales[klass.name] = sig(klass.share * mean_total / raw_mean)
        else:
            scales[klass.name] = sig(klass.share * mean_total)
    return scales


def demand_series(klass: ClassSpec, scale: float) -> dict:
    if klass.shape["kind"] == "data":
        return {**klass.shape, "scale": scale}
    # generated shapes are written with mean 1 and amplitude a: multiply both
    return {**klass.shape, "mean": scale, "amplitude": sig(scale * klass.shape["amplitude"])}


def expected_emissions_t(scenario: Scenario) -> tuple[float, float]:
    """(business-as-usual emissions with local renewables first, the same all from the grid), tCO2.

    Expected load: each class's demand served at its nearest feasible site up to the GPUs left
    by training; training = the job population's mean busy GPUs (Little's law: arrival rate x
    mean GPUs x mean duration), spread over sites in proportion to their GPUs.
    """
    run = scenario.run
    step_h = run.control_interval_minutes / 60.0
    n_steps = int(round(run.days * 24 / step_h))
    fleet = build_fleet(scenario)
    signals = nominal_signals(scenario, pd.Timestamp(run.start), n_steps, step_h)
    population = scenario.job_population
    assert population is not None
    weights = np.array(population.gpus_weights or [1.0] * len(population.gpus_choices))
    mean_gpus = float(np.dot(weights / weights.sum(), population.gpus_choices))
    mean_duration_h = (population.duration_h_min + population.duration_h_max) / 2
    busy_gpus = population.arrival_rate_per_h * mean_gpus * mean_duration_h * fleet.gpus / fleet.gpus.sum()
    demand = signals["demand"].to_numpy().T  # (K, T)
    served_mw = np.zeros((fleet.n_sites, n_steps))
    for s in range(fleet.n_sites):
        at_site = fleet.home_site == s
        room_req_per_s = (fleet.gpus[s] - busy_gpus[s]) * fleet.throughput_req_per_s_per_gpu[s]
        rate = demand[at_site].sum(axis=0)
        share = np.minimum(1.0, room_req_per_s / np.maximum(rate, 1e-9))
        served_mw[s] = share * (fleet.class_energy_mw_per_req_s[at_site] @ demand[at_site])
    it_mw = fleet.idle_power_mw[:, None] + busy_gpus[:, None] * GPU_POWER_KW / 1000.0 + served_mw
    facility_mw = it_mw * fleet.pue(signals["temperature"].to_numpy().T)
    renewable_mw = (signals["pv"].to_numpy().T * fleet.pv_capacity_mw[:, None]
                    + signals["wind"].to_numpy().T * fleet.wind_capacity_mw[:, None])
    carbon = signals["carbon"].to_numpy().T
    net = float((np.maximum(facility_mw - renewable_mw, 0.0) * carbon).sum() * step_h)
    gross = float((facility_mw * carbon).sum() * step_h)
    return net, gross


def draw_jobs(rng: np.random.Generator, count: int, horizon_h: float, duration_h: tuple[int, int],
              slack_h: tuple[float, float], site_names: list[str], eligible_fraction: float,
              step_h: float, prefix: str, site_gpus: list[int] | None = None) -> list[dict]:
    """Seeded explicit jobs, all feasible: release + duration <= deadline <= horizon.

    With ``site_gpus`` (one count per site) a job's eligible sites are drawn only among the sites
    with at least ``JOB_SITE_HEADROOM`` x its GPUs, so every job fits and leaves room for inference.
    """
    jobs = []
    per_h = round(1 / step_h)
    n_eligible = max(1, round(eligible_fraction * len(site_names)))
    for _ in range(count):
        gpus = int(rng.choice(GPU_CHOICES, p=GPU_WEIGHTS))
        duration = int(rng.integers(duration_h[0], duration_h[1] + 1))
        release = int(rng.integers(0, (horizon_h - duration) * per_h + 1)) / per_h
        slack = round(rng.uniform(*slack_h) * per_h) / per_h
        deadline = min(horizon_h, release + duration + slack)
        value = round(gpus * duration * rng.uniform(*VALUE_USD_PER_GPU_H))
        if site_gpus is None:
            chosen = sorted(rng.choice(len(site_names), size=n_eligible, replace=False))
        else:
            candidates = np.flatnonzero(np.asarray(site_gpus) >= JOB_SITE_HEADROOM * gpus)
            chosen = sorted(rng.choice(candidates, size=min(n_eligible, len(candidates)), replace=False))
        job = {"name": "", "gpus": gpus, "power_mw": round(gpus * GPU_POWER_KW / 1000, 4),
               "duration_h": float(duration), "release_h": float(release), "deadline_h": float(deadline),
               "value_usd": float(value)}
        if n_eligible < len(site_names):
            job["sites"] = [site_names[k] for k in chosen]
        jobs.append(job)
    jobs.sort(key=lambda job: job["release_h"])  # stable: ties keep the draw order
    width = max(2, len(str(count - 1)))
    return [{**job, "name": f"{prefix}-{i:0{width}d}"} for i, job in enumerate(jobs)]


# --------------------------------------------------------------------------------------------
# Writing one scenario
# --------------------------------------------------------------------------------------------


def site_lines(site: SiteSpec, start: pd.Timestamp, days: float, import_limit_share: float,
               export_limit_share: float) -> list[str]:
    capacity = power_capacity_mw(site, start, days)
    if site.import_limit_share is not None:
        import_limit_share = site.import_limit_share
    import_note = ("the site's power capacity" if import_limit_share == 1.0 else
                   f"{import_limit_share:.0%} of the power capacity: grid-constrained")
    rows = ["", *(comments(site.note) if site.note else []), "[[sites]]",
            line("name", site.name), line("region", site.region),
            line("latitude_deg", site.latitude_deg), line("longitude_deg", site.longitude_deg),
            line("gpus", site.gpus),
            line("throughput_req_per_s_per_gpu", THROUGHPUT_REQ_PER_S_PER_GPU),
            line("idle_power_mw", round(site.gpus * IDLE_MW_PER_1K_GPUS / 1000, 3),
                 f"{IDLE_MW_PER_1K_GPUS} MW per 1,000 GPUs"),
            line("power_capacity_mw", capacity,
                 f"{capacity / site.gpus * 1000:.2f} MW/1k GPUs: full load x PUE at the run's hottest hour"),
            line("cooling", site.cooling)]
    for key, (series, note) in weather_series(site.weather).items():
        rows.append(line(key, series, note))
    rows += [line("pv_capacity_mw", site.pv_mw), line("wind_capacity_mw", site.wind_mw)]
    if site.battery_mwh > 0:
        power = site.battery_mwh * site.battery_c_rate
        rows.append(line("battery", {
            "energy_capacity_mwh": site.battery_mwh, "charge_power_mw": power, "discharge_power_mw": power,
            "charge_efficiency": 0.95, "discharge_efficiency": 0.95, "soc_min_fraction": 0.1,
            "soc_max_fraction": 0.9, "initial_soc_fraction": 0.5, "degradation_cost_usd_per_mwh": 5.0,
        }, f"{site.battery_c_rate:g}C"))
    if site.generator is not None:
        rows.append(line("generator", site.generator))
    rows += ["", "[sites.grid]",
             line("import_limit_mw", capacity * import_limit_share, import_note),
             line("export_limit_mw", round(capacity * export_limit_share, 1),
                  f"{export_limit_share:.0%} of the power capacity"),
             line("export_price_fraction", 0.7, "export earns 70 % of the import price"),
             line("import_price_usd_per_mwh", site.price[0], site.price[1]),
             line("carbon_intensity_g_per_kwh", site.carbon[0], site.carbon[1])]
    return rows


def class_lines(klass: ClassSpec, scale: float, feasible: list[str]) -> list[str]:
    penalty = round(klass.value_usd_per_1k * klass.penalty_fraction, 4)
    return ["", "[[inference_classes]]", line("name", klass.name), line("origin", klass.origin),
            line("latency_limit_ms", klass.latency_limit_ms, "feasible: " + ", ".join(feasible)),
            line("energy_per_request_wh", klass.energy_per_request_wh),
            line("value_usd_per_1k_requests", klass.value_usd_per_1k),
            line("unserved_penalty_usd_per_1k_requests", penalty, f"{klass.penalty_fraction:g} x value"),
            line("demand_req_per_s", demand_series(klass, scale), klass.note)]


def job_lines(job: dict) -> list[str]:
    return ["", "[[jobs]]", *(line(key, value) for key, value in job.items())]


def latency_table(regions: list[str], sites: list[str], latency: dict[str, dict[str, float]]) -> list[str]:
    rows: list[str] = []
    for region in regions:
        rows += ["", f"[latency_ms.{region}]", *(line(site, latency[region][site]) for site in sites)]
    return rows


def feasible_sites(klass: ClassSpec, latency: dict[str, dict[str, float]]) -> list[str]:
    row = latency[klass.origin]
    return [site for site, ms in row.items() if ms <= klass.latency_limit_ms]



def carbon_lines(estimate: tuple[float, float] | None, fraction: float = BUDGET_FRACTION) -> list[str]:
    """The carbon table; ``estimate`` = (business-as-usual tCO2 net of renewables, all from grid);
    the budget is ``fraction`` x the first."""
    rows = [""]
    if estimate is not None:
        net, gross = estimate
        rows += comments(f"""Budget for the whole run, sized for closed-loop runs with the job population:
{fraction:g} x {net:,.0f} t, the emissions of the expected load (inference at each class's nearest
site, the population's mean training load) with local PV and wind used first and the rest
imported; all from the grid the same load would emit {gross:,.0f} t. See the generator.""")
    rows.append("[carbon]")
    if estimate is not None:
        rows.append(line("budget_tco2", float(round(fraction * estimate[0], -1))))
    rows += [line("price_usd_per_tco2", CARBON_PRICE_USD_PER_TCO2), line("pacing", "proportional"),
             line("violation_penalty_usd_per_tco2", 1000.0)]
    return rows


def population_lines(rate_per_h: float, duration: tuple[float, float], slack: tuple[float, float],
                     eligible_fraction: float) -> list[str]:
    return ["", "# Stochastic submissions for closed-loop runs.", "[job_population]",
            line("arrival_rate_per_h", rate_per_h), line("gpus_choices", GPU_CHOICES),
            line("gpus_weights", GPU_WEIGHTS, "mostly fine-tunes and evaluations"),
            line("duration_h_min", duration[0]), line("duration_h_max", duration[1]),
            line("slack_h_min", slack[0]), line("slack_h_max", slack[1]),
            line("power_kw_per_gpu", GPU_POWER_KW),
            line("value_usd_per_gpu_h_min", VALUE_USD_PER_GPU_H[0]),
            line("value_usd_per_gpu_h_max", VALUE_USD_PER_GPU_H[1]),
            line("eligible_site_fraction", eligible_fraction)]


def region_lines(name: str, latitude_deg: float, longitude_deg: float, note: str) -> list[str]:
    return ["", f"[[regions]]  # {note}", line("name", name), line("latitude_deg", latitude_deg),
            line("longitude_deg", longitude_deg)]


def run_lines(start: pd.Timestamp, days: float, control_minutes: float, note: str) -> list[str]:
    return ["", "[run]", line("start", start.to_pydatetime(), note), line("days", days),
            line("plant_tick_minutes", 5.0), line("control_interval_minutes", control_minutes),
            line("horizon_hours", 24.0), line("seed", 0)]


@dataclass(frozen=True)
class Layout:
    """Everything a scenario file is written from."""

    name: str
    description: str
    header: str
    start: pd.Timestamp
    days: float
    control_minutes: float
    start_note: str
    regions: list[tuple[str, float, float, str]]  # name, lat, lon, note
    latency_note: str
    latency: dict[str, dict[str, float]]
    sites: list[SiteSpec]
    classes: list[ClassSpec]
    jobs: list[dict]
    jobs_note: str
    population: tuple[float, tuple[float, float], tuple[float, float], float]
    budget_fraction: float = BUDGET_FRACTION  # carbon budget / business-as-usual estimate

    @property
    def step_h(self) -> float:
        return self.control_minutes / 60.0

    @property
    def n_steps(self) -> int:
        return int(round(self.days * 24 / self.step_h))

    @property
    def serving_capacity_req_per_s(self) -> float:
        return sum(site.gpus for site in self.sites) * THROUGHPUT_REQ_PER_S_PER_GPU


def scenario_text(layout: Layout, estimate: tuple[float, float] | None) -> str:
    longitude = {name: lon for name, _, lon, _ in layout.regions}
    scales = demand_scales(layout.classes, layout.serving_capacity_req_per_s, layout.start, layout.n_steps,
                           layout.step_h, longitude)
    rows = [*comments(layout.header), line("name", layout.name), line("description", layout.description),
            line("generation_scale", 1.0)]
    rows += run_lines(layout.start, layout.days, layout.control_minutes, layout.start_note)
    rows += carbon_lines(estimate, layout.budget_fraction)
    rows += population_lines(*layout.population)
    for region in layout.regions:
        rows += region_lines(*region)
    rows += ["", *comments(layout.latency_note)]
    rows += latency_table([r[0] for r in layout.regions], [s.name for s in layout.sites], layout.latency)
    for site in layout.sites:
        rows += site_lines(site, layout.start, layout.days, 1.0, 0.3)
    rows += ["", "# Inference: demand scaled so that the peak total is "
             f"{PEAK_DEMAND_FRACTION:.0%} of the fleet's serving capacity "
             f"({layout.serving_capacity_req_per_s:,.0f} req/s)."]
    for klass in layout.classes:
        rows += class_lines(klass, scales[klass.name], feasible_sites(klass, layout.latency))
    rows += ["", *comments(layout.jobs_note)]
    for job in layout.jobs:
        rows += job_lines(job)
    return "\n".join(rows) + "\n"


def finalise(layout: Layout) -> tuple[str, Scenario, dict[str, float]]:
    """Two passes: write without a budget, estimate emissions on the parsed draft, write again."""
    draft = parse_scenario(tomllib.loads(scenario_text(layout, None)), f"{layout.name} (draft)")
    net, gross = expected_emissions_t(draft)
    text = scenario_text(layout, (net, gross))
    scenario = parse_scenario(tomllib.loads(text), layout.name)
    assert scenario.carbon.budget_tco2 is not None
    return text, scenario, {"bau_net_t": net, "bau_all_grid_t": gross, "budget_t": scenario.carbon.budget_tco2}


# Class kind -> (energy per request Wh, value USD per 1k requests, unserved penalty / value).
CLASS_KINDS = {
    "realtime": (0.10, 0.2, 1.0),
    "chat": (0.12, 0.15, 0.7),
    "assistant": (0.14, 0.1, 0.5),
    "batch": (0.15, 0.06, 0.3),
}


def limit_admitting(origin: str, row: dict[str, float], count: int) -> float:
    """Latency limit (ms) that admits exactly the `count` nearest sites of a latency row.

    The midpoint between the count-th and the next nearest site, rounded to 1 ms; ValueError when
    the two are equally far (or so close that the rounded midpoint admits both).
    """
    ordered = sorted(row.values())
    upper = ordered[count] if count < len(ordered) else ordered[-1] + 20.0
    limit = float(round((ordered[count - 1] + upper) / 2))
    if not ordered[count - 1] <= limit < upper:
        raise ValueError(f"{origin}: sites {count} and {count + 1} are equally far; choose another count")
    return limit


def class_by_feasible_count(origin: str, row: dict[str, float], count: int, share: float, shape: dict,
                            note: str) -> ClassSpec:
    """A class whose latency limit admits exactly its `count` nearest sites.

    The limit is the midpoint between the count-th and the next nearest site, rounded to 1 ms;
    the class's economics follow from how latency-sensitive that makes it.
    """
    limit = limit_admitting(origin, row, count)
    kind = {1: "realtime", 2: "chat", 3: "assistant", 4: "batch"}[count]
    return ClassSpec(f"{kind}-{origin}", origin, limit, *CLASS_KINDS[kind], share, shape, note)


# --------------------------------------------------------------------------------------------
# us-3site: three US campuses on real 2022 data, one week
# --------------------------------------------------------------------------------------------

US3_START = pd.Timestamp("2022-07-11T00:00:00Z")
US3_SEED = 20220711
# User regions are Azure regions (the place a user's traffic enters Azure's backbone).
US3_REGIONS = {  # name: (Azure region, representative city latitude, longitude)
    "us-west": ("West US", 37.77, -122.42),  # San Francisco Bay Area
    "us-northwest": ("West US 2", 47.61, -122.33),  # Seattle
    "us-central": ("South Central US", 29.42, -98.49),  # San Antonio
    "us-midwest": ("North Central US", 41.88, -87.63),  # Chicago
    "us-east": ("East US", 38.90, -77.04),  # Washington DC / northern Virginia
}
US3_SITE_AZURE = {"ca": "West US", "tx": "South Central US", "va": "East US"}
MILD_COOLING = {"pue_at_reference": 1.15, "reference_temperature_c": 20.0, "pue_per_degc": 0.008,
                "pue_min": 1.08, "pue_max": 1.5}
HOT_COOLING = {"pue_at_reference": 1.2, "reference_temperature_c": 20.0, "pue_per_degc": 0.01,
               "pue_min": 1.1, "pue_max": 1.6}
TEMPERATE_COOLING = {"pue_at_reference": 1.18, "reference_temperature_c": 20.0, "pue_per_degc": 0.009,
                     "pue_min": 1.08, "pue_max": 1.55}
GAS_ENGINES = {"p_min_mw": 3.0, "p_max_mw": 12.0, "fuel_cost_usd_per_mwh": 140.0, "no_load_cost_usd_per_h": 150.0,
               "emission_factor_t_per_mwh": 0.55}
DIESEL_BACKUP = {"p_min_mw": 2.0, "p_max_mw": 8.0, "fuel_cost_usd_per_mwh": 200.0, "no_load_cost_usd_per_h": 80.0,
                 "emission_factor_t_per_mwh": 0.7}


def us_3site_layout() -> Layout:
    sites = [
        SiteSpec("ca", "us-west", 37.34, -121.89, "US-CAL-CISO", 10_000, MILD_COOLING, 30.0, 5.0, 60.0, 0.25,
                 (data("price_2022", "US-CAL-CISO"), "CAISO day-ahead LMP, NP15 hub"),
                 (data("carbon_intensity_2022", "CISO"), "EIA-930 CISO"),
                 note="California (CAISO), San Jose: expensive land and power, the most solar."),
        SiteSpec("tx", "us-central", 32.78, -96.80, "US-TEX-ERCO", 14_000, HOT_COOLING, 20.0, 30.0, 40.0, 0.5,
                 (data("price_2022", "US-TEX-ERCO"), "ERCOT hub average; spikes to 2,083 USD/MWh this week"),
                 (data("carbon_intensity_2022", "ERCO"), "EIA-930 ERCO"), generator=GAS_ENGINES,
                 note="Texas (ERCOT), Dallas: most wind, on-site gas engines."),
        SiteSpec("va", "us-east", 39.04, -77.49, "US-MIDA-PJM", 16_000, TEMPERATE_COOLING, 10.0, 0.0, 40.0, 0.5,
                 (data("price_2022", "US-MIDA-PJM"), "PJM real-time LMP, DOM zone"),
                 (data("carbon_intensity_2022", "PJM"), "EIA-930 PJM"), generator=DIESEL_BACKUP,
                 note="Virginia (PJM), Ashburn; weather from the Philadelphia cell, the shipped PJM city.\n"
                      "The largest campus, as in the real market; diesel backup."),
    ]
    latency = {region: {site: azure_rtt_ms(azure, US3_SITE_AZURE[site]) for site in US3_SITE_AZURE}
               for region, (azure, _, _) in US3_REGIONS.items()}
    # All classes use language_m_large: the mid and small traces have collection gaps (windows at
    # exactly 0 req/s) inside the trace days this week maps to (trace days 10-14 and 1-2).
    # The trace's clock is China local time (UTC+8); shift_hours moves its daily shape onto each
    # region's summer local time: UTC+8 -> EDT (UTC-4) is 12 h, CDT 13 h, PDT 15 h.
    def trace(shift_hours: float) -> dict:
        return data("llm_request_rate", "language_m_large", cyclic=True, shift_hours=shift_hours)

    def note(shift_hours: float) -> str:
        return f"ServeGen language_m_large shape, cyclic, moved {shift_hours:g} h onto local time"

    classes = [  # name, origin, limit ms, Wh/request, USD/1k, penalty/value, demand share
        ClassSpec("realtime-east", "us-east", 10.0, 0.12, 0.2, 1.0, 0.25, trace(12.0), note(12.0)),
        ClassSpec("chat-west", "us-west", 30.0, 0.14, 0.15, 0.7, 0.2, trace(15.0), note(15.0)),
        ClassSpec("chat-northwest", "us-northwest", 60.0, 0.14, 0.12, 0.5, 0.1, trace(15.0), note(15.0)),
        ClassSpec("assistant-midwest", "us-midwest", 45.0, 0.12, 0.1, 0.5, 0.15, trace(13.0), note(13.0)),
        ClassSpec("batch-central", "us-central", 50.0, 0.15, 0.06, 0.3, 0.3, trace(13.0), note(13.0)),
    ]
    jobs = draw_jobs(np.random.default_rng(US3_SEED), 6, 24.0, (2, 8), (2.0, 10.0), [s.name for s in sites],
                     0.67, 1.0, "train")
    return Layout(
        name="us-3site",
        description="Three US sites (California/CAISO, Texas/ERCOT, Virginia/PJM) on real 2022 carbon "
        "intensity, prices and weather, real inter-region latency, inference shaped by a real LLM request "
        "trace; one week",
        header="""us-3site: three US AI campuses on real 2022 data.
GENERATED by benchmarks/make_builtin_scenarios.py -- edit the script and rerun it, not this file.
Prices, carbon intensity (EIA-930), temperature, PV and wind availability are the shipped 2022
series (scenarios/data/DATA.md); latency is Azure's inter-region P50 RTT; inference demand is the
ServeGen production LLM trace used as a cyclic shape; its clock is China local time, so each
class's copy is shifted (shift_hours) onto the local time of its region.
The week of 11 July 2022 is ERCOT's heat wave (conservation appeals on 11 and 13 July): Texas
prices spike to 2,083 USD/MWh, Texas wind is far below its annual mean, Dallas reaches 40 C, so
moving work out of Texas and using batteries and generators pays.""",
        start=US3_START, days=7.0, control_minutes=60.0,
        start_note="Monday of the ERCOT heat-wave week; all series cover it",
        regions=[(name, lat, lon, f"Azure {azure}") for name, (azure, lat, lon) in US3_REGIONS.items()],
        latency_note="""Round trip, ms, from each user region (Azure region in [[regions]]) to each site:
Azure P50 RTT (row = user region) with sites in ca = West US, tx = South Central US,
va = East US; within one Azure region 3 ms.""",
        latency=latency, sites=sites, classes=classes, jobs=jobs,
        jobs_note=f"""Six explicit jobs on the first day for the offline study (numpy seed {US3_SEED}):
drawn like the job population but 2-8 h long, slack 2-10 h, deadline within the first 24 h,
eligible at 2 of the 3 sites.""",
        population=(1.0, (1.0, 12.0), (2.0, 24.0), 0.67),
    )


# --------------------------------------------------------------------------------------------
# fleet-10: ten sites on four continents, sixteen user cities, one day
# --------------------------------------------------------------------------------------------

FLEET_START = pd.Timestamp("2022-04-20T00:00:00Z")
FLEET_SEED = 20220420
# Each of the 16 weather cities (scenarios/data/sites.csv) -> (region name, nearest Azure region).
FLEET_CITIES = {
    "US-NY-NYIS": ("new-york", "East US"),
    "US-MIDA-PJM": ("philadelphia", "East US"),
    "US-TEX-ERCO": ("dallas", "South Central US"),  # San Antonio
    "US-CAL-CISO": ("san-jose", "West US"),
    "DE-LU": ("frankfurt", "Germany West Central"),
    "CA-ON": ("toronto", "Canada Central"),
    "SG": ("singapore", "Southeast Asia"),
    "AU-VIC": ("melbourne", "Australia Southeast"),
    "AU-NSW": ("sydney", "Australia East"),
    "CL-SIC": ("santiago", "Brazil South"),  # the matrix has no Chilean region
    "BR-SP": ("sao-paulo", "Brazil South"),
    "ZA": ("johannesburg", "South Africa North"),
    "KR": ("seoul", "Korea Central"),
    "IN-WE": ("mumbai", "Central India"),  # Pune; Jio India West (Jamnagar) is farther
    "JP-TK": ("tokyo", "Japan East"),
    "GB": ("london", "UK South"),
}
# Weather site -> (demand share weight ~ market size, feasible sites wanted, shape).
# Asia-Pacific cities use the ServeGen trace, whose clock (China, UTC+8) is within 3 h of theirs;
# the others a generated double peak at 15:00 local time (generated shapes follow local time).
TRACE_CITIES = {"SG", "KR", "JP-TK", "AU-NSW", "AU-VIC"}
FLEET_DEMAND = {
    "US-NY-NYIS": (8, 2), "US-MIDA-PJM": (5, 1), "US-TEX-ERCO": (6, 2), "US-CAL-CISO": (8, 1),
    "DE-LU": (7, 2), "CA-ON": (4, 3), "SG": (5, 1), "AU-VIC": (3, 2), "AU-NSW": (4, 1),
    "CL-SIC": (2, 2), "BR-SP": (5, 3), "ZA": (2, 3), "KR": (5, 2), "IN-WE": (7, 2), "JP-TK": (7, 2),
    "GB": (7, 4),
}
TYPICAL = "typical annual mean, approximate"


def generated(shape: str, mean: float, amplitude: float, peak_hour: float) -> dict:
    return {"kind": "generated", "shape": shape, "mean": mean, "amplitude": amplitude, "peak_hour": peak_hour}


def city_latency_ms(user: str, site: str, places: pd.DataFrame,
                    site_location: tuple[float, float] | None = None) -> float:
    """Round trip from a user city to a site in a city (weather codes), whole ms.

    The site stands at its city's grid cell unless ``site_location`` (latitude, longitude) is
    given (a campus outside the city centre). Same city, at its cell: INTRA_REGION_MS. Same Azure
    region: INTRA_REGION_MS + fibre over the distance. Otherwise Azure RTT between the two
    regions + fibre from the user city and from the site to their regions.
    """
    def where(code: str) -> tuple[float, float]:
        return float(places.loc[code, "latitude_deg"]), float(places.loc[code, "longitude_deg"])

    azure_user, azure_site = FLEET_CITIES[user][1], FLEET_CITIES[site][1]
    if user == site and site_location is None:
        return INTRA_REGION_MS
    site_at = where(site) if site_location is None else site_location
    if azure_user == azure_site:
        return round(INTRA_REGION_MS + ACCESS_MS_PER_KM * great_circle_km(where(user), site_at))
    access_km = (great_circle_km(where(user), AZURE_LOCATION[azure_user])
                 + great_circle_km(site_at, AZURE_LOCATION[azure_site]))
    return round(azure_rtt_ms(azure_user, azure_site) + ACCESS_MS_PER_KM * access_km)


def market(code: str, text: str) -> tuple[dict, str]:
    """A shipped 2022 market price series (USD/MWh) and its comment."""
    return data("price_2022", code), text


def ba(code: str) -> tuple[dict, str]:
    """A shipped EIA-930 carbon-intensity series (gCO2/kWh) of a US balancing authority, with its comment."""
    return data("carbon_intensity_2022", code), f"EIA-930 {code}"


# Weather city -> (import price, carbon intensity) of a site there, each (series, comment). Where no
# hourly data ships: a diurnal shape around a typical level; solar-heavy grids peak at night
# (midday dip), the others in the evening. "approximate" marks a level read from public annual
# figures, not from shipped data.
CITY_GRID: dict[str, tuple[tuple[dict, str], tuple[dict, str]]] = {
    "US-CAL-CISO": (market("US-CAL-CISO", "CAISO day-ahead, NP15"), ba("CISO")),
    "US-TEX-ERCO": (market("US-TEX-ERCO", "ERCOT hub average"), ba("ERCO")),
    "US-MIDA-PJM": (market("US-MIDA-PJM", "PJM real-time, DOM zone"), ba("PJM")),
    "US-NY-NYIS": (market("US-NY-NYIS", "NYISO day-ahead, CAPITL zone"), ba("NYIS")),
    "DE-LU": (market("DE-LU", "DE-LU day-ahead"),
              (generated("diurnal", 350.0, 60.0, 1.0), f"Germany, {TYPICAL}; midday solar dip")),
    "GB": ((generated("diurnal", 230.0, 60.0, 18.0), "no shipped GB market: GB day-ahead 2022, about "
            "GBP 200/MWh at ~1.24 USD/GBP, approximate; evening peak"),
           (generated("diurnal", 200.0, 40.0, 18.0), f"Great Britain, {TYPICAL}")),
    "SG": (market("SG", "Singapore USEP"),
           (generated("diurnal", 400.0, 10.0, 14.0), f"Singapore (gas), {TYPICAL}")),
    "JP-TK": (market("JP-TK", "JEPX Tokyo"),
              (generated("diurnal", 450.0, 40.0, 1.0), f"Japan, {TYPICAL}; midday solar dip")),
    "AU-NSW": (market("AU-NSW", "AEMO NEM, NSW1"),
               (generated("diurnal", 650.0, 100.0, 1.0), f"New South Wales (coal), {TYPICAL}; midday solar dip")),
    "IN-WE": ((generated("diurnal", 75.0, 35.0, 21.0), "no shipped Indian market: IEX day-ahead 2022, about "
               "INR 6/kWh at ~80 INR/USD, approximate; evening peak"),
              (generated("diurnal", 700.0, 50.0, 1.0), f"India (coal), {TYPICAL}; midday solar dip")),
    # used by fleet-50 only
    "CA-ON": ((generated("diurnal", 35.0, 12.0, 18.0), "no shipped Ontario market: HOEP 2022, about "
               "CAD 45/MWh at ~0.77 USD/CAD, approximate; evening peak"),
              (generated("diurnal", 45.0, 15.0, 18.0), f"Ontario (nuclear, hydro), {TYPICAL}")),
    "AU-VIC": (market("AU-NSW", "no shipped VIC1 market: AEMO NSW1 as a proxy (same NEM, interconnected)"),
               (generated("diurnal", 800.0, 120.0, 1.0), f"Victoria (brown coal), {TYPICAL}; midday solar dip")),
    "KR": ((generated("diurnal", 150.0, 20.0, 18.0), "no shipped Korean market: KPX SMP 2022, about "
            "KRW 196/kWh at ~1,290 KRW/USD, approximate; evening peak"),
           (generated("diurnal", 450.0, 30.0, 18.0), f"Korea (coal, gas, nuclear), {TYPICAL}")),
    "BR-SP": ((generated("diurnal", 11.0, 2.0, 19.0), "no shipped Brazilian market: PLD SE/CO 2022, mostly "
               "at its floor of BRL 55.70/MWh at ~5.2 BRL/USD, approximate"),
              (generated("diurnal", 90.0, 30.0, 19.0), f"Brazil (hydro), {TYPICAL}")),
    "CL-SIC": ((generated("diurnal", 110.0, 60.0, 20.0), "no shipped Chilean market: SEN marginal cost 2022, "
                "about USD 110/MWh, approximate; cheap at solar noon"),
               (generated("diurnal", 330.0, 90.0, 1.0), f"Chile, {TYPICAL}; midday solar dip")),
    "ZA": ((generated("diurnal", 80.0, 30.0, 18.0), "no South African market: Eskom Megaflex 2022, about "
            "ZAR 1.3/kWh at ~16.4 ZAR/USD, approximate; evening peak"),
           (generated("diurnal", 900.0, 20.0, 19.0), f"South Africa (coal), {TYPICAL}")),
}


def fleet_10_sites() -> list[SiteSpec]:
    places = load_sites()

    def site(code: str, gpus: int, cooling: dict, pv: float, wind: float, battery: float, c_rate: float,
             generator: dict | None = None, note: str = "") -> SiteSpec:
        city = FLEET_CITIES[code][0]
        price, carbon = CITY_GRID[code]
        return SiteSpec(f"{city}-dc", city, round(float(places.loc[code, "latitude_deg"]), 2),
                        round(float(places.loc[code, "longitude_deg"]), 2), code, gpus, cooling, pv, wind,
                        battery, c_rate, price, carbon, generator, note)

    return [
        site("US-CAL-CISO", 10_000, MILD_COOLING, 30.0, 0.0, 60.0, 0.25),
        site("US-TEX-ERCO", 16_000, HOT_COOLING, 20.0, 30.0, 40.0, 0.5),
        site("US-MIDA-PJM", 14_000, TEMPERATE_COOLING, 10.0, 0.0, 40.0, 0.5),
        site("US-NY-NYIS", 6_000, TEMPERATE_COOLING, 5.0, 0.0, 20.0, 0.5),
        site("DE-LU", 10_000, TEMPERATE_COOLING, 10.0, 15.0, 40.0, 0.5),
        site("GB", 8_000, MILD_COOLING, 5.0, 15.0, 30.0, 0.5),
        site("SG", 8_000, HOT_COOLING, 5.0, 0.0, 20.0, 0.5, generator=GAS_ENGINES),
        site("JP-TK", 8_000, TEMPERATE_COOLING, 10.0, 5.0, 30.0, 0.5),
        site("AU-NSW", 6_000, TEMPERATE_COOLING, 20.0, 10.0, 40.0, 0.5),
        site("IN-WE", 8_000, HOT_COOLING, 20.0, 0.0, 40.0, 0.25, generator=DIESEL_BACKUP),
    ]


def fleet_10_layout() -> Layout:
    places = load_sites()
    sites = fleet_10_sites()
    site_codes = [s.weather for s in sites]
    latency = {FLEET_CITIES[user][0]: {f"{FLEET_CITIES[s][0]}-dc": city_latency_ms(user, s, places)
                                       for s in site_codes}
               for user in FLEET_CITIES}
    weight_total = sum(weight for weight, _ in FLEET_DEMAND.values())
    classes = []
    for code, (weight, count) in FLEET_DEMAND.items():
        region = FLEET_CITIES[code][0]
        if code in TRACE_CITIES:
            shape, note = data("llm_request_rate", "language_m_large", cyclic=True), "ServeGen shape, cyclic"
        else:
            shape, note = generated("double-peak", 1.0, 0.5, 15.0), "double peak at 15:00 local"
        classes.append(class_by_feasible_count(region, latency[region], count, weight / weight_total, shape, note))
    jobs = draw_jobs(np.random.default_rng(FLEET_SEED), 60, 24.0, (1, 8), (0.0, 12.0), [s.name for s in sites],
                     0.7, 0.25, "job")
    return Layout(
        name="fleet-10",
        description="10 sites, 16 user regions, about 60 training jobs per day; the size the benchmarks use",
        header="""fleet-10: ten AI sites on four continents serving sixteen user cities, one day.
GENERATED by benchmarks/make_builtin_scenarios.py -- edit the script and rerun it, not this file.
Weather (temperature, PV, wind) is the shipped 2022 data of each site's city; prices are the
shipped 2022 markets where one exists, carbon intensity the EIA-930 series for US sites. Where no
data ships the series is a generated diurnal shape around a typical level (commented).
Inference: one class per user city. Asia-Pacific cities follow the ServeGen LLM trace (its clock,
China local time, is within 3 h of theirs); the others a double peak at 15:00 local time. Each
class's latency limit admits its 1-4 nearest sites; the class kind (realtime, chat, assistant,
batch) follows from that count and sets its energy per request, value and penalty.
20 April 2022: an ordinary spring weekday with no known market event; 15-minute control steps.""",
        start=FLEET_START, days=1.0, control_minutes=15.0,
        start_note="an ordinary spring Wednesday",
        regions=[(FLEET_CITIES[code][0], round(float(places.loc[code, "latitude_deg"]), 2),
                  round(float(places.loc[code, "longitude_deg"]), 2),
                  f"{places.loc[code, 'city']}, Azure {FLEET_CITIES[code][1]}") for code in FLEET_CITIES],
        latency_note="""Round trip, ms, from each user city to each site (sites are in cities too):
Azure P50 RTT between the cities' nearest Azure regions (noted in [[regions]]) plus fibre from
each city to its region (0.015 ms/km: there and back, 1.5 x the great-circle distance at
200 km/ms); two cities of one Azure region: 3 ms + fibre between them; same city: 3 ms.""",
        latency=latency, sites=sites, classes=classes, jobs=jobs,
        jobs_note=f"""60 explicit jobs for the day (numpy seed {FLEET_SEED}), drawn like the job population:
released on the 15-min grid, 1-8 h long, 0-12 h slack, deadline within the day, eligible at
7 of the 10 sites.""",
        population=(2.5, (1.0, 8.0), (0.0, 12.0), 0.7),
    )


# --------------------------------------------------------------------------------------------
# fleet-50: fifty sites in the sixteen weather cities, sixteen user cities, one day
# --------------------------------------------------------------------------------------------

FLEET50_SEED = 20220421
FLEET50_JOBS = 300
# Carbon budget / business-as-usual estimate, calibrated like fleet-10's BUDGET_FRACTION (binding
# by about 5 %): fleet-50's offline joint optimum without a budget emits 1.14 x the estimate
# (2,311 of 2,029 t; the estimate serves each class at its single nearest campus, which misses
# much of the demand where a metro has several small ones), so 1.08 binds by about 5 %.
FLEET50_BUDGET_FRACTION = 1.08
LIQUID_COOLING = {"pue_at_reference": 1.1, "reference_temperature_c": 20.0, "pue_per_degc": 0.004,
                  "pue_min": 1.06, "pue_max": 1.3}  # direct-to-chip liquid cooling of a new AI campus


def gas_engines(p_max_mw: float) -> dict:
    """GAS_ENGINES scaled to `p_max_mw`; minimum stable load a quarter of it."""
    return {**GAS_ENGINES, "p_min_mw": p_max_mw / 4, "p_max_mw": p_max_mw}


def diesel_backup(p_max_mw: float) -> dict:
    """DIESEL_BACKUP scaled to `p_max_mw`; minimum stable load a quarter of it."""
    return {**DIESEL_BACKUP, "p_min_mw": p_max_mw / 4, "p_max_mw": p_max_mw}


BRIDGING = "Grid-constrained campus: the utility connects only part of its load for now; on-site "
# Per weather city, its campuses, largest first:
# (GPUs, cooling, PV MW, wind MW, battery MWh, battery C-rate, generator, import limit share, note).
# Sizes follow the 2022 markets: Northern Virginia and Texas largest, Singapore small (moratorium
# until 2022); PV and wind where land and resource allow (Texas, Australia, Chile, India, South
# Africa), batteries at most campuses; generators where the grid is short (ERCOT bridging, the
# Loudoun County, West London and Frankfurt connection queues of 2022, Eskom load shedding, Indian
# and Korean backup practice); the newest largest campuses liquid-cooled.
FLEET50_SITES: dict[str, list[tuple]] = {
    "US-MIDA-PJM": [
        (32_000, LIQUID_COOLING, 20.0, 0.0, 80.0, 0.5, gas_engines(30.0), 0.6,
         BRIDGING + "gas engines\n(Dominion paused new Loudoun County connections in July 2022)."),
        (24_000, TEMPERATE_COOLING, 10.0, 0.0, 60.0, 0.5, diesel_backup(20.0), None, ""),
        (16_000, TEMPERATE_COOLING, 5.0, 0.0, 40.0, 0.5, None, None, ""),
        (12_000, TEMPERATE_COOLING, 5.0, 0.0, 30.0, 0.5, None, None, ""),
        (8_000, MILD_COOLING, 0.0, 0.0, 20.0, 0.5, None, None, ""),
        (4_000, MILD_COOLING, 0.0, 0.0, 0.0, 0.5, None, None, ""),
        (2_000, MILD_COOLING, 0.0, 0.0, 0.0, 0.5, None, None, ""),
    ],
    "US-TEX-ERCO": [
        (32_000, LIQUID_COOLING, 60.0, 60.0, 120.0, 0.5, gas_engines(35.0), 0.6,
         BRIDGING + "gas engines\n(ERCOT large-load interconnection queue)."),
        (16_000, HOT_COOLING, 30.0, 40.0, 60.0, 0.5, gas_engines(12.0), None, ""),
        (12_000, HOT_COOLING, 20.0, 20.0, 40.0, 0.5, None, None, ""),
        (6_000, HOT_COOLING, 10.0, 0.0, 20.0, 0.5, None, None, ""),
        (3_000, HOT_COOLING, 0.0, 0.0, 0.0, 0.5, None, None, ""),
    ],
    "US-CAL-CISO": [
        (12_000, MILD_COOLING, 30.0, 0.0, 60.0, 0.25, None, None, ""),
        (6_000, MILD_COOLING, 10.0, 0.0, 30.0, 0.25, None, None, ""),
        (2_000, MILD_COOLING, 2.0, 0.0, 0.0, 0.5, None, None, ""),
    ],
    "US-NY-NYIS": [
        (8_000, TEMPERATE_COOLING, 5.0, 0.0, 20.0, 0.5, diesel_backup(8.0), None, ""),
        (4_000, TEMPERATE_COOLING, 0.0, 0.0, 10.0, 0.5, None, None, ""),
        (2_000, MILD_COOLING, 0.0, 0.0, 0.0, 0.5, None, None, ""),
    ],
    "CA-ON": [
        (8_000, MILD_COOLING, 5.0, 10.0, 20.0, 0.5, None, None, ""),
        (3_000, MILD_COOLING, 0.0, 0.0, 0.0, 0.5, None, None, ""),
    ],
    "DE-LU": [
        (16_000, LIQUID_COOLING, 10.0, 20.0, 60.0, 0.5, gas_engines(10.0), 0.75,
         BRIDGING + "gas engines\n(grid connections for data centres in Frankfurt were scarce in 2022)."),
        (10_000, TEMPERATE_COOLING, 10.0, 15.0, 40.0, 0.5, None, None, ""),
        (4_000, TEMPERATE_COOLING, 0.0, 0.0, 10.0, 0.5, None, None, ""),
        (2_000, TEMPERATE_COOLING, 0.0, 0.0, 0.0, 0.5, None, None, ""),
    ],
    "GB": [
        (12_000, MILD_COOLING, 5.0, 20.0, 40.0, 0.5, diesel_backup(10.0), 0.8,
         BRIDGING + "diesel\n(West London's grid could take no new large loads in 2022)."),
        (6_000, MILD_COOLING, 0.0, 10.0, 20.0, 0.5, None, None, ""),
        (2_000, MILD_COOLING, 0.0, 0.0, 0.0, 0.5, None, None, ""),
    ],
    "SG": [
        (8_000, HOT_COOLING, 5.0, 0.0, 20.0, 0.5, gas_engines(12.0), None, ""),
        (4_000, HOT_COOLING, 2.0, 0.0, 10.0, 0.5, None, None, ""),
        (2_000, HOT_COOLING, 0.0, 0.0, 0.0, 0.5, None, None, ""),
    ],
    "JP-TK": [
        (16_000, LIQUID_COOLING, 10.0, 5.0, 40.0, 0.5, gas_engines(12.0), None, ""),
        (8_000, TEMPERATE_COOLING, 5.0, 5.0, 30.0, 0.5, None, None, ""),
        (4_000, TEMPERATE_COOLING, 0.0, 0.0, 10.0, 0.5, None, None, ""),
        (2_000, TEMPERATE_COOLING, 0.0, 0.0, 0.0, 0.5, None, None, ""),
    ],
    "KR": [
        (8_000, TEMPERATE_COOLING, 5.0, 0.0, 20.0, 0.5, diesel_backup(8.0), None, ""),
        (3_000, TEMPERATE_COOLING, 0.0, 0.0, 0.0, 0.5, None, None, ""),
    ],
    "AU-NSW": [
        (12_000, TEMPERATE_COOLING, 30.0, 10.0, 60.0, 0.5, None, None, ""),
        (6_000, TEMPERATE_COOLING, 10.0, 5.0, 20.0, 0.5, None, None, ""),
        (2_000, TEMPERATE_COOLING, 0.0, 0.0, 0.0, 0.5, None, None, ""),
    ],
    "AU-VIC": [
        (6_000, MILD_COOLING, 10.0, 15.0, 20.0, 0.5, None, None, ""),
        (2_000, MILD_COOLING, 0.0, 0.0, 0.0, 0.5, None, None, ""),
    ],
    "IN-WE": [
        (12_000, HOT_COOLING, 30.0, 0.0, 60.0, 0.25, diesel_backup(12.0), None, ""),
        (6_000, HOT_COOLING, 10.0, 0.0, 20.0, 0.25, DIESEL_BACKUP, None, ""),
        (2_000, HOT_COOLING, 0.0, 0.0, 0.0, 0.5, diesel_backup(3.0), None, ""),
    ],
    "BR-SP": [
        (8_000, HOT_COOLING, 10.0, 0.0, 20.0, 0.5, None, None, ""),
        (4_000, HOT_COOLING, 0.0, 0.0, 10.0, 0.5, None, None, ""),
        (2_000, HOT_COOLING, 0.0, 0.0, 0.0, 0.5, None, None, ""),
    ],
    "CL-SIC": [
        (4_000, MILD_COOLING, 20.0, 0.0, 20.0, 0.5, None, None, ""),
    ],
    "ZA": [
        (6_000, MILD_COOLING, 15.0, 0.0, 30.0, 0.5, diesel_backup(10.0), None,
         "Johannesburg: diesel for Eskom's load shedding (up to stage 6 in 2022)."),
        (2_000, MILD_COOLING, 5.0, 0.0, 10.0, 0.5, diesel_backup(4.0), None, ""),
    ],
}
# Each user city: its demand weight (FLEET_DEMAND) split into a realtime class that may use the
# campuses of its own metro and a batch class that may use its BATCH_SITES nearest campuses.
REALTIME_SHARE = 0.4
BATCH_SITES = 8


def campus_location(city: tuple[float, float], i: int) -> tuple[float, float]:
    """The i-th campus of a city: 8 + 10 i km from the city's grid cell, bearing i x 137.5 deg
    (the golden angle, so campuses spread around the city); degrees rounded to 0.01."""
    lat, lon = map(math.radians, city)
    distance, bearing = (8.0 + 10.0 * i) / 6371.0, math.radians((137.5 * i) % 360)
    lat2 = math.asin(math.sin(lat) * math.cos(distance) + math.cos(lat) * math.sin(distance) * math.cos(bearing))
    lon2 = lon + math.atan2(math.sin(bearing) * math.sin(distance) * math.cos(lat),
                            math.cos(distance) - math.sin(lat) * math.sin(lat2))
    return round(math.degrees(lat2), 2), round(math.degrees(lon2), 2)


def fleet_50_sites() -> list[SiteSpec]:
    """The 50 campuses of FLEET50_SITES, named ``<city>-<n>`` (n = 1 for the largest)."""
    places = load_sites()
    sites = []
    for code, campuses in FLEET50_SITES.items():
        city = FLEET_CITIES[code][0]
        cell = float(places.loc[code, "latitude_deg"]), float(places.loc[code, "longitude_deg"])
        price, carbon = CITY_GRID[code]
        for i, (gpus, cooling, pv, wind, battery, c_rate, generator, share, note) in enumerate(campuses):
            lat, lon = campus_location(cell, i)
            sites.append(SiteSpec(f"{city}-{i + 1}", city, lat, lon, code, gpus, cooling, pv, wind, battery,
                                  c_rate, price, carbon, generator, note, share))
    return sites


def untied_count(origin: str, row: dict[str, float], wanted: int) -> int:
    """The smallest count >= `wanted` of nearest sites that a latency limit can admit exactly
    (campuses of one metro are often equally far: they are then admitted together)."""
    for count in range(wanted, len(row) + 1):
        try:
            limit_admitting(origin, row, count)
        except ValueError:
            continue
        return count
    raise ValueError(f"{origin}: no latency limit admits {wanted} or more sites")


def fleet_50_layout() -> Layout:
    """fleet-50: the sites, latency, two classes per user city and FLEET50_JOBS seeded jobs."""
    places = load_sites()
    sites = fleet_50_sites()
    for site in sites:  # a grid-constrained campus can still run at full load on its generator
        if site.import_limit_share is not None:
            capacity = power_capacity_mw(site, FLEET_START, 1.0)
            assert site.generator is not None
            assert site.import_limit_share * capacity + site.generator["p_max_mw"] >= capacity, site.name
    latency = {FLEET_CITIES[user][0]: {s.name: city_latency_ms(user, s.weather, places,
                                                               (s.latitude_deg, s.longitude_deg))
                                       for s in sites}
               for user in FLEET_CITIES}
    weight_total = sum(weight for weight, _ in FLEET_DEMAND.values())
    classes = []
    for code, (weight, _) in FLEET_DEMAND.items():
        region = FLEET_CITIES[code][0]
        if code in TRACE_CITIES:
            shape, note = data("llm_request_rate", "language_m_large", cyclic=True), "ServeGen shape, cyclic"
        else:
            shape, note = generated("double-peak", 1.0, 0.5, 15.0), "double peak at 15:00 local"
        row = latency[region]
        for kind, wanted, share in (("realtime", 1, REALTIME_SHARE), ("batch", BATCH_SITES, 1 - REALTIME_SHARE)):
            limit = limit_admitting(region, row, untied_count(region, row, wanted))
            classes.append(ClassSpec(f"{kind}-{region}", region, limit, *CLASS_KINDS[kind],
                                     share * weight / weight_total, shape, note))
    jobs = draw_jobs(np.random.default_rng(FLEET50_SEED), FLEET50_JOBS, 24.0, (1, 8), (0.0, 12.0),
                     [s.name for s in sites], 0.1, 0.25, "job", site_gpus=[s.gpus for s in sites])
    return Layout(
        name="fleet-50",
        description="50 sites in 16 cities, 16 user regions, 300 training jobs per day; the large benchmark fleet",
        header="""fleet-50: fifty AI sites in the sixteen shipped weather cities serving sixteen user cities, one day.
GENERATED by benchmarks/make_builtin_scenarios.py -- edit the script and rerun it, not this file.
Built like fleet-10 (same day, user cities, demand shapes, derivations) at five times its size:
1 to 7 campuses per city (2,000 to 32,000 GPUs, 393,000 in all), each placed 8 + 10 i km from
the city's grid cell, so latency differs by campus. Weather (temperature, PV, wind) is the shipped
2022 data of each site's city; prices and carbon intensity as in fleet-10, with generated diurnal
shapes around typical levels for the cities without shipped series (commented, "approximate").
Diversity: liquid-cooled new campuses and air-cooled older ones; PV and wind where land and
resource allow; batteries of 2-4 h at most campuses; gas engines or diesel at 15 sites; four
grid-constrained campuses (import limit 60-80 % of their power capacity, the generator covers
the rest), as in the 2022 connection queues of Loudoun County, ERCOT, Frankfurt and West London.
Inference: two classes per user city, 40 % realtime (limit admits its own metro's campuses) and
60 % batch (its 8 nearest campuses, more when equally far); shapes as in fleet-10.
Training: 300 jobs, each eligible at 5 campuses with at least twice its GPUs.
20 April 2022: an ordinary spring weekday with no known market event; 15-minute control steps.""",
        start=FLEET_START, days=1.0, control_minutes=15.0,
        start_note="an ordinary spring Wednesday",
        regions=[(FLEET_CITIES[code][0], round(float(places.loc[code, "latitude_deg"]), 2),
                  round(float(places.loc[code, "longitude_deg"]), 2),
                  f"{places.loc[code, 'city']}, Azure {FLEET_CITIES[code][1]}") for code in FLEET_CITIES],
        latency_note="""Round trip, ms, from each user city to each campus: Azure P50 RTT between the
city's and the campus city's nearest Azure regions (noted in [[regions]]) plus fibre from the
user city and from the campus to their regions (0.015 ms/km: there and back, 1.5 x the
great-circle distance at 200 km/ms); within one Azure region 3 ms + fibre between them.""",
        latency=latency, sites=sites, classes=classes, jobs=jobs,
        jobs_note=f"""{FLEET50_JOBS} explicit jobs for the day (numpy seed {FLEET50_SEED}), drawn like the job
population: released on the 15-min grid, 1-8 h long, 0-12 h slack, deadline within the day,
eligible at 5 of the campuses with at least {JOB_SITE_HEADROOM} x the job's GPUs (the population instead
draws 5 of all 50 and keeps those where the job fits).""",
        population=(FLEET50_JOBS / 24.0, (1.0, 8.0), (0.0, 12.0), 0.1),
        budget_fraction=FLEET50_BUDGET_FRACTION,
    )


# --------------------------------------------------------------------------------------------
# Checks and main
# --------------------------------------------------------------------------------------------


def summary(scenario: Scenario) -> dict[str, float]:
    """Sizes and demand ratios at the run's control interval, checked by :func:`check_layout`."""
    run = scenario.run
    step_h = run.control_interval_minutes / 60.0
    n_steps = int(round(run.days * 24 / step_h))
    fleet = build_fleet(scenario)
    demand = nominal_signals(scenario, pd.Timestamp(run.start), n_steps, step_h)["demand"]
    capacity = fleet.serving_capacity_req_per_s
    feasible_capacity = fleet.route_feasible @ capacity
    return {
        "gpus": float(fleet.gpus.sum()),
        "serving_capacity_req_per_s": float(capacity.sum()),
        "peak_demand_fraction": float(demand.sum(axis=1).max() / capacity.sum()),
        "mean_demand_fraction": float(demand.sum(axis=1).mean() / capacity.sum()),
        "worst_class_peak_over_feasible_capacity": float((demand.max().to_numpy() / feasible_capacity).max()),
        "power_capacity_mw": float(fleet.power_capacity_mw.sum()),
        "pv_mw": float(fleet.pv_capacity_mw.sum()),
        "wind_mw": float(fleet.wind_capacity_mw.sum()),
        "battery_mwh": float(fleet.battery_energy_mwh.sum()),
        "jobs": float(len(scenario.jobs)),
    }


def check_layout(facts: dict[str, float]) -> None:
    if not 0.55 <= facts["peak_demand_fraction"] <= 0.65:
        raise AssertionError(f"peak demand {facts['peak_demand_fraction']:.2f} of capacity, wanted ~0.6")
    if facts["worst_class_peak_over_feasible_capacity"] > 0.8:
        raise AssertionError("a class's peak exceeds 80 % of the capacity of the sites it may use")


def write_all(out_dir: Path) -> dict[str, dict[str, float]]:
    """Write both scenarios into ``out_dir``; return their key numbers."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {}
    for layout in (us_3site_layout(), fleet_10_layout(), fleet_50_layout()):
        text, scenario, facts = finalise(layout)
        facts.update(summary(scenario))
        check_layout(facts)
        (out_dir / f"{layout.name}.toml").write_text(text, encoding="utf-8")
        report[layout.name] = facts
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=LIBRARY, help="folder to write the TOML files into")
    args = parser.parse_args(argv)
    for name, facts in write_all(args.out).items():
        print(name)
        for key, value in facts.items():
            print(f"  {key:42s} {value:12,.3f}")


if __name__ == "__main__":
    main()
