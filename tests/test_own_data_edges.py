"""Edges of the user's own data found after issue 11 landed: runs longer than a file, base load
read outside the run, base load beyond the site's supply, bad stamps, huge scales, align_year at
the ends of a year, strict flags, and the files a run writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios import ScenarioError, load_scenario
from simulator.cli import main

START = pd.Timestamp("2021-06-14T00:00:00Z")


def write_csv(path: Path, start: pd.Timestamp, periods: int, freq: str, column: str, values: object) -> Path:
    """A CSV of interval-start UTC stamps and one value column."""
    stamps = pd.date_range(start, periods=periods, freq=freq).strftime("%Y-%m-%dT%H:%MZ")
    pd.DataFrame({"timestamp": stamps, column: np.broadcast_to(values, periods)}).to_csv(path, index=False)
    return path


def site_scenario(folder: Path, days: float = 1.0, start: pd.Timestamp = START, **site: object) -> Path:
    """A one-site scenario without GPUs (base load 5 MW, 30 MW grid) written to ``folder/site.toml``;
    ``site`` replaces fields of the site (``grid`` fields with a ``grid_`` prefix)."""
    grid = {"import_limit_mw": 30.0, "export_limit_mw": 30.0, "import_price_usd_per_mwh": 50.0,
            "carbon_intensity_g_per_kwh": 300.0}
    fields: dict[str, object] = {"name": "s", "region": "r", "gpus": 0, "throughput_req_per_s_per_gpu": 1.0,
                                 "idle_power_mw": 0.0, "power_capacity_mw": 0.0, "base_load_mw": 5.0}
    for key, value in site.items():
        if key.startswith("grid_"):
            grid[key.removeprefix("grid_")] = value
        else:
            fields[key] = value
    data = {"name": "edge", "run": {"start": start.to_pydatetime(), "days": days, "plant_tick_minutes": 15},
            "regions": [{"name": "r"}], "latency_ms": {"r": {"s": 0.0}}, "sites": [{**fields, "grid": grid}]}
    path = folder / "site.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("aidc: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- P1: a run made longer than its file ---------------------------------------------------------

@pytest.mark.parametrize("command", [["run", "--controller", "greedy"], ["compare", "--controllers", "greedy"]])
def test_days_past_the_end_of_a_file_is_one_line_and_exit_2(tmp_path, capsys, command):
    write_csv(tmp_path / "prices.csv", START - pd.Timedelta(days=1), 4 * 24, "h", "DE_LU", 40.0)
    path = site_scenario(tmp_path, grid_import_price_usd_per_mwh={"kind": "file", "path": "prices.csv",
                                                                  "column": "DE_LU"})
    load_scenario(path)  # one day is covered
    code = main([command[0], str(path), *command[1:], "--days", "5", "--noise", "off",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    line = one_error_line(capsys)
    assert "prices.csv" in line and "has no data at 2021-06-17 00:00 UTC" in line


# --- P2: a base-load file that covers only the run -----------------------------------------------

def test_a_base_load_file_covering_only_the_run_runs_like_the_other_series(tmp_path):
    from simulator import make_controller, simulate
    from simulator.processes import NoiseParameters

    values = 3.0 + np.arange(96) % 7  # MW, one day at 15 min, nothing before or after
    write_csv(tmp_path / "load.csv", START, 96, "15min", "load_mw", values)
    scenario = load_scenario(site_scenario(tmp_path, base_load_mw={"kind": "file", "path": "load.csv",
                                                                    "column": "load_mw"}))
    result = simulate(scenario, make_controller("mpc", scenario), noise=NoiseParameters.off())
    assert np.allclose(result.ticks["base_load_mw"].to_numpy(), values)
    assert result.kpis["base_load_energy_mwh"] == pytest.approx(values.sum() * 0.25)
    note = result.manifest["realisation_note"]
    assert "no pre-run history" in note and "last run day repeated after the run" in note and "load.csv" in note


# --- P11: the horizon past the end of a file ------------------------------------------------------

def test_filling_the_horizon_past_the_end_of_a_file_is_warned_once_on_one_line(tmp_path, capsys):
    from simulator.processes import NoiseParameters, realise_signals

    prices = 20.0 + np.arange(24.0)
    write_csv(tmp_path / "prices.csv", START, 24, "h", "DE_LU", prices)
    scenario = load_scenario(site_scenario(tmp_path, grid_import_price_usd_per_mwh={
        "kind": "file", "path": "prices.csv", "column": "DE_LU", "fill": "hold"}))
    realised = realise_signals(scenario, 1, 24.0, 12.0, NoiseParameters.off())
    after = realised.frames["import_price"]["s"].loc[START + pd.Timedelta(hours=24):].to_numpy()
    assert np.allclose(after, np.repeat(prices[:12], 4))  # the run's last day, again
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("aidc: warning: the 12 h after the run")
    assert "prices.csv" in err[0] and "has no data at 2021-06-15 00:00 UTC" in err[0]
    realise_signals(scenario, 2, 24.0, 12.0, NoiseParameters.off())
    assert capsys.readouterr().err == ""  # once per process


def test_a_file_covering_the_horizon_gives_no_warning(tmp_path, capsys):
    from simulator.processes import NoiseParameters, realise_signals

    write_csv(tmp_path / "prices.csv", START - pd.Timedelta(days=8), 24 * 10, "h", "DE_LU", 40.0)
    scenario = load_scenario(site_scenario(tmp_path, grid_import_price_usd_per_mwh={
        "kind": "file", "path": "prices.csv", "column": "DE_LU"}))
    realised = realise_signals(scenario, 1, 24.0, 24.0, NoiseParameters.off())
    assert realised.nominal_note == "" and capsys.readouterr().err == ""


# --- P3: base load beyond what the site can ever supply -------------------------------------------

def test_base_load_beyond_the_sites_supply_is_refused_naming_the_field(tmp_path):
    profile = [20.0] * 24
    profile[12] = 45.0  # 30 MW import + 10 MW battery discharge = 40 MW at most
    battery = {"energy_capacity_mwh": 40.0, "charge_power_mw": 10.0, "discharge_power_mw": 10.0}
    path = site_scenario(tmp_path, base_load_mw=profile, battery=battery)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.field == "sites[0].base_load_mw"
    assert "45 MW at 2021-06-14 12:00 UTC" in caught.value.reason and "40 MW" in caught.value.reason
    profile[12] = 40.0  # exactly the bound: the battery can cover it
    load_scenario(site_scenario(tmp_path, base_load_mw=profile, battery=battery))


def test_supply_bound_counts_every_source_and_the_idle_facility_load(tmp_path):
    sources = {"pv_capacity_mw": 4.0, "wind_capacity_mw": 3.0,
               "generator": {"p_max_mw": 2.0, "p_min_mw": 0.0, "fuel_cost_usd_per_mwh": 80.0}}
    fits = {"base_load_mw": 39.0, **sources}  # 30 import + 4 + 3 + 2 = 39 MW
    load_scenario(site_scenario(tmp_path, **fits))
    for too_much in ({**fits, "base_load_mw": 39.5},
                     {**fits, "gpus": 10, "idle_power_mw": 1.0, "power_capacity_mw": 5.0}):  # + 1 MW x PUE
        with pytest.raises(ScenarioError, match=r"sites\[0\]\.base_load_mw: .* exceeds the most the site"):
            load_scenario(site_scenario(tmp_path, **too_much))


def test_the_kpi_table_shows_unmet_energy():
    from simulator.commands import format_kpis

    assert "unmet load (MWh)" in format_kpis({"base_load_energy_mwh": 100.0, "unmet_energy_mwh": 2.5})
    assert "2.5" in format_kpis({"unmet_energy_mwh": 2.5})


def test_an_idle_load_the_site_can_never_power_is_blamed_on_idle_power(tmp_path):
    path = site_scenario(tmp_path, base_load_mw=0.0, gpus=10, idle_power_mw=31.0, power_capacity_mw=60.0)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.field == "sites[0].idle_power_mw" and "30 MW" in caught.value.reason


# --- P12: files a run writes ----------------------------------------------------------------------

def test_every_folder_the_readme_writes_to_is_git_ignored():
    import fnmatch
    import re

    repo = Path(__file__).resolve().parents[1]
    readme = (repo / "README.md").read_text(encoding="utf-8")
    blocks = "\n".join(re.findall(r"```(?:sh|bash|python)\n(.*?)```", readme, flags=re.S))
    written = set(re.findall(r"--out\s+([\w./-]+)", blocks)) | set(re.findall(r"""\.save\(["']([^"']+)""", blocks))
    written |= set(re.findall(r"""run_sweep\([^,]+,\s*["']([^"']+)""", blocks))
    assert "microgrid-run" in written
    patterns = [line.strip().rstrip("/") for line in (repo / ".gitignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for path in written:
        top = path.split("/")[0]
        assert any(fnmatch.fnmatch(top, pattern) for pattern in patterns), f"{path} is not git-ignored"


# --- P4, P5, P6, P10: rows named right, stamps read right -----------------------------------------

def hourly(start: str, hours: int) -> list[str]:
    return list(pd.date_range(start, periods=hours, freq="h", tz="UTC").strftime("%Y-%m-%dT%H:%MZ"))


def test_line_numbers_count_comment_and_blank_lines(tmp_path):
    from scenarios.datasets import SeriesFileError, load_file_series

    rows = [f"{stamp},{'' if i == 40 else 50.0}" for i, stamp in enumerate(hourly("2021-06-13", 48))]
    lines = ["# my prices, EUR/MWh", "# source: somewhere", "timestamp,DE_LU", *rows[:10], "", "# a note", *rows[10:]]
    path = tmp_path / "p.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SeriesFileError) as caught:
        load_file_series(path, "DE_LU")
    assert lines[45].endswith(",") and "row 41 (line 46): missing value" in str(caught.value)


@pytest.mark.parametrize(("moved", "to", "row"), [
    (10, "2021-06-13T10:30Z", "row 11 (line 12)"),  # one stamp 30 min late
    (10, "2021-06-13T09:30Z", "row 11 (line 12)"),  # one stamp 30 min early
    (100, "2021-06-17T04:00:01Z", "row 101 (line 102)"),  # one stamp 1 s late
])
def test_an_off_grid_stamp_is_blamed_on_its_own_row(tmp_path, moved, to, row):
    from scenarios.datasets import SeriesFileError, load_file_series

    stamps = hourly("2021-06-13", 200)
    stamps[moved] = to
    path = tmp_path / "p.csv"
    pd.DataFrame({"timestamp": stamps, "v": 1.0}).to_csv(path, index=False)
    for fill in ("none", "hold"):
        with pytest.raises(SeriesFileError) as caught:
            load_file_series(path, "v", fill=fill)
        message = str(caught.value)
        assert f"{row}: irregular spacing: timestamp" in message and "off the grid" in message, message


def test_a_file_that_turns_finer_is_read_at_the_finer_spacing_only_with_a_fill(tmp_path):
    from scenarios.datasets import SeriesFileError, load_file_series

    hours = pd.date_range("2021-06-13", periods=72, freq="h", tz="UTC")  # hourly prices, then 15-min ones
    quarters = pd.date_range("2021-06-16", periods=32, freq="15min", tz="UTC")
    stamps = hours.append(quarters)
    values = np.arange(len(stamps), dtype=float)
    path = tmp_path / "p.csv"
    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%dT%H:%MZ"), "v": values}).to_csv(path, index=False)
    with pytest.raises(SeriesFileError, match=r"row 74 \(line 75\): 15 min after the previous row, while most "
                                              r"rows are 60 min apart"):
        load_file_series(path, "v")
    series, info = load_file_series(path, "v", fill="hold")
    assert info.resolution == pd.Timedelta(minutes=15)
    assert series.loc["2021-06-13 05:00":"2021-06-13 05:45"].tolist() == [5.0] * 4  # hourly values held
    assert series.loc["2021-06-16 00:15"] == 73.0


@pytest.mark.parametrize("stamp", ["yesterday", "2021-13-45T00:00Z"])
def test_an_unreadable_stamp_among_zoned_ones_is_called_unreadable(tmp_path, stamp):
    from scenarios.datasets import SeriesFileError, load_file_series

    stamps = hourly("2021-06-13", 48)
    stamps[15] = stamp
    path = tmp_path / "p.csv"
    pd.DataFrame({"timestamp": stamps, "v": 1.0}).to_csv(path, index=False)
    with pytest.raises(SeriesFileError) as caught:
        load_file_series(path, "v")
    assert f"row 16 (line 17): cannot read timestamp {stamp!r}" in str(caught.value)


def test_hour_only_stamps_with_an_offset_are_zoned(tmp_path):
    from scenarios.datasets import load_file_series

    stamps = [f"2021-06-13T{h:02d}+02:00" for h in range(24)]
    path = tmp_path / "p.csv"
    pd.DataFrame({"timestamp": stamps, "v": np.arange(24.0)}).to_csv(path, index=False)
    series, _ = load_file_series(path, "v", timezone="America/New_York")
    assert series.index[0] == pd.Timestamp("2021-06-12T22:00Z") and len(series) == 24


def test_a_naive_stamp_among_hour_only_zoned_ones_names_its_row(tmp_path):
    from scenarios.datasets import SeriesFileError, load_file_series

    stamps = [f"2021-06-13T{h:02d}+00:00" for h in range(24)]
    stamps[5] = "2021-06-13 05:00"
    path = tmp_path / "p.csv"
    pd.DataFrame({"timestamp": stamps, "v": 1.0}).to_csv(path, index=False)
    with pytest.raises(SeriesFileError, match=r"row 6 \(line 7\): timestamp '2021-06-13 05:00' mixes zoned and local"):
        load_file_series(path, "v")


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_true_false_column_is_not_a_number(tmp_path, suffix):
    from scenarios.datasets import SeriesFileError, load_file_series

    frame = pd.DataFrame({"timestamp": hourly("2021-06-13", 24), "v": [True, False] * 12})
    path = tmp_path / f"p{suffix}"
    frame.to_parquet(path) if suffix == ".parquet" else frame.to_csv(path, index=False)
    with pytest.raises(SeriesFileError, match="row 1.*: not a number: the column holds true/false values"):
        load_file_series(path, "v")


# --- P7: a huge scale -------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value"), [("scale", 1e308), ("scale", -1e20), ("offset", 1e308)])
def test_a_huge_scale_or_offset_is_one_field_error_without_numpy_warnings(tmp_path, field, value):
    import warnings

    write_csv(tmp_path / "prices.csv", START - pd.Timedelta(days=1), 72, "h", "DE_LU", 40.0)
    path = site_scenario(tmp_path, grid_import_price_usd_per_mwh={"kind": "file", "path": "prices.csv",
                                                                  "column": "DE_LU", field: value})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ScenarioError) as caught:
            load_scenario(path)
    assert caught.value.field == f"sites[0].grid.import_price_usd_per_mwh.{field}"
    assert str(path) in str(caught.value) and "1000000" in caught.value.reason


# --- P8: align_year stays inside the named year -----------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(day=st.integers(0, 365 * 8), hour=st.integers(0, 23), year=st.integers(2010, 2024))
def test_align_year_reads_the_same_weekday_inside_the_named_year(day, hour, year):
    from scenarios.series import FileSeries

    run_start = pd.Timestamp("2018-01-01T00:00Z") + pd.Timedelta(days=day, hours=hour)
    spec = FileSeries(path="/nowhere.csv", column="p", align_year=year)
    data_start = run_start - spec.shift_to_data(run_start)
    same_date = run_start + pd.DateOffset(years=year - run_start.year)
    assert data_start.year == year
    assert data_start.day_of_week == run_start.day_of_week and data_start.hour == run_start.hour
    assert abs(data_start - same_date) < pd.Timedelta(days=7)


@pytest.mark.parametrize(("run_start", "read"), [
    ("2021-01-01T00:00Z", "2018-01-05T00:00Z"),  # Friday 1 Jan -> Friday 5 Jan, not 29 Dec 2017
    ("2020-12-30T00:00Z", "2018-12-26T00:00Z"),  # Wednesday 30 Dec -> Wednesday 26 Dec, not 2 Jan 2019
    ("2020-03-04T00:00Z", "2018-03-07T00:00Z"),  # mid-year: the nearest same weekday
])
def test_align_year_at_the_ends_of_a_year(tmp_path, run_start, read):
    stamps = pd.date_range("2018-01-01", "2018-12-31 23:00", freq="h", tz="UTC")
    path = tmp_path / "prices_2018.csv"
    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%dT%H:%MZ"), "p": stamps.day_of_year}).to_csv(path, index=False)
    scenario = load_scenario(site_scenario(tmp_path, start=pd.Timestamp(run_start), grid_import_price_usd_per_mwh={
        "kind": "file", "path": "prices_2018.csv", "column": "p", "align_year": 2018}))
    from scenarios.arrays import nominal_signals

    prices = nominal_signals(scenario, pd.Timestamp(run_start), 24, 1.0)["import_price"]["s"]
    assert (prices == pd.Timestamp(read).day_of_year).all()


# --- P10: flags are true or false -------------------------------------------------------------------

@pytest.mark.parametrize("value", ["no", "false", 0, 1])
def test_noise_enabled_takes_only_true_or_false(tmp_path, value):
    path = site_scenario(tmp_path)
    path.write_text(path.read_text() + f"\n[noise]\nenabled = {tomli_w.dumps({'v': value})[4:]}")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.field == "noise.enabled" and "boolean" in caught.value.reason
    path.write_text(path.read_text().replace(f"enabled = {tomli_w.dumps({'v': value})[4:]}", "enabled = false"))
    assert load_scenario(path).noise.enabled is False


def test_cyclic_takes_only_true_or_false(tmp_path):
    write_csv(tmp_path / "prices.csv", START, 24, "h", "DE_LU", 40.0)
    path = site_scenario(tmp_path, grid_import_price_usd_per_mwh={"kind": "file", "path": "prices.csv",
                                                                  "column": "DE_LU", "cyclic": "yes"})
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.field == "sites[0].grid.import_price_usd_per_mwh.cyclic"


# --- P12: kpis.json is standard JSON -----------------------------------------------------------------

def test_result_json_files_are_standard_json_and_load_back(tmp_path):
    import json

    from simulator import RunResult, make_controller, simulate
    from simulator.processes import NoiseParameters
    from simulator.results import same_kpis

    scenario = load_scenario(site_scenario(tmp_path))
    result = simulate(scenario, make_controller("greedy", scenario), noise=NoiseParameters.off())
    assert np.isnan(result.kpis["budget_use_fraction"])  # no carbon budget: does not apply
    folder = result.save(tmp_path / "run")

    def refuse(constant: str) -> None:
        raise ValueError(f"not standard JSON: {constant}")

    for name in ("kpis.json", "manifest.json"):
        json.loads((folder / name).read_text(encoding="utf-8"), parse_constant=refuse)
    assert json.loads((folder / "kpis.json").read_text())["budget_use_fraction"] is None
    assert same_kpis(RunResult.load(folder).kpis, result.kpis)


def test_validate_all_includes_the_shipped_examples(capsys):
    assert main(["validate", "--all"]) == 0
    out = capsys.readouterr().out
    assert "examples/microgrid/microgrid.toml (microgrid)" in out and "paper-day:" in out
