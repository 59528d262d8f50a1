"""Real-world time series shipped with the package (``scenarios/data``), behind one small API.

Every series is a float :class:`pandas.Series` with a tz-aware UTC :class:`~pandas.DatetimeIndex`
whose stamps mark the *start* of each interval, named after its key::

    >>> from scenarios.datasets import load_series, dataset_keys
    >>> dataset_keys("carbon_intensity_2022")[:3]
    ['CISO', 'ERCO', 'PJM']
    >>> load_series("price_2022", "US-CAL-CISO").head(2)   # USD/MWh, hourly, 8760 rows

Sources, licences and every processing step (subsets, gap filling) are documented in
``scenarios/data/DATA.md``; the files are rebuilt by ``benchmarks/make_data_slices.py``.
Files are located with :mod:`importlib.resources`, so loading works from any working directory
and from an installed wheel; nothing is downloaded.

Two datasets are *derived* here from the shipped weather and are approximations:

``pv_availability_2022`` (per unit of a PV plant's rating, 0..1)
    .. math::

        a_{PV}(t) = \\operatorname{clip}\\Big(\\tfrac{1}{1000}\\,
            \\overline{G_{cs}}(t),\\ 0,\\ 1\\Big)\\,\\big(1 - 0.75\\,(c(t)/100)^{3.4}\\big)

    with the Haurwitz clear-sky global horizontal irradiance
    :math:`G_{cs} = 1098\\,\\cos z\\,\\exp(-0.057/\\cos z)` W/m² for :math:`\\cos z > 0` (else 0),
    averaged over six instants inside the hour (:math:`\\overline{G_{cs}}`), the solar zenith
    angle :math:`z` from Spencer's (1971) declination and equation-of-time series at the site's
    latitude/longitude, a 1000 W/m² plane peak, and the Kasten–Czeplak (1980) cloud
    attenuation with total cloud cover :math:`c` in %. Ignores panel tilt, temperature,
    aerosols and inverter clipping.

``wind_availability_2022`` (per unit of a turbine's rating, 0..1)
    10 m wind speed scaled to a 100 m hub with the power law
    :math:`v_{100} = v_{10}\\,(100/10)^{1/7}`, then a generic power curve:
    0 below cut-in 3 m/s, :math:`(v^3 - 3^3)/(12^3 - 3^3)` up to rated 12 m/s, 1 up to the
    25 m/s cut-out, 0 above. Applied to hourly mean speeds, so gusts are ignored.
"""

from __future__ import annotations

import functools
import gzip
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "DATASETS",
    "DatasetError",
    "FileSeriesInfo",
    "SeriesCoverageError",
    "SeriesFileError",
    "dataset_keys",
    "load_file_series",
    "load_latency_matrix",
    "load_series",
    "load_sites",
]

DATASETS: dict[str, str] = {
    "carbon_intensity_2022": "EIA-930 hourly average life-cycle carbon intensity of generation per US "
    "balancing authority, 2022, gCO2/kWh (keys: BA codes)",
    "price_2022": "Hourly wholesale electricity price per market region, 2022, USD/MWh at fixed FX "
    "(keys: market region codes)",
    "temperature_2022": "Open-Meteo/ERA5 hourly 2 m air temperature per data-centre site, 2022, °C "
    "(keys: weather site codes)",
    "cloud_cover_2022": "Open-Meteo/ERA5 hourly total cloud cover per data-centre site, 2022, % "
    "(keys: weather site codes)",
    "wind_speed_2022": "Open-Meteo/ERA5 hourly wind speed at 10 m per data-centre site, 2022, m/s "
    "(keys: weather site codes)",
    "pv_availability_2022": "DERIVED, approximate: PV availability per unit (0..1) = Haurwitz clear-sky "
    "shape x Kasten-Czeplak cloud attenuation, 2022 (keys: weather site codes)",
    "wind_availability_2022": "DERIVED, approximate: wind availability per unit (0..1) = 10 m speed to "
    "100 m hub (1/7 power law) through a 3/12/25 m/s power curve, 2022 (keys: weather site codes)",
    "llm_request_rate": "ServeGen (Alibaba Bailian) LLM request rate, req/s, 10-min windows over 14 days "
    "starting 2021-12-31T16:00Z; a SHAPE to be used cyclically (keys: language_m_large/mid/small)",
}

