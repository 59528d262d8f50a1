"""Series from the user's files, exact resolution rules and the bare-list shorthand (issue 11)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios import ScenarioError, load_scenario, parse_scenario
from scenarios.datasets import SeriesFileError, load_file_series
from scenarios.series import FileSeries, InlineSeries, resolve_series

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "scenarios" / "examples" / "microgrid" / "microgrid.toml"
DAY = pd.Timestamp("2022-06-13T00:00:00Z")


def write_csv(path: Path, stamps: list[str], values: list[object], column: str = "DE_LU") -> Path:
    pd.DataFrame({"timestamp": stamps, column: values}).to_csv(path, index=False)
    return path


def hourly_local(start: str, hours: int) -> list[str]:
    """Wall-clock stamps in Europe/Berlin as a local logger writes them (the DST gap skipped,
    the repeated hour written twice)."""
    utc = pd.date_range(pd.Timestamp(start, tz="Europe/Berlin").tz_convert("UTC"), periods=hours, freq="h")
    return list(utc.tz_convert("Europe/Berlin").strftime("%Y-%m-%d %H:%M"))


# --- reading files ---------------------------------------------------------------------------

def test_local_stamps_across_both_dst_changes_map_to_a_regular_utc_grid(tmp_path):
    for start in ("2020-03-28 22:00", "2020-10-24 22:00"):
        stamps = hourly_local(start, 30)
        assert len(set(stamps)) == (30 if start.startswith("2020-03") else 29)  # autumn repeats 02:00
        path = write_csv(tmp_path / "p.csv", stamps, list(range(30)))
        series, info = load_file_series(path, "DE_LU", timezone="Europe/Berlin")
        expected = pd.date_range(pd.Timestamp(start, tz="Europe/Berlin").tz_convert("UTC"), periods=30, freq="h")
        assert series.index.equals(pd.DatetimeIndex(expected, name="timestamp_utc"))
        assert series.tolist() == list(range(30))
        assert info.filled == 0 and info.resolution == pd.Timedelta(hours=1)


@pytest.mark.parametrize("stamps", [
    ["2020-01-01T00:00Z", "2020-01-01T01:00Z", "2020-01-01T02:00Z"],
    ["2020-01-01 01:00+01:00", "2020-01-01 02:00+01:00", "2020-01-01 03:00+01:00"],
    ["2020-01-01 00:00 UTC", "2020-01-01 01:00 UTC", "2020-01-01 02:00 UTC"],
])
def test_zoned_stamps_are_taken_as_written_whatever_the_timezone_field(tmp_path, stamps):
    path = write_csv(tmp_path / "p.csv", stamps, [1.0, 2.0, 3.0])
    series, _ = load_file_series(path, "DE_LU", timezone="America/New_York")
    assert series.index[0] == pd.Timestamp("2020-01-01T00:00Z")


def test_parquet_reads_like_csv(tmp_path):
    stamps = hourly_local("2020-03-28 22:00", 30)
    values = np.linspace(10.0, 40.0, 30)
    csv = write_csv(tmp_path / "p.csv", stamps, list(values))
    pd.read_csv(csv).to_parquet(tmp_path / "p.parquet")
    from_csv, _ = load_file_series(csv, "DE_LU", timezone="Europe/Berlin")
    from_parquet, _ = load_file_series(tmp_path / "p.parquet", "DE_LU", timezone="Europe/Berlin")
    pd.testing.assert_series_equal(from_csv, from_parquet)


def test_parquet_with_native_aware_timestamps(tmp_path):
    index = pd.date_range("2020-06-01", periods=4, freq="h", tz="Europe/Berlin")
    pd.DataFrame({"timestamp": index, "v": [1.0, 2.0, 3.0, 4.0]}).to_parquet(tmp_path / "p.parquet")
    series, _ = load_file_series(tmp_path / "p.parquet", "v")
    assert series.index[0] == pd.Timestamp("2020-05-31T22:00Z")


@pytest.mark.parametrize(("stamps", "values", "row", "reason"), [
    (["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 03:00", "2020-01-01 04:00"], [1, 2, 3, 4],
     "row 3 (line 4)", "gap of 1 missing row"),
    (["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 02:00", "2020-01-01 03:00"], [1, None, 3, 4],
     "row 2 (line 3)", "missing value"),
    (["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 01:00", "2020-01-01 03:00"], [1, 2, 3, 4],
     "row 3 (line 4)", "not after the previous row"),
    (["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 01:30", "2020-01-01 02:45"], [1, 2, 3, 4],
     "row 4 (line 5)", "irregular spacing"),
    (["2020-01-01 00:00", "2020-01-01 01:00", "yesterday", "2020-01-01 03:00"], [1, 2, 3, 4],
     "row 3 (line 4)", "cannot read timestamp"),
    (["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 02:00", "2020-01-01 03:00"], [1, 2, "n/a?", 4],
     "row 3 (line 4)", "not a number"),
    (["2020-03-29 01:00", "2020-03-29 02:00", "2020-03-29 03:00"], [1, 2, 3],
     "row 2 (line 3)", "DST gap"),
])
def test_a_bad_file_is_refused_naming_file_column_and_first_bad_row(tmp_path, stamps, values, row, reason):
    path = write_csv(tmp_path / "bad.csv", stamps, values)
    with pytest.raises(SeriesFileError) as caught:
        load_file_series(path, "DE_LU", timezone="Europe/Berlin")
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and "'DE_LU'" in message and row in message and reason in message


def test_missing_column_names_the_columns_the_file_has(tmp_path):
    path = write_csv(tmp_path / "p.csv", ["2020-01-01 00:00", "2020-01-01 01:00"], [1, 2])
    with pytest.raises(SeriesFileError, match="no column 'FR'; the file has timestamp, DE_LU"):
        load_file_series(path, "FR")


@pytest.mark.parametrize(("fill", "expected"), [("interpolate", [1.0, 2.0, 3.0, 4.0, 5.0]),
                                                ("hold", [1.0, 2.0, 2.0, 2.0, 5.0])])
def test_fill_rules_fill_gaps_and_nan_and_count_them(tmp_path, fill, expected):
    stamps = ["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 02:00", "2020-01-01 04:00"]
    path = write_csv(tmp_path / "p.csv", stamps, [1.0, 2.0, None, 5.0])
    series, info = load_file_series(path, "DE_LU", fill=fill)
    assert series.tolist() == expected
    assert info.filled == 2 and info.fill == fill


# --- the series kind in a scenario ---------------------------------------------------------------

def scenario_with_price(tmp_path: Path, price: str, days: int = 1, start: str = "2022-06-13T00:00:00Z") -> Path:
    data = tomllib.loads(EXAMPLE.read_text())
    data["run"] = {"start": pd.Timestamp(start).to_pydatetime(), "days": days, "plant_tick_minutes": 15}
    site = data["sites"][0]
    site["base_load_mw"] = 5.0
    site["pv_availability"] = 0.0
    site["grid"]["import_price_usd_per_mwh"] = tomllib.loads(f"x = {price}")["x"]
    path = tmp_path / "sub" / "site.toml"
    path.parent.mkdir(exist_ok=True)
    import tomli_w

    path.write_text(tomli_w.dumps(data))
    return path


def test_file_path_is_relative_to_the_scenario_file_not_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    write_csv(tmp_path / "sub" / "prices.csv", [f"2022-06-13 {h:02d}:00" for h in range(24)], list(range(24)))
    path = scenario_with_price(tmp_path, '{ kind = "file", path = "prices.csv", column = "DE_LU" }')
    monkeypatch.chdir(tmp_path)  # prices.csv is not here
    scenario = load_scenario(path)
    spec = scenario.sites[0].grid.import_price_usd_per_mwh
    assert isinstance(spec, FileSeries) and Path(spec.path) == (tmp_path / "sub" / "prices.csv").resolve()
    assert resolve_series(spec, DAY, 24, 1.0).tolist() == list(range(24))


def test_run_outside_the_file_is_refused_naming_the_field_and_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    write_csv(tmp_path / "sub" / "prices.csv", [f"2022-06-13 {h:02d}:00" for h in range(24)], list(range(24)))
    path = scenario_with_price(tmp_path, '{ kind = "file", path = "prices.csv", column = "DE_LU" }', days=2)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.field == "sites[0].grid.import_price_usd_per_mwh"
    assert "prices.csv" in caught.value.reason and "has no data at 2022-06-14 00:00 UTC" in caught.value.reason


def test_bad_file_in_a_scenario_is_one_line_naming_file_column_and_row(tmp_path):
    (tmp_path / "sub").mkdir()
    values: list[object] = list(range(24))
    values[7] = None
    write_csv(tmp_path / "sub" / "prices.csv", [f"2022-06-13 {h:02d}:00" for h in range(24)], values)
    path = scenario_with_price(tmp_path, '{ kind = "file", path = "prices.csv", column = "DE_LU" }')
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert "\n" not in message and "prices.csv" in message and "'DE_LU'" in message and "row 8 (line 9)" in message


def test_unknown_timezone_is_a_field_error(tmp_path):
    path = scenario_with_price(tmp_path, '{ kind = "file", path = "p.csv", column = "x", timezone = "Mars/Olympus" }')
    with pytest.raises(ScenarioError, match="timezone: unknown time zone 'Mars/Olympus'"):
        load_scenario(path)


def test_align_year_reads_the_same_weekday_of_another_year(tmp_path):
    # a 2018 file whose value is the weekday (0 = Monday); a 2020 run must see its own weekdays
    index = pd.date_range("2018-01-01", "2018-12-31 23:00", freq="h")
    write_csv(tmp_path / "w.csv", list(index.strftime("%Y-%m-%d %H:%M")), list(index.day_of_week))
    spec = FileSeries(path=str(tmp_path / "w.csv"), column="DE_LU", align_year=2018)
    run_start = pd.Timestamp("2020-03-02T00:00Z")  # a Monday
    values = resolve_series(spec, run_start, 7 * 24, 1.0, run_start=run_start)
    run_weekdays = pd.date_range(run_start, periods=7 * 24, freq="h").day_of_week
    assert values.tolist() == list(run_weekdays)
    calendar = FileSeries(path=str(tmp_path / "w.csv"), column="DE_LU", year_offset=-2)
    assert resolve_series(calendar, run_start, 24, 1.0, run_start=run_start).tolist() != list(run_weekdays[:24])


# --- resolution --------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 100.0), st.sampled_from([5.0, 15.0, 60.0, 180.0]))
def test_a_one_minute_profile_keeps_its_daily_energy_at_every_step(seed, spread, step_minutes):
    # a rough 1-min PV-like profile: a bell with spiky clouds (numpy-drawn: 1440 values is too big a draw)
    rng = np.random.default_rng(seed)
    bell = np.clip(np.sin(np.pi * (np.arange(1440) / 60.0 - 6.0) / 12.0), 0.0, None)
    values = list(bell * spread * rng.uniform(0.0, 1.0, 1440))
    spec = InlineSeries(values=values, step_minutes=1.0)
    exact_mwh = sum(values) / 60.0
    for minutes in (step_minutes, 60.0, 5.0):
        n = int(1440 / minutes)
        mean = resolve_series(spec, DAY, n, minutes / 60.0)
        assert abs(mean.sum() * minutes / 60.0 - exact_mwh) <= 1e-9 * max(1.0, exact_mwh)


def test_a_one_minute_file_keeps_its_daily_energy_at_hourly_and_five_minute_steps(tmp_path):
    rng = np.random.default_rng(3)
    minutes = pd.date_range("2022-06-13", periods=2 * 1440, freq="min", tz="UTC")
    values = np.clip(rng.normal(5.0, 3.0, len(minutes)), 0.0, None)
    write_csv(tmp_path / "pv.csv", list(minutes.strftime("%Y-%m-%dT%H:%MZ")), list(values), "pv_mw")
    spec = FileSeries(path=str(tmp_path / "pv.csv"), column="pv_mw")
    for day in range(2):
        exact = values[day * 1440:(day + 1) * 1440].sum() / 60.0
        start = DAY + pd.Timedelta(days=day)
        hourly = resolve_series(spec, start, 24, 1.0).sum() * 1.0
        five = resolve_series(spec, start, 288, 5 / 60).sum() * 5 / 60
        assert hourly == pytest.approx(exact, rel=1e-9, abs=1e-9)
        assert five == pytest.approx(exact, rel=1e-9, abs=1e-9)


def test_coarse_series_hold_or_interpolate_by_rule():
    spec = InlineSeries(values=[float(h) for h in range(24)], step_minutes=60.0)
    held = resolve_series(spec, DAY, 8, 0.25)
    assert held.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    line = resolve_series(spec, DAY, 8, 0.25, rule="interpolate")
    np.testing.assert_allclose(line, [0.125, 0.375, 0.625, 0.875, 1.125, 1.375, 1.625, 1.875])
    # interpolation wraps a daily profile: the last hour runs from 23 back to 0
    assert resolve_series(spec, DAY + pd.Timedelta(hours=23), 1, 1.0, run_start=DAY, rule="interpolate")[0] == 11.5


def test_shipped_ten_minute_trace_is_averaged_not_sampled():
    from scenarios.datasets import load_series
    from scenarios.series import DataSeries

    trace = load_series("llm_request_rate", "language_m_large")
    start = trace.index[0]
    spec = DataSeries(dataset="llm_request_rate", key="language_m_large")
    hourly = resolve_series(spec, start, 24, 1.0)
    np.testing.assert_allclose(hourly, trace.iloc[:144].to_numpy().reshape(24, 6).mean(axis=1), rtol=1e-12)


# --- the bare list ------------------------------------------------------------------------------

def bare_list_scenario(values: list[float], days: int = 1) -> dict:
    data = tomllib.loads(EXAMPLE.read_text())
    data["run"] = {"start": pd.Timestamp(DAY).to_pydatetime(), "days": days}
    site = data["sites"][0]
    site["base_load_mw"], site["pv_availability"] = 5.0, 0.0
    site["grid"]["import_price_usd_per_mwh"] = values
    return data


def test_a_bare_list_of_24_is_an_hourly_daily_profile():
    scenario = parse_scenario(bare_list_scenario([float(h) for h in range(24)], days=2))
    spec = scenario.sites[0].grid.import_price_usd_per_mwh
    assert isinstance(spec, InlineSeries) and spec.step_minutes == 60 and spec.repeat == "daily"
    assert resolve_series(spec, DAY, 48, 1.0).tolist() == list(range(24)) * 2


def test_a_bare_list_covering_the_run_is_hourly_and_not_repeated():
    scenario = parse_scenario(bare_list_scenario([float(h) for h in range(48)], days=2))
    spec = scenario.sites[0].grid.import_price_usd_per_mwh
    assert resolve_series(spec, DAY, 48, 1.0).tolist() == list(range(48))


def test_a_bare_list_of_three_is_refused_naming_the_field():
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(bare_list_scenario([10.0, 20.0, 30.0]))
    assert caught.value.field == "sites[0].grid.import_price_usd_per_mwh"
    assert "covers 3 h" in caught.value.reason and "a bare list is hourly" in caught.value.reason


def test_each_signal_uses_its_documented_rule_at_the_plant_tick():
    from scenarios import nominal_signals
    from scenarios.series import SIGNAL_RULES

    assert SIGNAL_RULES["temperature"] == "interpolate"
    assert {rule for name, rule in SIGNAL_RULES.items() if name != "temperature"} == {"hold"}
    data = bare_list_scenario([float(h) for h in range(24)])
    data["sites"][0]["ambient_temperature_c"] = [float(h) for h in range(24)]
    data["sites"][0]["base_load_mw"] = [float(h) for h in range(24)]
    scenario = parse_scenario(data)
    frames = nominal_signals(scenario, DAY, 8, 0.25)
    assert frames["import_price"]["frankfurt"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    np.testing.assert_allclose(frames["temperature"]["frankfurt"], [0.125 + 0.25 * i for i in range(8)])
    from scenarios.arrays import base_load_mw

    assert base_load_mw(scenario, DAY, 8, 0.25)["frankfurt"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_date_only_stamps_are_local_days_not_offsets(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["2020-01-01", "2020-01-02", "2020-01-03"], [1.0, 2.0, 3.0])
    series, info = load_file_series(path, "DE_LU", timezone="Europe/Berlin")
    assert series.index[0] == pd.Timestamp("2019-12-31T23:00Z")
    assert info.resolution == pd.Timedelta(days=1)
