"""The SimPy adapter of the closed loop (private: users call :func:`simulator.simulate`).

SimPy time is hours after the run start. Four kinds of process, ordered at equal times by an
explicit event priority (SimPy's own ``Timeout`` always uses one priority):

* ``PRIORITY_ARRIVAL`` -- training-job submissions and job completions, at their exact times;
* ``PRIORITY_CONTROL`` -- the controller, every control interval: it sees the plant after the
  arrivals and completions of that instant, and its set-points hold from that instant on;
* ``PRIORITY_TICK`` -- the plant tick, in phases (:mod:`simulator.tick`).

This module only schedules; the work is done by plain classes: :class:`~simulator.workload.Workload`
(submissions, starts, completions), :class:`~simulator.control_step.ControlStep` (observe, decide,
apply, log), :class:`~simulator.tick.PlantTick` (the plant's real-time rules) and
:class:`~simulator.records.Recorder` (what is kept). The exogenous processes (traffic, weather,
prices, carbon, temperature) are realised before the run from their own streams
(:mod:`simulator.processes`) and read from preallocated arrays, so the plant loop uses numpy over
sites and no pandas.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator

import numpy as np
import pandas as pd
import simpy
from simpy.core import URGENT
from simpy.events import Event, EventPriority

from optimizer.control import Controller, Observation, Setpoints
from scenarios.arrays import Fleet
from scenarios.schema import Scenario
from scenarios.timebase import RunClock
from simulator.control_step import ControlStep
from simulator.plant import GridConnection, Plant
from simulator.processes import RealisedSignals, Submission
from simulator.records import PlantInputs, RawRun, Recorder
from simulator.tick import PlantTick
from simulator.workload import Workload

PRIORITY_ARRIVAL, PRIORITY_CONTROL, PRIORITY_TICK = EventPriority(0), EventPriority(1), EventPriority(2)


class _At(Event):
    """A timeout with an explicit priority."""

    def __init__(self, env: simpy.Environment, delay: float, priority: EventPriority) -> None:
        self.env = env
        self.callbacks = []
        self._value = None
        self._ok = True
        env.schedule(self, priority, max(delay, 0.0))


def plant_inputs(fleet: Fleet, realised: RealisedSignals, n_ticks: int, grid: GridConnection,
                 carbon_price_usd_per_tco2: float = 0.0) -> PlantInputs:
    """The realised exogenous inputs of the run's ``n_ticks`` ticks as arrays."""
    first = realised.run_offset
    frames = realised.frames

    def run_rows(signal: str, columns: tuple[str, ...]) -> np.ndarray:
        return frames[signal][list(columns)].to_numpy(dtype=float)[first:first + n_ticks]

    sites = fleet.site_names
    pue = fleet.pue(run_rows("temperature", sites).T).T.copy()
    export_price = run_rows("export_price", sites)
    import_price, carbon = run_rows("import_price", sites), run_rows("carbon", sites)
    return PlantInputs(
        demand_req_per_s=run_rows("demand", fleet.class_names) if fleet.n_classes else np.zeros((n_ticks, 0)),
        renewable_mw=(run_rows("pv", sites) * fleet.pv_capacity_mw + run_rows("wind", sites) * fleet.wind_capacity_mw),
        import_price_usd_per_mwh=import_price,
        export_price_usd_per_mwh=export_price,
        carbon_t_per_mwh=carbon,
        pue=pue,
        base_load_mw=run_rows("base_load", sites),
        export_cap_mw=grid.export_cap_mw(export_price),  # exporting at a negative price is never forced
        it_capacity_mw=fleet.power_capacity_mw / pue,
        import_cost_usd_per_mwh=import_price + carbon_price_usd_per_tco2 * carbon,
    )


