"""Rebuild the real-data slices shipped in ``scenarios/data`` from the shared data folder.

Provenance documentation, not part of the test suite or the package: it reads the curated
files in ``/work/shared/data`` (see that folder's README.md for sources and licences) and
writes the small files that ``scenarios.datasets`` loads. Run it from the repository root::

    .venv/bin/python benchmarks/make_data_slices.py [--source /work/shared/data]

Gap-filling rule, the same for every hourly file:

* hours missing *inside* the year are filled by linear interpolation in time;
* hours missing at the start or end of the year (where there is nothing to interpolate
  towards) take the value at the same hour of the nearest day that has data (24 h persistence).

The script prints how many hours it filled per column; those counts are copied into DATA.md.
Output gzip files are written with mtime 0 so reruns give identical bytes.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = Path("/work/shared/data")
TARGET = REPO_ROOT / "scenarios" / "data"

HOURS_2022 = pd.date_range("2022-01-01T00:00Z", "2022-12-31T23:00Z", freq="h", name="timestamp_utc")
GZIP = {"method": "gzip", "mtime": 0}
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

BAS = ["CISO", "ERCO", "PJM", "BPAT", "AZPS", "MISO", "NYIS", "SOCO"]
LLM_COLUMNS = ["language_m_large_req_per_s", "language_m_mid_req_per_s", "language_m_small_req_per_s"]
WEATHER_DECIMALS = {"temperature_2m_c": 1, "cloud_cover_pct": 0, "wind_speed_10m_m_per_s": 1}


def fill_hourly_gaps(wide: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reindex to the 8760 hours of 2022 and fill gaps; return (filled, per-column fill counts).

    Interior gaps: linear interpolation in time. Edge gaps: same hour on the nearest day with
    data (repeated 24 h shifts), because interpolation cannot extrapolate.
    """
    wide = wide.reindex(HOURS_2022)
    missing = wide.isna()
    interior = wide.interpolate(method="time", limit_area="inside")
    is_edge = interior.isna()
    filled = interior.copy()
    for _ in range(3):  # the longest edge gap is < 24 h, one pass suffices; keep a margin
        filled = filled.fillna(filled.shift(24)).fillna(filled.shift(-24))
    if filled.isna().any().any():
        raise RuntimeError("gap filling left missing values")
    counts = pd.DataFrame(
        {
            "interior_interpolated_h": (missing & ~is_edge).sum(),
            "edge_persistence_h": is_edge.sum(),
        }
    )
    return filled, counts


def write_wide_csv_gz(wide: pd.DataFrame, path: Path, decimals: int) -> None:
    """Write a UTC-indexed wide frame with ISO-8601 ``...Z`` time stamps."""
    out = wide.round(decimals)
    out.index = out.index.strftime(TIMESTAMP_FORMAT)
    out.index.name = "timestamp_utc"
    out.to_csv(path, compression=GZIP, float_format=f"%.{decimals}f")


def make_carbon_intensity(source: Path) -> pd.DataFrame:
    long = pd.read_csv(source / "carbon_intensity" / "us_eia930_2022_hourly.csv.gz")
    long["timestamp_utc"] = pd.to_datetime(long["timestamp_utc"], utc=True)
    wide = long.pivot(index="timestamp_utc", columns="ba", values="ci_lca_g_per_kwh")[BAS]
    filled, counts = fill_hourly_gaps(wide)
    write_wide_csv_gz(filled, TARGET / "carbon_intensity_2022_hourly.csv.gz", decimals=2)
    return counts


def make_prices(source: Path) -> pd.DataFrame:
    long = pd.read_csv(source / "prices" / "wholesale_prices_2020_2022_hourly.csv.gz")
    long["timestamp_utc"] = pd.to_datetime(long["timestamp_utc"], utc=True)
    long = long[long["timestamp_utc"].dt.year == 2022]
    wide = long.pivot(index="timestamp_utc", columns="region", values="price_usd_per_mwh_fixed_fx")
    filled, counts = fill_hourly_gaps(wide)
    write_wide_csv_gz(filled, TARGET / "prices_2022_hourly.csv.gz", decimals=3)
    return counts


def make_weather(source: Path) -> pd.DataFrame:
    long = pd.read_csv(source / "weather" / "openmeteo_era5_hourly_2020_2022.csv.gz")
    long["timestamp_utc"] = pd.to_datetime(long["timestamp_utc"], utc=True)
    # The 2022 request spans 2021-12-31T13Z .. 2023-01-01T06Z depending on the site's offset.
    long = long[long["timestamp_utc"] >= pd.Timestamp("2021-12-31T00:00Z")]
    frames = []
    counts = {}
    for variable, decimals in WEATHER_DECIMALS.items():
        wide = long.pivot(index="timestamp_utc", columns="site", values=variable)
        # Mumbai (UTC+05:30) is stamped at hh:30; put every site on the hour by linear
        # interpolation between the neighbouring half-hour values before cutting to 2022.
        on_grid = wide.reindex(wide.index.union(HOURS_2022)).interpolate(method="time", limit_area="inside")
        filled, var_counts = fill_hourly_gaps(on_grid.reindex(HOURS_2022))
        counts[variable] = var_counts["edge_persistence_h"] + var_counts["interior_interpolated_h"]
        stacked = filled.round(decimals).stack().rename(variable)
        frames.append(stacked)
    out = pd.concat(frames, axis=1)
    out.index.names = ["timestamp_utc", "site"]
    out = out.reset_index().sort_values(["site", "timestamp_utc"])
    out["timestamp_utc"] = out["timestamp_utc"].dt.strftime(TIMESTAMP_FORMAT)
    out["cloud_cover_pct"] = out["cloud_cover_pct"].astype(int)
    out.to_csv(TARGET / "weather_2022_hourly.csv.gz", index=False, compression=GZIP, float_format="%.1f")
    return pd.DataFrame(counts)


def make_sites(source: Path) -> None:
    sites = pd.read_csv(source / "weather" / "openmeteo_sites.csv")
    sites = sites[sites["year"] == 2022]
    out = sites.rename(columns={"latitude": "latitude_deg", "longitude": "longitude_deg"})[
        ["site", "city", "latitude_deg", "longitude_deg", "elevation_m", "timezone"]
    ]
    out.to_csv(TARGET / "sites.csv", index=False)


def make_llm_request_rate(source: Path) -> None:
    trace = pd.read_csv(source / "workload" / "servegen_llm_request_rate_10min_14days.csv")
    trace[["window_start_s", *LLM_COLUMNS]].to_csv(TARGET / "llm_request_rate_10min.csv", index=False)
    for column in LLM_COLUMNS:
        print(f"llm {column}: windows exactly 0 req/s = {int((trace[column] <= 0).sum())}")


def copy_latency_matrix(source: Path) -> None:
    shutil.copyfile(
        source / "network" / "azure_inter_region_rtt_p50_ms_2026-07.csv", TARGET / "azure_rtt_p50_ms.csv"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    args = parser.parse_args()
    TARGET.mkdir(parents=True, exist_ok=True)
    with pd.option_context("display.width", 200, "display.max_rows", 100):
        print("carbon intensity fills (h):\n", make_carbon_intensity(args.source))
        print("price fills (h):\n", make_prices(args.source))
        print("weather fills (h, half-hour re-gridding not counted):\n", make_weather(args.source))
    make_sites(args.source)
    make_llm_request_rate(args.source)
    copy_latency_matrix(args.source)
    total_bytes = sum(p.stat().st_size for p in TARGET.iterdir() if p.is_file())
    print(f"scenarios/data total: {total_bytes / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
