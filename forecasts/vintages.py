"""Forecast vintages (every issued forecast, kept) and skill by lead time.

Vintage table (long format), one row per (issue time, target time, signal, key, quantile):

    issue_time   datetime64[ns, UTC]  when the forecast was issued
    target_time  datetime64[ns, UTC]  start of the target interval
    lead_h       float                hours from the issue to the END of the target interval
    signal       str                  one of SIGNALS
    key          object               site or inference class
    quantile     float                NaN for the point forecast, else the quantile level
    value        float                forecast value (signal units)

Skill (:func:`skill_by_lead`) compares each row with the truth averaged over its target interval
(the interval length is recovered from ``lead_h``), with error ``e = forecast − truth``:
``mae = mean|e|``, ``rmse = sqrt(mean e²)``, ``bias = mean e`` over point rows; for quantile rows
the pinball loss ``ρ_q(y − f_q) = max(q(y − f_q), (q − 1)(y − f_q))``, averaged per level
(``pinball_q<level>``) and over levels (``pinball``). Rows without truth (NaN, outside the truth
frame) are left out and not counted in ``n``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from forecasts.base import Forecast, check_signal
from forecasts.timegrid import (
    NS_PER_HOUR,
    index_ns,
    interval_means,
    ns_to_index,
    regular_step_ns,
    timedelta_ns,
    timestamp_ns,
    to_step,
    to_utc_timestamp,
)

VINTAGE_COLUMNS = ("issue_time", "target_time", "lead_h", "signal", "key", "quantile", "value")
SKILL_COLUMNS = ("signal", "key", "lead_h", "n", "mae", "rmse", "bias", "pinball")


class VintageStore:
    """Keeps every issued forecast; ``to_frame()`` gives the vintage table (module docstring)."""

    def __init__(self) -> None:
        self._records: list[tuple[str, int, int, np.ndarray, tuple, np.ndarray, dict[float, np.ndarray]]] = []

    def record(self, signal: str, issue_time: pd.Timestamp, forecast: Forecast) -> None:
        """Store ``forecast`` of ``signal`` issued at ``issue_time`` (arrays are copied)."""
        check_signal(signal)
        issue = to_utc_timestamp(issue_time, "issue_time")
        if forecast.issue_time is not None and to_utc_timestamp(forecast.issue_time) != issue:
            raise ValueError(f"forecast was issued at {forecast.issue_time}, not at {issue}")
        target_ns = index_ns(forecast.values.index, "forecast index")
        if forecast.step is not None:
            step_ns = timedelta_ns(to_step(forecast.step))
        else:
            step_ns = regular_step_ns(target_ns, "forecast index")
        quantiles = {
            float(level): frame.reindex(columns=forecast.values.columns).to_numpy(dtype=np.float64, copy=True)
            for level, frame in (forecast.quantiles or {}).items()
        }
        self._records.append(
            (
                signal,
                timestamp_ns(issue),
                step_ns,
                target_ns.copy(),
                tuple(forecast.values.columns),
                forecast.values.to_numpy(dtype=np.float64, copy=True),
                quantiles,
            )
        )

    def __len__(self) -> int:
        return len(self._records)

    def to_frame(self) -> pd.DataFrame:
        """The vintage table, point rows first within each forecast, then quantile rows."""
        parts: dict[str, list[np.ndarray]] = {name: [] for name in VINTAGE_COLUMNS}
        for signal, issue_ns, step_ns, target_ns, keys, values, quantiles in self._records:
            n_steps, n_keys = values.shape
            blocks = [(np.nan, values), *sorted(quantiles.items())]
            n_rows = n_steps * n_keys * len(blocks)
            targets = np.tile(np.repeat(target_ns, n_keys), len(blocks))
            parts["issue_time"].append(np.full(n_rows, issue_ns, dtype=np.int64))
            parts["target_time"].append(targets)
            parts["lead_h"].append((targets + step_ns - issue_ns) / NS_PER_HOUR)
            parts["signal"].append(np.full(n_rows, signal, dtype=object))
            key_array = np.empty(n_keys, dtype=object)
            key_array[:] = list(keys)
            parts["key"].append(np.tile(key_array, n_steps * len(blocks)))
            parts["quantile"].append(np.repeat([level for level, _ in blocks], n_steps * n_keys))
            parts["value"].append(np.concatenate([block.ravel() for _, block in blocks]))
        if not self._records:
            return _empty_vintages()
        columns = {name: np.concatenate(arrays) for name, arrays in parts.items()}
        frame = pd.DataFrame(columns)
        frame["issue_time"] = ns_to_index(columns["issue_time"])
        frame["target_time"] = ns_to_index(columns["target_time"])
        frame["quantile"] = frame["quantile"].astype(np.float64)
        return frame


def _empty_vintages() -> pd.DataFrame:
    empty_times = ns_to_index(np.empty(0, dtype=np.int64))
    return pd.DataFrame(
        {
            "issue_time": empty_times,
            "target_time": empty_times,
            "lead_h": np.empty(0),
            "signal": np.empty(0, dtype=object),
            "key": np.empty(0, dtype=object),
            "quantile": np.empty(0),
            "value": np.empty(0),
        }
    )


def pinball_loss(truth: np.ndarray, quantile_forecast: float | np.ndarray, level: float | np.ndarray) -> np.ndarray:
    """Pinball (quantile) loss ``max(q(y − f), (q − 1)(y − f))`` elementwise."""
    diff = np.asarray(truth, dtype=np.float64) - np.asarray(quantile_forecast, dtype=np.float64)
    level = np.asarray(level, dtype=np.float64)
    return np.maximum(level * diff, (level - 1.0) * diff)


def truth_at_vintages(vintages: pd.DataFrame, truth: Mapping[str, pd.DataFrame]) -> np.ndarray:
    """The truth averaged over each vintage row's target interval (NaN where unknown)."""
    _check_vintage_columns(vintages)
    out = np.full(len(vintages), np.nan)
    if not len(vintages):
        return out
    issue_ns = index_ns(pd.DatetimeIndex(vintages["issue_time"]), "issue_time")
    target_ns = index_ns(pd.DatetimeIndex(vintages["target_time"]), "target_time")
    lead_ns = np.rint(vintages["lead_h"].to_numpy(dtype=np.float64) * NS_PER_HOUR).astype(np.int64)
    step_ns = lead_ns - (target_ns - issue_ns)
    groups = pd.DataFrame({"signal": vintages["signal"].to_numpy(), "key": vintages["key"].to_numpy(),
                           "step_ns": step_ns}).groupby(["signal", "key", "step_ns"], sort=False).indices
    grids: dict[str, tuple[int, int]] = {}
    for (signal, key, step), rows in groups.items():
        frame = truth.get(signal)
        if frame is None:
            raise ValueError(f"no truth given for signal {signal!r} (truth has {sorted(truth)})")
        if key not in frame.columns:
            raise ValueError(f"truth for {signal!r} has no column {key!r}")
        if signal not in grids:
            times = index_ns(frame.index, f"truth index of {signal!r}")
            grids[signal] = (int(times[0]), regular_step_ns(times, f"truth index of {signal!r}"))
        start_ns, truth_step_ns = grids[signal]
        column = frame[key].to_numpy(dtype=np.float64)
        out[rows] = interval_means(start_ns, truth_step_ns, column, target_ns[rows], int(step))[:, 0]
    return out


