"""Exponential smoothing (Holt-Winters with daily seasonality) from statsmodels, with quantiles.

Model: statsmodels' ``ETSModel`` with additive errors and additive seasonality of ``period_h``
(ETS(A,N,A), or ETS(A,A,A) / ETS(A,Ad,A) with ``trend=add|damped``). For key ``k``:

    y_t = l_{t-1} (+ φ b_{t-1}) + s_{t-m} + e_t,   e_t ~ N(0, σ²)
    l_t = l_{t-1} (+ φ b_{t-1}) + α e_t,  (b_t = φ b_{t-1} + β e_t),  s_t = s_{t-m} + γ e_t

with ``m = period_h / history step``. Point forecasts are the model means; quantile ``q`` is
``mean + z_q · sqrt(forecast variance)`` (statsmodels' analytical variance, Gaussian errors).

Refitting. Parameters (α, γ, initial states, ...) are estimated by maximum likelihood on the
``window_h`` hours of history before the most recent *refit anchor* ``floor(issue_time, refit_h)``
(anchors on the UTC epoch grid, so they do not depend on which issue times were asked before). At
each issue the fitted parameters are re-applied, without re-estimation, to the same window extended
with everything observed since the anchor, and the forecast is made from the end of the history.
Fits are cached per (signal, key, anchor, data fingerprint), so a daily refit costs one fit per day
and key; every other issue costs one Kalman-style pass (~20 ms).

Fallback. If the fit window holds fewer than ``2·m + 2`` observations, the step does not divide the
period, or the fit fails or gives non-finite numbers, the key is forecast by seasonal naive with the
same period, its quantiles are NaN, and ``Forecast.note`` (and the ``forecasts`` logger) says so.
Targets on a different step than the history are mapped with time-weighted interval means (exact
for the mean; for quantiles a conservative approximation).
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from forecasts.base import Forecaster, ForecastRequest, HistoryView, Prediction, gaussian_quantile
from forecasts.models import gap_filled_history, seasonal_naive
from forecasts.params import Param
from forecasts.timegrid import NS_PER_HOUR, interval_means

_FIT_CACHE_SIZE = 512



@contextmanager
def numerical_warnings_silenced() -> Iterator[None]:
    """Silence the numerical warnings an exponential-smoothing fit emits on short or flat series
    (no convergence, overflow in the likelihood); deprecations and other warnings still reach
    the caller (and the test suite's error filter)."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, ValueWarning

    with warnings.catch_warnings():
        for category in (ConvergenceWarning, ValueWarning, RuntimeWarning):
            warnings.simplefilter("ignore", category)
        yield

class EtsForecaster(Forecaster):
    """Holt-Winters exponential smoothing (statsmodels ETSModel), refitted every ``refit_h`` hours."""

    name: ClassVar[str] = "ets"
    description: ClassVar[str] = (
        "exponential smoothing with daily seasonality (statsmodels ETS), fallback seasonal-naive"
    )
    PARAMETERS: ClassVar[tuple] = (
        Param("period_h", "float", 24.0, "season length in hours", low=1e-6),
        Param("window_h", "float", 336.0, "hours of history used to fit the parameters", low=1.0),
        Param("refit_h", "float", 24.0, "hours between refits (anchored on the UTC epoch)", low=1e-6),
        Param("trend", "choice", "none", "trend component", choices=("none", "add", "damped")),
        Param("quantiles", "quantiles", (0.1, 0.5, 0.9), "quantile levels to report"),
    )

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._fits: OrderedDict[tuple, np.ndarray | str] = OrderedDict()

    def _predict(self, request: ForecastRequest, history: HistoryView) -> Prediction:
        period_h = self.number("period_h")
        levels = self.quantile_levels
        values = gap_filled_history(history, request.signal)
        step_ns = int(history.step.as_unit("ns").value)
        first_ns = history.first_ns
        n_keys = values.shape[1]
        point = np.full((request.horizon_steps, n_keys), np.nan)
        quantiles = {level: np.full_like(point, np.nan) for level in levels}
        fallback_keys: list[tuple[object, str]] = []
        for column, key in enumerate(request.keys):
            result = self._forecast_key(request, key, values[:, column], first_ns, step_ns, period_h, levels)
            if isinstance(result, str):
                fallback_keys.append((key, result))
                continue
            point[:, column], key_quantiles = result
            for level in levels:
                quantiles[level][:, column] = key_quantiles[level]
        note = None
        if fallback_keys:
            fallback = seasonal_naive(request, history, period_h).values
            for key, _ in fallback_keys:
                column = request.keys.index(key)
                point[:, column] = fallback[:, column]
            reasons = "; ".join(f"{key}: {reason}" for key, reason in fallback_keys)
            note = f"fallback to seasonal-naive (period_h={period_h:g}) for {reasons}"
        return Prediction(values=point, quantiles=quantiles or None, note=note)

    def _forecast_key(
        self,
        request: ForecastRequest,
        key: object,
        series: np.ndarray,
        first_ns: int,
        step_ns: int,
        period_h: float,
        levels: tuple[float, ...],
    ) -> tuple[np.ndarray, dict[float, np.ndarray]] | str:
        """Point and quantile paths for one key, or the reason to fall back."""
        season = period_h * NS_PER_HOUR / step_ns
        if abs(season - round(season)) > 1e-9 or round(season) < 2:
            return f"period_h={period_h:g} is not a whole number (≥ 2) of history steps"
        season = int(round(season))
        refit_ns = int(round(self.number("refit_h") * NS_PER_HOUR))
        window_ns = int(round(self.number("window_h") * NS_PER_HOUR))
        anchor_ns = (request.issue_ns // refit_ns) * refit_ns
        window_start_ns = max(first_ns, anchor_ns - window_ns)
        lo = -(-(window_start_ns - first_ns) // step_ns)
        hi = min(len(series), max(lo, (anchor_ns - first_ns) // step_ns))
        fit_values = series[lo:hi]
        if len(fit_values) < 2 * season + 2:
            return f"{len(fit_values)} observations before the refit anchor, need {2 * season + 2}"
        params = self._fitted_params(request.signal, key, anchor_ns, step_ns, season, fit_values)
        if isinstance(params, str):
            return params
        observed = series[lo:]
        end_ns = first_ns + len(series) * step_ns
        steps_ahead = int(-(-(int(request.target_ns[-1]) + request.step_ns - end_ns) // step_ns))
        try:
            with numerical_warnings_silenced():
                smoothed = self._model(observed, season).smooth(params)
                prediction = smoothed.get_prediction(start=len(observed), end=len(observed) + steps_ahead - 1)
                mean_path = np.asarray(prediction.predicted_mean, dtype=np.float64)
                variance = np.asarray(prediction.forecast_variance, dtype=np.float64)
                std_path = np.sqrt(np.maximum(variance, 0.0))
        except (ValueError, np.linalg.LinAlgError) as exc:  # pragma: no cover - statsmodels internals
            return f"smoothing failed ({exc})"
        if not (np.all(np.isfinite(mean_path)) and np.all(np.isfinite(std_path))):
            return "non-finite forecast"
        point = interval_means(end_ns, step_ns, mean_path, request.target_ns, request.step_ns)[:, 0]
        quantile_paths = {}
        for level in levels:
            path = mean_path + gaussian_quantile(level) * std_path
            quantile_paths[level] = interval_means(end_ns, step_ns, path, request.target_ns, request.step_ns)
        return point, {level: path[:, 0] for level, path in quantile_paths.items()}

    def _model(self, values: np.ndarray, season: int) -> Any:  # statsmodels' ETSModel (untyped)
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        trend = self.params["trend"]
        return ETSModel(
            pd.Series(values),
            error="add",
            trend=None if trend == "none" else "add",
            damped_trend=trend == "damped",
            seasonal="add",
            seasonal_periods=season,
        )

    def _fitted_params(
        self,
        signal: str,
        key: object,
        anchor_ns: int,
        step_ns: int,
        season: int,
        fit_values: np.ndarray,
    ) -> np.ndarray | str:
        """Maximum-likelihood parameters on ``fit_values`` (cached), or the reason it failed."""
        fingerprint = hashlib.blake2b(np.ascontiguousarray(fit_values).tobytes(), digest_size=16).hexdigest()
        cache_key = (signal, str(key), anchor_ns, step_ns, season, fingerprint)
        cached = self._fits.get(cache_key)
        if cached is not None:
            self._fits.move_to_end(cache_key)
            return cached
        try:
            with numerical_warnings_silenced():
                fitted = self._model(fit_values, season).fit(disp=False)
            params = np.asarray(fitted.params, dtype=np.float64)
            finite = bool(np.all(np.isfinite(params)))
            outcome: np.ndarray | str = params if finite else "fit gave non-finite parameters"
        except (ValueError, np.linalg.LinAlgError) as exc:
            outcome = f"fit failed ({exc})"
        self._fits[cache_key] = outcome
        if len(self._fits) > _FIT_CACHE_SIZE:
            self._fits.popitem(last=False)
        return outcome
