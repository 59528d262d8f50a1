"""Time series in a scenario: inline values, generated shapes, or shipped real data.

A series is written in TOML in one of three forms (``kind`` selects it):

* ``{kind = "inline", values = [...], step_minutes = 60, repeat = "daily"}`` -- values on a
  regular grid from the run start; ``repeat = "daily"`` makes a one-day profile repeat every
  day, ``repeat = "none"`` requires the values to cover the whole run.
* ``{kind = "generated", shape = "diurnal", mean = 50, amplitude = 20, peak_hour = 18}`` --
  a parametric shape (see :data:`SHAPES`); hours are local solar time when the series
  belongs to a site with a longitude, UTC otherwise.
* ``{kind = "data", dataset = "price_2022", key = "US-CAL-CISO", year_offset = 0}`` -- a real
  series shipped with the package (:mod:`scenarios.datasets`), aligned by timestamp.

Every form accepts ``scale`` and ``offset`` (value = scale * raw + offset). A bare number is
shorthand for a constant; a bare list for daily-repeating hourly values.
"""

from __future__ import annotations

import types
from typing import Annotated, Literal, Union, get_args, get_origin

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

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
        raise ValueError(f"expected a number, got {type(value).__name__} {value!r}")
    return value


class _SeriesBase(BaseModel):
    # allow_inf_nan=False: NaN/inf anywhere in a series spec (TOML `nan`, `inf`) is an error
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # named, not "*": pydantic forbids a before-validator on the discriminator field `kind`
    _numbers = field_validator(
        "scale", "offset", "step_minutes", "mean", "amplitude", "peak_hour", "daylight_hours", "year_offset",
        "shift_hours",
        mode="before", check_fields=False,
    )(classmethod(reject_text_and_bool_for_numbers))

    scale: float = Field(1.0, description="multiplier applied to the raw values")
    offset: float = Field(0.0, description="added after scaling, in the series' unit")


class InlineSeries(_SeriesBase):
    """Values on a regular grid starting at the run start."""

    kind: Literal["inline"] = "inline"
    values: list[float] = Field(min_length=1, description="values in the series' unit")
    step_minutes: float = Field(60.0, gt=0, description="length of each value's interval")
    repeat: Literal["daily", "none"] = Field(
        "daily", description="'daily': one-day profile repeated; 'none': must cover the run"
    )

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


class DataSeries(_SeriesBase):
    """A real series shipped in ``scenarios/data`` (see :func:`scenarios.datasets.load_series`)."""

    kind: Literal["data"] = "data"
    dataset: str = Field(description="dataset name, e.g. 'carbon_intensity_2022'")
    key: str = Field(description="column of the dataset, e.g. a balancing authority")
    year_offset: int = Field(
        0,
        description="shift the run dates by this many years to find the data (e.g. run in 2023 on 2022 data)",
    )
    cyclic: bool = Field(False, description="repeat the dataset when the run falls outside it")
    shift_hours: float = Field(
        0.0, ge=-8784, le=8784,
        description="value at time t is the data at t - shift_hours (e.g. move a trace kept in another "
        "time zone's clock onto local time)",
    )


SeriesSpec = Annotated[InlineSeries | GeneratedSeries | DataSeries, Field(discriminator="kind")]


def coerce_series(value: object) -> object:
    """Expand the shorthands: a number is a constant, a list is an hourly daily profile."""
    if isinstance(value, bool | str):
        raise ValueError(
            f"expected a number, a list of hourly values or a table with kind = 'inline', 'generated' or "
            f"'data'; got {type(value).__name__} {value!r}"
        )
    if isinstance(value, int | float):
        return {"kind": "generated", "shape": "constant", "mean": float(value)}
    if isinstance(value, list | tuple):
        return {"kind": "inline", "values": list(value), "step_minutes": 1440.0 / max(len(value), 1)}
    return value


