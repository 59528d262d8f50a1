"""The controller protocol (SPEC §5): an :class:`Observation` in, :class:`Setpoints` for the next
control interval out.

A controller is a plain class (it never imports simpy and never sees the future) with

* ``name: str`` -- a short label for tables and logs;
* ``reset(scenario, fleet) -> None`` -- called once before a run with the validated
  :class:`~scenarios.schema.Scenario` and its static arrays (:class:`~scenarios.arrays.Fleet`);
* ``decide(observation) -> Setpoints`` -- called at the start of every control interval;
* ``config() -> dict`` -- its static settings (JSON-serialisable), written into the run manifest.

Subclass :class:`Controller` (it provides ``reset`` and ``config``), or write any class with these
four members: :func:`protocol_problems` checks a class before a run starts. Index conventions:
``S`` sites in the scenario's order (``fleet.site_names``), ``K`` inference classes
(``fleet.class_names``); site indices are 0-based positions in ``fleet.site_names``.

The plant applies the set-points with its real-time rules (:mod:`simulator.plant`): a job start
the plant cannot accept (not queued, not released, an ineligible site, not enough free GPUs) is
ignored, recorded as a ``start_refused`` event and counted (``starts_requested`` vs
``starts_applied`` in the solver log); routing shares are clipped to [0, 1], routes beyond a
class's latency limit removed and rows summing above 1 scaled down; battery set-points are
clipped to the power limits and netted to one direction, then stopped at the SOC bounds;
a generator set-point is 0 (off) or clipped to [minimum load, capacity]; the site balance is
closed by the grid (and, past the import limit, by shedding inference, then unmet load). A
controller that raises one of the failures of :data:`simulator.control_step.CONTROLLER_FAILURES`
is replaced for that step by ``greedy``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecasts.protocol import class_problems
from scenarios.arrays import Fleet
from scenarios.schema import Scenario, TrainingJob

if TYPE_CHECKING:
    from forecasts import HistoryView
    from optimizer.plan import Plan
    from optimizer.window import WindowInputs


@dataclass(frozen=True)
class RunningJob:
    """A training job the plant is running: it continues at its site until it finishes.

    ``name`` the job's name; ``site`` its site index (0..S-1); ``gpus`` GPUs it holds; ``power_mw``
    its IT power (MW, before PUE); ``remaining_h`` hours until it completes; ``value_usd`` the
    reward paid on completion (USD).
    """

    name: str
    site: int
    gpus: float
    power_mw: float
    remaining_h: float
    value_usd: float


@dataclass(frozen=True)
class Observation:
    """What a real operator knows at the start of a control interval.

    Fields (``S`` sites, ``K`` inference classes):

    * ``time`` -- the interval's start, a tz-aware UTC :class:`pandas.Timestamp`;
    * ``elapsed_h`` -- hours since the run's start (0 at the first step);
    * ``run_hours`` -- the run's length (h); ``interval_h`` -- the control interval (h);
    * ``soc_mwh`` -- (S,) battery state of charge (MWh; 0 where a site has no battery);
    * ``generator_on`` -- (S,) bool, the on-site generator is committed (running);
    * ``running`` -- the jobs running now (:class:`RunningJob`);
    * ``queued`` -- jobs submitted and not started (:class:`~scenarios.schema.TrainingJob`:
      ``gpus``, ``power_mw`` (IT MW), ``duration_h``, ``release_h`` and ``deadline_h`` in hours
      after the run's start, ``value_usd``, ``sites`` eligible site names or None for all);
    * ``cumulative_emissions_tco2`` -- emissions of the run so far (tCO2: grid imports x carbon
      intensity + generator output x its emission factor);
    * ``history`` -- the realised exogenous signals up to ``time`` at the control interval, one
      :class:`~forecasts.HistoryView` per signal of :data:`scenarios.signals.SIGNALS`: rows of the
      intervals that ended by ``time`` (history before the run included), columns per site
      (``pv``, ``wind`` per-unit of capacity; ``import_price``, ``export_price`` USD/MWh;
      ``carbon`` tCO2/MWh; ``temperature`` °C) or per class (``demand`` req/s).
    """

    time: pd.Timestamp
    elapsed_h: float  # since the run start
    run_hours: float
    interval_h: float
    soc_mwh: np.ndarray  # (S,)
    generator_on: np.ndarray  # (S,) bool
    running: tuple[RunningJob, ...]
    queued: tuple[TrainingJob, ...]  # submitted, not started; times in hours after the run start
    cumulative_emissions_tco2: float
    history: Mapping[str, HistoryView]  # realised signals so far, at control resolution (SIGNALS)


@dataclass
class Setpoints:
    """Decisions for the next control interval (``S`` sites, ``K`` inference classes).

    * ``job_starts`` -- ``(job name, site index)`` pairs of queued jobs to start now;
    * ``routing_shares`` -- (K, S) share of each class's demand sent to each site, in [0, 1],
      each row summing to at most 1 (the rest is not served: its penalty is paid);
    * ``charge_mw`` / ``discharge_mw`` -- (S,) battery power set-points (MW, >= 0, at the grid side
      of the battery), held for the interval;
    * ``generator_mw`` -- (S,) generator output set-point (MW, >= 0; 0 = off);
    * ``plan`` -- optionally the full plan behind the decision (diagnostics, kept in the result);
    * ``log`` -- optionally solver diagnostics for the solver log (``status``, ``gap``,
      ``wall_s``, ``objective_benefit_usd``, ``fallback``, ...);
    * ``import_mw`` -- optionally (S,) the grid import set-point (MW, >= 0): the plant follows it
      where importing pays (a negative realised import price net of carbon), importing instead of
      using (and so curtailing) renewables; None, or elsewhere, the plant's real-time rules decide
      the import (renewables first);
    * ``window`` -- optionally the window ``plan`` was solved over (its times, forecasts and
      loads): with it the run keeps the plan's first hours (:mod:`simulator.controller_record`).

    The loop checks every field's type and shape before the plant applies it
    (:mod:`simulator.setpoint_check`; a wrong one stops the run, naming the field). NaN is read as
    0 and +inf as the field's limit (-inf as 0), each field so repaired recorded once per run as a
    ``setpoint_repaired`` event.
    """

    job_starts: tuple[tuple[str, int], ...]  # (job name, site index) to start now
    routing_shares: np.ndarray  # (K, S) share of each class's demand sent to each site; row sums <= 1
    charge_mw: np.ndarray
    discharge_mw: np.ndarray
    generator_mw: np.ndarray
    plan: Plan | None = None
    log: dict[str, object] = field(default_factory=dict)
    import_mw: np.ndarray | None = None
    window: WindowInputs | None = None


class Controller(ABC):
    """Observation in, set-points out (see the module docstring for the protocol)."""

    name: str = "controller"

    def reset(self, scenario: Scenario, fleet: Fleet) -> None:
        """Called once before a run."""
        self.scenario, self.fleet = scenario, fleet

    @abstractmethod
    def decide(self, observation: Observation) -> Setpoints:
        """Set-points for the interval starting at ``observation.time``."""

    def config(self) -> dict[str, object]:
        """Static settings for the run manifest (JSON-serialisable values)."""
        return {"name": self.name}


#: the members every controller class has (the protocol)
CONTROLLER_MEMBERS = ("reset", "decide", "config")


def protocol_problems(cls: object) -> list[str]:
    """Why ``cls`` is not a controller class (empty when it is).

    A controller class is a class with callable ``reset``, ``decide`` and ``config`` members and a
    string ``name`` (a subclass of :class:`Controller` with ``decide`` implemented has them all);
    it must not be abstract.
    """
    return class_problems(cls, CONTROLLER_MEMBERS)