def skill_by_lead(
    vintages: pd.DataFrame,
    truth: Mapping[str, pd.DataFrame],
    per_key: bool = True,
) -> pd.DataFrame:
    """Skill by lead time: columns signal, key, lead_h, n, mae, rmse, bias, pinball, pinball_q<level>.

    One row per (signal, key, lead_h); with ``per_key=False`` keys are pooled and ``key`` is
    ``"all"``. ``pinball`` is NaN where no quantiles were recorded.
    """
    _check_vintage_columns(vintages)
    observed = truth_at_vintages(vintages, truth)
    table = pd.DataFrame(
        {
            "signal": vintages["signal"].to_numpy(),
            "key": vintages["key"].to_numpy() if per_key else np.full(len(vintages), "all", dtype=object),
            "lead_h": vintages["lead_h"].to_numpy(dtype=np.float64),
            "quantile": vintages["quantile"].to_numpy(dtype=np.float64),
            "error": vintages["value"].to_numpy(dtype=np.float64) - observed,
        }
    )
    table = table[np.isfinite(table["error"].to_numpy())]
    by = ["signal", "key", "lead_h"]
    point = table[table["quantile"].isna()].copy()
    point["abs_error"] = point["error"].abs()
    point["squared_error"] = point["error"] ** 2
    grouped = point.groupby(by, sort=True)
    skill = pd.DataFrame(
        {
            "n": grouped["error"].size(),
            "mae": grouped["abs_error"].mean(),
            "rmse": np.sqrt(grouped["squared_error"].mean()),
            "bias": grouped["error"].mean(),
        }
    )
    quantile_rows = table[table["quantile"].notna()].copy()
    if len(quantile_rows):
        # error = f_q − y, so y − f_q = −error
        levels = quantile_rows["quantile"].to_numpy()
        quantile_rows["loss"] = pinball_loss(-quantile_rows["error"].to_numpy(), 0.0, levels)
        per_level = quantile_rows.groupby([*by, "quantile"], sort=True)["loss"].mean().unstack("quantile")
        per_level.columns = [f"pinball_q{level:g}" for level in per_level.columns]
        skill = skill.join(per_level.mean(axis=1).rename("pinball"), how="outer").join(per_level, how="outer")
    else:
        skill["pinball"] = np.nan
    skill["n"] = skill["n"].fillna(0).astype(np.int64)
    return skill.reset_index()[[*SKILL_COLUMNS, *[c for c in skill.columns if c.startswith("pinball_q")]]]


def _check_vintage_columns(vintages: pd.DataFrame) -> None:
    missing = [name for name in VINTAGE_COLUMNS if name not in vintages.columns]
    if missing:
        raise ValueError(f"vintage table lacks column(s) {missing}; expected {list(VINTAGE_COLUMNS)}")
