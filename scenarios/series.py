"""Time series in a scenario: inline values, generated shapes, shipped data or the user's own file.

A series is written in TOML in one of four forms (``kind`` selects it):

* ``{kind = "inline", values = [...], step_minutes = 60, repeat = "daily"}`` -- values on a
  regular grid from the run start; ``repeat = "daily"`` makes a one-day profile repeat every
  day, ``repeat = "none"`` requires the values to cover the whole run.
* ``{kind = "generated", shape = "diurnal", mean = 50, amplitude = 20, peak_hour = 18}`` --
  a parametric shape (see :data:`SHAPES`); hours are local solar time when the series
  belongs to a site with a longitude, UTC otherwise.
* ``{kind = "data", dataset = "price_2022", key = "US-CAL-CISO", year_offset = 0}`` -- a real
  series shipped with the package (:mod:`scenarios.datasets`), aligned by timestamp.
* ``{kind = "file", path = "prices.csv", column = "DE_LU", time_column = "timestamp",
  timezone = "Europe/Berlin"}`` -- a column of the user's CSV or Parquet file, the path relative
  to the scenario file (:func:`scenarios.datasets.load_file_series` gives the parsing rules).

Every form accepts ``scale`` and ``offset`` (value = scale * raw + offset). A bare number is
shorthand for a constant. A bare list is *hourly* values from the run start: 24 values are a
daily profile repeated every day, any other length must cover the whole run.

Resolution (:func:`resolve_series`): the value of a step is the exact time-average over the step
of the series read by one of two rules (:data:`RULES`, chosen per signal in
:data:`SIGNAL_RULES`):

* ``hold`` -- each value holds over its interval ``[t_i, t_i+1)`` (a stamp marks the interval
  start). The mean over a step is the integral of that step function divided by the step, so a
  series finer than the step is averaged and energy is conserved exactly, and a coarser one is
  repeated. Prices, carbon intensity, demand, availabilities and the base load use it.
* ``interpolate`` -- each value is the level at its stamp, joined linearly to the next; the mean
  over a step is the exact integral of the line. Ambient temperature uses it.

Generated shapes are smooth functions of time and averaged with the midpoint rule at sub-steps
of at most one minute.
"""

from __future__ import annotations

import math
import types
import zoneinfo
from pathlib import Path
from typing import Annotated, Literal, Union, get_args, get_origin

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator, model_validator

from scenarios.datasets import SeriesCoverageError

SHAPES: dict[str, str] = {
    "constant": "mean everywhere",
    "diurnal": "mean + amplitude * cos(2 pi (hour - peak_hour) / 24)",
    "solar": "clear-sky-like bell: max(0, cos(pi (hour - 12) / daylight_hours)) ** 1.5, peak 1",
    "double-peak": "mean + amplitude * (0.6 cos(2 pi (h - peak_hour)/24) + 0.4 cos(4 pi (h - peak_hour)/24))",
}


def _is_number_annotation(annotation: object) -> bool:
    """True for ``int``, ``float`` and their ``| None`` forms."""
    if annotation in (int, float):
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        return bool(members) and all(arg in (int, float) for arg in members)
    return False


def reject_text_and_bool_for_numbers(model: type[BaseModel], value: object, info: ValidationInfo) -> object:
    """Refuse ``"12"`` or ``true`` where a number is expected.

    pydantic's lax mode would quietly turn them into 12 and 1; in a scenario file they are
    almost always a mistake (a quoted number, a misplaced flag). Strict mode is not used
    because it would also refuse numpy integers from Python callers.
    """
    field = model.model_fields.get(info.field_name or "")
    if field is not None and _is_number_annotation(field.annotation) and isinstance(value, str | bool):
        text = repr(value)
        shown = text if len(text) <= 60 else f"{text[:40]}... ({len(str(value)):,} characters)"
        raise ValueError(f"expected a number, got {type(value).__name__} {shown}")
    return value


#: Largest ``|scale|``: unit conversions need far less (EUR -> USD ~1.1, kW -> MW 1e-3, W -> MW 1e-6,
#: MW -> kW 1e3); a larger one is a typo that would overflow to inf.
MAX_SCALE = 1e6
#: Largest ``|offset|`` in the series' unit (kelvin -> degC is -273.15).
MAX_OFFSET = 1e6


