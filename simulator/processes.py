"""Stochastic processes of the closed loop: realised signals and training-job submissions.

Every process draws from its own random stream keyed by (seed, process name) through
:func:`stream` -- ``SeedSequence([seed, crc32(name)])`` -- and nothing else draws from it: not
the controller, not the forecaster, not another process. Two controllers run on the same seed
therefore see identical traffic, weather, prices and job submissions (common random numbers).

Realised signals (at the plant tick, over ``[start - history, end + horizon)``), starting from the
scenario's nominal series (:func:`scenarios.nominal_signals`):

* ``demand`` (per class, req/s): the nominal rate times a day-level lognormal shock
  ``exp(sigma_day z_day - sigma_day^2 / 2)`` (mean 1) gives the intensity lambda of a
  non-homogeneous Poisson process; the count in each tick ``N ~ Poisson(lambda * tick_s)`` is
  reported as the rate ``N / tick_s``.
* ``pv`` and ``wind`` (per-unit, per site): ``clip(nominal * (1 + sigma x_t), 0, 1)`` with ``x_t``
  a unit-variance AR(1) in time (a correlated cloud / wind-speed factor, correlation ``rho`` per hour).
* ``import_price`` (per site): ``nominal * (1 + sigma x_t)`` -- multiplicative, so a negative
  nominal price stays negative. ``export_price`` uses the *same* factor ``x_t`` of its site
  (prices at one node move together, and export stays below import wherever it is nominally).
* ``carbon``: ``max(nominal * (1 + sigma x_t), 0)``; ``temperature``: ``nominal + sigma x_t`` (°C).

The sizes are :class:`NoiseParameters` (recorded in every run manifest). Training jobs: the
scenario's explicit jobs (submitted at their release) plus, with a ``job_population``, Poisson
arrivals over the run (:func:`submit_jobs`).
"""

from __future__ import annotations

import sys
import zlib
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from scenarios.arrays import SIGNALS, Fleet, base_load_mw, nominal_signals
from scenarios.schema import Scenario, TrainingJob
from scenarios.timebase import HOURS_PER_DAY, minutes_to_hours, whole_steps

_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """Print ``message`` as one line on stderr, once per process (through ``tqdm.write``, so that
    a progress bar on the terminal is moved below it rather than written over)."""
    if message not in _WARNED:
        _WARNED.add(message)
        from tqdm import tqdm

        tqdm.write(" ".join(message.split()), file=sys.stderr)


def stream(seed: int, name: str) -> np.random.Generator:
    """The random stream of one process: the same in every Python process and platform."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())])))


@dataclass(frozen=True)
class NoiseParameters:
    """Sizes of the realisation noise (relative unless the name says otherwise)."""

    demand_day_sigma: float = 0.10  # lognormal day-level shock of each class's demand
    pv_sigma: float = 0.15  # cloud factor
    pv_rho_per_h: float = 0.90
    wind_sigma: float = 0.15
    wind_rho_per_h: float = 0.90
    price_sigma: float = 0.05
    price_rho_per_h: float = 0.80
    carbon_sigma: float = 0.03
    carbon_rho_per_h: float = 0.90
    temperature_sigma_c: float = 0.5  # absolute, °C
    temperature_rho_per_h: float = 0.95
    history_hours: float = 168.0  # realised history before the run start (for history-based forecasters)
    demand_poisson: bool = True  # count request arrivals per tick (False: the realised rate is the intensity)

    def config(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def off(cls) -> NoiseParameters:
        """No realisation noise: every realised signal equals the scenario's series."""
        return cls(demand_day_sigma=0.0, pv_sigma=0.0, wind_sigma=0.0, price_sigma=0.0, carbon_sigma=0.0,
                   temperature_sigma_c=0.0, demand_poisson=False)

    @classmethod
    def for_scenario(cls, scenario: Scenario, switch: str | None = None) -> NoiseParameters:
        """The default sizes, or none when ``switch`` is ``"off"`` (or, with no switch, when the
        scenario's ``[noise] enabled = false``). Raises ``ValueError`` for another switch."""
        if switch not in (None, "on", "off"):
            raise ValueError(f"noise must be 'on' or 'off', got {switch!r}")
        enabled = scenario.noise.enabled if switch is None else switch == "on"
        return cls() if enabled else cls.off()


