"""Tests for the shipped real-data slices and their loader (scenarios.datasets)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scenarios import datasets
from scenarios.datasets import (
    DATASETS,
    DatasetError,
    dataset_keys,
    load_latency_matrix,
    load_series,
    load_sites,
)

HOURLY_2022 = [name for name in DATASETS if name.endswith("_2022")]
WEATHER_SITES = [
    "US-NY-NYIS", "US-MIDA-PJM", "US-TEX-ERCO", "US-CAL-CISO", "DE-LU", "CA-ON", "SG", "AU-VIC",
    "AU-NSW", "CL-SIC", "BR-SP", "ZA", "KR", "IN-WE", "JP-TK", "GB",
]  # fmt: skip
EXPECTED_KEYS = {
    "carbon_intensity_2022": {"CISO", "ERCO", "PJM", "BPAT", "AZPS", "MISO", "NYIS", "SOCO"},
    "price_2022": {
        "US-CAL-CISO", "US-TEX-ERCO", "US-MIDA-PJM", "US-NY-NYIS", "DE-LU", "FR", "ES", "NL",
        "JP-TK", "SG", "AU-NSW",
    },  # fmt: skip
    "llm_request_rate": {"language_m_large", "language_m_mid", "language_m_small"},
    **{
        name: set(WEATHER_SITES)
        for name in HOURLY_2022
        if name not in ("carbon_intensity_2022", "price_2022")
    },
}
# Plausible physical ranges (inclusive). Prices use the widest market limits in the set, the NEM's
# (floor AUD -1,000, cap AUD 15,500/MWh = about -631 and 9,774 USD/MWh): AU-NSW reaches 5,622 USD/MWh as an
# hourly mean on 2022-06-13 (the NEM crisis), so a 5,000 USD/MWh bound would reject real data.
VALUE_RANGES = {
    "carbon_intensity_2022": (0.0, 1200.0),
    "price_2022": (-700.0, 9800.0),
    "temperature_2022": (-40.0, 50.0),
    "cloud_cover_2022": (0.0, 100.0),
    "wind_speed_2022": (0.0, 40.0),
    "pv_availability_2022": (0.0, 1.0),
    "wind_availability_2022": (0.0, 1.0),
    "llm_request_rate": (0.0, 10_000.0),
}
ALL_SERIES = [(name, key) for name in DATASETS for key in sorted(EXPECTED_KEYS[name])]
HOURS_2022 = pd.date_range("2022-01-01T00:00Z", "2022-12-31T23:00Z", freq="h")


def test_every_dataset_has_a_description_and_the_expected_keys():
    assert set(DATASETS) == set(EXPECTED_KEYS)
    for name, description in DATASETS.items():
        assert description and "\n" not in description
        assert set(dataset_keys(name)) == EXPECTED_KEYS[name]


@pytest.mark.parametrize(("dataset", "key"), ALL_SERIES)
def test_series_is_finite_float_utc_named_and_in_range(dataset, key):
    series = load_series(dataset, key)
    assert series.name == key
    assert series.dtype == np.float64
    assert isinstance(series.index, pd.DatetimeIndex)
    assert str(series.index.tz) == "UTC"
    assert series.index.is_monotonic_increasing and series.index.is_unique
    assert np.isfinite(series.to_numpy()).all()
    low, high = VALUE_RANGES[dataset]
    assert series.min() >= low and series.max() <= high, (series.min(), series.max())


@pytest.mark.parametrize("dataset", HOURLY_2022)
def test_hourly_datasets_cover_exactly_the_hours_of_2022(dataset):
    for key in dataset_keys(dataset):
        series = load_series(dataset, key)
        assert len(series) == 8760
        assert series.index.equals(HOURS_2022)


def test_llm_request_rate_is_a_14_day_10_minute_shape_starting_at_china_midnight():
    for key in dataset_keys("llm_request_rate"):
        series = load_series("llm_request_rate", key)
        assert len(series) == 14 * 24 * 6
        assert series.index[0] == pd.Timestamp("2021-12-31T16:00Z")
        assert (series.index.to_series().diff().dropna() == pd.Timedelta(minutes=10)).all()
        assert series.mean() > 0


def test_load_series_returns_a_copy_that_does_not_corrupt_the_cache():
    first = load_series("price_2022", "US-CAL-CISO")
    first.iloc[:] = -1.0
    assert (load_series("price_2022", "US-CAL-CISO") != -1.0).all()


def test_pv_is_zero_at_night_and_positive_at_noon_on_clear_days():
    pv = load_series("pv_availability_2022", "US-CAL-CISO")
    cloud = load_series("cloud_cover_2022", "US-CAL-CISO")
    assert (pv[pv.index.hour == 10] == 0.0).all()  # 10:00Z = 02:00 PST
    noon = pv.index.hour == 20  # 12:00 PST
    clear_noons = pv[noon & (cloud.to_numpy() < 20.0)]
    assert len(clear_noons) > 50
    assert (clear_noons > 0.4).all()
    assert clear_noons["2022-06"].mean() > 0.9


@pytest.mark.parametrize("site", WEATHER_SITES)
def test_pv_is_zero_around_local_solar_midnight_at_every_site(site):
    longitude = float(load_sites().loc[site, "longitude_deg"])
    pv = load_series("pv_availability_2022", site)
    solar_midnight_hour_utc = round(-longitude / 15.0) % 24
    assert (pv[pv.index.hour == solar_midnight_hour_utc] == 0.0).all()
    assert pv.max() > 0.8


def test_wind_power_curve_follows_cut_in_rated_and_cut_out():
    hub_speeds = np.array([0.0, 2.99, 3.0, 7.5, 12.0, 20.0, 24.99, 25.0, 30.0])
    output = datasets.wind_power_curve(hub_speeds)
    expected_cubic = (7.5**3 - 27.0) / (12.0**3 - 27.0)
    np.testing.assert_allclose(output, [0, 0, 0, expected_cubic, 1, 1, 1, 0, 0])


def test_wind_availability_matches_the_scaled_speed_through_the_curve():
    speed_10m = load_series("wind_speed_2022", "GB")
    availability = load_series("wind_availability_2022", "GB")
    hub = speed_10m * 10.0 ** (1.0 / 7.0)
    np.testing.assert_allclose(availability, datasets.wind_power_curve(hub.to_numpy()))
    assert (availability[hub < 3.0] == 0.0).all()
    assert 0.05 < availability.mean() < 0.6


def test_cloud_attenuation_is_kasten_czeplak():
    attenuation = datasets.cloud_attenuation(np.array([0.0, 50.0, 100.0]))
    np.testing.assert_allclose(attenuation, [1.0, 1.0 - 0.75 * 0.5**3.4, 0.25])


def test_carbon_intensity_levels_match_the_regions_generation_mix():
    means = {ba: load_series("carbon_intensity_2022", ba).mean() for ba in ("BPAT", "CISO", "AZPS")}
    assert means["BPAT"] < means["CISO"] < means["AZPS"]  # hydro < gas+solar < coal-heavy


def test_latency_matrix_is_square_with_a_1_ms_diagonal():
    matrix = load_latency_matrix()
    assert matrix.shape == (54, 54)
    assert list(matrix.index) == list(matrix.columns)
    assert np.isfinite(matrix.to_numpy()).all()
    np.testing.assert_array_equal(np.diag(matrix.to_numpy()), 1.0)
    assert (matrix.to_numpy() > 0).all()
    assert abs(matrix - matrix.T).to_numpy().max() <= 20.0
    assert matrix.loc["East US", "West Europe"] > 50.0


def test_sites_have_one_row_per_weather_site_with_coordinates():
    sites = load_sites()
    assert sorted(sites.index) == sorted(WEATHER_SITES)
    assert sites["latitude_deg"].between(-90, 90).all()
    assert sites["longitude_deg"].between(-180, 180).all()
    assert {"city", "elevation_m", "timezone"} <= set(sites.columns)


def test_unknown_dataset_raises_with_its_name():
    with pytest.raises(DatasetError, match="no_such_dataset"):
        load_series("no_such_dataset", "CISO")
    with pytest.raises(DatasetError, match="no_such_dataset"):
        dataset_keys("no_such_dataset")


def test_unknown_key_raises_naming_dataset_and_key():
    with pytest.raises(DatasetError, match="carbon_intensity_2022") as raised:
        load_series("carbon_intensity_2022", "US-CAL-CISO")
    message = str(raised.value)
    assert "US-CAL-CISO" in message and "CISO" in message and "\n" not in message
    assert isinstance(raised.value, ValueError)


def test_data_files_are_found_independently_of_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    datasets._hourly_wide.cache_clear()
    datasets._cached_series.cache_clear()
    assert len(load_series("carbon_intensity_2022", "ERCO")) == 8760
