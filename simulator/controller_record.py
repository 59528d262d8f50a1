"""The controller's record of a run: the forecasts it was given, the plans it made, the truth.

Three tidy frames, saved with the result (``vintages.parquet``, ``planned.parquet``,
``signals.parquet``) so that forecast against realised, planned against realised and forecast
skill by lead time (:func:`forecasts.vintages.skill_by_lead`) can be computed from any saved run:

* ``vintages`` -- every forecast issued during the run, in the vintage table of
  :mod:`forecasts.vintages` (one row per issue time, target time, signal, key and quantile;
  ``quantile`` NaN for the point forecast). Recorded by :class:`ForecastRecorder`, which wraps the
  controller's forecaster for the run. Values are stored as float32 (7 significant digits) to
  keep the file small. The export price of a site with a contractual export price is recorded
  as forecast; the MPC replaces it by the contract fraction of the import-price forecast.
* ``planned`` -- the first :data:`PLAN_HOURS` hours of every plan the controller returned
  (:func:`planned_frame`): one row per (issue time, plan step, site) with the decisions (MW;
  SOC in MWh at the step's end), the forecast inputs the plan used, and the plan's expected
  import cost, export revenue and emissions of that step. A plan reused by the fallback (the
  previous plan shifted) is kept once, at the time it was issued. The plan's expected benefit
  over its whole window is ``objective_benefit_usd`` in the solver log.
* ``signals`` -- the realised exogenous signals at the control interval from the run's start to
  its end plus one horizon (one row per time, signal and key): the truth the vintages are
  scored against.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecasts import Forecast, Forecaster
from forecasts.vintages import VINTAGE_COLUMNS, VintageStore
from simulator.records import PlanRecord

#: hours of every plan kept in ``planned`` (from the plan's issue time)
PLAN_HOURS = 6.0
SIGNAL_COLUMNS = ("time", "signal", "key", "value", "unit")
#: the unit of ``value`` per signal in the ``vintages`` and ``signals`` frames (the scenario's
#: units; the plots show carbon intensity in gCO2/kWh = 1000 x tCO2/MWh)
SIGNAL_UNITS = {"carbon": "tCO2/MWh", "import_price": "USD/MWh", "export_price": "USD/MWh",
                "pv": "fraction of capacity", "wind": "fraction of capacity", "demand": "requests/s",
                "temperature": "degC", "base_load": "MW"}


def with_units(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (with a ``signal`` column) plus a last column ``unit`` (:data:`SIGNAL_UNITS`;
    ``""`` for a signal not listed), categorical so that it costs one byte a row."""
    units = frame["signal"].map(SIGNAL_UNITS).fillna("").astype(str)
    return frame.assign(unit=pd.Categorical(units))