DATA_DIR: Traversable = files("scenarios") / "data"

#: t = 0 of the ServeGen trace is local midnight in China (UTC+8); pinned to 2022-01-01 local.
LLM_TRACE_START_UTC = pd.Timestamp("2021-12-31T16:00:00Z")
#: Round-trip time assumed between two data centres in the same Azure region (empty diagonal).
INTRA_REGION_RTT_MS = 1.0

PV_PLANE_PEAK_W_PER_M2 = 1000.0
PV_SUBSTEPS_PER_HOUR = 6
WIND_HUB_HEIGHT_M = 100.0
WIND_MEASUREMENT_HEIGHT_M = 10.0
WIND_SHEAR_EXPONENT = 1.0 / 7.0
WIND_CUT_IN_M_PER_S = 3.0
WIND_RATED_M_PER_S = 12.0
WIND_CUT_OUT_M_PER_S = 25.0

_CARBON_FILE = "carbon_intensity_2022_hourly.csv.gz"
_PRICE_FILE = "prices_2022_hourly.csv.gz"
_WEATHER_FILE = "weather_2022_hourly.csv.gz"
_SITES_FILE = "sites.csv"
_LATENCY_FILE = "azure_rtt_p50_ms.csv"
_LLM_FILE = "llm_request_rate_10min.csv"
_LLM_KEYS = ("language_m_large", "language_m_mid", "language_m_small")
_WEATHER_COLUMNS = {
    "temperature_2022": "temperature_2m_c",
    "cloud_cover_2022": "cloud_cover_pct",
    "wind_speed_2022": "wind_speed_10m_m_per_s",
}


class DatasetError(ValueError):
    """Data a scenario asks for that cannot be given: an unknown dataset or key, a user's file that
    cannot be read (:class:`SeriesFileError`), a series that does not cover the span asked for
    (:class:`SeriesCoverageError`). A user error: ``aidc`` reports it as one line."""


def _read_csv(name: str, **kwargs: object) -> pd.DataFrame:
    """Read one shipped file through importlib.resources (gzip decided by the suffix)."""
    compression = "gzip" if name.endswith(".gz") else None
    with (DATA_DIR / name).open("rb") as handle:
        return pd.read_csv(handle, compression=compression, **kwargs)


@functools.lru_cache(maxsize=8)
def _hourly_wide(name: str) -> pd.DataFrame:
    """A wide hourly file: UTC index, one float column per key."""
    frame = _read_csv(name, index_col="timestamp_utc")
    frame.index = pd.to_datetime(frame.index, utc=True)
    return frame.astype(float)


@functools.lru_cache(maxsize=8)
def _weather_wide(column: str) -> pd.DataFrame:
    """One weather variable as a wide hourly frame (UTC index × site code)."""
    long = _weather_long()
    wide = long.pivot(index="timestamp_utc", columns="site", values=column)
    wide.columns.name = None
    return wide.astype(float)


@functools.lru_cache(maxsize=1)
def _weather_long() -> pd.DataFrame:
    long = _read_csv(_WEATHER_FILE)
    long["timestamp_utc"] = pd.to_datetime(long["timestamp_utc"], utc=True)
    return long


@functools.lru_cache(maxsize=1)
def _llm_wide() -> pd.DataFrame:
    trace = _read_csv(_LLM_FILE)
    index = LLM_TRACE_START_UTC + pd.to_timedelta(trace["window_start_s"], unit="s")
    wide = pd.DataFrame(
        {key: trace[f"{key}_req_per_s"].to_numpy(dtype=float) for key in _LLM_KEYS},
        index=pd.DatetimeIndex(index, name="timestamp_utc"),
    )
    return wide


