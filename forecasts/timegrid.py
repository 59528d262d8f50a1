"""Time handling shared by the forecasters: UTC nanoseconds on regular grids.

Everything inside the package works on ``int64`` nanoseconds since the Unix epoch (UTC), whatever
resolution pandas chose for the caller's index (pandas 3 defaults to microseconds). A series on a
regular grid is described by ``(start_ns, step_ns, values)`` where row ``i`` holds the mean of the
signal over the interval ``[start_ns + i*step_ns, start_ns + (i+1)*step_ns)``.

Changing the step (the caller asks for 15-min forecasts of an hourly series, or hourly forecasts of
a 5-min series) is done by :func:`interval_means`: the value of a target interval is the
time-weighted mean of the piecewise-constant series over it,

    x̄[a, b) = (1 / (b - a)) ∫_a^b x(t) dt,

which is an average for coarser targets and a step-hold for finer ones. NaN rows do not count:
the mean is over the observed part of the interval, and NaN where nothing of it was observed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NS_PER_HOUR = 3_600_000_000_000


def to_utc_timestamp(value: object, what: str = "time") -> pd.Timestamp:
    """Return ``value`` as a tz-aware UTC Timestamp; naive times are refused (SPEC §3: UTC)."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} {value!r} is not a time stamp") from exc
    if stamp is pd.NaT:
        raise ValueError(f"{what} is NaT")
    if stamp.tzinfo is None:
        raise ValueError(f"{what} {stamp} has no time zone; pass a tz-aware (UTC) time stamp")
    return stamp.tz_convert("UTC")


def to_step(value: object, what: str = "step") -> pd.Timedelta:
    """Return ``value`` as a strictly positive Timedelta."""
    try:
        step = pd.Timedelta(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} {value!r} is not a time span") from exc
    if step is pd.NaT or step <= pd.Timedelta(0):
        raise ValueError(f"{what} must be a positive time span, got {value!r}")
    return step


def timestamp_ns(stamp: pd.Timestamp) -> int:
    """Nanoseconds since the epoch of a tz-aware Timestamp (independent of its resolution)."""
    return int(stamp.as_unit("ns").value)


def timedelta_ns(span: pd.Timedelta) -> int:
    """Nanoseconds of a Timedelta (independent of its resolution)."""
    return int(span.as_unit("ns").value)


def index_ns(index: pd.Index, what: str = "index") -> np.ndarray:
    """The index as int64 UTC nanoseconds; it must be a tz-aware DatetimeIndex."""
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(f"{what} must be a DatetimeIndex, got {type(index).__name__}")
    if index.tz is None:
        raise ValueError(f"{what} has no time zone; use a tz-aware UTC DatetimeIndex")
    return index.tz_convert("UTC").as_unit("ns").asi8


def regular_step_ns(times_ns: np.ndarray, what: str = "index") -> int:
    """The common spacing of strictly increasing, evenly spaced times; error otherwise."""
    if len(times_ns) < 2:
        raise ValueError(f"{what} has fewer than two rows, so its step cannot be inferred; pass step=")
    gaps = np.diff(times_ns)
    step = int(gaps[0])
    if step <= 0 or not np.all(gaps == step):
        first_bad = int(np.flatnonzero(gaps != step)[0]) + 1 if step > 0 else 1
        bad_time = pd.Timestamp(int(times_ns[first_bad]), unit="ns", tz="UTC")
        raise ValueError(f"{what} is not a regular, increasing time grid (first irregular row at {bad_time})")
    return step


def ns_to_index(times_ns: np.ndarray) -> pd.DatetimeIndex:
    """A UTC DatetimeIndex (ns resolution) from int64 nanoseconds."""
    return pd.DatetimeIndex(np.asarray(times_ns, dtype=np.int64).view("datetime64[ns]"), tz="UTC")


def interval_means(
    start_ns: int,
    step_ns: int,
    values: np.ndarray,
    starts_ns: np.ndarray,
    length_ns: int,
) -> np.ndarray:
    """Time-weighted means of a gridded series over the intervals ``[s, s + length_ns)``.

    ``values`` has shape (rows, keys); the result has shape (len(starts_ns), keys). A target that
    is not fully inside the grid ``[start_ns, start_ns + rows*step_ns)`` gives NaN, and so does a
    target without any observed (non-NaN) part. When the target grid coincides with the source grid
    the values are copied exactly (no floating-point round trip).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n_rows, n_keys = values.shape
    starts_ns = np.asarray(starts_ns, dtype=np.int64)
    out = np.full((len(starts_ns), n_keys), np.nan)
    offsets = starts_ns - start_ns
    inside = (offsets >= 0) & (offsets + length_ns <= n_rows * step_ns)
    if not inside.any():
        return out
    if length_ns == step_ns and np.all(offsets[inside] % step_ns == 0):
        out[inside] = values[offsets[inside] // step_ns]
        return out
    observed = np.isfinite(values)
    filled = np.where(observed, values, 0.0)
    # cumulative integrals (in units of rows) of the values and of the observed-time indicator
    cum_value = np.vstack([np.zeros((1, n_keys)), np.cumsum(filled, axis=0)])
    cum_observed = np.vstack([np.zeros((1, n_keys)), np.cumsum(observed, axis=0, dtype=np.float64)])

    def integral_to(position: np.ndarray, cum: np.ndarray, rows: np.ndarray) -> np.ndarray:
        whole = np.minimum(np.floor(position).astype(np.int64), n_rows - 1)
        fraction = (position - whole)[:, None]
        return cum[whole] + fraction * rows[whole]

    lo = offsets[inside] / step_ns
    hi = (offsets[inside] + length_ns) / step_ns
    value_integral = integral_to(hi, cum_value, filled) - integral_to(lo, cum_value, filled)
    observed_time = integral_to(hi, cum_observed, observed) - integral_to(lo, cum_observed, observed)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(observed_time > 1e-12, value_integral / observed_time, np.nan)
    out[inside] = means
    return out