class _SeriesBase(BaseModel):
    # allow_inf_nan=False: NaN/inf anywhere in a series spec (TOML `nan`, `inf`) is an error
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # named, not "*": pydantic forbids a before-validator on the discriminator field `kind`
    _numbers = field_validator(
        "scale", "offset", "step_minutes", "mean", "amplitude", "peak_hour", "daylight_hours", "year_offset",
        "shift_hours", "align_year",
        mode="before", check_fields=False,
    )(classmethod(reject_text_and_bool_for_numbers))

    scale: float = Field(1.0, ge=-MAX_SCALE, le=MAX_SCALE, description="multiplier applied to the raw values")
    offset: float = Field(0.0, ge=-MAX_OFFSET, le=MAX_OFFSET, description="added after scaling, in the series' unit")


class InlineSeries(_SeriesBase):
    """Values on a regular grid starting at the run start."""

    kind: Literal["inline"] = "inline"
    values: list[float] = Field(min_length=1, description="values in the series' unit")
    step_minutes: float = Field(60.0, gt=0, description="length of each value's interval")
    repeat: Literal["daily", "none"] = Field(
        "daily", description="'daily': one-day profile repeated; 'none': must cover the run"
    )

    @field_validator("values", mode="before")
    @classmethod
    def _numbers_only(cls, values: object) -> object:
        # as for every number field: "12" or true inside the list is refused, not coerced
        if isinstance(values, list | tuple):
            for i, value in enumerate(values):
                if isinstance(value, str | bool):
                    raise ValueError(f"item {i}: expected a number, got {type(value).__name__} {value!r:.40}")
        return values

    @field_validator("values")
    @classmethod
    def _finite(cls, values: list[float]) -> list[float]:
        if not np.all(np.isfinite(values)):
            raise ValueError("contains NaN or infinite values")
        return values

    @model_validator(mode="after")
    def _daily_length(self) -> InlineSeries:
        if self.repeat == "daily":
            covered_min = len(self.values) * self.step_minutes
            if abs(covered_min - 1440.0) > 1e-6:
                raise ValueError(
                    f"a daily profile must cover 24 h: {len(self.values)} values x "
                    f"{self.step_minutes:g} min = {covered_min / 60:g} h"
                )
        return self


class GeneratedSeries(_SeriesBase):
    """A parametric shape (see :data:`SHAPES`)."""

    kind: Literal["generated"] = "generated"
    shape: Literal["constant", "diurnal", "solar", "double-peak"] = "constant"
    mean: float = Field(0.0, description="mean (or peak for 'solar') in the series' unit")
    amplitude: float = Field(0.0, description="half the peak-to-trough swing")
    peak_hour: float = Field(12.0, ge=0, le=24, description="local hour of the maximum")
    daylight_hours: float = Field(12.0, gt=0, le=24, description="'solar' only")

    @field_validator("mean", "amplitude")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not np.isfinite(value):
            raise ValueError("must be finite")
        return value


class _TimedSeries(_SeriesBase):
    """Fields shared by series read from stamped data (shipped datasets and the user's files)."""

    year_offset: int = Field(
        0,
        description="shift the run dates by this many years to find the data (e.g. run in 2023 on 2022 data); "
        "one constant shift taken at the run start",
    )
    align_year: int | None = Field(
        None, ge=1900, le=2200,
        description="read this year of the data onto the run, shifted by whole weeks so weekdays match "
        "(e.g. prices of 2018 on a 2020 week): the run start reads the same weekday nearest its date in "
        "that year, inside the year; excludes year_offset",
    )
    cyclic: StrictBool = Field(False, description="repeat the data when the run falls outside it")
    shift_hours: float = Field(
        0.0, ge=-8784, le=8784,
        description="value at time t is the data at t - shift_hours (e.g. move a trace kept in another "
        "time zone's clock onto local time)",
    )

    @model_validator(mode="after")
    def _one_year_rule(self) -> _TimedSeries:
        if self.align_year is not None and self.year_offset:
            raise ValueError("give year_offset or align_year, not both")
        return self

    def shift_to_data(self, run_start: pd.Timestamp) -> pd.Timedelta:
        """Constant offset D with data time = run time - D (``year_offset``, ``align_year``, ``shift_hours``)."""
        shift = pd.Timedelta(hours=self.shift_hours)
        if self.year_offset:
            shift += run_start - (run_start + pd.DateOffset(years=self.year_offset))
        if self.align_year is not None:
            shift += self._align_shift(run_start)
        return shift

    def _align_shift(self, run_start: pd.Timestamp) -> pd.Timedelta:
        """Whole weeks from the run start back to the same weekday nearest the same date of
        ``align_year``, taken *inside* that year (a run on 1 January 2021, a Friday, reads
        Friday 5 January 2018, not Friday 29 December 2017)."""
        if self.align_year is None:
            return pd.Timedelta(0)
        same_date = run_start + pd.DateOffset(years=self.align_year - run_start.year)
        weeks = (run_start - same_date) / pd.Timedelta(days=7)
        year_start = pd.Timestamp(year=self.align_year, month=1, day=1, tz=run_start.tz)
        year_end = pd.Timestamp(year=self.align_year + 1, month=1, day=1, tz=run_start.tz)
        nearest_first = sorted({math.floor(weeks), math.ceil(weeks)}, key=lambda whole: abs(whole - weeks))
        inside = [whole for whole in nearest_first
                  if year_start <= run_start - pd.Timedelta(days=7 * whole) < year_end]
        return pd.Timedelta(days=7 * (inside or nearest_first)[0])