@functools.lru_cache(maxsize=1)
def _sites() -> pd.DataFrame:
    return _read_csv(_SITES_FILE, index_col="site")


def solar_cos_zenith(times_utc: pd.DatetimeIndex, latitude_deg: float, longitude_deg: float) -> np.ndarray:
    """Cosine of the solar zenith angle at the given UTC instants (Spencer 1971 series).

    .. math::

        \\cos z = \\sin\\varphi\\sin\\delta + \\cos\\varphi\\cos\\delta\\cos\\omega,\\qquad
        \\omega = 15^\\circ\\,(t_{solar} - 12\\,\\mathrm{h}),\\quad
        t_{solar} = t_{UTC} + \\mathrm{EoT} + \\lambda/15^\\circ

    Accurate to a fraction of a degree, ample for an hourly availability shape.
    """
    utc_hours = times_utc.hour + times_utc.minute / 60.0 + times_utc.second / 3600.0
    day_angle = 2.0 * np.pi / 365.0 * (times_utc.day_of_year - 1 + (utc_hours - 12.0) / 24.0)
    g = np.asarray(day_angle, dtype=float)
    declination = (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )
    equation_of_time_min = 229.18 * (
        0.000075
        + 0.001868 * np.cos(g)
        - 0.032077 * np.sin(g)
        - 0.014615 * np.cos(2 * g)
        - 0.040849 * np.sin(2 * g)
    )
    solar_time_h = np.asarray(utc_hours, dtype=float) + (equation_of_time_min + 4.0 * longitude_deg) / 60.0
    hour_angle = np.deg2rad(15.0 * (solar_time_h - 12.0))
    latitude = np.deg2rad(latitude_deg)
    vertical = np.sin(latitude) * np.sin(declination)
    diurnal = np.cos(latitude) * np.cos(declination) * np.cos(hour_angle)
    return vertical + diurnal


def clear_sky_pv_shape(hours_utc: pd.DatetimeIndex, latitude_deg: float, longitude_deg: float) -> np.ndarray:
    """Hourly clear-sky PV shape per unit (0..1): Haurwitz GHI / 1000 W/m², mean over the hour.

    Each stamp is the start of its hour; the shape is the mean of
    :math:`\\min(1, G_{cs}/1000)` at ``PV_SUBSTEPS_PER_HOUR`` evenly spaced mid-points inside it,
    with :math:`G_{cs} = 1098\\cos z\\,e^{-0.057/\\cos z}` (Haurwitz 1945) where the sun is up.
    """
    step = 60.0 / PV_SUBSTEPS_PER_HOUR
    shape = np.zeros(len(hours_utc))
    for substep in range(PV_SUBSTEPS_PER_HOUR):
        instants = hours_utc + pd.Timedelta(minutes=step * (substep + 0.5))
        cos_z = solar_cos_zenith(instants, latitude_deg, longitude_deg)
        sun_up = cos_z > 0.0
        ghi = np.zeros_like(cos_z)
        ghi[sun_up] = 1098.0 * cos_z[sun_up] * np.exp(-0.057 / cos_z[sun_up])
        shape += np.clip(ghi / PV_PLANE_PEAK_W_PER_M2, 0.0, 1.0)
    return shape / PV_SUBSTEPS_PER_HOUR


def cloud_attenuation(cloud_cover_pct: np.ndarray) -> np.ndarray:
    """Kasten–Czeplak (1980) GHI ratio to clear sky: :math:`1 - 0.75\\,(c/100)^{3.4}`."""
    cloud_fraction = np.clip(np.asarray(cloud_cover_pct, dtype=float) / 100.0, 0.0, 1.0)
    return 1.0 - 0.75 * cloud_fraction**3.4