def ar1_path(rng: np.random.Generator, n: int, rho_per_step: float) -> np.ndarray:
    """A stationary unit-variance AR(1) path: x_0 ~ N(0,1), x_t = rho x_{t-1} + sqrt(1 - rho^2) e_t."""
    shocks = rng.standard_normal(n)
    if n == 0:
        return shocks
    gain = np.sqrt(max(0.0, 1.0 - rho_per_step**2))
    # y_t = gain e_t + rho y_{t-1}; the initial state makes y_0 = e_0 (a stationary start)
    from scipy.signal import lfilter  # here: scipy.signal (and scipy.stats with it) costs ~0.5 s to import

    path, _ = lfilter([gain], [1.0, -rho_per_step], shocks, zi=[(1.0 - gain) * shocks[0]])
    return path


@dataclass(frozen=True)
class RealisedSignals:
    """Realised signals on the plant tick over ``[start, start + n_ticks * tick_h)``.

    ``frames`` maps each signal of :data:`scenarios.SIGNALS` to a DataFrame (columns = sites,
    or classes for ``demand``), plus ``base_load`` (MW per site, the scenario's schedule as given).
    ``run_offset`` is the tick index of the run start.
    """

    frames: dict[str, pd.DataFrame]
    tick_hours: float
    run_offset: int
    nominal_note: str

    @property
    def start(self) -> pd.Timestamp:
        return self.frames["import_price"].index[0]

    def at_step(self, step_hours: float) -> dict[str, pd.DataFrame]:
        """The signals averaged to a coarser grid (``step_hours`` a multiple of the tick), aligned
        so that the run start is a grid point."""
        ratio = whole_steps(step_hours, self.tick_hours)
        lead = self.run_offset % ratio
        out = {}
        for name, frame in self.frames.items():
            values = frame.to_numpy(dtype=float)[lead:]
            n = values.shape[0] // ratio
            means = values[: n * ratio].reshape(n, ratio, values.shape[1]).mean(axis=1)
            index = pd.date_range(frame.index[lead], periods=n, freq=pd.Timedelta(hours=step_hours))
            out[name] = pd.DataFrame(means, index=index, columns=frame.columns)
        return out


def _nominal_on(scenario: Scenario, start: pd.Timestamp, n_ticks: int, tick_h: float) -> dict[str, pd.DataFrame]:
    """Nominal signals (:data:`scenarios.SIGNALS`) and ``base_load`` (MW per site), ``n_ticks`` from ``start``."""
    frames = nominal_signals(scenario, start, n_ticks, tick_h)
    frames["base_load"] = base_load_mw(scenario, start, n_ticks, tick_h)
    return frames


def _nominal_span(
    scenario: Scenario, run_start: pd.Timestamp, history_ticks: int, run_ticks: int, after_ticks: int, tick_h: float
) -> tuple[dict[str, pd.DataFrame], int, str]:
    """Nominal signals and base load over history + run + after. Series that cannot be read before
    the run (inline profiles without repeat, data that starts at the run) shorten the history to
    zero; series that cannot be read after the run repeat the run's last day there, with a
    warning (:func:`_warn_once`): the controllers' horizon then sees made-up values. Both are
    noted in the returned text (the manifest's ``realisation_note``)."""
    notes = []
    tick = pd.Timedelta(hours=tick_h)
    try:
        history = _nominal_on(scenario, run_start - history_ticks * tick, history_ticks, tick_h) if history_ticks \
            else None
    except ValueError as error:
        history, history_ticks = None, 0
        notes.append(f"no pre-run history ({error})")
    run = _nominal_on(scenario, run_start, run_ticks, tick_h)
    try:
        after = _nominal_on(scenario, run_start + run_ticks * tick, after_ticks, tick_h)
    except ValueError as error:
        day = min(run_ticks, whole_steps(HOURS_PER_DAY, tick_h))
        index = pd.date_range(run_start + run_ticks * tick, periods=after_ticks, freq=tick)
        after = {}
        for name, frame in run.items():
            tail = frame.to_numpy()[-day:]
            repeated = np.resize(tail, (after_ticks, tail.shape[1])) if tail.size else np.zeros((after_ticks, 0))
            after[name] = pd.DataFrame(repeated, index=index, columns=frame.columns)
        notes.append(f"last run day repeated after the run ({error})")
        _warn_once(f"aidc: warning: the {after_ticks * tick_h:g} h after the run (the controllers' horizon) repeat "
                   f"the run's last day: {error}")
    parts = [history, run, after] if history is not None else [run, after]
    frames = {name: pd.concat([part[name] for part in parts]) for name in (*SIGNALS, "base_load")}
    return frames, history_ticks, "; ".join(notes)