class DataSeries(_TimedSeries):
    """A real series shipped in ``scenarios/data`` (see :func:`scenarios.datasets.load_series`)."""

    kind: Literal["data"] = "data"
    dataset: str = Field(description="dataset name, e.g. 'carbon_intensity_2022'")
    key: str = Field(description="column of the dataset, e.g. a balancing authority")


class FileSeries(_TimedSeries):
    """A column of the user's CSV or Parquet file (see :func:`scenarios.datasets.load_file_series`).

    ``path`` is relative to the scenario file (to the working directory for a scenario built in
    Python); it is stored resolved, so a saved scenario still finds the file.
    """

    kind: Literal["file"] = "file"
    path: str = Field(min_length=1, description="CSV (.csv, .csv.gz) or Parquet (.parquet) file")
    column: str = Field(min_length=1, description="column holding the values")
    time_column: str = Field("timestamp", min_length=1, description="column holding the interval-start stamps")
    timezone: str = Field("UTC", description="IANA zone of stamps written without an offset, e.g. 'Europe/Berlin'")
    fill: Literal["none", "interpolate", "hold"] = Field(
        "none", description="'none': gaps and NaN are errors; 'interpolate': linear in time; 'hold': last value"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'") from None
        return zone

    @field_validator("path")
    @classmethod
    def _relative_to_scenario(cls, path: str, info: ValidationInfo) -> str:
        base = (info.context or {}).get("base_dir")
        resolved = Path(path).expanduser()
        if not resolved.is_absolute():
            resolved = (Path(base) if base is not None else Path.cwd()) / resolved
        return str(resolved.resolve())


SeriesSpec = Annotated[InlineSeries | GeneratedSeries | DataSeries | FileSeries, Field(discriminator="kind")]
AnySeries = InlineSeries | GeneratedSeries | DataSeries | FileSeries

RULES: dict[str, str] = {
    "hold": "each value holds over its interval [t_i, t_i+1); step value = exact mean of the step function",
    "interpolate": "values are levels at their stamps joined linearly; step value = exact mean of the line",
}
#: The resolution rule of each signal (see the module docstring).
SIGNAL_RULES: dict[str, str] = {
    "demand": "hold", "pv": "hold", "wind": "hold", "import_price": "hold", "export_price": "hold",
    "carbon": "hold", "temperature": "interpolate", "base_load": "hold",
}
HOURS_PER_DAY = 24
GENERATED_SUBSTEP_MINUTES = 1.0


def coerce_series(value: object) -> object:
    """Expand the shorthands: a number is a constant; a list is hourly values from the run start
    (24 values: a daily profile; any other length: not repeated, must cover the run)."""
    if isinstance(value, bool | str):
        raise ValueError(
            f"expected a number, a list of hourly values or a table with kind = 'inline', 'generated', "
            f"'data' or 'file'; got {type(value).__name__} {value!r}"
        )
    if isinstance(value, int | float):
        return {"kind": "generated", "shape": "constant", "mean": float(value)}
    if isinstance(value, list | tuple):
        repeat = "daily" if len(value) == HOURS_PER_DAY else "none"
        return {"kind": "inline", "values": list(value), "step_minutes": 60.0, "repeat": repeat}
    return value


def _local_hours(index: pd.DatetimeIndex, longitude_deg: float | None) -> np.ndarray:
    hours = (index.hour + index.minute / 60.0 + index.second / 3600.0).to_numpy(dtype=float)
    if longitude_deg is not None:
        hours = (hours + longitude_deg / 15.0) % 24.0
    return hours


def _generated(spec: GeneratedSeries, index: pd.DatetimeIndex, longitude_deg: float | None) -> np.ndarray:
    hours = _local_hours(index, longitude_deg)
    phase = 2.0 * np.pi * (hours - spec.peak_hour) / 24.0
    if spec.shape == "constant":
        return np.full(len(index), spec.mean)
    if spec.shape == "diurnal":
        return spec.mean + spec.amplitude * np.cos(phase)
    if spec.shape == "double-peak":
        return spec.mean + spec.amplitude * (0.6 * np.cos(phase) + 0.4 * np.cos(2.0 * phase))
    bell = np.cos(np.pi * (hours - spec.peak_hour) / spec.daylight_hours)
    return spec.mean * np.clip(bell, 0.0, None) ** 1.5


def _step_means(knots_s: np.ndarray, values: np.ndarray, edges_s: np.ndarray, rule: str) -> np.ndarray:
    """Exact means over ``[edges[i], edges[i+1])`` of a series given on ``knots`` (seconds).

    ``hold``: ``values[i]`` on ``[knots[i], knots[i+1])`` (len(knots) = len(values) + 1); the
    running integral is piecewise linear, so interpolating it is exact. ``interpolate``:
    ``values[i]`` at ``knots[i]`` (equal lengths), linear between; the running integral is
    piecewise quadratic and evaluated in closed form.
    """
    if rule == "hold":
        integral = np.concatenate(([0.0], np.cumsum(values * np.diff(knots_s))))
        at_edges = np.interp(edges_s, knots_s, integral)
    else:
        widths = np.diff(knots_s)
        integral = np.concatenate(([0.0], np.cumsum(0.5 * (values[:-1] + values[1:]) * widths)))
        segment = np.clip(np.searchsorted(knots_s, edges_s, side="right") - 1, 0, len(knots_s) - 2)
        dx = edges_s - knots_s[segment]
        slope = (values[segment + 1] - values[segment]) / widths[segment]
        at_edges = integral[segment] + values[segment] * dx + 0.5 * slope * dx**2
    return np.diff(at_edges) / np.diff(edges_s)


def _tile(knots_s: np.ndarray, values: np.ndarray, period_s: float, low_s: float, high_s: float,
          rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Repeat one period of a series (knots ``knots_s[0] .. knots_s[0] + period``) to cover [low, high]."""
    first = int(np.floor((low_s - knots_s[0]) / period_s)) - 1
    last = int(np.ceil((high_s - knots_s[0]) / period_s)) + 1
    copies = np.arange(first, last)
    starts = knots_s[: len(values)]
    tiled_knots = (starts[None, :] + period_s * copies[:, None]).ravel()
    tiled_values = np.tile(values, len(copies))
    closing = knots_s[0] + period_s * last
    if rule == "hold":
        return np.append(tiled_knots, closing), tiled_values
    return np.append(tiled_knots, closing), np.append(tiled_values, values[0])


def _stamped(series: pd.Series, origin: pd.Timestamp, shift: pd.Timedelta) -> tuple[np.ndarray, np.ndarray, float]:
    """Knots (seconds after ``origin``, moved by ``shift``), values and the spacing of the last interval."""
    index = pd.DatetimeIndex(series.index).as_unit("ns")
    knots = (index - origin.as_unit("ns") + shift).total_seconds().to_numpy(dtype=float)
    spacing = float(np.median(np.diff(knots))) if len(knots) > 1 else 3600.0
    return knots, series.to_numpy(dtype=float), spacing


def _describe(spec: DataSeries | FileSeries) -> str:
    if isinstance(spec, DataSeries):
        return f"dataset {spec.dataset!r} key {spec.key!r}"
    return f"file {spec.path} column {spec.column!r}"


def _source(spec: DataSeries | FileSeries) -> pd.Series:
    if isinstance(spec, DataSeries):
        from scenarios.datasets import load_series

        return load_series(spec.dataset, spec.key)
    from scenarios.datasets import load_file_series

    series, _ = load_file_series(spec.path, spec.column, spec.time_column, spec.timezone, spec.fill)
    return series


def _knots(
    spec: InlineSeries | DataSeries | FileSeries, origin: pd.Timestamp, end_s: float, run_start: pd.Timestamp,
    rule: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The series as knots (seconds after ``origin``) covering ``[0, end_s]``, for :func:`_step_means`."""
    if isinstance(spec, InlineSeries):
        values = np.asarray(spec.values, dtype=float)
        step_s = spec.step_minutes * 60.0
        first = (run_start - origin).total_seconds()
        knots = first + step_s * np.arange(len(values) + 1)
        if spec.repeat == "daily":
            return _tile(knots, values, step_s * len(values), 0.0, end_s, rule)
        if first > 1e-6:
            raise SeriesCoverageError("inline series with repeat = 'none' is read before the run start")
        if end_s > knots[-1] + 1e-6:
            covered_h = len(values) * spec.step_minutes / 60.0
            needed_h = (end_s - first) / 3600.0
            raise SeriesCoverageError(
                f"inline series with repeat = 'none' covers {covered_h:g} h from the run start "
                f"({len(values)} values x {spec.step_minutes:g} min) but {needed_h:g} h are needed "
                f"(a bare list is hourly: give 24 values for a daily profile)"
            )
        return (knots, values) if rule == "hold" else (knots, np.append(values, values[-1]))
    data = _source(spec)
    knots, values, spacing = _stamped(data, origin, spec.shift_to_data(run_start))
    knots = np.append(knots, knots[-1] + spacing)
    if spec.cyclic:
        return _tile(knots, values, knots[-1] - knots[0], 0.0, end_s, rule)
    if knots[0] > 1e-6 or end_s > knots[-1] + 1e-6:
        first_missing = origin if knots[0] > 1e-6 else origin + pd.Timedelta(seconds=float(knots[-1]))
        shift = spec.shift_to_data(run_start)
        stamp = "%Y-%m-%d %H:%M UTC"
        raise SeriesCoverageError(
            f"{_describe(spec)} has no data at {(first_missing - shift).floor('min').strftime(stamp)} "
            f"(covers {data.index[0].strftime(stamp)} to {data.index[-1].strftime(stamp)}; "
            f"shift with year_offset or align_year, or set cyclic = true)"
        )
    return (knots, values) if rule == "hold" else (knots, np.append(values, values[-1]))


def resolve_series(
    spec: AnySeries,
    start: pd.Timestamp,
    n_steps: int,
    step_hours: float,
    run_start: pd.Timestamp | None = None,
    longitude_deg: float | None = None,
    rule: str = "hold",
) -> np.ndarray:
    """Values of ``spec`` averaged over each of ``n_steps`` intervals of ``step_hours`` from ``start``.

    Shape ``(n_steps,)``, in the series' unit after ``scale`` and ``offset``. Each value is the
    exact time-mean over its interval of the series read by ``rule`` (``"hold"`` or
    ``"interpolate"``, see :data:`RULES`): a series finer than the step is averaged (energy is
    conserved), a coarser one held or interpolated. Generated shapes use the midpoint rule at
    sub-steps of at most :data:`GENERATED_SUBSTEP_MINUTES`.

    Raises :class:`scenarios.datasets.SeriesCoverageError` when the series does not cover the
    intervals (inline without repeat, data or file outside its span),
    :class:`scenarios.datasets.SeriesFileError` for a file that cannot be read (both are
    :class:`scenarios.datasets.DatasetError`, a ``ValueError`` the CLI reports as one line) and
    ``ValueError`` for an unknown ``rule``.
    """
    if rule not in RULES:
        raise ValueError(f"unknown resolution rule {rule!r}; expected one of {', '.join(RULES)}")
    start = pd.Timestamp(start)
    run_start = start if run_start is None else pd.Timestamp(run_start)
    if isinstance(spec, GeneratedSeries):
        if spec.shape == "constant":
            raw = np.full(n_steps, spec.mean)
        else:
            samples = max(1, int(np.ceil(step_hours * 60.0 / GENERATED_SUBSTEP_MINUTES - 1e-9)))
            offsets_h = (np.arange(n_steps * samples) + 0.5) * (step_hours / samples)
            index = pd.DatetimeIndex(start + pd.to_timedelta(offsets_h, unit="h"))
            raw = _generated(spec, index, longitude_deg).reshape(n_steps, samples).mean(axis=1)
    else:
        edges = np.arange(n_steps + 1) * step_hours * 3600.0
        knots, values = _knots(spec, start, float(edges[-1]), run_start, rule)
        raw = _step_means(knots, values, edges, rule)
    return spec.scale * raw + spec.offset