def wind_power_curve(hub_speed_m_per_s: np.ndarray) -> np.ndarray:
    """Generic turbine output per unit of rating for hub-height wind speeds (m/s).

    0 below cut-in (3 m/s) and from cut-out (25 m/s); :math:`(v^3 - v_{in}^3)/(v_r^3 - v_{in}^3)`
    between cut-in and rated (12 m/s); 1 between rated and cut-out.
    """
    v = np.asarray(hub_speed_m_per_s, dtype=float)
    cubic = (v**3 - WIND_CUT_IN_M_PER_S**3) / (WIND_RATED_M_PER_S**3 - WIND_CUT_IN_M_PER_S**3)
    output = np.where(v < WIND_RATED_M_PER_S, cubic, 1.0)
    output = np.where((v < WIND_CUT_IN_M_PER_S) | (v >= WIND_CUT_OUT_M_PER_S), 0.0, output)
    return np.clip(output, 0.0, 1.0)


def _pv_availability(site: str) -> pd.Series:
    location = _sites().loc[site]
    cloud = _weather_wide("cloud_cover_pct")[site]
    shape = clear_sky_pv_shape(cloud.index, float(location["latitude_deg"]), float(location["longitude_deg"]))
    return pd.Series(shape * cloud_attenuation(cloud.to_numpy()), index=cloud.index)


def _wind_availability(site: str) -> pd.Series:
    speed_10m = _weather_wide("wind_speed_10m_m_per_s")[site]
    shear = (WIND_HUB_HEIGHT_M / WIND_MEASUREMENT_HEIGHT_M) ** WIND_SHEAR_EXPONENT
    return pd.Series(wind_power_curve(speed_10m.to_numpy() * shear), index=speed_10m.index)


def _keys_of(dataset: str) -> list[str]:
    if dataset == "carbon_intensity_2022":
        return list(_hourly_wide(_CARBON_FILE).columns)
    if dataset == "price_2022":
        return list(_hourly_wide(_PRICE_FILE).columns)
    if dataset == "llm_request_rate":
        return list(_LLM_KEYS)
    return sorted(_weather_long()["site"].unique())


def _weather_column(column: str, key: str) -> pd.Series:
    return _weather_wide(column)[key]


_SERIES_BUILDERS: dict[str, Callable[[str], pd.Series]] = {
    "carbon_intensity_2022": lambda key: _hourly_wide(_CARBON_FILE)[key],
    "price_2022": lambda key: _hourly_wide(_PRICE_FILE)[key],
    **{
        name: functools.partial(_weather_column, column) for name, column in _WEATHER_COLUMNS.items()
    },
    "pv_availability_2022": _pv_availability,
    "wind_availability_2022": _wind_availability,
    "llm_request_rate": lambda key: _llm_wide()[key],
}


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise DatasetError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(DATASETS)}")


def dataset_keys(dataset: str) -> list[str]:
    """Valid keys of ``dataset`` (BA codes, market regions, weather sites or LLM model classes).

    Raises :class:`DatasetError` for an unknown dataset name.
    """
    _check_dataset(dataset)
    return _keys_of(dataset)


@functools.lru_cache(maxsize=256)
def _cached_series(dataset: str, key: str) -> pd.Series:
    series = _SERIES_BUILDERS[dataset](key).astype(float)
    series.index = pd.DatetimeIndex(series.index, name="timestamp_utc")
    series.name = key
    return series


def load_series(dataset: str, key: str) -> pd.Series:
    """One real (or derived) time series: float values, tz-aware UTC index, ``name == key``.

    Hourly datasets have the 8760 hour-start stamps of 2022; ``llm_request_rate`` has 2016
    10-minute windows from 2021-12-31T16:00Z (a 14-day shape, to be repeated cyclically).
    Units are in :data:`DATASETS`. The result is a fresh copy, safe to modify.

    Raises :class:`DatasetError` for an unknown dataset or key.
    """
    _check_dataset(dataset)
    keys = _keys_of(dataset)
    if key not in keys:
        raise DatasetError(f"unknown key {key!r} for dataset {dataset!r}; valid keys: {', '.join(keys)}")
    return _cached_series(dataset, key).copy()