def realise_signals(
    scenario: Scenario, seed: int, run_hours: float, after_hours: float, noise: NoiseParameters | None = None
) -> RealisedSignals:
    """Realised signals at the plant tick from ``history_hours`` before the run start to
    ``after_hours`` past its end (see the module docstring for the processes)."""
    noise = NoiseParameters.for_scenario(scenario) if noise is None else noise
    run = scenario.run
    tick_h = minutes_to_hours(run.plant_tick_minutes)
    run_start = pd.Timestamp(run.start)
    history_ticks = whole_steps(noise.history_hours, tick_h)
    run_ticks = whole_steps(run_hours, tick_h)
    after_ticks = whole_steps(after_hours, tick_h)
    nominal, history_ticks, note = _nominal_span(scenario, run_start, history_ticks, run_ticks, after_ticks, tick_h)
    n = history_ticks + run_ticks + after_ticks
    frames: dict[str, pd.DataFrame] = {}

    def rho(per_hour: float) -> float:
        return per_hour**tick_h

    # demand: day-level lognormal shock x Poisson counts per tick
    demand = nominal["demand"]
    index = demand.index
    day = ((index - run_start) // pd.Timedelta(days=1)).to_numpy()
    day = day - day.min()
    tick_s = tick_h * 3600.0
    realised = {}
    sigma = noise.demand_day_sigma
    for name in demand.columns:
        # two streams: the draws over a shorter span are a prefix of those over a longer one
        day_shock = stream(seed, f"demand-day/{name}").standard_normal(int(day.max()) + 1)
        shocks = np.exp(sigma * day_shock - 0.5 * sigma**2)
        intensity = np.clip(demand[name].to_numpy(dtype=float), 0.0, None) * shocks[day]
        counts = stream(seed, f"demand/{name}")
        realised[name] = counts.poisson(intensity * tick_s) / tick_s if noise.demand_poisson else intensity
    frames["demand"] = pd.DataFrame(realised, index=index, columns=demand.columns)

    def multiplicative(signal: str, sigma: float, rho_h: float, low: float | None, high: float | None,
                       factors: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
        frame = nominal[signal]
        columns = {}
        for site in frame.columns:
            x = factors[site] if factors is not None else ar1_path(stream(seed, f"{signal}/{site}"), n, rho(rho_h))
            columns[site] = frame[site].to_numpy(dtype=float) * (1.0 + sigma * x)
            if low is not None or high is not None:
                columns[site] = np.clip(columns[site], low, high)
        return pd.DataFrame(columns, index=frame.index, columns=frame.columns)

    frames["pv"] = multiplicative("pv", noise.pv_sigma, noise.pv_rho_per_h, 0.0, 1.0)
    frames["wind"] = multiplicative("wind", noise.wind_sigma, noise.wind_rho_per_h, 0.0, 1.0)
    price_factor = {
        site: ar1_path(stream(seed, f"import_price/{site}"), n, rho(noise.price_rho_per_h))
        for site in nominal["import_price"].columns
    }
    frames["import_price"] = multiplicative("import_price", noise.price_sigma, 0.0, None, None, price_factor)
    frames["export_price"] = multiplicative("export_price", noise.price_sigma, 0.0, None, None, price_factor)
    frames["carbon"] = multiplicative("carbon", noise.carbon_sigma, noise.carbon_rho_per_h, 0.0, None)
    temperature = nominal["temperature"]
    frames["temperature"] = pd.DataFrame({
        site: temperature[site].to_numpy(dtype=float) + noise.temperature_sigma_c
        * ar1_path(stream(seed, f"temperature/{site}"), n, rho(noise.temperature_rho_per_h))
        for site in temperature.columns
    }, index=temperature.index, columns=temperature.columns)
    frames["base_load"] = nominal["base_load"]  # a schedule: no noise
    return RealisedSignals({name: frames[name] for name in (*SIGNALS, "base_load")}, tick_h, history_ticks, note)


@dataclass(frozen=True)
class Submission:
    """A training job and the time (hours after the run start) it is submitted to the fleet."""

    submitted_h: float
    job: TrainingJob


def _fitting_sites(fleet: Fleet, gpus: int, power_mw: float) -> np.ndarray:
    """(S,) sites with the GPUs and the facility power (at the lowest PUE) for a job."""
    return (fleet.gpus >= gpus) & ((fleet.idle_power_mw + power_mw) * fleet.pue_min <= fleet.power_capacity_mw)


def submit_jobs(scenario: Scenario, fleet: Fleet, seed: int, run_hours: float) -> list[Submission]:
    """Every job submitted during the run, in submission order.

    Explicit jobs are submitted at their release (those released after the run are left out).
    A ``job_population`` adds Poisson arrivals over ``[0, run_hours)``: each job draws its GPUs
    (from ``gpus_choices`` with ``gpus_weights``), duration and deadline slack (uniform), value per
    GPU-hour (uniform) and its eligible sites (a random ``eligible_site_fraction`` of the sites,
    at least one, kept only where it fits); ``release_h`` = arrival, ``deadline_h`` = release +
    duration + slack, ``value_usd`` = value per GPU-h x GPUs x duration, ``power_mw`` = GPUs x
    ``power_kw_per_gpu`` / 1000. A drawn job that fits no eligible site is not submitted. All
    attributes are drawn for every arrival before filtering, so the stream stays aligned.
    """
    submissions = [Submission(job.release_h, job) for job in scenario.jobs if job.release_h < run_hours]
    population = scenario.job_population
    if population is not None:
        rng = stream(seed, "jobs")
        count = int(rng.poisson(population.arrival_rate_per_h * run_hours))
        arrivals = np.sort(rng.uniform(0.0, run_hours, count))
        weights = np.asarray(population.gpus_weights if population.gpus_weights else
                             np.ones(len(population.gpus_choices)), dtype=float)
        gpus = rng.choice(np.asarray(population.gpus_choices), size=count, p=weights / weights.sum())
        duration = rng.uniform(population.duration_h_min, population.duration_h_max, count)
        slack = rng.uniform(population.slack_h_min, population.slack_h_max, count)
        value = rng.uniform(population.value_usd_per_gpu_h_min, population.value_usd_per_gpu_h_max, count)
        S = fleet.n_sites
        n_eligible = max(1, int(round(population.eligible_site_fraction * S)))
        order = np.argsort(rng.random((count, S)), axis=1)[:, :n_eligible]
        taken = {job.name for job in scenario.jobs}
        for i in range(count):
            power = float(gpus[i]) * population.power_kw_per_gpu / 1000.0
            eligible = np.zeros(S, dtype=bool)
            eligible[order[i]] = True
            eligible &= _fitting_sites(fleet, int(gpus[i]), power)
            if not eligible.any():
                continue
            name = f"pop-{i:05d}"
            while name in taken:
                name += "'"
            release = float(arrivals[i])
            job = TrainingJob(
                name=name, gpus=int(gpus[i]), power_mw=power, duration_h=float(duration[i]), release_h=release,
                deadline_h=release + float(duration[i]) + float(slack[i]),
                value_usd=float(value[i]) * int(gpus[i]) * float(duration[i]),
                sites=None if eligible.all() else [fleet.site_names[s] for s in np.flatnonzero(eligible)],
            )
            submissions.append(Submission(release, job))
    submissions.sort(key=lambda item: (item.submitted_h, item.job.name))
    return submissions