class ClosedLoop:
    """One closed-loop run: the SimPy processes that drive the workload, the controller and the plant.

    ``stepped=True``: the controller is not asked; a driver calls :meth:`advance` for each step's
    observation and :meth:`act` with its set-points (the Gymnasium environment,
    :mod:`simulator.gym`).
    """

    def __init__(
        self, scenario: Scenario, fleet: Fleet, controller: Controller, realised: RealisedSignals,
        submissions: list[Submission], run_hours: float, on_control_step: Callable[[], None] | None = None,
        stepped: bool = False,
    ) -> None:
        run = scenario.run
        self.clock = RunClock.of(run.plant_tick_minutes, run.control_interval_minutes, run_hours)
        self.plant = Plant.of(fleet)
        self.inputs = plant_inputs(fleet, realised, self.clock.n_ticks, self.plant.grid,
                                   scenario.carbon.price_usd_per_tco2)
        run_start = pd.Timestamp(run.start)
        self.recorder = Recorder(fleet, run_start, self.clock, self.inputs)
        self.workload = Workload(self.plant.datacenter, self.recorder)
        self.control = ControlStep(scenario, fleet, controller, self.clock, run_start,
                                   realised.at_step(self.clock.interval_h), self.plant, self.workload, self.recorder,
                                   self.inputs)
        max_phases = 2 * fleet.n_sites + 2 * max(len(submissions), 1) + 4
        self.tick = PlantTick(self.clock, self.inputs, self.plant, self.workload, self.recorder, max_phases)
        self.submissions = submissions
        self.on_control_step = on_control_step
        self.tick_cpu_s = 0.0  # CPU time (s) spent in the plant ticks: routing, real-time rules, records

        self.env = simpy.Environment()
        # the tick that starts a control interval waits for that interval's set-points (robust to
        # float rounding of event times)
        self._decided = [self.env.event() for _ in range(self.clock.n_control)]
        # stepped (see :meth:`advance`): the set-points come from outside, one control step at a time
        self.stepped = stepped
        self._observed = [self.env.event() for _ in range(self.clock.n_control)]
        self._actions = [self.env.event() for _ in range(self.clock.n_control)]
        self.observation: Observation | None = None  # the pending step's (stepped runs)
        self.env.process(self._submission_process())
        self.env.process(self._controller_process())
        self.env.process(self._tick_process())
        # the run's end, scheduled as ``env.run(until=run_hours)`` would (urgent, after the processes'
        # start): events at exactly the end are not processed, in a plain or a stepped run alike
        self._end = Event(self.env)
        self._end._ok, self._end._value = True, None
        self.env.schedule(self._end, URGENT, self.clock.run_hours)
        self._step = 0

    @property
    def control_s(self) -> float:
        """Wall time spent in control steps so far (s)."""
        return self.control.wall_s

    def run(self) -> RawRun:
        """Run to the end and return the records."""
        self.env.run(until=self._end)
        return self.finish()

    def finish(self) -> RawRun:
        """The records of a run that reached its end."""
        return self.recorder.raw_run(self.workload.finish(self.clock.run_hours))

    # -- a stepped run: a driver (the Gymnasium environment) supplies each step's set-points ------

    def advance(self) -> Observation | None:
        """Run until the next control step needs set-points and return its observation, or run to
        the end and return None. Only for ``stepped`` loops; call :meth:`act` in between.

        The same processes and events as :meth:`run` plus two events per step (the observation
        and the set-points, at the step's time and the controller's priority): no other event is
        due at that time and priority then, so the plant sees the same sequence as in a plain run.
        """
        if not self.stepped:
            raise RuntimeError("advance() is for stepped loops")
        if self._step < self.clock.n_control:
            self.env.run(until=self._observed[self._step])
            return self.observation
        if self._end.callbacks is not None:  # not yet processed
            self.env.run(until=self._end)
        return None

    def act(self, setpoints: Setpoints) -> None:
        """The set-points of the pending step (after :meth:`advance` returned its observation)."""
        if self.observation is None:
            raise RuntimeError("no control step is waiting for set-points")
        self.observation = None
        self._actions[self._step].succeed(setpoints)
        self._step += 1

    def _submission_process(self) -> Generator[Event, object, None]:
        env = self.env
        for submission in self.submissions:
            delay = submission.submitted_h - env.now
            if delay > 0:
                yield _At(env, delay, PRIORITY_ARRIVAL)
            self.workload.submit(submission)

    def _completion_process(self, name: str, end_h: float) -> Generator[Event, object, None]:
        yield _At(self.env, end_h - self.env.now, PRIORITY_ARRIVAL)
        self.workload.complete(name)

    def _controller_process(self) -> Generator[Event, object, None]:
        n_control, interval_h = self.clock.n_control, self.clock.interval_h
        for step in range(n_control):
            if self.stepped:
                self.observation = self.control.begin(step)
                self._observed[step].succeed()
                setpoints = yield self._actions[step]
                started = self.control.conclude(step, setpoints, 0.0)  # type: ignore[arg-type]  # act() sends Setpoints
            else:
                started = self.control.run(step)
            for name, end_h in started:
                self.env.process(self._completion_process(name, end_h))
            self._decided[step].succeed()
            if self.on_control_step is not None:
                self.on_control_step()
            if step + 1 < n_control:
                yield _At(self.env, (step + 1) * interval_h - self.env.now, PRIORITY_CONTROL)

    def _tick_process(self) -> Generator[Event, object, None]:
        """Ticks and their phases in order. The process hands control back to SimPy only when
        another event is due by the end of the phase just closed (the next control step, a job
        completion or submission, the run's end): events at equal times then run first, by their
        priority, as if every phase had been an event. Between such events the ticks run back to
        back, without a scheduler round per tick."""
        env, tick, per_control = self.env, self.tick, self.clock.ticks_per_control
        began = time.thread_time()  # CPU time of the plant alone, between the process's resumes and yields
        for i in range(self.clock.n_ticks):
            if i % per_control == 0 and not self._decided[i // per_control].triggered:
                self.tick_cpu_s += time.thread_time() - began
                yield self._decided[i // per_control]
                began = time.thread_time()
            state = tick.begin(i)
            while True:
                last = tick.phase(state)
                end_h = tick.phase_end_h(state, last)
                if env.peek() <= end_h:
                    self.tick_cpu_s += time.thread_time() - began
                    yield _At(env, end_h - env.now, PRIORITY_TICK)
                    began = time.thread_time()
                if last:
                    break
                tick.follow_soc_limits(state)
        self.tick_cpu_s += time.thread_time() - began
