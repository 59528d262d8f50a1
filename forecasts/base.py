"""The forecasting interface: signals, the history a forecaster may see, forecasts, forecasters.

A *signal* is one of :data:`SIGNALS`. Its truth is a DataFrame with a tz-aware UTC DatetimeIndex on
a regular step and one column per key (site or inference class); row ``t`` is the mean of the
signal over ``[t, t + step)``. Units are the caller's.

A forecast issued at ``issue_time`` with step ``Δ`` and ``H`` steps covers the target intervals
``[issue_time + iΔ, issue_time + (i+1)Δ)`` for ``i = 0..H-1``; its *lead* is measured to the end of
the target interval, ``lead_i = (i + 1)Δ``, so an hourly day-ahead forecast has leads 1..24 h.

No look-ahead is enforced structurally: history-based forecasters receive a :class:`HistoryView`
that holds a copy of the observed rows only (rows whose interval ended by the issue time). It has no
reference to the source frame, so nothing it exposes can reach the future. Only the oracles
(``perfect``, ``noisy``) are given the truth, by design, through ``bind_truth``.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import NormalDist
from typing import ClassVar

import numpy as np
import pandas as pd

from forecasts.params import format_params, resolve_params
from forecasts.timegrid import (
    NS_PER_HOUR,
    index_ns,
    ns_to_index,
    regular_step_ns,
    timedelta_ns,
    timestamp_ns,
    to_step,
    to_utc_timestamp,
)
from scenarios.signals import NONNEGATIVE_SIGNALS, SIGNALS, UNIT_INTERVAL_SIGNALS

logger = logging.getLogger("forecasts")

# the signals' names and ranges: one table, in scenarios.signals (re-exported by forecasts)


class ForecastError(ValueError):
    """A forecast that cannot be produced (unknown signal, truth not bound or too short, ...)."""


class InsufficientHistoryError(ForecastError):
    """The history handed to a forecaster holds no usable observation."""


def check_signal(signal: str) -> str:
    """Return ``signal`` if it is one of SIGNALS, else raise ForecastError listing them."""
    if signal not in SIGNALS:
        raise ForecastError(f"unknown signal {signal!r}; valid signals: {', '.join(SIGNALS)}")
    return signal


def clip_to_signal_range(signal: str, values: np.ndarray) -> np.ndarray:
    """Clip forecast values to the physical range of the signal (in place; also returned).

    demand, pv, wind, carbon ≥ 0; pv, wind ≤ 1 (per-unit availability); prices and temperature
    are left alone. NaN stays NaN.
    """
    if signal in UNIT_INTERVAL_SIGNALS:
        np.clip(values, 0.0, 1.0, out=values)
    elif signal in NONNEGATIVE_SIGNALS:
        np.maximum(values, 0.0, out=values)
    return values


@lru_cache(maxsize=256)
def gaussian_quantile(level: float) -> float:
    """The standard normal quantile z_q (±inf at 0 and 1; NaN outside [0, 1]).

    :class:`statistics.NormalDist` (Wichura's AS241, accurate to about 1e-16) instead of
    ``scipy.stats.norm.ppf``, whose import costs ~0.8 s at every start of ``aidc``.
    """
    if not 0.0 < level < 1.0:
        return {0.0: -math.inf, 1.0: math.inf}.get(level, math.nan)
    return NormalDist().inv_cdf(level)


class HistoryView:
    """Read-only history of one signal as seen at ``issue_time``.

    Holds a *copy* of the rows whose interval has ended by the issue time, ``t + step <= issue_time``
    (for issue times on the grid this is ``t < issue_time``: the interval starting at the issue time
    has not been observed yet). The source frame is not kept, so the view cannot reach later rows;
    every accessor returns a fresh copy, so callers cannot alter what the next forecaster sees.

    ``step`` is inferred from the index unless given (needed when the frame has a single row).
    ``lookback`` optionally keeps only the most recent span of history (cheaper for long frames).
    """

    __slots__ = ("_issue_time", "_keys", "_values", "_first_ns", "_step_ns")

    def __init__(
        self,
        frame: pd.DataFrame,
        issue_time: pd.Timestamp,
        step: pd.Timedelta | None = None,
        lookback: pd.Timedelta | None = None,
    ) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"HistoryView needs a DataFrame, got {type(frame).__name__}")
        issue = to_utc_timestamp(issue_time, "issue_time")
        times = index_ns(frame.index, "history index")
        step_ns = timedelta_ns(to_step(step)) if step is not None else regular_step_ns(times, "history index")
        if step is not None and len(times) > 1 and regular_step_ns(times, "history index") != step_ns:
            raise ValueError(f"history index step differs from step={step}")
        issue_ns = timestamp_ns(issue)
        n_seen = int(np.searchsorted(times, issue_ns - step_ns, side="right"))
        first = 0
        if lookback is not None:
            first = int(np.searchsorted(times, issue_ns - timedelta_ns(to_step(lookback, "lookback"))))
            first = min(first, n_seen)
        all_values = frame.to_numpy(dtype=np.float64)
        self._values = np.array(all_values[first:n_seen], dtype=np.float64, copy=True)
        self._values.flags.writeable = False
        self._first_ns = int(times[first]) if n_seen > first else issue_ns
        self._step_ns = step_ns
        self._issue_time = issue
        self._keys = tuple(frame.columns)

    # --- metadata -------------------------------------------------------------------------------
    @property
    def issue_time(self) -> pd.Timestamp:
        """The time at which the forecast is issued."""
        return self._issue_time

    @property
    def step(self) -> pd.Timedelta:
        """The step of the history grid."""
        return pd.Timedelta(self._step_ns, unit="ns")

    @property
    def keys(self) -> tuple:
        """Column names (sites or inference classes)."""
        return self._keys

    def __len__(self) -> int:
        return self._values.shape[0]

    @property
    def first_ns(self) -> int:
        """Start of the first observed row, ns since the epoch (UTC); ValueError when empty."""
        if not len(self):
            raise ValueError("empty history has no first time")
        return int(self._first_ns)

    @property
    def first_time(self) -> pd.Timestamp | None:
        """Start of the first observed row (None when empty)."""
        return pd.Timestamp(self._first_ns, unit="ns", tz="UTC") if len(self) else None

    @property
    def end_time(self) -> pd.Timestamp | None:
        """End of the last observed interval, ``last row + step`` (≤ issue_time; None when empty)."""
        if not len(self):
            return None
        return pd.Timestamp(self._first_ns + len(self) * self._step_ns, unit="ns", tz="UTC")

    # --- data -----------------------------------------------------------------------------------
    def _row_range(self, start: pd.Timestamp | None, end: pd.Timestamp | None) -> tuple[int, int]:
        lo, hi = 0, len(self)
        if start is not None:
            offset = timestamp_ns(to_utc_timestamp(start, "start")) - self._first_ns
            lo = min(hi, max(0, -(-offset // self._step_ns)))
        if end is not None:
            offset = timestamp_ns(to_utc_timestamp(end, "end")) - self._first_ns
            hi = min(hi, max(lo, -(-offset // self._step_ns)))
        return lo, hi

    def to_numpy(self, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> np.ndarray:
        """Copy of the observed values with row time in ``[start, end)``, shape (rows, keys)."""
        lo, hi = self._row_range(start, end)
        return self._values[lo:hi].copy()

    def to_frame(self, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> pd.DataFrame:
        """Copy of the observed rows with time in ``[start, end)`` as a DataFrame."""
        lo, hi = self._row_range(start, end)
        times = self._first_ns + self._step_ns * np.arange(lo, hi, dtype=np.int64)
        return pd.DataFrame(self._values[lo:hi].copy(), index=ns_to_index(times), columns=list(self._keys))

    def __repr__(self) -> str:
        return (
            f"HistoryView(issue_time={self._issue_time}, rows={len(self)}, step={self.step}, "
            f"keys={list(self._keys)})"
        )


@dataclass(frozen=True)
class Forecast:
    """One issued forecast.

    ``values``: point forecast, index = target interval starts ``issue_time + iΔ`` (H rows),
    columns = keys. ``quantiles``: level → frame shaped like ``values``, or None. ``model`` names
    what produced it and ``note`` says when a fallback was used (e.g. ets → seasonal-naive).
    """

    values: pd.DataFrame
    quantiles: dict[float, pd.DataFrame] | None = None
    issue_time: pd.Timestamp | None = None
    step: pd.Timedelta | None = None
    model: str = ""
    note: str | None = None


@dataclass(frozen=True)
class ForecastRequest:
    """A checked forecast request, in nanoseconds, handed to a forecaster's ``_predict``."""

    signal: str
    issue_time: pd.Timestamp
    issue_ns: int
    step_ns: int
    horizon_steps: int
    keys: tuple
    target_ns: np.ndarray = field(repr=False)

    @property
    def lead_h(self) -> np.ndarray:
        """Lead of each target to the end of its interval, in hours: (i + 1)Δ."""
        return (self.target_ns + self.step_ns - self.issue_ns) / NS_PER_HOUR


@dataclass
class Prediction:
    """What ``_predict`` returns: arrays shaped (horizon_steps, keys), before clipping."""

    values: np.ndarray
    quantiles: dict[float, np.ndarray] | None = None
    note: str | None = None


@lru_cache(maxsize=16)
def _target_index(issue_ns: int, step_ns: int, horizon_steps: int) -> pd.DatetimeIndex:
    """The UTC index of a forecast's target intervals (cached: shared by every signal of a decision)."""
    return ns_to_index(issue_ns + step_ns * np.arange(horizon_steps, dtype=np.int64))


@lru_cache(maxsize=64)
def _column_index(keys: tuple[str, ...]) -> pd.Index:
    """The columns of a forecast frame (cached: an Index is immutable)."""
    return pd.Index(list(keys))


class Forecaster(ABC):
    """A forecaster: ``forecast(signal, history, issue_time, step, horizon_steps) -> Forecast``.

    Subclasses set ``name``, ``description`` and ``PARAMETERS`` and implement ``_predict``; the base
    class checks the request (the history must be issued at ``issue_time``), builds the target grid,
    clips to the signal's range and wraps the arrays into a :class:`Forecast`. A forecaster written
    elsewhere may instead override ``forecast`` itself, keeping its signature.
    """

    name: ClassVar[str] = "forecaster"
    description: ClassVar[str] = ""
    is_oracle: ClassVar[bool] = False
    PARAMETERS: ClassVar[tuple] = ()

    def __init__(self, **params: object) -> None:
        self.params: dict[str, object] = resolve_params(self.name, self.PARAMETERS, params)

    def forecast(
        self,
        signal: str,
        history: HistoryView,
        issue_time: pd.Timestamp,
        step: pd.Timedelta,
        horizon_steps: int,
    ) -> Forecast:
        """Forecast ``signal`` for ``horizon_steps`` intervals of ``step`` from ``issue_time``."""
        request = self._make_request(signal, history, issue_time, step, horizon_steps)
        prediction = self._predict(request, history)
        expected = (request.horizon_steps, len(request.keys))
        for array in (prediction.values, *(prediction.quantiles or {}).values()):
            shape = np.shape(array)
            if shape != expected:
                raise ValueError(f"{type(self).__name__}._predict returned values of shape {shape}, expected "
                                 f"(horizon steps, columns) = {expected}")
        # the index and columns are immutable and the same for every signal of one decision: built once
        # and shared (they were most of a forecast's cost)
        index = _target_index(request.issue_ns, request.step_ns, request.horizon_steps)
        columns = _column_index(tuple(request.keys))

        def frame(array: np.ndarray) -> pd.DataFrame:
            return pd.DataFrame(clip_to_signal_range(signal, array), index=index, columns=columns, copy=False)

        values = frame(prediction.values)
        quantiles = None
        if prediction.quantiles:
            quantiles = {level: frame(array) for level, array in sorted(prediction.quantiles.items())}
        if prediction.note:
            logger.info("%s forecast of %s at %s: %s", self.name, signal, request.issue_time, prediction.note)
        return Forecast(
            values=values,
            quantiles=quantiles,
            issue_time=request.issue_time,
            step=pd.Timedelta(request.step_ns, unit="ns"),
            model=self.name,
            note=prediction.note,
        )

    @abstractmethod
    def _predict(self, request: ForecastRequest, history: HistoryView) -> Prediction:
        """Return point forecast (and quantiles) as arrays of shape (horizon_steps, keys)."""

    def number(self, name: str) -> float:
        """The resolved numeric parameter ``name`` (``resolve_params`` checked it is a finite
        number); raises TypeError for a parameter that is not numeric."""
        value = self.params[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"forecaster {self.name!r}: parameter {name!r} is not a number: {value!r}")
        return float(value)

    @property
    def quantile_levels(self) -> tuple[float, ...]:
        """The resolved ``quantiles`` parameter (empty when the forecaster reports none)."""
        levels = self.params.get("quantiles") or ()
        return tuple(float(level) for level in levels) if isinstance(levels, tuple) else ()

    def config(self) -> dict[str, object]:
        """Static configuration for run manifests: name and resolved parameters."""
        return {"name": self.name, **self.params}

    #: ``package.module:ClassName`` when built from an import spec (set by make_forecaster)
    origin: str | None = None

    @property
    def spec(self) -> str:
        """The spec string that rebuilds this forecaster with make_forecaster (the import spec
        ``package.module:ClassName[:params]`` for a class built from one)."""
        given = {k: v for k, v in self.params.items() if v is not None and v != ()}
        head = self.origin or self.name
        return f"{head}:{format_params(given)}" if given else head

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec}>"

    def _make_request(
        self,
        signal: str,
        history: HistoryView,
        issue_time: pd.Timestamp,
        step: pd.Timedelta,
        horizon_steps: int,
    ) -> ForecastRequest:
        check_signal(signal)
        if not isinstance(history, HistoryView):
            raise TypeError(f"history must be a HistoryView, got {type(history).__name__}")
        issue = to_utc_timestamp(issue_time, "issue_time")
        if issue != history.issue_time:
            raise ForecastError(
                f"history was cut at {history.issue_time} but the forecast is issued at {issue}; "
                "build the HistoryView at the issue time"
            )
        is_integer = isinstance(horizon_steps, int | np.integer) and not isinstance(horizon_steps, bool)
        if not is_integer or horizon_steps < 1:
            raise ForecastError(f"horizon_steps must be a positive integer, got {horizon_steps!r}")
        issue_ns = timestamp_ns(issue)
        step_ns = timedelta_ns(to_step(step))
        target_ns = issue_ns + step_ns * np.arange(int(horizon_steps), dtype=np.int64)
        return ForecastRequest(
            signal=signal,
            issue_time=issue,
            issue_ns=issue_ns,
            step_ns=step_ns,
            horizon_steps=int(horizon_steps),
            keys=history.keys,
            target_ns=target_ns,
        )


