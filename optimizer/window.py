"""The inputs of one optimisation window [t0, t0 + T*dt): static fleet, series, state at t0.

Series are arrays shaped (S, T) per site or (K, T) per inference class; they are forecasts in
the MPC and realised values in the offline study. Job times are whole steps relative to t0:
a job's feasible starts are ``release_step <= tau <= deadline_step - duration_steps``; a deadline
beyond the window means the job may also be left for a later window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from scenarios.arrays import Fleet, base_load_mw, build_fleet, nominal_signals
from scenarios.schema import Scenario, Site, TrainingJob
from scenarios.timebase import days_to_hours, minutes_to_hours, whole_steps


@dataclass(frozen=True)
class JobBatch:
    """Training jobs not yet started. Shapes (J,) and (J, S)."""

    names: tuple[str, ...]
    gpus: np.ndarray
    power_mw: np.ndarray
    duration_steps: np.ndarray
    release_step: np.ndarray
    deadline_step: np.ndarray
    value_usd: np.ndarray
    eligible: np.ndarray
    # (J,) share of its last step each job runs, in (0, 1] (exact durations, see job_batch);
    # None = every job runs whole steps
    last_step_share: np.ndarray | None = None

    @property
    def n_jobs(self) -> int:
        return len(self.names)

    @property
    def exact_duration_steps(self) -> np.ndarray:
        """(J,) duration in (fractional) steps: ``duration_steps - 1 + last_step_share``."""
        if self.last_step_share is None:
            return self.duration_steps.astype(float)
        return self.duration_steps - 1.0 + self.last_step_share

    def subset(self, keep: np.ndarray) -> JobBatch:
        """The jobs where ``keep`` (bool (J,)) is true."""
        return JobBatch(
            names=tuple(n for n, k in zip(self.names, keep, strict=True) if k),
            gpus=self.gpus[keep], power_mw=self.power_mw[keep], duration_steps=self.duration_steps[keep],
            release_step=self.release_step[keep], deadline_step=self.deadline_step[keep],
            value_usd=self.value_usd[keep], eligible=self.eligible[keep],
            last_step_share=None if self.last_step_share is None else self.last_step_share[keep],
        )

    @staticmethod
    def empty(n_sites: int) -> JobBatch:
        return JobBatch((), np.zeros(0), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64),
                        np.zeros(0, np.int64), np.zeros(0), np.zeros((0, n_sites), bool))


@dataclass(frozen=True)
class RunningJobs:
    """Jobs already running: fixed load at their site for their remaining steps."""

    names: tuple[str, ...]
    site: np.ndarray
    gpus: np.ndarray
    power_mw: np.ndarray
    remaining_steps: np.ndarray

    @staticmethod
    def empty() -> RunningJobs:
        return RunningJobs((), np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0, np.int64))

    def load(self, n_sites: int, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """(S, T) GPUs busy and IT MW drawn by the running jobs."""
        active = np.arange(n_steps)[None, :] < self.remaining_steps[:, None]  # (Jr, T)
        gpus = np.zeros((n_sites, n_steps))
        power = np.zeros((n_sites, n_steps))
        np.add.at(gpus, self.site, active * self.gpus[:, None])
        np.add.at(power, self.site, active * self.power_mw[:, None])
        return gpus, power


@dataclass(frozen=True)
class WindowInputs:
    """Everything the model builder needs for one window."""

    fleet: Fleet
    start: pd.Timestamp
    step_hours: float
    demand_req_per_s: np.ndarray  # (K, T)
    pv_available_mw: np.ndarray  # (S, T)
    wind_available_mw: np.ndarray
    import_price_usd_per_mwh: np.ndarray
    export_price_usd_per_mwh: np.ndarray
    carbon_t_per_mwh: np.ndarray
    pue: np.ndarray
    soc_initial_mwh: np.ndarray  # (S,)
    jobs: JobBatch
    running: RunningJobs
    carbon_budget_tco2: float | None  # for this window (already paced)
    carbon_price_usd_per_tco2: float
    carbon_violation_penalty_usd_per_tco2: float
    tail_energy_price_usd_per_mwh: np.ndarray  # (S,)
    battery_terminal_value_usd_per_mwh: np.ndarray  # (S,)
    # Variable resolution: how many base steps (of ``step_hours``) each model step spans; None =
    # one each (a uniform grid). Job times (JobBatch, RunningJobs) always count base steps.
    step_counts: np.ndarray | None = None
    # (S, T) exogenous site load beside IT x PUE (scenarios.Site.base_load_mw), MW; None = none
    base_load_mw: np.ndarray | None = None
    # (S,) the carbon-price part of the derived tail price and terminal value, USD/MWh (0 where the
    # scenario gives them): what :meth:`without_carbon_price` removes
    tail_carbon_usd_per_mwh: np.ndarray | None = None
    terminal_carbon_usd_per_mwh: np.ndarray | None = None
    # True when the window ends where the run ends: started jobs then earn their reward pro rata
    # and pay no tail energy (the run-end convention of optimizer.ledger)
    ends_run: bool = False

    @property
    def n_steps(self) -> int:
        return self.pue.shape[1]

    @property
    def base_load(self) -> np.ndarray:
        """(S, T) exogenous site load, MW (zeros when the window has none)."""
        return np.zeros_like(self.pue) if self.base_load_mw is None else self.base_load_mw

    @property
    def counts(self) -> np.ndarray:
        """(T,) base steps per model step."""
        return np.ones(self.n_steps, np.int64) if self.step_counts is None else self.step_counts

    @property
    def is_uniform(self) -> bool:
        return self.step_counts is None or bool((self.step_counts == 1).all())

    @property
    def dt(self) -> np.ndarray:
        """(T,) length of each model step, hours."""
        return self.counts * self.step_hours

    @property
    def step_offset(self) -> np.ndarray:
        """(T,) first base step of each model step."""
        counts = self.counts
        return np.cumsum(counts) - counts

    @property
    def n_base_steps(self) -> int:
        return int(self.counts.sum())

    @property
    def time_index(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.start + pd.to_timedelta(self.step_offset * self.step_hours, unit="h"))

    def block_mean(self, base: np.ndarray) -> np.ndarray:
        """Average an (..., base steps) array over each model step."""
        if self.is_uniform:
            return base
        return np.add.reduceat(base, self.step_offset, axis=-1) / self.counts

    def running_load(self) -> tuple[np.ndarray, np.ndarray]:
        """(S, T) GPUs busy and IT MW drawn by the running jobs (step means)."""
        gpus, power = self.running.load(self.fleet.n_sites, self.n_base_steps)
        return self.block_mean(gpus), self.block_mean(power)

    def start_coverage(
        self, start_job: np.ndarray, start_step: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For starts (job, model step): (start position, model step, share of the step run) of
        every step each start's run overlaps inside the window. On a uniform grid the share is 1."""
        offset, counts = self.step_offset, self.counts
        begin = offset[start_step]
        end = np.minimum(begin + self.jobs.duration_steps[start_job], self.n_base_steps)
        last = np.searchsorted(offset, end - 1, side="right") - 1
        length = np.maximum(last - start_step + 1, 0)
        position = np.repeat(np.arange(len(start_step)), length)
        step = start_step[position] + np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
        overlap = (np.minimum(end[position], offset[step] + counts[step])
                   - np.maximum(begin[position], offset[step])).astype(float)
        if self.jobs.last_step_share is not None:  # the job's last base step is run only in part
            full_end = begin + self.jobs.duration_steps[start_job]
            cut = (full_end <= self.n_base_steps)[position] & (full_end[position] <= offset[step] + counts[step])
            overlap -= np.where(cut, 1.0 - self.jobs.last_step_share[start_job][position], 0.0)
        return position, step, overlap / counts[step]

    def with_changes(self, **changes: Any) -> WindowInputs:
        """A copy with the given fields replaced (``dataclasses.replace``)."""
        return replace(self, **changes)

    def without_carbon_price(self) -> WindowInputs:
        """The window as an objective that does not price carbon sees it: carbon price 0, and the
        derived tail price and battery terminal value without their carbon-price part."""
        zeros = np.zeros(self.fleet.n_sites)
        tail_carbon = zeros if self.tail_carbon_usd_per_mwh is None else self.tail_carbon_usd_per_mwh
        terminal_carbon = zeros if self.terminal_carbon_usd_per_mwh is None else self.terminal_carbon_usd_per_mwh
        return replace(self, carbon_price_usd_per_tco2=0.0,
                       tail_energy_price_usd_per_mwh=self.tail_energy_price_usd_per_mwh - tail_carbon,
                       battery_terminal_value_usd_per_mwh=self.battery_terminal_value_usd_per_mwh - terminal_carbon,
                       tail_carbon_usd_per_mwh=zeros, terminal_carbon_usd_per_mwh=zeros)


