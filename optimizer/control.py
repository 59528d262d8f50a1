"""Controllers: the built-in heuristics (``local``, ``greedy``) and helpers the controllers share.

The protocol itself (:class:`Controller`, :class:`Observation`, :class:`Setpoints`,
:class:`RunningJob`) lives in :mod:`optimizer.protocol` and is re-exported here. The MPC
forecasts every signal from its :class:`~forecasts.HistoryView`, solves a window with one of the
model variants, applies the first interval and keeps the full plan for diagnostics and as its
fallback.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasts import Forecaster, ForecastError, HistoryView
from forecasts.plugin import UserCodeFailed, is_users_class

# the protocol, re-exported (``from optimizer.control import Controller`` keeps working)
from optimizer.protocol import Controller, Observation, RunningJob, Setpoints  # noqa: F401
from scenarios.arrays import SIGNALS, Fleet
from scenarios.schema import Scenario
from scenarios.timebase import HOURS_PER_DAY, whole_steps


def idle_setpoints(fleet: Fleet) -> Setpoints:
    S, K = fleet.n_sites, fleet.n_classes
    return Setpoints((), np.zeros((K, S)), np.zeros(S), np.zeros(S), np.zeros(S))


def last_values(history: HistoryView, columns: tuple[str, ...], default: float = 0.0) -> np.ndarray:
    """The most recent observed row of a signal (a default before any history)."""
    frame = history.to_frame()
    if frame.empty:
        return np.full(len(columns), default)
    return frame[list(columns)].iloc[-1].to_numpy(dtype=float)


def nearest_first_shares(fleet: Fleet, demand_req_per_s: np.ndarray, free_gpus: np.ndarray,
                         site_order: np.ndarray | None = None) -> np.ndarray:
    """Routing shares that fill sites in a given order (default: nearest first) up to their GPUs."""
    S, K = fleet.n_sites, fleet.n_classes
    shares = np.zeros((K, S))
    capacity = np.maximum(free_gpus, 0.0) * fleet.throughput_req_per_s_per_gpu
    for k in range(K):
        latency = fleet.latency_ms[fleet.class_origin[k]]
        feasible = np.flatnonzero(fleet.route_feasible[k])
        key = latency if site_order is None else site_order[k]
        remaining = demand_req_per_s[k]
        for site in feasible[np.argsort(key[feasible], kind="stable")]:
            if remaining <= 0:
                break
            take = min(remaining, capacity[site])
            if demand_req_per_s[k] > 0:
                shares[k, site] += take / demand_req_per_s[k]
            capacity[site] -= take
            remaining -= take
        if demand_req_per_s[k] <= 0:
            shares[k, fleet.home_site[k]] = 1.0
    return shares


def training_gpus_free(fleet: Fleet, running: tuple[RunningJob, ...]) -> np.ndarray:
    busy = np.zeros(fleet.n_sites)
    for job in running:
        busy[job.site] += job.gpus
    return fleet.gpus - busy


class LocalController(Controller):
    """Baseline: each job starts at release at its first eligible site with free GPUs; each class is
    served at its nearest feasible site (spilling in latency order); grid only (battery and
    generator idle)."""

    name = "local"

    def decide(self, observation: Observation) -> Setpoints:
        fleet = self.fleet
        setpoints = idle_setpoints(fleet)
        free = training_gpus_free(fleet, observation.running)
        starts = []
        for job in sorted(observation.queued, key=lambda j: j.release_h):
            if job.release_h > observation.elapsed_h + 1e-9:
                continue
            for site in range(fleet.n_sites):
                eligible = job.sites is None or fleet.site_names[site] in job.sites
                if eligible and free[site] >= job.gpus:
                    starts.append((job.name, site))
                    free[site] -= job.gpus
                    break
        demand = last_values(observation.history["demand"], fleet.class_names)
        setpoints.job_starts = tuple(starts)
        setpoints.routing_shares = nearest_first_shares(fleet, demand, free)
        return setpoints


class GreedyController(Controller):
    """Baseline: jobs start as soon as released at the eligible site with room that has the lowest
    current price + carbon price x intensity; inference fills sites cheapest first within the
    latency limit; batteries charge below the 30th and discharge above the 70th percentile of the
    last day's prices at their site."""

    name = "greedy"

    def __init__(self, low_quantile: float = 0.3, high_quantile: float = 0.7) -> None:
        self.low_quantile, self.high_quantile = low_quantile, high_quantile

    def decide(self, observation: Observation) -> Setpoints:
        fleet = self.fleet
        setpoints = idle_setpoints(fleet)
        names = fleet.site_names
        price = last_values(observation.history["import_price"], names)
        carbon = last_values(observation.history["carbon"], names)
        cost = price + self.scenario.carbon.price_usd_per_tco2 * carbon
        free = training_gpus_free(fleet, observation.running)
        starts = []
        for job in sorted(observation.queued, key=lambda j: j.release_h):
            if job.release_h > observation.elapsed_h + 1e-9:
                continue
            candidates = [s for s in np.argsort(cost, kind="stable")
                          if (job.sites is None or names[s] in job.sites) and free[s] >= job.gpus]
            if candidates:
                starts.append((job.name, int(candidates[0])))
                free[candidates[0]] -= job.gpus
        demand = last_values(observation.history["demand"], fleet.class_names)
        setpoints.job_starts = tuple(starts)
        setpoints.routing_shares = nearest_first_shares(
            fleet, demand, free, site_order=np.broadcast_to(cost, (fleet.n_classes, fleet.n_sites))
        )
        day = observation.history["import_price"].to_frame()
        if len(day):
            recent = day[list(names)].to_numpy()[-whole_steps(HOURS_PER_DAY, observation.interval_h):]
            low = np.quantile(recent, self.low_quantile, axis=0)
            high = np.quantile(recent, self.high_quantile, axis=0)
            has = fleet.battery_energy_mwh > 0
            setpoints.charge_mw = np.where(has & (price <= low), fleet.battery_charge_mw, 0.0)
            setpoints.discharge_mw = np.where(has & (price >= high) & (price > low), fleet.battery_discharge_mw, 0.0)
        return setpoints

    def config(self) -> dict[str, object]:
        return {"name": self.name, "low_quantile": self.low_quantile, "high_quantile": self.high_quantile}