def _local_hours(index: pd.DatetimeIndex, longitude_deg: float | None) -> np.ndarray:
    hours = (index.hour + index.minute / 60.0 + index.second / 3600.0).to_numpy(dtype=float)
    if longitude_deg is not None:
        hours = (hours + longitude_deg / 15.0) % 24.0
    return hours


def _raw_values(
    spec: InlineSeries | GeneratedSeries | DataSeries,
    index: pd.DatetimeIndex,
    run_start: pd.Timestamp,
    longitude_deg: float | None,
) -> np.ndarray:
    if isinstance(spec, InlineSeries):
        elapsed_min = (index - run_start).total_seconds().to_numpy() / 60.0
        position = np.floor(elapsed_min / spec.step_minutes + 1e-9).astype(np.int64)
        values = np.asarray(spec.values, dtype=float)
        if spec.repeat == "daily":
            position = position % len(values)
        elif position.min() < 0:
            raise ValueError("inline series with repeat = 'none' is read before the run start")
        elif position.max() >= len(values):
            covered_h = len(values) * spec.step_minutes / 60.0
            needed_h = (position.max() + 1) * spec.step_minutes / 60.0
            raise ValueError(
                f"inline series with repeat = 'none' covers {covered_h:g} h from the run start "
                f"({len(values)} values x {spec.step_minutes:g} min) but {needed_h:g} h are needed"
            )
        return values[position]
    if isinstance(spec, GeneratedSeries):
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
    from scenarios.datasets import load_series

    data = load_series(spec.dataset, spec.key)
    lookup = index - pd.DateOffset(years=-spec.year_offset) if spec.year_offset else index
    lookup = pd.DatetimeIndex(lookup)
    if spec.shift_hours:
        lookup = lookup - pd.Timedelta(hours=spec.shift_hours)
    if spec.cyclic:
        span = data.index[-1] - data.index[0] + (data.index[1] - data.index[0])
        lookup = data.index[0] + (lookup - data.index[0]) % span
    # compare in ns: the sample times carry float rounding (a stray ns), which pandas refuses to
    # cast to a coarser index unit ("Cannot losslessly cast")
    stamps = pd.DatetimeIndex(data.index).as_unit("ns")
    lookup = lookup.as_unit("ns")
    position = stamps.searchsorted(lookup, side="right") - 1
    outside = (position < 0) | (lookup >= data.index[-1] + (data.index[-1] - data.index[-2]))
    if outside.any():
        first_missing = lookup[np.argmax(outside)].floor("min")
        stamp = "%Y-%m-%d %H:%M UTC"
        raise ValueError(
            f"dataset {spec.dataset!r} key {spec.key!r} has no data at {first_missing.strftime(stamp)} "
            f"(covers {data.index[0].strftime(stamp)} to {data.index[-1].strftime(stamp)}; "
            f"shift with year_offset or set cyclic = true)"
        )
    return data.to_numpy(dtype=float)[position]


def resolve_series(
    spec: InlineSeries | GeneratedSeries | DataSeries,
    start: pd.Timestamp,
    n_steps: int,
    step_hours: float,
    run_start: pd.Timestamp | None = None,
    longitude_deg: float | None = None,
) -> np.ndarray:
    """Values of ``spec`` averaged over each of ``n_steps`` intervals of ``step_hours``.

    Each interval's value is the mean of the series sampled at the midpoints of sub-intervals
    no longer than 5 minutes, so a step-hold hourly series read at 15-min steps repeats and a
    10-min series read hourly is averaged.
    """
    run_start = start if run_start is None else run_start
    samples = max(1, int(np.ceil(step_hours * 60.0 / 5.0 - 1e-9)))
    sub_step_h = step_hours / samples
    offsets_h = (np.arange(n_steps * samples) + 0.5) * sub_step_h
    index = pd.DatetimeIndex(start + pd.to_timedelta(offsets_h, unit="h"))
    raw = _raw_values(spec, index, run_start, longitude_deg)
    values = spec.scale * raw.reshape(n_steps, samples).mean(axis=1) + spec.offset
    return values
