"""The typed domain model of a scenario: the single place where units and defaults are written.

Units (SPEC §3): power MW, energy MWh, time h (job times are hours after the run start),
money USD, emissions tCO2; carbon intensity is *given* in gCO2/kWh (= kgCO2/MWh) and converted
to tCO2/MWh once, in :mod:`scenarios.arrays`. Timestamps are UTC; the run's start must say its
zone (``Z`` or ``+02:00``).

Every number has an upper limit as well as a lower one (the ``MAX_*`` constants below). They are
far above any real fleet (the largest power stations are about 20 GW; a frontier training run
is worth about 1e8 USD) and keep the MILP's coefficients within the range where a solver's
tolerances (about 1e-9 relative) still mean something: a 1e30 MWh battery or a 1e300 USD job
is refused here, naming the field, instead of ending as "the solver found no solution".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, field_validator, model_validator

from scenarios.series import GeneratedSeries, SeriesSpec, coerce_series, reject_text_and_bool_for_numbers

Series = Annotated[SeriesSpec, BeforeValidator(coerce_series)]

#: Upper limits of the validated ranges (see the module docstring): power in MW, energy in MWh,
#: money per item in USD, prices and costs per MWh or per hour in USD, hours, counts.
MAX_POWER_MW = 1e5
MAX_ENERGY_MWH = 1e7
MAX_VALUE_USD = 1e10
MAX_PRICE_USD = 1e5
MAX_HOURS = 1e5
MAX_GPUS = 10_000_000


class _Model(BaseModel):
    # extra="forbid": a misspelt field is an error, not silently ignored; allow_inf_nan=False:
    # NaN/inf (TOML `nan`, `inf`) is never a valid capacity, cost or limit
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    _numbers = field_validator("*", mode="before")(classmethod(reject_text_and_bool_for_numbers))


class Cooling(_Model):
    """PUE(t) = clip(pue_at_reference + pue_per_degc * (T_ambient(t) - reference_temperature_c), min, max).

    Facility power = PUE(t) x IT power: a cooling load linear in IT load whose coefficient
    (PUE - 1) rises with ambient temperature.
    """

    pue_at_reference: float = Field(1.2, ge=1.0, le=3.0, description="PUE at the reference temperature")
    reference_temperature_c: float = Field(20.0, ge=-50, le=60, description="°C")
    pue_per_degc: float = Field(0.01, ge=0.0, le=0.2, description="PUE increase per °C above reference")
    pue_min: float = Field(1.05, ge=1.0, le=3.0, description="lower clip of PUE")
    pue_max: float = Field(1.8, ge=1.0, le=3.0, description="upper clip of PUE")

    def pue_at(self, temperature_c: float) -> float:
        """PUE at one ambient temperature (the formula above; :meth:`scenarios.arrays.Fleet.pue`
        is its array form over a fleet)."""
        raw = self.pue_at_reference + self.pue_per_degc * (temperature_c - self.reference_temperature_c)
        return float(min(max(raw, self.pue_min), self.pue_max))

    @model_validator(mode="after")
    def _ordered(self) -> Cooling:
        if not self.pue_min <= self.pue_max:
            raise ValueError(f"pue_min ({self.pue_min}) must not exceed pue_max ({self.pue_max})")
        return self


class Battery(_Model):
    """A battery: SOC(t+1) = SOC(t) + eta_c ch(t) dt - dis(t) dt / eta_d, within SOC bounds."""

    energy_capacity_mwh: float = Field(gt=0, le=MAX_ENERGY_MWH, description="MWh")
    charge_power_mw: float = Field(ge=0, le=MAX_POWER_MW, description="MW, maximum charging power")
    discharge_power_mw: float = Field(ge=0, le=MAX_POWER_MW, description="MW, maximum discharging power")
    charge_efficiency: float = Field(0.95, gt=0, le=1)
    discharge_efficiency: float = Field(0.95, gt=0, le=1)
    soc_min_fraction: float = Field(0.1, ge=0, le=1, description="of energy capacity")
    soc_max_fraction: float = Field(0.9, ge=0, le=1, description="of energy capacity")
    initial_soc_fraction: float = Field(0.5, ge=0, le=1, description="of energy capacity")
    degradation_cost_usd_per_mwh: float = Field(5.0, ge=0, le=MAX_PRICE_USD,
                                                description="per MWh of charge + discharge")
    terminal_value_usd_per_mwh: float | None = Field(
        None, ge=0, le=MAX_PRICE_USD,
        description="value of energy left at the end of a window; None = (mean import price + carbon price x "
        "mean intensity) x discharge efficiency, the tail price's energy cost",
    )

    @model_validator(mode="after")
    def _soc_order(self) -> Battery:
        if not self.soc_min_fraction <= self.initial_soc_fraction <= self.soc_max_fraction:
            raise ValueError(
                "SOC bounds out of order: need soc_min_fraction <= initial_soc_fraction <= soc_max_fraction, "
                f"got {self.soc_min_fraction} <= {self.initial_soc_fraction} <= {self.soc_max_fraction}"
            )
        return self


class Generator(_Model):
    """A dispatchable generator: on/off, p_min_mw <= output <= p_max_mw when on."""

    p_min_mw: float = Field(ge=0, le=MAX_POWER_MW, description="MW, minimum stable output when on")
    p_max_mw: float = Field(gt=0, le=MAX_POWER_MW, description="MW")
    fuel_cost_usd_per_mwh: float = Field(ge=0, le=MAX_PRICE_USD)
    no_load_cost_usd_per_h: float = Field(0.0, ge=0, le=MAX_PRICE_USD, description="USD per hour while on")
    emission_factor_t_per_mwh: float = Field(0.5, ge=0, le=10.0, description="tCO2 per MWh generated")

    @model_validator(mode="after")
    def _limits(self) -> Generator:
        if self.p_min_mw > self.p_max_mw:
            raise ValueError(f"p_min_mw ({self.p_min_mw}) exceeds p_max_mw ({self.p_max_mw})")
        return self


class GridConnection(_Model):
    """Import and export with limits; prices and the average carbon intensity of imports."""

    import_limit_mw: float = Field(ge=0, le=MAX_POWER_MW)
    export_limit_mw: float = Field(0.0, ge=0, le=MAX_POWER_MW)
    import_price_usd_per_mwh: Series
    export_price_usd_per_mwh: Series | None = Field(
        None, description="None = export_price_fraction x import price"
    )
    export_price_fraction: float = Field(0.7, ge=0, le=2, description="used when no export series")
    carbon_intensity_g_per_kwh: Series = Field(description="gCO2/kWh (= kgCO2/MWh) of imported power")


class Site(_Model):
    """A data center with its microgrid."""

    name: str = Field(min_length=1)
    region: str = Field(description="user region the site is in (its 'home' for no-routing)")
    latitude_deg: float = Field(0.0, ge=-90, le=90)
    longitude_deg: float = Field(0.0, ge=-180, le=180)
    gpus: int = Field(ge=0, le=MAX_GPUS,
                      description="number of GPUs; 0 for a site without a data centre (a plain microgrid)")
    throughput_req_per_s_per_gpu: float = Field(gt=0, le=1e6, description="inference requests/s one GPU serves")
    idle_power_mw: float = Field(ge=0, le=MAX_POWER_MW, description="IT power at zero load, MW")
    power_capacity_mw: float = Field(ge=0, le=MAX_POWER_MW, description="maximum facility power (PUE x IT), MW; "
                                     "the base load is beside it")
    cooling: Cooling = Cooling()
    ambient_temperature_c: Series = Field(default_factory=lambda: GeneratedSeries(mean=20.0))
    pv_capacity_mw: float = Field(0.0, ge=0, le=MAX_POWER_MW)
    pv_availability: Series = Field(
        default_factory=lambda: GeneratedSeries(mean=0.0), description="per-unit of pv_capacity_mw, 0..1"
    )
    wind_capacity_mw: float = Field(0.0, ge=0, le=MAX_POWER_MW)
    wind_availability: Series = Field(
        default_factory=lambda: GeneratedSeries(mean=0.0), description="per-unit of wind_capacity_mw, 0..1"
    )
    base_load_mw: Series = Field(
        default_factory=lambda: GeneratedSeries(mean=0.0),
        description="exogenous site load besides the GPUs, MW at the meter (offices, storage, a whole non-AI "
        "load): beside IT x PUE, not scaled by PUE, not counted in power_capacity_mw, never shed; a known "
        "schedule without noise",
    )
    battery: Battery | None = None
    generator: Generator | None = None
    grid: GridConnection


class Region(_Model):
    """A user region: where inference traffic originates."""

    name: str = Field(min_length=1)
    latitude_deg: float = Field(0.0, ge=-90, le=90)
    longitude_deg: float = Field(0.0, ge=-180, le=180)


class InferenceClass(_Model):
    """Elastic inference traffic from one region, routable to sites within the latency limit."""

    name: str = Field(min_length=1)
    origin: str = Field(description="region name")
    latency_limit_ms: float = Field(gt=0, le=1e5, description="round-trip latency limit, ms")
    energy_per_request_wh: float = Field(gt=0, le=1e6, description="IT energy per request, Wh")
    value_usd_per_1k_requests: float = Field(ge=0, le=MAX_PRICE_USD)
    unserved_penalty_usd_per_1k_requests: float = Field(ge=0, le=MAX_PRICE_USD)
    demand_req_per_s: Series = Field(description="mean arrival rate, requests/s")


class TrainingJob(_Model):
    """A rigid training job: g GPUs and P MW for d hours without a break, in [release, deadline]."""

    name: str = Field(min_length=1)
    gpus: int = Field(gt=0, le=MAX_GPUS)
    power_mw: float = Field(gt=0, le=MAX_POWER_MW, description="IT power while running, MW")
    duration_h: float = Field(gt=0, le=MAX_HOURS)
    release_h: float = Field(ge=0, le=MAX_HOURS, description="earliest start, hours after run start")
    deadline_h: float = Field(gt=0, le=MAX_HOURS, description="latest finish, hours after run start")
    value_usd: float = Field(ge=0, le=MAX_VALUE_USD, description="reward on completion")
    sites: list[str] | None = Field(None, description="eligible sites (at least one); leave out for all")

    @field_validator("sites")
    @classmethod
    def _some_sites(cls, sites: list[str] | None) -> list[str] | None:
        # `sites = []` would read as "all sites" in one place and "no site" in another: refused
        if sites is not None and not sites:
            raise ValueError("an empty list allows no site; list the eligible sites, or leave 'sites' out "
                             "for all sites")
        return sites


class JobPopulation(_Model):
    """Stochastic training-job submissions (Poisson arrivals, drawn attributes)."""

    arrival_rate_per_h: float = Field(gt=0, le=1e4)
    gpus_choices: list[int] = Field(min_length=1, max_length=1000, description="possible GPU counts")
    gpus_weights: list[float] | None = Field(None, description="probabilities of gpus_choices; None = equal")
    duration_h_min: float = Field(gt=0, le=MAX_HOURS)
    duration_h_max: float = Field(gt=0, le=MAX_HOURS)
    slack_h_min: float = Field(0.0, ge=0, le=MAX_HOURS, description="deadline - release - duration, lower end")
    slack_h_max: float = Field(12.0, ge=0, le=MAX_HOURS)
    power_kw_per_gpu: float = Field(1.0, gt=0, le=100.0, description="IT power per GPU incl. host share, kW")
    value_usd_per_gpu_h_min: float = Field(ge=0, le=MAX_PRICE_USD)
    value_usd_per_gpu_h_max: float = Field(ge=0, le=MAX_PRICE_USD)
    eligible_site_fraction: float = Field(1.0, gt=0, le=1, description="share of sites each job may use")

    @model_validator(mode="after")
    def _ranges(self) -> JobPopulation:
        for low, high in (("duration_h_min", "duration_h_max"), ("slack_h_min", "slack_h_max"),
                          ("value_usd_per_gpu_h_min", "value_usd_per_gpu_h_max")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} ({getattr(self, low)}) exceeds {high} ({getattr(self, high)})")
        if self.gpus_weights is not None and len(self.gpus_weights) != len(self.gpus_choices):
            raise ValueError(
                f"gpus_weights has {len(self.gpus_weights)} entries, gpus_choices {len(self.gpus_choices)}"
            )
        if any(g <= 0 for g in self.gpus_choices):
            raise ValueError("gpus_choices must be positive")
        if self.gpus_weights is not None:
            # checked here, not by NumPy once the run is under way (rng.choice needs p >= 0, sum > 0)
            if any(not 0.0 <= w <= 1e6 for w in self.gpus_weights):
                raise ValueError(f"gpus_weights must lie in [0, 1e6], got {self.gpus_weights}")
            if sum(self.gpus_weights) <= 0.0:
                raise ValueError("gpus_weights are all zero; give at least one positive weight")
        return self


class CarbonPolicy(_Model):
    """System-wide carbon budget over the whole run and/or a carbon price."""

    budget_tco2: float | None = Field(None, ge=0, le=1e9, description="tCO2 over the whole run; None = no budget")
    price_usd_per_tco2: float = Field(0.0, ge=0, le=MAX_PRICE_USD)
    pacing: Literal["proportional", "none"] = Field(
        "proportional", description="window budget = remaining x window share of remaining time"
    )
    violation_penalty_usd_per_tco2: float = Field(
        1000.0, ge=0, le=1e6, description="soft-constraint penalty on window-budget overrun"
    )


class NoiseSettings(_Model):
    """Realisation noise of the closed loop (``[noise]``; see :mod:`simulator.processes`).

    ``enabled = false`` replays the series exactly: no AR(1) factors on PV, wind, prices, carbon
    and temperature, no day-level demand shock and no Poisson counting of request arrivals (the
    realised rate is the nominal rate). Explicit jobs are never random; a ``job_population`` stays
    a seeded draw (it *is* the workload) -- list recorded jobs under ``[[jobs]]`` to replay them.
    The CLI's ``--noise on|off`` overrides it.
    """

    enabled: StrictBool = Field(True, description="false: realised signals equal the scenario's series "
                                "(true or false only: \"no\" or 0 is refused, not read as a flag)")


class RunSettings(_Model):
    """Time base of a run (SPEC §5)."""

    start: datetime = Field(description="UTC start of the run")
    days: float = Field(1.0, gt=0, le=366)
    plant_tick_minutes: float = Field(5.0, gt=0, le=60)
    control_interval_minutes: float = Field(60.0, gt=0, le=1440)
    horizon_hours: float = Field(24.0, gt=0, le=168)
    seed: int = Field(0, ge=0, lt=2**63)

    @field_validator("start")
    @classmethod
    def _utc(cls, start: datetime) -> datetime:
        if start.tzinfo is None:  # taking it as UTC without a word shifted runs by hours: refused
            raise ValueError(f"{start.isoformat()} has no time zone; write it with one, e.g. "
                             f"{start.isoformat()}Z for UTC or {start.isoformat()}-07:00")
        return start.astimezone(UTC)

    @model_validator(mode="after")
    def _commensurate(self) -> RunSettings:
        ratio = self.control_interval_minutes / self.plant_tick_minutes
        if abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(
                f"control_interval_minutes ({self.control_interval_minutes:g}) must be a multiple of "
                f"plant_tick_minutes ({self.plant_tick_minutes:g})"
            )
        steps = self.horizon_hours * 60.0 / self.control_interval_minutes
        if abs(steps - round(steps)) > 1e-9:
            raise ValueError(
                f"horizon_hours ({self.horizon_hours:g}) must be a multiple of the control interval"
            )
        run_steps = self.days * 1440.0 / self.control_interval_minutes
        if abs(run_steps - round(run_steps)) > 1e-9:
            raise ValueError("days must be a whole number of control intervals")
        return self


class Scenario(_Model):
    """A fleet, its users, its workload and its policy, with the run's time base."""

    name: str = Field(min_length=1)
    description: str = ""
    run: RunSettings
    sites: list[Site] = Field(min_length=1)
    regions: list[Region] = Field(min_length=1)
    latency_ms: dict[str, dict[str, float]] = Field(
        description="round-trip latency from each region (outer key) to each site (inner key), ms"
    )
    inference_classes: list[InferenceClass] = Field(default_factory=list)
    jobs: list[TrainingJob] = Field(default_factory=list, description="explicit jobs (offline day)")
    job_population: JobPopulation | None = None
    carbon: CarbonPolicy = CarbonPolicy()
    noise: NoiseSettings = NoiseSettings()
    generation_scale: float = Field(
        1.0, ge=0, le=1e3, description="multiplies PV and wind capacity (generation-rich)"
    )
    tail_energy_price_usd_per_mwh: float | None = Field(
        None, ge=0, le=MAX_PRICE_USD,
        description="price of job energy falling past a window; None = (window mean import price + carbon "
        "price x mean intensity) x mean PUE",
    )