def load_latency_matrix() -> pd.DataFrame:
    """Median (P50) round-trip latency between 54 Azure regions in ms (row = source, column = destination).

    Microsoft's published matrix (30 days to 2026-07-30) with its empty diagonal filled with
    ``INTRA_REGION_RTT_MS`` = 1 ms, an assumed intra-region RTT. Off-diagonal values are as
    published: nearly but not exactly symmetric (up to 18 ms apart).
    """
    return _latency_matrix().copy()


@functools.lru_cache(maxsize=1)
def _latency_matrix() -> pd.DataFrame:
    matrix = _read_csv(_LATENCY_FILE, index_col="Source").astype(float)
    matrix.index.name = "source_region"
    matrix.columns.name = "destination_region"
    values = matrix.to_numpy(copy=True)
    np.fill_diagonal(values, INTRA_REGION_RTT_MS)
    return pd.DataFrame(values, index=matrix.index, columns=matrix.columns)


def load_sites() -> pd.DataFrame:
    """Weather sites (index ``site``, e.g. ``US-CAL-CISO``): city, latitude_deg, longitude_deg,
    elevation_m (of the Open-Meteo grid cell) and IANA timezone."""
    return _sites().copy()


# ---------------------------------------------------------------------------------------------
# the user's own files (series kind "file")

#: Suffixes read as CSV (gzip by suffix) and as Parquet.
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
# a zone after a clock time: "...12:00Z", "...12:00:00+01:00", "...12:00 +0100", "...12:00 UTC",
# "...T12+00:00" (a bare date such as "2020-01-01" is naive: its "-01" is not an offset)
_OFFSET_PATTERN = r"(?:T\d\d|\d:\d\d(?::\d\d(?:\.\d*)?)?)\s*(?:Z|[+-]\d\d(?::?\d\d)?|UTC|GMT)$"


class SeriesFileError(DatasetError):
    """A user's series file that cannot be used; the message names the file, column and first bad row."""


class SeriesCoverageError(DatasetError):
    """A series (inline without repeat, shipped data, the user's file) has no values for part of the
    span asked for, e.g. a run made longer with ``--days`` than its file covers."""


@dataclass(frozen=True)
class FileSeriesInfo:
    """What was read from one column of a user's file (reported by ``aidc validate``).

    ``first``/``last`` are the UTC stamps of the first and last interval starts,
    ``resolution`` the spacing of the regular grid the data lies on, ``rows`` the data rows read
    and ``filled`` the grid points filled by the ``fill`` rule (missing rows and NaN cells).
    """

    path: str
    column: str
    first: pd.Timestamp
    last: pd.Timestamp
    resolution: pd.Timedelta
    rows: int
    filled: int
    fill: str


def _data_lines(path: Path) -> list[int]:
    """1-based file lines of a CSV's data rows, as ``pd.read_csv(comment="#")`` reads them: blank
    lines and lines starting with ``#`` are skipped, the first remaining line is the header.
    (A quoted value spanning lines is counted as one row per line: such files are not expected.)"""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        lines = [number for number, line in enumerate(handle, start=1)
                 if line.strip() and not line.lstrip().startswith(b"#")]
    return lines[1:]


def _row(position: int, path: Path, csv: bool) -> str:
    """A data row in words: 1-based after the header, with the file line for a CSV (comment and
    blank lines counted)."""
    if not csv:
        return f"row {position + 1}"
    try:
        lines = _data_lines(path)
    except OSError:
        lines = []
    line = lines[position] if position < len(lines) else position + 2
    return f"row {position + 1} (line {line})"