#: the numeric inputs of a window a solver reads, with their units (for :func:`non_finite_input`)
_CHECKED_INPUTS = (
    ("demand_req_per_s", "req/s"), ("pv_available_mw", "MW"), ("wind_available_mw", "MW"),
    ("import_price_usd_per_mwh", "USD/MWh"), ("export_price_usd_per_mwh", "USD/MWh"), ("carbon_t_per_mwh", "t/MWh"),
    ("pue", ""), ("soc_initial_mwh", "MWh"), ("tail_energy_price_usd_per_mwh", "USD/MWh"),
    ("battery_terminal_value_usd_per_mwh", "USD/MWh"), ("base_load_mw", "MW"),
)


def non_finite_input(w: WindowInputs) -> str | None:
    """Where a window holds NaN or an infinity, e.g. ``import_price_usd_per_mwh is nan at site b,
    step 3 (2 of 24 values)``; None when every input is finite. A solver handed such a window
    may fail in misleading ways (HiGHS reports an infeasible model, or ignores its time limit)."""
    for name, _ in _CHECKED_INPUTS:
        values = getattr(w, name)
        if values is None:
            continue
        values = np.asarray(values, dtype=float)
        bad = ~np.isfinite(values)
        if not bad.any():
            continue
        first = np.unravel_index(int(np.argmax(bad)), values.shape)
        where = ""
        if values.ndim >= 1:
            labels = w.fleet.class_names if name == "demand_req_per_s" else w.fleet.site_names
            where = f" at {'class' if name == 'demand_req_per_s' else 'site'} {labels[first[0]]}"
        if values.ndim == 2:
            where += f", step {first[1]}"
        return f"{name} is {values[first]}{where} ({int(bad.sum())} of {values.size} values)"
    for name in ("carbon_budget_tco2", "carbon_price_usd_per_tco2", "carbon_violation_penalty_usd_per_tco2"):
        value = getattr(w, name)
        if value is not None and not np.isfinite(value):
            return f"{name} is {value}"
    return None


