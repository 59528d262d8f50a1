"""Simple forecasters: the perfect oracle, persistence and seasonal naive.

Persistence and seasonal naive use the :class:`~forecasts.base.HistoryView` only. Gaps (NaN) in the
history are forward-filled (leading gaps back-filled) before use; a key with no observation at all
raises :class:`~forecasts.base.InsufficientHistoryError`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from forecasts.base import (
    Forecaster,
    ForecastRequest,
    HistoryView,
    InsufficientHistoryError,
    OracleForecaster,
    Prediction,
)
from forecasts.params import Param
from forecasts.timegrid import NS_PER_HOUR, interval_means


def gap_filled_history(history: HistoryView, signal: str) -> np.ndarray:
    """The history values (rows, keys) with NaN forward-filled, leading NaN back-filled."""
    values = history.to_numpy()
    if values.shape[0] == 0:
        raise InsufficientHistoryError(
            f"no observed history of {signal!r} before {history.issue_time}; a history-based forecaster "
            "needs at least one observed interval"
        )
    missing = np.isnan(values)
    if missing.any():
        never_seen = missing.all(axis=0)
        empty = [key for key, unseen in zip(history.keys, never_seen, strict=True) if unseen]
        if empty:
            raise InsufficientHistoryError(f"history of {signal!r} has no observation for key(s) {empty}")
        rows = np.arange(values.shape[0])[:, None]
        last_seen = np.maximum.accumulate(np.where(missing, -1, rows), axis=0)
        first_seen = np.argmax(~missing, axis=0)
        last_seen = np.where(last_seen < 0, first_seen[None, :], last_seen)
        values = np.take_along_axis(values, last_seen, axis=0)
    return values


class PerfectForecaster(OracleForecaster):
    """Oracle: the forecast equals the truth (the mean of the truth over each target interval)."""

    name: ClassVar[str] = "perfect"
    description: ClassVar[str] = "oracle: forecast = truth (perfect-information bound)"
    PARAMETERS: ClassVar[tuple] = ()

    def _predict(self, request: ForecastRequest, history: HistoryView) -> Prediction:
        return Prediction(values=self._truth_table(request.signal).means(request))


class PersistenceForecaster(Forecaster):
    """Persistence: every target equals the last observed value, ``x̂(τ + iΔ) = x(τ - δ)``."""

    name: ClassVar[str] = "persistence"
    description: ClassVar[str] = "last observed value held over the horizon"
    PARAMETERS: ClassVar[tuple] = ()

    def _predict(self, request: ForecastRequest, history: HistoryView) -> Prediction:
        last = gap_filled_history(history, request.signal)[-1]
        return Prediction(values=np.repeat(last[None, :], request.horizon_steps, axis=0))


class SeasonalNaiveForecaster(Forecaster):
    """Seasonal naive: the value one period (``period_h``) earlier, repeated as often as needed.

    For target interval ``[t, t+Δ)`` the forecast is the history mean over ``[t - kP, t - kP + Δ)``
    with ``k ≥ 1`` the smallest number of periods that puts that interval inside the observed
    history (so a 24 h horizon with ``P = 24 h`` uses yesterday, and leads beyond ``P`` wrap to the
    last observed period). Targets whose source interval starts before the history (history shorter
    than one period) fall back to persistence, and the forecast's ``note`` says so.
    """

    name: ClassVar[str] = "seasonal-naive"
    description: ClassVar[str] = "value one period earlier (period_h=24: yesterday, 168: last week)"
    PARAMETERS: ClassVar[tuple] = (
        Param("period_h", "float", 24.0, "season length in hours", low=1e-6),
    )

    def _predict(self, request: ForecastRequest, history: HistoryView) -> Prediction:
        return seasonal_naive(request, history, self.number("period_h"))


def seasonal_naive(request: ForecastRequest, history: HistoryView, period_h: float) -> Prediction:
    """Seasonal-naive arrays for ``request`` (see :class:`SeasonalNaiveForecaster`)."""
    values = gap_filled_history(history, request.signal)
    period_ns = int(round(period_h * NS_PER_HOUR))
    first_ns = history.first_ns
    step_ns = int(history.step.as_unit("ns").value)
    end_ns = first_ns + values.shape[0] * step_ns
    target_end = request.target_ns + request.step_ns
    periods_back = np.maximum(1, -(-(target_end - end_ns) // period_ns))
    source_ns = request.target_ns - periods_back * period_ns
    forecast = interval_means(first_ns, step_ns, values, source_ns, request.step_ns)
    too_early = source_ns < first_ns
    note = None
    if too_early.any():
        forecast[too_early] = values[-1]
        note = (
            f"history shorter than period_h={period_h:g} h for {int(too_early.sum())} target(s): "
            "persistence used there"
        )
    return Prediction(values=forecast, note=note)