def _read_table(path: Path) -> tuple[pd.DataFrame, bool]:
    name = path.name.lower()
    if not path.is_file():
        raise SeriesFileError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    try:
        if name.endswith(PARQUET_SUFFIXES):
            return pd.read_parquet(path), False
        if name.endswith(CSV_SUFFIXES):
            return pd.read_csv(path, comment="#", skipinitialspace=True), True
    except (OSError, ValueError, ImportError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SeriesFileError(f"{path}: cannot read the file: {reason}") from None
    except Exception as error:  # pyarrow's own errors (ArrowInvalid...) derive from neither
        raise SeriesFileError(f"{path}: cannot read the file: {type(error).__name__}: {error}") from None
    raise SeriesFileError(
        f"{path}: unknown file type; use {', '.join(CSV_SUFFIXES)} or {', '.join(PARQUET_SUFFIXES)}"
    )


def _parse_stamps(text: pd.Series, utc: bool) -> pd.Series:
    """``pd.to_datetime`` of stamp texts, unreadable ones as NaT. Raises ``ValueError`` for zones
    that cannot share one column (naive and zoned, or several offsets with ``utc=False``)."""
    return pd.to_datetime(text, errors="coerce", utc=utc, format="mixed")


def _first_zone_change(text: pd.Series) -> int:
    """Position of the first stamp whose zone (or lack of one) differs from the first stamp's."""
    first_zone = pd.Timestamp(text.iloc[0]).utcoffset()
    for position, value in enumerate(text):
        if pd.Timestamp(value).utcoffset() != first_zone:
            return position
    return 0


def _utc_stamps(raw: pd.Series, timezone: str, where: Callable[[int], str]) -> pd.DatetimeIndex:
    """Timestamps of a file column in UTC.

    Stamps that carry a zone (``Z``, ``+01:00``, ``UTC``) are converted from it; naive stamps are
    local time in ``timezone``: a repeated hour (DST end) is read as summer time at its first
    occurrence and winter time at its second; a stamp inside a DST gap is refused.
    """
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return pd.DatetimeIndex(raw).tz_convert("UTC")
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        naive = pd.DatetimeIndex(raw)
    else:
        text = raw.astype("string").str.strip()
        empty = text.isna() | (text == "")
        if empty.any():
            raise SeriesFileError(f"{where(int(np.argmax(empty.to_numpy())))}: empty timestamp")
        # every stamp must be readable before zones are compared (utc=True only to read any mix)
        unreadable = _parse_stamps(text, utc=True).isna().to_numpy()
        if unreadable.any():
            first = int(np.argmax(unreadable))
            raise SeriesFileError(f"{where(first)}: cannot read timestamp {text.iloc[first]!r}; "
                                  "write e.g. 2022-06-13 00:00 or 2022-06-13T00:00+02:00")
        zoned = text.str.contains(_OFFSET_PATTERN, regex=True).to_numpy(dtype=bool)
        if zoned.any() and not zoned.all():
            first = int(np.argmax(zoned != zoned[0]))
            raise SeriesFileError(f"{where(first)}: timestamp {text.iloc[first]!r} mixes zoned and local stamps; "
                                  "give every stamp an offset or none")
        try:
            parsed = _parse_stamps(text, utc=bool(zoned.all()))
        except ValueError:  # zones the pattern did not see, mixed with naive stamps or each other
            first = _first_zone_change(text)
            raise SeriesFileError(f"{where(first)}: timestamp {text.iloc[first]!r} mixes zoned and local stamps "
                                  "(or different zones); give every stamp an offset or none") from None
        if zoned.all() or isinstance(parsed.dtype, pd.DatetimeTZDtype):
            return pd.DatetimeIndex(parsed).tz_convert("UTC")
        naive = pd.DatetimeIndex(parsed)
    stamps = pd.Series(naive)
    repeated = stamps.duplicated(keep="first").to_numpy()  # second occurrence of a DST-end hour
    try:
        local = naive.tz_localize(timezone, ambiguous=~repeated, nonexistent="NaT")
    except Exception:  # an ambiguity the flags cannot settle (e.g. a repeated hour written once)
        raise SeriesFileError(f"{where(0)}: cannot place the local timestamps in {timezone}: a DST change is "
                              "ambiguous; write the stamps in UTC or with their offset") from None
    missing = pd.isna(local)
    if missing.any():
        first = int(np.argmax(missing))
        raise SeriesFileError(
            f"{where(first)}: {naive[first]} does not exist in {timezone} (it falls in the DST gap)"
        )
    return local.tz_convert("UTC")


def _is_multiple(step: np.ndarray, of: float) -> np.ndarray:
    ratio = step / of
    return np.abs(ratio - np.round(ratio)) <= 1e-6


def _resolution(step: np.ndarray, stamps: pd.DatetimeIndex,
                where: Callable[[int], str]) -> tuple[float, float, int | None]:
    """The grid spacing (s) of a file's stamps from their spacings ``step`` (s, all > 0), the most
    common spacing (s) and the row where a finer spacing first appears (None if there is none).

    The grid is the most common spacing when every spacing is a multiple of it (missing rows are
    gaps). Otherwise it is the finest spacing (a file that turns finer, e.g. hourly prices then
    15-min ones), provided every spacing is either that finest one or a multiple of the most
    common, and a multiple of the finest. A stamp off both -- one row moved by 30 min or 1 s --
    is refused at that row: the one of the two rows around the odd spacing that lies off the
    most common spacing's grid from the first stamp.
    """
    spacings, counts = np.unique(step, return_counts=True)
    typical = float(spacings[np.argmax(counts)])
    on_typical = _is_multiple(step, typical)
    if on_typical.all():
        return typical, typical, None
    finest = float(step.min())
    odd = ~(on_typical | np.isclose(step, finest, rtol=0.0, atol=1e-6))
    odd_kind = "the other rows' spacing"
    if not odd.any():
        odd, odd_kind = ~_is_multiple(step, finest), "the finest spacing"
    if odd.any():
        j = int(np.argmax(odd))
        seconds = (stamps[j] - stamps[0]).total_seconds()
        row = j if not _is_multiple(np.array([seconds]), typical)[0] else j + 1
        reference = typical if odd_kind != "the finest spacing" else finest
        raise SeriesFileError(
            f"{where(row)}: irregular spacing: timestamp {stamps[row]:%Y-%m-%d %H:%M:%S} UTC is off the grid of "
            f"the other rows ({step[j] / 60:g} min after the row before it; {odd_kind} is {reference / 60:g} min)"
        )
    return finest, typical, int(np.argmax(~on_typical)) + 1


@functools.lru_cache(maxsize=64)
def _file_series(path: str, mtime_ns: int, column: str, time_column: str, timezone: str,
                 fill: str) -> tuple[pd.Series, FileSeriesInfo]:
    table, csv = _read_table(Path(path))

    def where(position: int) -> str:
        return f"{path}: column {column!r}: {_row(position, Path(path), csv)}"

    for needed, what in ((time_column, "time_column"), (column, "column")):
        if needed not in table.columns:
            raise SeriesFileError(
                f"{path}: no {what} {needed!r}; the file has {', '.join(map(str, table.columns[:20]))}"
            )
    if len(table) < 2:
        raise SeriesFileError(f"{path}: column {column!r}: needs at least two rows, has {len(table)}")
    stamps = _utc_stamps(table[time_column], timezone, where)
    seconds = (stamps - stamps[0]).total_seconds().to_numpy()
    step = np.diff(seconds)
    if (step <= 0).any():
        first = int(np.argmax(step <= 0)) + 1
        raise SeriesFileError(f"{where(first)}: timestamp {stamps[first]} is not after the previous row's "
                              "(duplicate or out of order; times compared in UTC)")
    resolution, typical, finer_from = _resolution(step, stamps, where)
    multiple = step / resolution
    raw = table[column]
    if pd.api.types.is_bool_dtype(raw.dtype):
        raise SeriesFileError(f"{where(0)}: not a number: the column holds true/false values")
    values = pd.to_numeric(raw, errors="coerce")
    text = (~raw.isna().to_numpy()) & values.isna().to_numpy()
    if text.any():
        first = int(np.argmax(text))
        raise SeriesFileError(f"{where(first)}: not a number: {str(raw.iloc[first])[:40]!r}")
    array = values.to_numpy(dtype=float)
    if np.isinf(array).any():
        raise SeriesFileError(f"{where(int(np.argmax(np.isinf(array))))}: infinite value")
    nan_rows = np.flatnonzero(np.isnan(array))
    gap_rows = np.flatnonzero(np.round(multiple) > 1) + 1
    if fill == "none" and (len(nan_rows) or len(gap_rows)):
        first_nan = nan_rows[0] if len(nan_rows) else len(array)
        first_gap = gap_rows[0] if len(gap_rows) else len(array)
        if first_nan <= first_gap:
            problem = f"{where(int(first_nan))}: missing value"
        elif finer_from is not None:  # most rows are further apart than the finest spacing
            problem = (f"{where(finer_from)}: {resolution / 60:g} min after the previous row, while most rows are "
                       f"{typical / 60:g} min apart; correct the row, or read the file every {resolution / 60:g} min")
        else:
            missing = int(round(multiple[first_gap - 1])) - 1
            problem = (f"{where(int(first_gap))}: gap of {missing} missing row{'s' if missing > 1 else ''} "
                       f"before {stamps[first_gap]:%Y-%m-%d %H:%M} UTC")
        raise SeriesFileError(f"{problem}; set fill = \"interpolate\" or \"hold\" to fill gaps")
    if np.isnan(array).all():
        raise SeriesFileError(f"{path}: column {column!r}: has no values")
    grid = pd.date_range(stamps[0], stamps[-1], freq=pd.Timedelta(seconds=resolution))
    series = pd.Series(array, index=stamps).reindex(grid)
    filled = int(series.isna().sum())
    if filled:
        series = (series.interpolate(method="time", limit_direction="both") if fill == "interpolate"
                  else series.ffill().bfill())
    series.index = pd.DatetimeIndex(series.index, name="timestamp_utc")
    series.name = column
    info = FileSeriesInfo(path, column, grid[0], grid[-1], pd.Timedelta(seconds=resolution), len(table), filled, fill)
    return series, info


def load_file_series(
    path: str | Path, column: str, time_column: str = "timestamp", timezone: str = "UTC", fill: str = "none"
) -> tuple[pd.Series, FileSeriesInfo]:
    """One column of a user's CSV or Parquet file as a regular UTC series (stamps = interval starts).

    Timestamps (ISO 8601 recommended: day-first forms such as ``01/02/2022`` are ambiguous) are
    read from ``time_column``: stamps with a zone (``Z``, ``+01:00``, ``UTC``) as given, naive
    stamps as local time in the IANA zone ``timezone`` (see :func:`_utc_stamps` for DST).
    The stamps, in UTC, must increase; their finest spacing is the resolution and every
    spacing a multiple of it. Missing rows (gaps) and empty or NaN cells are refused unless
    ``fill`` is ``"interpolate"`` (linear in time) or ``"hold"`` (last value carried forward, the
    first one backward). Reads are cached per file modification time.

    Returns the series (float, index ``timestamp_utc``) and a :class:`FileSeriesInfo`.
    Raises :class:`SeriesFileError` naming the file, the column and the first bad row.
    """
    resolved = Path(path)
    try:
        mtime = resolved.stat().st_mtime_ns
    except OSError:
        mtime = -1
    series, info = _file_series(str(resolved), mtime, column, time_column, timezone, fill)
    return series.copy(), info