def coarsen(w: WindowInputs, fine_steps: int, coarse_factor: int) -> WindowInputs:
    """A variable-resolution copy of a uniform window: its first ``fine_steps`` steps kept, the rest
    merged ``coarse_factor`` at a time (the last block may be shorter); series are block means."""
    if not w.is_uniform:
        raise ValueError("coarsen needs a uniform window")
    T = w.n_steps
    fine = min(max(fine_steps, 1), T)
    coarse = [coarse_factor] * ((T - fine) // coarse_factor)
    if (T - fine) % coarse_factor:
        coarse.append((T - fine) % coarse_factor)
    counts = np.array([1] * fine + coarse, dtype=np.int64)
    coarse_window = replace(w, step_counts=counts)
    series: tuple[str, ...] = ("demand_req_per_s", "pv_available_mw", "wind_available_mw",
                               "import_price_usd_per_mwh", "export_price_usd_per_mwh", "carbon_t_per_mwh", "pue")
    if w.base_load_mw is not None:
        series += ("base_load_mw",)
    means: dict[str, Any] = {name: coarse_window.block_mean(getattr(w, name)) for name in series}
    return replace(coarse_window, **means)


def job_batch(
    jobs: Sequence[TrainingJob], fleet: Fleet, window_start_h: float, step_hours: float, exact: bool = False
) -> JobBatch:
    """Convert jobs (times in hours after the run start) to whole steps relative to the window.

    Releases round up to the next step boundary and durations up to whole steps; with ``exact``
    the batch also records the share of its last step each job really runs
    (``JobBatch.last_step_share``), so that its load and energy are exact (the hindsight bound). The latest
    start is the last step boundary at or before ``deadline - duration`` (exact hours), so every
    start the plant could make is allowed; ``deadline_step = latest start + duration_steps`` may
    then lie up to one step past the true deadline, which the job (running its true duration)
    still meets.
    """
    if not jobs:
        return JobBatch.empty(fleet.n_sites)
    eps = 1e-9
    release = np.array([j.release_h for j in jobs]) - window_start_h
    deadline = np.array([j.deadline_h for j in jobs]) - window_start_h
    duration = np.array([j.duration_h for j in jobs])
    eligible = np.array(
        [[j.sites is None or name in j.sites for name in fleet.site_names] for j in jobs], dtype=bool
    )
    power = np.array([j.power_mw for j in jobs])
    gpus = np.array([j.gpus for j in jobs], dtype=float)
    eligible &= gpus[:, None] <= fleet.gpus[None, :]
    duration_steps = np.ceil(duration / step_hours - eps).astype(np.int64)
    return JobBatch(
        names=tuple(j.name for j in jobs),
        gpus=gpus,
        power_mw=power,
        duration_steps=duration_steps,
        release_step=np.maximum(np.ceil(release / step_hours - eps), 0).astype(np.int64),
        deadline_step=np.floor((deadline - duration) / step_hours + eps).astype(np.int64) + duration_steps,
        value_usd=np.array([j.value_usd for j in jobs]),
        eligible=eligible,
        last_step_share=np.clip(duration / step_hours - (duration_steps - 1), 0.0, 1.0) if exact else None,
    )


def window_inputs(
    scenario: Scenario,
    signals: dict[str, pd.DataFrame],
    *,
    fleet: Fleet | None = None,
    soc_initial_mwh: np.ndarray | None = None,
    jobs: JobBatch | None = None,
    running: RunningJobs | None = None,
    carbon_budget_tco2: float | None = None,
    step_hours: float | None = None,
) -> WindowInputs:
    """Assemble window inputs from signal frames (see :func:`scenarios.arrays.nominal_signals`).

    The window is the frames' index; its step is ``step_hours``, else the index's frequency or
    spacing (a one-step window needs one of the first two). ``jobs`` defaults to the
    scenario's explicit jobs, ``soc_initial_mwh`` to the scenario's initial SOC and the budget
    to the scenario's whole budget.
    """
    fleet = build_fleet(scenario) if fleet is None else fleet
    index = signals["import_price"].index
    if step_hours is None:
        if index.freq is not None:
            step_hours = pd.Timedelta(index.freq).total_seconds() / 3600.0
        elif len(index) > 1:
            step_hours = (index[1] - index[0]).total_seconds() / 3600.0
        else:
            raise ValueError("a one-step window needs step_hours (or an index with a frequency)")
    start = index[0]

    names = list(fleet.site_names)

    def sites(name: str) -> np.ndarray:
        frame = signals[name]
        if list(frame.columns) != names:  # a column selection copies; skip it when already in order
            frame = frame[names]
        return frame.to_numpy(dtype=float).T

    window_start_h = (start - pd.Timestamp(scenario.run.start)).total_seconds() / 3600.0
    import_price = sites("import_price")
    carbon = sites("carbon")
    pue = fleet.pue(sites("temperature"))
    carbon_price = scenario.carbon.price_usd_per_tco2
    # energy bought after the window costs the mean import price plus the carbon price on the mean
    # intensity; jobs running past it draw PUE x IT (the tail price), and energy left in a battery
    # displaces such imports at the discharge efficiency (the terminal value) -- both carry the
    # same carbon term, so a carbon-pricing objective values the end of the window consistently
    carbon_cost = carbon_price * carbon.mean(axis=1)
    explicit_tail = scenario.tail_energy_price_usd_per_mwh is not None
    tail_price = (
        np.full(fleet.n_sites, scenario.tail_energy_price_usd_per_mwh)
        if explicit_tail
        else import_price.mean(axis=1) + carbon_cost
    ) * pue.mean(axis=1)
    tail_carbon = np.zeros(fleet.n_sites) if explicit_tail else carbon_cost * pue.mean(axis=1)
    if "base_load" in signals:
        base_load = sites("base_load")
    elif any(_has_base_load(site) for site in scenario.sites):
        base_load = base_load_mw(scenario, start, len(index), step_hours)[list(fleet.site_names)].to_numpy().T
    else:
        base_load = None
    derived_terminal = np.isnan(fleet.battery_terminal_value_usd_per_mwh)
    terminal_carbon = np.where(derived_terminal, carbon_cost * fleet.battery_discharge_efficiency, 0.0)
    terminal = np.where(
        derived_terminal,
        import_price.mean(axis=1) * fleet.battery_discharge_efficiency + terminal_carbon,
        fleet.battery_terminal_value_usd_per_mwh,
    )
    return WindowInputs(
        fleet=fleet,
        start=start,
        step_hours=step_hours,
        demand_req_per_s=signals["demand"][list(fleet.class_names)].to_numpy(dtype=float).T,
        pv_available_mw=sites("pv") * fleet.pv_capacity_mw[:, None],
        wind_available_mw=sites("wind") * fleet.wind_capacity_mw[:, None],
        import_price_usd_per_mwh=import_price,
        export_price_usd_per_mwh=sites("export_price"),
        carbon_t_per_mwh=carbon,
        pue=pue,
        soc_initial_mwh=fleet.soc_initial_mwh.copy() if soc_initial_mwh is None else soc_initial_mwh,
        jobs=job_batch(scenario.jobs, fleet, window_start_h, step_hours) if jobs is None else jobs,
        running=RunningJobs.empty() if running is None else running,
        carbon_budget_tco2=scenario.carbon.budget_tco2 if carbon_budget_tco2 is None else carbon_budget_tco2,
        carbon_price_usd_per_tco2=carbon_price,
        carbon_violation_penalty_usd_per_tco2=scenario.carbon.violation_penalty_usd_per_tco2,
        tail_energy_price_usd_per_mwh=tail_price,
        battery_terminal_value_usd_per_mwh=terminal,
        base_load_mw=base_load,
        tail_carbon_usd_per_mwh=tail_carbon,
        terminal_carbon_usd_per_mwh=terminal_carbon,
    )


def _has_base_load(site: Site) -> bool:
    """False only for the default: a constant zero base load."""
    from scenarios.series import GeneratedSeries

    spec = site.base_load_mw
    return not (isinstance(spec, GeneratedSeries) and spec.shape == "constant"
                and spec.mean * spec.scale + spec.offset == 0.0)


def offline_inputs(scenario: Scenario, step_hours: float | None = None) -> WindowInputs:
    """The whole run as one window on the scenario's nominal series (the offline study); it ends
    with the run, so started jobs earn their reward pro rata (:mod:`optimizer.ledger`)."""
    step_hours = minutes_to_hours(scenario.run.control_interval_minutes) if step_hours is None else step_hours
    n_steps = whole_steps(days_to_hours(scenario.run.days), step_hours)
    signals = nominal_signals(scenario, pd.Timestamp(scenario.run.start), n_steps, step_hours)
    return window_inputs(scenario, signals).with_changes(ends_run=True)