class ForecastRecorder:
    """Records every forecast a forecaster issues, for the vintage table of :mod:`forecasts.vintages`.

    Use as a context manager around the run: it shadows the instance's ``forecast`` method with
    one that keeps a reference to each result (frames a forecaster builds anew for every call;
    nothing is copied in the loop) and returns it unchanged, and restores the forecaster on exit.
    :meth:`frame` builds the table once, at the end.
    """

    def __init__(self, forecaster: Forecaster | None) -> None:
        self.forecaster = forecaster
        self.forecasts: list[tuple[str, pd.Timestamp, Forecast]] = []

    def __enter__(self) -> ForecastRecorder:
        forecaster = self.forecaster
        if forecaster is not None:
            inner: Callable[..., Forecast] = forecaster.forecast
            kept = self.forecasts

            def forecast(signal: str, history: Any, issue_time: pd.Timestamp, step: pd.Timedelta,
                         horizon_steps: int) -> Forecast:
                result = inner(signal, history, issue_time, step, horizon_steps)
                kept.append((signal, issue_time, result))
                return result

            forecaster.forecast = forecast  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.forecaster is not None and "forecast" in vars(self.forecaster):
            del self.forecaster.forecast

    def __len__(self) -> int:
        return len(self.forecasts)

    def frame(self) -> pd.DataFrame:
        """The vintage table (columns of :data:`forecasts.vintages.VINTAGE_COLUMNS` and ``unit``, rows
        as :meth:`forecasts.vintages.VintageStore.to_frame` orders them; values as float32)."""
        parts: dict[str, list[np.ndarray]] = {name: [] for name in VINTAGE_COLUMNS}
        for signal, issue_time, forecast in self.forecasts:
            values = forecast.values
            n_steps, n_keys = values.shape
            target_ns = values.index.asi8 if isinstance(values.index, pd.DatetimeIndex) else np.zeros(0, np.int64)
            step_ns = (pd.Timedelta(forecast.step).value if forecast.step is not None
                       else int(np.diff(target_ns[:2])[0]) if n_steps > 1 else 0)
            blocks = [(np.nan, values.to_numpy(dtype=np.float32))]
            for level, frame in sorted((forecast.quantiles or {}).items()):
                blocks.append((float(level), frame.to_numpy(dtype=np.float32)))
            n_rows = n_steps * n_keys * len(blocks)
            issue_ns = pd.Timestamp(issue_time).value
            targets = np.tile(np.repeat(target_ns, n_keys), len(blocks))
            parts["issue_time"].append(np.full(n_rows, issue_ns, dtype=np.int64))
            parts["target_time"].append(targets)
            parts["lead_h"].append((targets + step_ns - issue_ns) / 3.6e12)
            parts["signal"].append(np.full(n_rows, signal, dtype=object))
            keys = np.asarray([str(k) for k in values.columns], dtype=object)
            parts["key"].append(np.tile(keys, n_steps * len(blocks)))
            parts["quantile"].append(np.repeat([level for level, _ in blocks], n_steps * n_keys))
            parts["value"].append(np.concatenate([block.ravel() for _, block in blocks]))
        if not self.forecasts:
            table = VintageStore().to_frame()
            table["value"] = table["value"].astype(np.float32)
            return with_units(table)
        columns = {name: np.concatenate(arrays) for name, arrays in parts.items()}
        table = pd.DataFrame(columns)
        for name in ("issue_time", "target_time"):
            table[name] = pd.to_datetime(columns[name], utc=True).astype("datetime64[ns, UTC]")
        table["quantile"] = table["quantile"].astype(np.float64)
        table["signal"] = table["signal"].astype(str)
        table["key"] = table["key"].astype(str)
        return with_units(table)


PLANNED_COLUMNS = (
    "issue_time", "time", "step_h", "lead_h", "site", "it_load_mw", "facility_load_mw", "base_load_mw",
    "renewable_available_mw", "renewable_used_mw", "import_mw", "export_mw", "charge_mw", "discharge_mw",
    "soc_mwh", "generator_mw", "served_req_per_s", "import_price_usd_per_mwh", "export_price_usd_per_mwh",
    "carbon_t_per_mwh", "expected_import_cost_usd", "expected_export_revenue_usd", "expected_emissions_t",
)


def planned_frame(plans: Sequence[PlanRecord], hours: float = PLAN_HOURS) -> pd.DataFrame:
    """The first ``hours`` of every plan (module docstring); an empty frame when no plan carried
    its window (heuristic controllers make no plans)."""
    parts: list[dict[str, np.ndarray]] = []
    seen: set[int] = set()
    for record in plans:
        plan, w = record.plan, record.window
        if w is None or id(plan) in seen:
            continue
        seen.add(id(plan))
        parts.append(_one_plan(plan, w, hours))
    if not parts:
        empty = pd.DataFrame({name: pd.Series(dtype=float) for name in PLANNED_COLUMNS})
        for name in ("issue_time", "time"):
            empty[name] = pd.Series(dtype="datetime64[ns, UTC]")
        empty["site"] = empty["site"].astype(str)
        return empty
    out = pd.DataFrame({name: np.concatenate([part[name] for part in parts]) for name in PLANNED_COLUMNS})
    for name in ("issue_time", "time"):
        out[name] = pd.to_datetime(out[name], utc=True).astype("datetime64[ns, UTC]")
    out["site"] = out["site"].astype(str)
    for name in PLANNED_COLUMNS[5:]:  # 7 significant digits are plenty for plotting and comparing
        out[name] = out[name].astype(np.float32)
    return out


