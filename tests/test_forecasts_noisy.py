"""The noisy oracle: error std by lead, AR(1) along lead, correlations, bias, seeding.

The statistical tests use fixed seeds and many draws. Tolerances are set in standard errors
(z-scores), wide enough never to flake, narrow enough that a wrong sigma (10 % off) or a missing
autocorrelation fails them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasts import HistoryView, NoiseSettings, NoisyForecaster, make_forecaster

HOUR = pd.Timedelta("1h")
START = pd.Timestamp("2022-01-01", tz="UTC")
N_DRAWS = 2000
LEVEL = 100.0


def constant_truth(keys: tuple[str, ...] = ("A",), hours: int = N_DRAWS + 100) -> pd.DataFrame:
    index = pd.date_range(START, periods=hours, freq="h", tz="UTC")
    return pd.DataFrame({key: np.full(hours, LEVEL) for key in keys}, index=index)


def relative_errors(
    forecaster: NoisyForecaster,
    truth: pd.DataFrame,
    signal: str = "carbon",
    step: pd.Timedelta = HOUR,
    horizon: int = 24,
    draws: int = N_DRAWS,
) -> np.ndarray:
    """(draws, horizon, keys) array of (forecast − truth) / truth, one draw per hourly issue time."""
    forecaster.bind_truth(signal, truth)
    out = np.empty((draws, horizon, truth.shape[1]))
    for draw in range(draws):
        issue = START + (draw + 1) * HOUR
        fc = forecaster.forecast(signal, HistoryView(truth, issue), issue, step, horizon)
        out[draw] = fc.values.to_numpy() / LEVEL - 1.0
    return out


def test_sigma_curves():
    lead = np.array([0.0, 6.0, 24.0, 48.0])
    sqrt = NoiseSettings("relative", 0.02, 0.1, "sqrt", 0.9, 0.0).sigma_at(lead)
    np.testing.assert_allclose(sqrt, [0.02, 0.06, 0.1, 0.02 + 0.08 * np.sqrt(2)])
    linear = NoiseSettings("relative", 0.02, 0.1, "linear", 0.9, 0.0).sigma_at(lead)
    np.testing.assert_allclose(linear, [0.02, 0.04, 0.1, 0.18])
    const = NoiseSettings("relative", 0.02, 0.1, "const", 0.9, 0.0).sigma_at(lead)
    np.testing.assert_allclose(const, 0.1)


def empirical_std_z_scores(errors: np.ndarray, expected_sigma: np.ndarray) -> np.ndarray:
    """z-scores of the sample std at each lead against the configured sigma (SE ≈ σ / sqrt(2n))."""
    n = errors.shape[0]
    sample_std = np.sqrt(np.mean(errors**2, axis=0))  # the mean error is zero by construction
    return (sample_std / expected_sigma - 1.0) * np.sqrt(2 * n)


@pytest.mark.parametrize("curve", ["sqrt", "linear", "const"])
def test_error_std_by_lead_matches_the_curve(curve):
    forecaster = make_forecaster(f"noisy:sigma_0=0.05,sigma_24h=0.2,curve={curve},rho=0.8,quantiles=none",
                                 seed=11)
    errors = relative_errors(forecaster, constant_truth())[:, :, 0]
    expected = forecaster.settings["carbon"].sigma_at(np.arange(1, 25))
    z = empirical_std_z_scores(errors, expected)
    assert np.abs(z).max() < 4.5, z
    # the same check rejects a sigma that is 10 % off: it can fail
    assert np.abs(empirical_std_z_scores(errors, expected * 1.1)).max() > 4.5
    assert np.abs(errors.mean(axis=0) / (expected / np.sqrt(N_DRAWS))).max() < 4.5


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_lag_one_autocorrelation_along_lead_matches_rho(rho):
    forecaster = make_forecaster(f"noisy:sigma_24h=0.2,rho={rho},quantiles=none", seed=12)
    errors = relative_errors(forecaster, constant_truth())[:, :, 0]
    standardized = errors / forecaster.settings["carbon"].sigma_at(np.arange(1, 25))
    lag_one = np.array([np.corrcoef(standardized[:, i], standardized[:, i + 1])[0, 1] for i in range(23)])
    standard_error = (1 - rho**2) / np.sqrt(N_DRAWS) + 1e-3
    assert abs(lag_one.mean() - rho) < 4 * standard_error
    assert np.abs(lag_one - rho).max() < 0.1


def test_rho_is_per_hour_so_half_hour_steps_correlate_with_its_square_root():
    forecaster = make_forecaster("noisy:sigma_24h=0.2,rho=0.64,quantiles=none", seed=13)
    errors = relative_errors(forecaster, constant_truth(), step=pd.Timedelta("30min"), horizon=8, draws=1500)
    lag_one = np.mean([np.corrcoef(errors[:, i, 0], errors[:, i + 1, 0])[0, 1] for i in range(7)])
    assert abs(lag_one - 0.8) < 0.03


def test_cross_site_and_cross_signal_correlation():
    forecaster = make_forecaster("noisy:sigma_24h=0.2,site_corr=0.6,signal_corr=0.3,quantiles=none", seed=14)
    truth = constant_truth(("A", "B"))
    carbon = relative_errors(forecaster, truth, "carbon", horizon=6)
    demand = relative_errors(forecaster, truth, "demand", horizon=6)
    across_sites = np.mean([np.corrcoef(carbon[:, i, 0], carbon[:, i, 1])[0, 1] for i in range(6)])
    across_signals = np.mean([np.corrcoef(carbon[:, i, 0], demand[:, i, 1])[0, 1] for i in range(6)])
    assert abs(across_sites - 0.6) < 0.05
    assert abs(across_signals - 0.3) < 0.05


def test_bias_shifts_the_mean_error():
    forecaster = make_forecaster("noisy:sigma_24h=0.1,bias=0.05,quantiles=none", seed=15)
    errors = relative_errors(forecaster, constant_truth(), horizon=4, draws=800)
    assert abs(errors.mean() - 0.05) < 0.01


def _forecast(forecaster: NoisyForecaster, truth: pd.DataFrame, issue: pd.Timestamp,
              signal: str = "carbon", horizon: int = 24) -> pd.DataFrame:
    return forecaster.forecast(signal, HistoryView(truth, issue), issue, HOUR, horizon).values


def test_same_seed_same_draws_other_seed_different():
    truth = constant_truth(("A", "B"), hours=200)
    issue = START + 50 * HOUR
    spec = "noisy:site_corr=0.4,signal_corr=0.2"
    first, again, other = (make_forecaster(spec, seed=s) for s in (3, 3, 4))
    for forecaster in (first, again, other):
        forecaster.bind_truth("carbon", truth)
    pd.testing.assert_frame_equal(_forecast(first, truth, issue), _forecast(again, truth, issue))
    assert not np.allclose(_forecast(first, truth, issue), _forecast(other, truth, issue))
    # a different issue time is a different draw
    assert not np.allclose(_forecast(first, truth, issue), _forecast(first, truth, issue + HOUR))


def test_draws_do_not_depend_on_call_order_other_keys_or_horizon():
    truth = constant_truth(("A", "B", "C"), hours=200)
    issue = START + 50 * HOUR
    reference = make_forecaster("noisy:site_corr=0.5,signal_corr=0.2", seed=5)
    reference.bind_truth("carbon", truth)
    expected = _forecast(reference, truth, issue)

    busy = make_forecaster("noisy:site_corr=0.5,signal_corr=0.2", seed=5)
    busy.bind_truth("carbon", truth)
    busy.bind_truth("demand", truth)
    for hour in (70, 10, 50):
        _forecast(busy, truth, START + hour * HOUR, signal="demand")
    pd.testing.assert_frame_equal(_forecast(busy, truth, issue), expected)
    # one key alone, or a longer horizon, sees the same errors for that key
    only_b = truth[["B"]]
    busy.bind_truth("carbon", only_b)
    pd.testing.assert_frame_equal(_forecast(busy, only_b, issue), expected[["B"]])
    busy.bind_truth("carbon", truth)
    longer = _forecast(busy, truth, issue, horizon=48)
    pd.testing.assert_frame_equal(longer.iloc[:24], expected)


def test_noisy_quantiles_are_gaussian_around_the_forecast():
    truth = constant_truth(hours=200)
    forecaster = make_forecaster("noisy:sigma_24h=0.2,quantiles=0.1/0.5/0.9", seed=6)
    forecaster.bind_truth("carbon", truth)
    issue = START + 50 * HOUR
    fc = forecaster.forecast("carbon", HistoryView(truth, issue), issue, HOUR, 24)
    point = fc.values["A"].to_numpy()
    sigma = forecaster.settings["carbon"].sigma_at(np.arange(1, 25))
    np.testing.assert_allclose(fc.quantiles[0.5]["A"], point)
    np.testing.assert_allclose(fc.quantiles[0.9]["A"], point * (1 + 1.2815515655446004 * sigma))
    np.testing.assert_allclose(fc.quantiles[0.1]["A"], point * (1 - 1.2815515655446004 * sigma))


def test_noisy_quantiles_are_calibrated_over_many_draws():
    truth = constant_truth(hours=1100)
    forecaster = make_forecaster("noisy:sigma_24h=0.1,quantiles=0.1/0.9", seed=7)
    forecaster.bind_truth("carbon", truth)
    below_q10 = below_q90 = total = 0
    for hour in range(1, 1001):
        issue = START + hour * HOUR
        fc = forecaster.forecast("carbon", HistoryView(truth, issue), issue, HOUR, 6)
        below_q10 += int((fc.quantiles[0.1]["A"] > LEVEL).sum())
        below_q90 += int((fc.quantiles[0.9]["A"] > LEVEL).sum())
        total += 6
    # relative errors around |f| make this approximate; coverage within a few points
    assert abs(below_q10 / total - 0.1) < 0.03
    assert abs(below_q90 / total - 0.9) < 0.03


def test_std_and_absolute_modes_scale_errors():
    index = pd.date_range(START, periods=400, freq="h", tz="UTC")
    prices = pd.DataFrame({"A": np.tile([-20.0, 80.0], 200)}, index=index)  # std 50, crosses zero
    forecaster = make_forecaster("noisy:sigma_24h=0.2,curve=const,rho=0,quantiles=none,"
                                 "temperature.mode=absolute,temperature.sigma_24h=2", seed=8)
    forecaster.bind_truth("import_price", prices)
    forecaster.bind_truth("temperature", prices)
    price_errors, temperature_errors = [], []
    for hour in range(1, 351):
        issue = START + hour * HOUR
        view = HistoryView(prices, issue)
        truth_now = prices.loc[issue : issue + 23 * HOUR, "A"].to_numpy()
        price = forecaster.forecast("import_price", view, issue, HOUR, 24).values["A"].to_numpy()
        temperature = forecaster.forecast("temperature", view, issue, HOUR, 24).values["A"].to_numpy()
        price_errors.append(price - truth_now)
        temperature_errors.append(temperature - truth_now)
    assert abs(np.std(price_errors) / (0.2 * 50.0) - 1) < 0.05
    assert abs(np.std(temperature_errors) / 2.0 - 1) < 0.05


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    issue_hour=st.integers(1, 150),
    rho=st.floats(0.0, 1.0),
    site_corr=st.floats(0.0, 1.0),
)
def test_standard_errors_are_finite_and_reproducible(seed, issue_hour, rho, site_corr):
    truth = constant_truth(("A", "B"), hours=200)
    make = lambda: make_forecaster(  # noqa: E731
        {"name": "noisy", "rho": rho, "site_corr": site_corr, "signal_corr": site_corr / 2, "seed": seed},
        seed=0,
    )
    first, second = make(), make()
    for forecaster in (first, second):
        forecaster.bind_truth("pv", truth / 200.0)
    issue = START + issue_hour * HOUR
    a = first.forecast("pv", HistoryView(truth / 200.0, issue), issue, HOUR, 24)
    b = second.forecast("pv", HistoryView(truth / 200.0, issue), issue, HOUR, 24)
    assert np.isfinite(a.values.to_numpy()).all()
    assert ((a.values >= 0) & (a.values <= 1)).all().all()
    pd.testing.assert_frame_equal(a.values, b.values)
