"""Forecast interface, history view (no look-ahead), simple models, ETS, clipping, spec parsing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecasts import (
    FORECASTERS,
    SIGNALS,
    EtsForecaster,
    Forecast,
    Forecaster,
    ForecastError,
    ForecastSpecError,
    HistoryView,
    InsufficientHistoryError,
    NoisyForecaster,
    PerfectForecaster,
    PersistenceForecaster,
    SeasonalNaiveForecaster,
    describe_forecasters,
    make_forecaster,
    parse_forecast_spec,
)
from forecasts.base import ForecastRequest, Prediction
from forecasts.timegrid import interval_means, ns_to_index

HOUR = pd.Timedelta("1h")
START = pd.Timestamp("2022-03-01", tz="UTC")


def hourly_frame(values: np.ndarray | dict, start: pd.Timestamp = START) -> pd.DataFrame:
    data = values if isinstance(values, dict) else {"A": np.asarray(values, dtype=float)}
    length = len(next(iter(data.values())))
    return pd.DataFrame(data, index=pd.date_range(start, periods=length, freq="h", tz="UTC"))


def daily_wave(n_hours: int, level: float = 200.0, amplitude: float = 60.0) -> np.ndarray:
    hours = np.arange(n_hours)
    return level + amplitude * np.sin(2 * np.pi * hours / 24) + 0.3 * amplitude * np.cos(4 * np.pi * hours / 24)


def issue_and_forecast(forecaster: Forecaster, frame: pd.DataFrame, issue: pd.Timestamp, signal: str = "carbon",
                       horizon: int = 24, step: pd.Timedelta = HOUR) -> Forecast:
    return forecaster.forecast(signal, HistoryView(frame, issue), issue, step, horizon)


# --- HistoryView --------------------------------------------------------------------------------

def test_history_view_holds_only_rows_before_issue_time():
    frame = hourly_frame(np.arange(100.0))
    issue = START + 40 * HOUR
    view = HistoryView(frame, issue)
    assert len(view) == 40
    seen = view.to_frame()
    assert seen.index.max() < issue and seen.index.max() == issue - HOUR
    np.testing.assert_array_equal(seen["A"].to_numpy(), np.arange(40.0))
    # asking for the future through the public API gives nothing more
    far = issue + 1000 * HOUR
    assert len(view.to_frame(start=issue - HOUR, end=far)) == 1
    assert len(view.to_numpy(start=issue)) == 0
    assert view.end_time == issue
    # structurally: the object holds no value from the future at all
    assert view._values.shape == (40, 1)  # noqa: SLF001 - inspecting internals on purpose
    assert not hasattr(view, "__dict__")


def test_history_view_returns_copies_and_is_not_aliased_to_source():
    frame = hourly_frame(np.arange(50.0))
    view = HistoryView(frame, START + 30 * HOUR)
    returned = view.to_frame()
    returned.iloc[:, 0] = -1.0
    view.to_numpy()[:] = -1.0
    frame.iloc[:, 0] = -5.0
    np.testing.assert_array_equal(view.to_numpy()[:, 0], np.arange(30.0))


def test_history_view_off_grid_issue_excludes_the_unfinished_interval():
    frame = hourly_frame(np.arange(10.0))
    view = HistoryView(frame, START + pd.Timedelta("3h30min"))
    # the 03:00 interval has not ended at 03:30
    assert len(view) == 3 and view.end_time == START + 3 * HOUR


def test_history_view_lookback_and_bad_input():
    frame = hourly_frame(np.arange(100.0))
    view = HistoryView(frame, START + 50 * HOUR, lookback=pd.Timedelta("10h"))
    np.testing.assert_array_equal(view.to_numpy()[:, 0], np.arange(40.0, 50.0))
    with pytest.raises(ValueError, match="time zone"):
        HistoryView(frame, pd.Timestamp("2022-03-02"))
    naive = frame.tz_localize(None)
    with pytest.raises(ValueError, match="time zone"):
        HistoryView(naive, START)
    irregular = frame.drop(frame.index[5])
    with pytest.raises(ValueError, match="regular"):
        HistoryView(irregular, START + 50 * HOUR)


def test_history_view_empty_before_start():
    view = HistoryView(hourly_frame(np.arange(10.0)), START)
    assert len(view) == 0 and view.end_time is None
    with pytest.raises(InsufficientHistoryError):
        PersistenceForecaster().forecast("carbon", view, START, HOUR, 3)


# --- no look-ahead ---------------------------------------------------------------------------------

HISTORY_MODELS = ("persistence", "seasonal-naive", "seasonal-naive:period_h=168", "ets")


def assert_no_lookahead(build, frame: pd.DataFrame, issue: pd.Timestamp, signal: str) -> None:
    """Forecasts must not change when everything at or after the issue time is replaced.

    ``build(world)`` makes the forecaster in a world whose data is ``world``: an honest forecaster
    ignores it (it only gets the HistoryView); anything that reaches the world's future differs.
    """
    tampered = frame.copy()
    future = tampered.index >= issue
    tampered.loc[future] = 1e6 + np.arange(future.sum())[:, None]
    honest = issue_and_forecast(build(frame), frame, issue, signal)
    other = issue_and_forecast(build(tampered), tampered, issue, signal)
    pd.testing.assert_frame_equal(honest.values, other.values)


@pytest.mark.parametrize("spec", HISTORY_MODELS)
def test_history_models_do_not_look_ahead(spec):
    frame = hourly_frame(daily_wave(24 * 40) + np.random.default_rng(1).normal(0, 5, 24 * 40))
    forecaster = make_forecaster(spec)
    for issue in (START + (24 * 20 + 7) * HOUR, START + 24 * 30 * HOUR):
        assert_no_lookahead(lambda world: forecaster, frame, issue, "carbon")


class _PeekingForecaster(Forecaster):
    """A cheat that reads the truth it closed over: the look-ahead check must catch it."""

    name = "peeking"

    def __init__(self, truth: pd.DataFrame) -> None:
        super().__init__()
        self._truth = truth

    def _predict(self, request: ForecastRequest, history: HistoryView) -> Prediction:
        rows = self._truth.index.get_indexer(ns_to_index(request.target_ns))
        assert (rows >= 0).all()
        return Prediction(values=self._truth.to_numpy()[rows])


def test_lookahead_check_catches_a_peeking_forecaster():
    frame = hourly_frame(daily_wave(24 * 10))
    with pytest.raises(AssertionError):
        assert_no_lookahead(_PeekingForecaster, frame, START + 24 * 5 * HOUR, "carbon")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    issue_hour=st.integers(min_value=1, max_value=24 * 9),
    spec=st.sampled_from(("persistence", "seasonal-naive", "seasonal-naive:period_h=6")),
    horizon=st.integers(min_value=1, max_value=48),
)
def test_no_lookahead_property(issue_hour, spec, horizon):
    frame = hourly_frame(daily_wave(24 * 10))
    issue = START + issue_hour * HOUR
    tampered = frame.copy()
    tampered.loc[tampered.index >= issue] = -123.0
    forecaster = make_forecaster(spec)
    a = forecaster.forecast("temperature", HistoryView(frame, issue), issue, HOUR, horizon)
    b = forecaster.forecast("temperature", HistoryView(tampered, issue), issue, HOUR, horizon)
    pd.testing.assert_frame_equal(a.values, b.values)


def test_history_cut_at_another_time_is_refused():
    frame = hourly_frame(np.arange(100.0))
    view = HistoryView(frame, START + 50 * HOUR)
    with pytest.raises(ForecastError, match="issued at"):
        PersistenceForecaster().forecast("carbon", view, START + 40 * HOUR, HOUR, 24)


# --- forecast shape and the simple models ----------------------------------------------------------

def test_forecast_shape_index_and_metadata():
    frame = hourly_frame({"A": np.arange(72.0), "B": np.arange(72.0) * 2})
    issue = START + 48 * HOUR
    fc = issue_and_forecast(PersistenceForecaster(), frame, issue, horizon=6)
    assert list(fc.values.columns) == ["A", "B"]
    assert list(fc.values.index) == list(pd.date_range(issue, periods=6, freq="h", tz="UTC"))
    assert fc.issue_time == issue and fc.step == HOUR and fc.model == "persistence"
    with pytest.raises(ForecastError, match="horizon_steps"):
        issue_and_forecast(PersistenceForecaster(), frame, issue, horizon=0)
    with pytest.raises(ForecastError, match="unknown signal"):
        issue_and_forecast(PersistenceForecaster(), frame, issue, signal="co2")


def test_perfect_equals_truth():
    frame = hourly_frame({"A": daily_wave(24 * 5), "B": np.linspace(-5, 5, 24 * 5)})
    issue = START + 30 * HOUR
    oracle = PerfectForecaster(truth={"import_price": frame})
    fc = issue_and_forecast(oracle, frame, issue, signal="import_price", horizon=48)
    expected = frame.loc[issue : issue + 47 * HOUR]
    np.testing.assert_array_equal(fc.values.to_numpy(), expected.to_numpy())
    assert fc.quantiles is None


def test_perfect_resamples_by_interval_mean_and_refuses_uncovered_windows():
    frame = hourly_frame(np.arange(48.0))
    oracle = make_forecaster("perfect")
    oracle.bind_truth("carbon", frame)
    issue = START + 10 * HOUR
    two_hourly = issue_and_forecast(oracle, frame, issue, step=pd.Timedelta("2h"), horizon=3)
    np.testing.assert_allclose(two_hourly.values["A"], [10.5, 12.5, 14.5])
    quarter = issue_and_forecast(oracle, frame, issue, step=pd.Timedelta("15min"), horizon=5)
    np.testing.assert_allclose(quarter.values["A"], [10, 10, 10, 10, 11])
    with pytest.raises(ForecastError, match="covers"):
        issue_and_forecast(oracle, frame, START + 40 * HOUR, horizon=24)
    with pytest.raises(ForecastError, match="bind_truth"):
        issue_and_forecast(oracle, frame, issue, signal="pv")


def test_oracle_refuses_truth_with_nan():
    frame = hourly_frame(np.arange(10.0))
    frame.iloc[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PerfectForecaster(truth={"carbon": frame})


def test_persistence_is_exact_on_a_constant_series_and_holds_the_last_value():
    frame = hourly_frame({"A": np.full(60, 42.0), "B": np.arange(60.0)})
    fc = issue_and_forecast(PersistenceForecaster(), frame, START + 30 * HOUR, horizon=12)
    np.testing.assert_array_equal(fc.values["A"], 42.0)
    np.testing.assert_array_equal(fc.values["B"], 29.0)


def test_persistence_fills_gaps_with_last_observation():
    values = np.arange(30.0)
    values[25:] = np.nan
    fc = issue_and_forecast(PersistenceForecaster(), hourly_frame(values), START + 30 * HOUR, horizon=2)
    np.testing.assert_array_equal(fc.values["A"], 24.0)


@pytest.mark.parametrize("period_h", [24, 168, 6])
def test_seasonal_naive_is_exact_on_a_periodic_series(period_h):
    rng = np.random.default_rng(period_h)
    pattern = rng.uniform(0, 500, period_h)
    frame = hourly_frame(np.tile(pattern, 40 * 24 // period_h + 2))
    forecaster = make_forecaster(f"seasonal-naive:period_h={period_h}")
    for issue_hour in (period_h * 3, period_h * 3 + 5, 24 * 30 + 1):
        issue = START + issue_hour * HOUR
        fc = issue_and_forecast(forecaster, frame, issue, horizon=48)
        np.testing.assert_array_equal(fc.values["A"], frame["A"].loc[issue : issue + 47 * HOUR].to_numpy())
        assert fc.note is None


def test_seasonal_naive_uses_yesterday_not_the_truth():
    values = np.arange(24 * 5, dtype=float)
    frame = hourly_frame(values)
    fc = issue_and_forecast(SeasonalNaiveForecaster(), frame, START + 72 * HOUR, horizon=30)
    # targets 72..101: one day back for 72..95; 96..101 wrap two days back
    expected = np.r_[np.arange(48.0, 72.0), np.arange(48.0, 54.0)]
    np.testing.assert_array_equal(fc.values["A"], expected)


def test_seasonal_naive_short_history_falls_back_to_persistence_with_note():
    frame = hourly_frame(np.arange(48.0))
    fc = issue_and_forecast(SeasonalNaiveForecaster(period_h=24), frame, START + 10 * HOUR, horizon=4)
    np.testing.assert_array_equal(fc.values["A"], 9.0)
    assert "persistence" in fc.note


# --- clipping ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("signal", SIGNALS)
def test_noisy_forecasts_respect_signal_range(signal):
    rng = np.random.default_rng(3)
    base = rng.uniform(0, 1, 24 * 6) if signal in ("pv", "wind") else rng.normal(20, 30, 24 * 6)
    if signal in ("demand", "carbon"):
        base = np.abs(base)
    frame = hourly_frame({"A": base, "B": base[::-1].copy()})
    noisy = NoisyForecaster(truth={signal: frame}, sigma_24h=1.5, sigma_0=0.5, mode="std", seed=2)
    lows, highs = [], []
    for hour in range(24, 24 * 5, 5):
        fc = issue_and_forecast(noisy, frame, START + hour * HOUR, signal=signal)
        frames = [fc.values, *fc.quantiles.values()]
        lows.append(min(f.to_numpy().min() for f in frames))
        highs.append(max(f.to_numpy().max() for f in frames))
    if signal in ("pv", "wind"):
        assert min(lows) == 0.0 and max(highs) == 1.0
    elif signal in ("demand", "carbon"):
        assert min(lows) == 0.0
    else:
        assert min(lows) < 0.0  # prices and temperature may go negative


# --- ETS -----------------------------------------------------------------------------------------------

def test_ets_tracks_a_seasonal_series_with_ordered_quantiles():
    rng = np.random.default_rng(5)
    frame = hourly_frame(daily_wave(24 * 30) + rng.normal(0, 2.0, 24 * 30))
    issue = START + 24 * 20 * HOUR
    fc = issue_and_forecast(EtsForecaster(), frame, issue, horizon=24)
    truth = daily_wave(24 * 30)[24 * 20 : 24 * 21]
    assert fc.note is None and fc.model == "ets"
    assert np.abs(fc.values["A"].to_numpy() - truth).max() < 10.0
    q = fc.quantiles
    assert sorted(q) == [0.1, 0.5, 0.9]
    assert np.all(q[0.1]["A"] < q[0.5]["A"]) and np.all(q[0.5]["A"] < q[0.9]["A"])
    np.testing.assert_allclose(q[0.5]["A"], fc.values["A"])


def test_ets_reuses_fits_within_a_refit_period_and_is_order_independent():
    rng = np.random.default_rng(6)
    frame = hourly_frame(daily_wave(24 * 25) + rng.normal(0, 3.0, 24 * 25))
    first, later = START + 24 * 20 * HOUR, START + (24 * 20 + 5) * HOUR
    forward = EtsForecaster(window_h=168)
    a_first = issue_and_forecast(forward, frame, first)
    a_later = issue_and_forecast(forward, frame, later)
    assert len(forward._fits) == 1  # noqa: SLF001 - the cache is the point of this test
    backward = EtsForecaster(window_h=168)
    b_later = issue_and_forecast(backward, frame, later)
    b_first = issue_and_forecast(backward, frame, first)
    pd.testing.assert_frame_equal(a_first.values, b_first.values)
    pd.testing.assert_frame_equal(a_later.values, b_later.values)


def test_ets_falls_back_to_seasonal_naive_on_short_history():
    frame = hourly_frame(daily_wave(24 * 4))
    issue = START + 36 * HOUR
    fc = issue_and_forecast(EtsForecaster(), frame, issue, horizon=12)
    naive = issue_and_forecast(SeasonalNaiveForecaster(), frame, issue, horizon=12)
    assert "fallback to seasonal-naive" in fc.note
    pd.testing.assert_frame_equal(fc.values, naive.values)
    assert fc.quantiles[0.9]["A"].isna().all()


# --- spec parsing ------------------------------------------------------------------------------------

def test_registry_lists_every_forecaster():
    assert set(FORECASTERS) == {"perfect", "persistence", "seasonal-naive", "ets", "noisy"}
    assert all(isinstance(text, str) and "\n" not in text for text in FORECASTERS.values())
    help_text = describe_forecasters()
    assert "sigma_24h" in help_text and "window_h" in help_text


def test_make_forecaster_parses_parameters():
    noisy = make_forecaster("noisy:sigma_24h=0.15,rho=0.8,carbon.bias=0.05,quantiles=0.05/0.95", seed=4)
    assert isinstance(noisy, NoisyForecaster)
    assert noisy.seed == 4
    assert noisy.settings["carbon"].sigma_24h == 0.15 and noisy.settings["carbon"].bias == 0.05
    assert noisy.settings["pv"].rho == 0.8 and noisy.settings["pv"].bias == 0.0
    assert noisy.params["quantiles"] == (0.05, 0.95)
    assert make_forecaster("noisy:seed=9", seed=4).seed == 9
    assert make_forecaster("seasonal-naive:period_h=168").params["period_h"] == 168.0
    from_mapping = make_forecaster({"name": "noisy", "rho": 0.5, "carbon": {"sigma_24h": 0.3}})
    assert from_mapping.settings["carbon"].sigma_24h == 0.3 and from_mapping.settings["carbon"].rho == 0.5
    rebuilt = make_forecaster(noisy.spec)
    assert rebuilt.settings == noisy.settings and rebuilt.seed == noisy.seed
    assert parse_forecast_spec(" ets : window_h = 100 ") == ("ets", {"window_h": "100"})


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("oracle", "valid names: perfect, persistence, seasonal-naive, ets, noisy"),
        ("noisy:sigma=0.1", "valid parameters: sigma_24h"),
        ("noisy:rho=1.5", "'rho'"),
        ("noisy:rho=abc", "expected a number in [0, 1]"),
        ("noisy:curve=cubic", "one of sqrt|linear|const"),
        ("noisy:co2.sigma_24h=0.1", "<signal> in demand"),
        ("noisy:carbon.site_corr=0.1", "unknown parameter"),
        ("noisy:rho", "write name=value"),
        ("noisy:rho=0.5,rho=0.6", "given twice"),
        ("noisy:seed=-1", "'seed'"),
        ("noisy:seed=1.5", "an integer"),
        ("noisy:quantiles=0.1/1.2", "levels in (0, 1)"),
        ("noisy:site_corr=0.2,signal_corr=0.5", "signal_corr <= site_corr"),
        ("noisy:sigma_0=0.5,sigma_24h=0.1", "sigma_0 <= sigma_24h"),
        ("persistence:period_h=24", "takes no parameters"),
        ("ets:trend=quadratic", "none|add|damped"),
        ({"sigma_24h": 0.1}, "needs a 'name'"),
    ],
)
def test_bad_specs_give_one_line_errors(spec, fragment):
    with pytest.raises(ForecastSpecError) as info:
        make_forecaster(spec)
    message = str(info.value)
    assert fragment in message and "\n" not in message
    assert isinstance(info.value, ValueError)


# --- interval means ------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.floats(-1e3, 1e3), min_size=8, max_size=40),
    factor=st.sampled_from((2, 3, 4)),
)
def test_interval_means_coarse_equals_block_average(values, factor):
    array = np.asarray(values)
    n_blocks = len(array) // factor
    step = 3_600_000_000_000
    starts = np.arange(n_blocks, dtype=np.int64) * factor * step
    means = interval_means(0, step, array, starts, factor * step)[:, 0]
    expected = array[: n_blocks * factor].reshape(n_blocks, factor).mean(axis=1)
    np.testing.assert_allclose(means, expected, rtol=1e-9, atol=1e-6)
    # finer targets hold the value of the row that contains them
    fine = interval_means(0, step, array, np.arange(len(array) * 4, dtype=np.int64) * step // 4, step // 4)
    np.testing.assert_allclose(fine[:, 0], np.repeat(array, 4), rtol=1e-9, atol=1e-6)
