"""aidc forecasts package: forecasters behind one interface, error models, vintages, skill.

    from forecasts import HistoryView, make_forecaster
    forecaster = make_forecaster("noisy:sigma_24h=0.15,rho=0.8", seed=7)
    forecaster.bind_truth("carbon", carbon_frame)          # oracles only
    history = HistoryView(carbon_frame, issue_time)         # rows before issue_time, copied
    fc = forecaster.forecast("carbon", history, issue_time, pd.Timedelta("1h"), 24)
    fc.values, fc.quantiles

See :mod:`forecasts.base` for the conventions (targets, lead, no look-ahead), :mod:`forecasts.noisy`
for the error model and :mod:`forecasts.vintages` for the vintage table and skill metrics.
"""

from forecasts.base import (
    NONNEGATIVE_SIGNALS,
    SIGNALS,
    UNIT_INTERVAL_SIGNALS,
    Forecast,
    Forecaster,
    ForecastError,
    HistoryView,
    InsufficientHistoryError,
    OracleForecaster,
    clip_to_signal_range,
)
from forecasts.ets import EtsForecaster
from forecasts.models import PerfectForecaster, PersistenceForecaster, SeasonalNaiveForecaster
from forecasts.noisy import NOISE_DEFAULTS, NoiseSettings, NoisyForecaster
from forecasts.params import ForecastSpecError, Param
from forecasts.registry import (
    FORECASTERS,
    describe_forecasters,
    forecaster_class,
    make_forecaster,
    parse_forecast_spec,
)
from forecasts.vintages import VintageStore, pinball_loss, skill_by_lead, truth_at_vintages

__all__ = [
    "FORECASTERS",
    "NOISE_DEFAULTS",
    "NONNEGATIVE_SIGNALS",
    "SIGNALS",
    "UNIT_INTERVAL_SIGNALS",
    "EtsForecaster",
    "Forecast",
    "ForecastError",
    "ForecastSpecError",
    "Forecaster",
    "HistoryView",
    "InsufficientHistoryError",
    "NoiseSettings",
    "NoisyForecaster",
    "OracleForecaster",
    "Param",
    "PerfectForecaster",
    "PersistenceForecaster",
    "SeasonalNaiveForecaster",
    "VintageStore",
    "clip_to_signal_range",
    "describe_forecasters",
    "forecaster_class",
    "make_forecaster",
    "parse_forecast_spec",
    "pinball_loss",
    "skill_by_lead",
    "truth_at_vintages",
]
