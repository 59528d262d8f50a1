"""The forecaster protocol: what a forecaster is given, what it returns, and how to write one.

A forecaster is a class with

* ``name: str`` and ``description: str`` -- a label and one line for tables and ``--help``;
* ``PARAMETERS`` -- a tuple of :class:`~forecasts.params.Param` (name, kind, default, help,
  range): the one table that parses, checks and documents its parameters
  (``my.module:MyForecaster:alpha=0.3`` or ``noisy:sigma_24h=0.2``);
* ``forecast(signal, history, issue_time, step, horizon_steps) -> Forecast``;
* ``config() -> dict`` -- name and resolved parameters, written into the run manifest.

Subclass :class:`Forecaster` and implement ``_predict(request, history) -> Prediction``: the base
class checks the request, builds the target grid, clips to the signal's range and wraps the
result. :func:`protocol_problems` checks a class named on the command line before a run starts.

Arguments and result (``H`` = ``horizon_steps``, ``N`` = columns of the signal):

* ``signal`` -- one of :data:`scenarios.signals.SIGNALS`: ``demand`` (req/s, per inference
  class), ``pv`` and ``wind`` (per-unit availability in [0, 1], per site), ``import_price`` and
  ``export_price`` (USD/MWh, per site), ``carbon`` (tCO2/MWh, per site), ``temperature`` (°C,
  per site);
* ``history`` -- a :class:`HistoryView`: a read-only copy of the rows observed by ``issue_time``
  (intervals that ended by then), shape (rows, N); nothing later is reachable;
* ``issue_time`` -- tz-aware UTC :class:`pandas.Timestamp`; ``step`` -- the target interval
  (:class:`pandas.Timedelta`, the control interval in the closed loop);
* result -- a :class:`Forecast` whose ``values`` is a (H, N) DataFrame indexed by the target
  intervals' starts ``issue_time + i * step`` (row ``i`` = the mean over
  ``[issue_time + i*step, issue_time + (i+1)*step)``), columns as in the history, in the
  signal's unit; ``quantiles`` optionally maps levels in (0, 1) to frames of the same shape.
  ``_predict`` returns a :class:`Prediction` with (H, N) arrays instead.

The seed: a forecaster with a parameter named ``seed`` receives the run's seed (common random
numbers across controllers) unless the spec sets one. Oracles (``perfect``, ``noisy``) derive from
:class:`OracleForecaster` and are given the truth by the simulator.
"""

from __future__ import annotations

import inspect

from forecasts.base import Forecast, Forecaster, ForecastRequest, HistoryView, OracleForecaster, Prediction
from forecasts.params import Param

__all__ = ["Forecast", "ForecastRequest", "Forecaster", "HistoryView", "OracleForecaster", "Param", "Prediction",
           "protocol_problems"]

#: the members every forecaster class has
FORECASTER_MEMBERS = ("forecast", "config")


def protocol_problems(cls: object) -> list[str]:
    """Why ``cls`` is not a forecaster class (empty when it is): a non-abstract class with
    callable ``forecast`` and ``config`` and a string ``name``."""
    return class_problems(cls, FORECASTER_MEMBERS)


def class_problems(cls: object, members: tuple[str, ...]) -> list[str]:
    """Why ``cls`` does not follow a protocol of callable ``members`` and a string ``name``
    (empty when it does): not a class, a missing method, no name, or abstract. Shared by the
    forecaster and the controller protocols (:mod:`optimizer.protocol`)."""
    if not inspect.isclass(cls):
        return [f"{cls!r} is not a class"]
    problems = [f"no method {member}()" for member in members if not callable(getattr(cls, member, None))]
    if not isinstance(getattr(cls, "name", None), str):
        problems.append("no string attribute 'name'")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        problems.append(f"abstract (does not implement {missing})")
    return problems