class TruthTable:
    """A bound truth frame on its grid, for the oracles: NaN-free, regular, UTC."""

    __slots__ = ("signal", "start_ns", "step_ns", "values", "column_of", "std_by_key")

    def __init__(self, signal: str, truth: pd.DataFrame) -> None:
        check_signal(signal)
        if not isinstance(truth, pd.DataFrame):
            raise TypeError(f"truth for {signal!r} must be a DataFrame, got {type(truth).__name__}")
        times = index_ns(truth.index, f"truth index of {signal!r}")
        self.step_ns = regular_step_ns(times, f"truth index of {signal!r}")
        self.start_ns = int(times[0])
        try:
            self.values = np.array(truth.to_numpy(dtype=np.float64), copy=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"truth for {signal!r} must be numeric: {exc}") from exc
        missing = ~np.isfinite(self.values)
        if missing.any():
            row, col = np.argwhere(missing)[0]
            raise ValueError(
                f"truth for {signal!r} has NaN/inf (first in column {truth.columns[col]!r} at "
                f"{truth.index[row]}); fill gaps before binding it to an oracle"
            )
        self.values.flags.writeable = False
        self.signal = signal
        self.column_of = {key: i for i, key in enumerate(truth.columns)}
        self.std_by_key = self.values.std(axis=0)

    def columns_for(self, keys: tuple) -> np.ndarray:
        """Column positions of ``keys``; error naming the missing ones."""
        missing = [key for key in keys if key not in self.column_of]
        if missing:
            raise ForecastError(f"truth for {self.signal!r} has no column(s) {missing}")
        return np.array([self.column_of[key] for key in keys], dtype=np.int64)

    def means(self, request: ForecastRequest) -> np.ndarray:
        """Truth over the request's target intervals, shape (horizon_steps, keys)."""
        from forecasts.timegrid import interval_means

        columns = self.columns_for(request.keys)
        end_ns = self.start_ns + len(self.values) * self.step_ns
        last_needed = int(request.target_ns[-1]) + request.step_ns
        if int(request.target_ns[0]) < self.start_ns or last_needed > end_ns:
            def stamp(ns: int) -> pd.Timestamp:
                return pd.Timestamp(ns, unit="ns", tz="UTC")

            raise ForecastError(
                f"truth for {self.signal!r} covers [{stamp(self.start_ns)}, {stamp(end_ns)}) but the "
                f"forecast needs [{stamp(int(request.target_ns[0]))}, {stamp(last_needed)})"
            )
        return interval_means(
            self.start_ns, self.step_ns, self.values[:, columns], request.target_ns, request.step_ns
        )


class OracleForecaster(Forecaster):
    """Base of the oracles: they read the truth (by design) and ignore the history values.

    Truth is given per signal with ``bind_truth(signal, frame)`` or as ``truth={signal: frame}``.
    The frame must cover the forecast window; NaN is refused (fill gaps first).
    """

    is_oracle: ClassVar[bool] = True

    def __init__(self, truth: Mapping[str, pd.DataFrame] | None = None, **params: object) -> None:
        super().__init__(**params)
        self._truth: dict[str, TruthTable] = {}
        for signal, frame in (truth or {}).items():
            self.bind_truth(signal, frame)

    def bind_truth(self, signal: str, truth: pd.DataFrame) -> None:
        """Give the oracle the true series of ``signal`` (replaces any earlier binding)."""
        self._truth[signal] = TruthTable(signal, truth)

    def _truth_table(self, signal: str) -> TruthTable:
        table = self._truth.get(signal)
        if table is None:
            raise ForecastError(
                f"oracle forecaster '{self.name}' has no truth for signal {signal!r}; call bind_truth first"
            )
        return table