def forecast_signals(
    forecaster: Forecaster, observation: Observation, horizon_steps: int, scenario: Scenario | None = None
) -> dict[str, pd.DataFrame]:
    """Every signal forecast over the horizon at the control interval: ``{signal: (T, columns)}``.

    Raises :class:`NonFiniteForecast` (a :class:`~forecasts.ForecastError`) naming the forecaster
    and the signal when a forecast holds NaN or an infinity.

    With ``scenario``, a site whose export price is contractual (no export series of its own:
    ``export_price_fraction`` x the import price) gets its export-price forecast derived from its
    import-price forecast in the same way, instead of forecast on its own. An independent
    forecast of the derived signal would put the forecast export price above the import price
    whenever the two errors part (12 % of the steps with the default noisy forecaster), an
    arbitrage that does not exist: the plans would chase it, and the window's LP relaxation would
    weaken exactly there (the no-simultaneous-flow binaries of the grid become binding).
    """
    step = pd.Timedelta(hours=observation.interval_h)
    signals = {signal: _forecast_values(forecaster, signal, observation, step, horizon_steps) for signal in SIGNALS}
    if scenario is not None:  # derived first: a non-finite forecast of a value it replaces is not refused
        signals["export_price"] = derived_export_price(scenario, signals["import_price"], signals["export_price"])
    refuse_non_finite(forecaster, signals)
    return signals


def refuse_non_finite(forecaster: Forecaster, signals: dict[str, pd.DataFrame]) -> None:
    """Raise :class:`NonFiniteForecast` naming the forecaster, signal, key and time of the first
    NaN or infinity in the forecast frames ``signals`` ({signal: (T, keys)}; an export price's after
    its parent import price's)."""
    for signal in sorted(signals, key=lambda name: name == "export_price"):  # a parent's error is named first
        frame = signals[signal]
        values = frame.to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            row, column = np.unravel_index(int(np.argmax(bad)), values.shape)
            raise NonFiniteForecast(
                f"forecaster {forecaster.spec} gave a non-finite {signal} forecast ({values[row, column]} for "
                f"{frame.columns[column]} at {frame.index[row]}; {int(bad.sum())} of {values.size} values); refused")


def _forecast_values(forecaster: Forecaster, signal: str, observation: Observation, step: pd.Timedelta,
                     horizon_steps: int) -> pd.DataFrame:
    """The forecast of ``signal`` as a (horizon_steps, columns) frame. A user's forecaster (a class
    outside aidc) that raises (other than ForecastError) or returns something else raises
    :class:`~forecasts.plugin.UserCodeFailed`, one line naming it and the signal."""
    users = is_users_class(forecaster)
    name = getattr(forecaster, "spec", None) or type(forecaster).__name__
    try:
        forecast = forecaster.forecast(signal, observation.history[signal], observation.time, step, horizon_steps)
    except ForecastError:
        raise
    except Exception as error:
        if not users:
            raise
        what = f"{type(error).__name__}: {error}"
        raise UserCodeFailed(f"forecaster {name} failed forecasting {signal}: {what}") from None
    values = getattr(forecast, "values", None)
    if not isinstance(values, pd.DataFrame) or len(values) != horizon_steps:
        got = f"{len(values)} rows" if isinstance(values, pd.DataFrame) else type(forecast).__name__
        message = (f"forecaster {name} returned {got} for {signal}, expected a Forecast whose values are a "
                   f"(horizon steps, columns) frame with {horizon_steps} rows")
        raise UserCodeFailed(message) if users else ValueError(message)
    return values


class NonFiniteForecast(ForecastError):
    """A forecaster returned NaN or an infinity: refused before any solver sees it."""


def derived_export_price(scenario: Scenario, import_price: pd.DataFrame, export_price: pd.DataFrame) -> pd.DataFrame:
    """``export_price`` with each contractual site's column replaced by fraction x ``import_price``.

    Frames are (T, sites) in USD/MWh, columns named by site; a site with its own export-price
    series keeps its column.
    """
    out = export_price.copy()
    for site in scenario.sites:
        if site.grid.export_price_usd_per_mwh is None and site.name in import_price.columns:
            out[site.name] = site.grid.export_price_fraction * import_price[site.name].to_numpy(dtype=float)
    return out