def _one_plan(plan: Any, w: Any, hours: float) -> dict[str, np.ndarray]:
    start_h = w.step_offset * w.step_hours
    keep = np.flatnonzero(start_h < hours - 1e-9)
    if not len(keep):
        keep = np.arange(min(1, w.n_steps))
    S, n = w.fleet.n_sites, len(keep)
    dt = w.dt[keep]
    emission_factor = w.fleet.generator_emission_t_per_mwh[:, None]
    it_load = plan.it_load_mw(w)
    columns = {
        "it_load_mw": it_load, "facility_load_mw": w.pue * it_load, "base_load_mw": w.base_load,
        "renewable_available_mw": w.pv_available_mw + w.wind_available_mw,
        "renewable_used_mw": plan.renewable_used_mw, "import_mw": plan.import_mw, "export_mw": plan.export_mw,
        "charge_mw": plan.charge_mw, "discharge_mw": plan.discharge_mw, "soc_mwh": plan.soc_mwh,
        "generator_mw": plan.generator_mw, "served_req_per_s": plan.served_req_per_s.sum(axis=0),
        "import_price_usd_per_mwh": w.import_price_usd_per_mwh,
        "export_price_usd_per_mwh": w.export_price_usd_per_mwh, "carbon_t_per_mwh": w.carbon_t_per_mwh,
    }
    columns = {name: np.asarray(values, dtype=float)[:, keep] for name, values in columns.items()}
    columns["expected_import_cost_usd"] = columns["import_price_usd_per_mwh"] * columns["import_mw"] * dt
    columns["expected_export_revenue_usd"] = columns["export_price_usd_per_mwh"] * columns["export_mw"] * dt
    columns["expected_emissions_t"] = (columns["carbon_t_per_mwh"] * columns["import_mw"]
                                       + emission_factor * columns["generator_mw"]) * dt
    start_ns = pd.Timestamp(w.start).value
    times_ns = start_ns + np.rint(start_h[keep] * 3.6e12).astype(np.int64)
    out = {
        "issue_time": np.full(n * S, start_ns, dtype=np.int64),
        "time": np.tile(times_ns, S),
        "step_h": np.tile(dt, S),
        "lead_h": np.tile(start_h[keep] + dt, S),
        "site": np.repeat(np.array(w.fleet.site_names, dtype=object), n),
    }
    out.update({name: values.reshape(S * n) for name, values in columns.items()})
    return out


def signals_frame(control_signals: Mapping[str, pd.DataFrame], start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The realised signals at the control interval in ``[start, end)``, long: time, signal, key,
    value and its unit (:data:`SIGNAL_UNITS`)."""
    parts = []
    for signal, frame in control_signals.items():
        window = frame.loc[(frame.index >= start) & (frame.index < end)]
        if not len(window.columns):
            continue
        long = window.rename_axis(index="time", columns="key").stack().rename("value").reset_index()
        long.insert(1, "signal", signal)
        parts.append(long)
    if not parts:
        return with_units(pd.DataFrame({"time": pd.Series(dtype="datetime64[ns, UTC]"),
                                        "signal": pd.Series(dtype=str), "key": pd.Series(dtype=str),
                                        "value": pd.Series(dtype=float)}))
    out = pd.concat(parts, ignore_index=True)[list(SIGNAL_COLUMNS[:-1])]
    out["time"] = pd.DatetimeIndex(out["time"]).tz_convert("UTC").astype("datetime64[ns, UTC]")
    out["signal"] = out["signal"].astype(str)
    out["key"] = out["key"].astype(str)
    out["value"] = out["value"].astype(float)
    return with_units(out)


def truth_frames(signals: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The ``signals`` frame back as ``{signal: frame (time x key)}``, the truth of
    :func:`forecasts.vintages.skill_by_lead`."""
    return {signal: group.pivot(index="time", columns="key", values="value")
            for signal, group in signals.groupby("signal", sort=False)}
