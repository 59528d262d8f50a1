"""A Gymnasium environment over the closed loop: :class:`FleetEnv`, registered as ``aidc/Fleet-v0``.

    import gymnasium as gym
    env = gym.make("simulator.gym:aidc/Fleet-v0", scenario="paper-day")  # imports this module first
    observation, info = env.reset(seed=1)          # seed 1: the traffic, weather, prices and jobs of
    observation, reward, terminated, truncated, info = env.step(env.action_space.sample())

It runs the same SimPy plant as :func:`simulator.simulate` (:class:`simulator._engine.ClosedLoop`,
driven one control step at a time) on the same common random numbers: ``reset(seed=s)`` realises
exactly the signals and job submissions of ``aidc run --seed s``, so an agent and the built-in
controllers are compared on the same draws. ``reset()`` without a seed draws the run's seed from
the environment's generator. One step is one control interval. The episode ends
(``terminated``) at the run's end; the last step's ``info["kpis"]`` holds the run's KPIs,
computed by the same accounting as ``aidc run``, and ``env.unwrapped.result`` the whole
:class:`~simulator.results.RunResult`.

Shapes: ``S`` sites, ``K`` inference classes, ``B`` sites with a battery, ``G`` sites with a
generator, ``J`` queue slots (``max_queue``), ``L`` history steps, ``H`` forecast steps, ``N`` the
columns of a signal (``K`` for ``demand``, ``S`` otherwise). Sites and classes in the scenario's
order.

Observation (a :class:`gymnasium.spaces.Dict`, float32 boxes):

* ``time`` (3,): sin and cos of the UTC hour of day, and the elapsed fraction of the run;
* ``soc_fraction`` (S,): battery state of charge / energy capacity (0 without a battery);
* ``generator_on`` (S,) MultiBinary: the generator is committed;
* ``training_gpus_busy_fraction`` (S,): GPUs held by running training jobs / the site's GPUs;
* ``emissions_tco2`` (1,): emissions of the run so far (tCO2);
* ``history`` Dict of (L, N) per signal: the last ``L`` realised control intervals (the rows
  before the run's history pad with the earliest row), in the signal's unit (req/s, per-unit,
  USD/MWh, tCO2/MWh, °C; :mod:`scenarios.signals`);
* ``forecast`` Dict of (H, N) per signal: the forecaster's point forecast for the next ``H``
  intervals (``forecast``, default ``noisy`` seeded by the run's seed: the MPC's forecasts on the
  same seed);
* ``queue`` (J, 6): the first ``J`` queued jobs (submission order): GPUs, IT power (MW), duration
  (h), hours until release (negative once released), hours until the deadline, value (USD);
  ``queue_mask`` (J,) MultiBinary: the slot holds a job; ``queue_eligible`` (J, S) MultiBinary:
  the job may run at the site.

Boxes without a physical bound use ±1e9 (gymnasium's checker warns on infinite bounds).

Action (a :class:`gymnasium.spaces.Dict`, float64 set-points in their physical units):

* ``job_starts`` (J,) MultiDiscrete(S + 1): 0 = leave the slot's job queued, ``s + 1`` = start it
  at site ``s`` now;
* ``routing_shares`` (K, S) in [0, 1]: share of each class's demand sent to each site;
* ``charge_mw``, ``discharge_mw`` (B,) in [0, the battery's power]: battery set-points;
* ``generator_mw`` (G,) in [0, the generator's capacity]: output set-point (0 = off).

A key is left out when its shape would be empty (no battery, no generator, no class). Invalid
actions are repaired by the plant's real-time rules, exactly as for any controller (see
:mod:`optimizer.protocol`): starts that do not fit are refused, shares clipped and scaled to a row
sum <= 1, set-points clipped to their limits, NaN read as 0 and inf as the limit;
``info["repairs"]`` reports what was changed (finite numbers, against the repaired request) and
``nonfinite_values``, the number of NaN/inf values in the action. Every key of the action space
is required; a missing key, a wrong shape or a non-numeric value raises ValueError naming the key.

Reward: the interval's benefit (USD), the parts of the run's benefit
(:mod:`simulator.accounting`) that fall in the interval: inference value - unserved penalty -
import cost + export revenue - fuel and no-load cost - battery degradation - carbon price x
emissions + rewards of the jobs completed in it; the last step adds the run's terminal parts
(rewards of jobs running at the end less their tail energy, terminal battery value, budget
penalty). The rewards sum to the run's ``benefit_usd``; ``info["reward_parts"]`` holds the parts.

:meth:`FleetEnv.encode` turns a controller's :class:`~optimizer.protocol.Setpoints` into an action,
so any :class:`~optimizer.protocol.Controller` can act through the environment (the tests replay
the joint MPC this way and reproduce its KPIs exactly); ``env.unwrapped.observation`` is the
step's :class:`~optimizer.protocol.Observation`.

gymnasium is an optional dependency (``pip install 'aidc[gym]'``); ``import simulator`` does not
need it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from forecasts import Forecaster, make_forecaster
from optimizer.control import forecast_signals
from optimizer.model import SECONDS_PER_HOUR
from optimizer.protocol import Controller, Observation, Setpoints
from scenarios.schema import Scenario
from scenarios.signals import SIGNAL_TABLE
from simulator._engine import ClosedLoop
from simulator.plant import EPS
from simulator.processes import NoiseParameters
from simulator.results import RunResult
from simulator.run import PreparedRun, finish_run, prepare_run
from simulator.setpoint_check import check_setpoints

ENV_ID = "aidc/Fleet-v0"
#: the bound of boxes without a physical one (gymnasium's checker warns on infinite bounds)
UNBOUNDED = 1e9
QUEUE_FEATURES = ("gpus", "power_mw", "duration_h", "release_in_h", "deadline_in_h", "value_usd")


class AgentPlaceholder(Controller):
    """Stands for the agent in the run's manifest and solver log (its set-points come from ``step``)."""

    name = "gym-agent"

    def __init__(self, forecaster: Forecaster) -> None:
        self.forecaster = forecaster

    def decide(self, observation: Observation) -> Setpoints:
        raise RuntimeError("the environment's agent decides through FleetEnv.step")

    def config(self) -> dict[str, object]:
        return {"name": self.name, "forecast": self.forecaster.spec}


def _box(low: float | np.ndarray, high: float | np.ndarray, shape: tuple[int, ...],
         dtype: type = np.float32) -> spaces.Box:
    return spaces.Box(low=np.broadcast_to(np.asarray(low, dtype=dtype), shape).copy(),
                      high=np.broadcast_to(np.asarray(high, dtype=dtype), shape).copy(), shape=shape, dtype=dtype)


class FleetEnv(gym.Env):
    """The closed loop of a scenario as a Gymnasium environment (see the module docstring).

    ``scenario``: a built-in name, a TOML file or a :class:`~scenarios.schema.Scenario`; ``days``
    the run length (default the scenario's); ``forecast`` the forecaster spec of the observation's
    forecasts; ``history_steps`` (L) and ``forecast_steps`` (H; default the scenario's MPC
    horizon) in control intervals; ``max_queue`` (J) the job slots; ``noise`` ``"on"``/``"off"``
    (default the scenario's). Raises ValueError (ScenarioError, ForecastSpecError) for bad input.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 -- gymnasium's class attribute

    def __init__(self, scenario: str | Scenario = "paper-day", *, days: float | None = None,
                 forecast: str = "noisy", history_steps: int = 24, forecast_steps: int | None = None,
                 max_queue: int = 8, noise: str | None = None) -> None:
        from scenarios import load_scenario
        from scenarios.arrays import build_fleet
        from scenarios.io import with_days
        from scenarios.timebase import whole_steps

        base = load_scenario(scenario) if isinstance(scenario, str) else scenario
        self.scenario = with_days(base, days)
        self.days = days
        self.forecast_spec = forecast
        make_forecaster(forecast, 0)  # a bad spec fails here
        if history_steps < 1 or max_queue < 1:
            raise ValueError("history_steps and max_queue must be 1 or more")
        run = self.scenario.run
        interval_h = run.control_interval_minutes / 60.0
        self.history_steps = int(history_steps)
        self.forecast_steps = int(forecast_steps or whole_steps(run.horizon_hours, interval_h))
        self.max_queue = int(max_queue)
        self.noise = NoiseParameters.for_scenario(self.scenario, noise)
        fleet = self.fleet = build_fleet(self.scenario)
        S, K, J = fleet.n_sites, fleet.n_classes, self.max_queue
        self.battery_sites = np.flatnonzero(fleet.battery_energy_mwh > 0)
        self.generator_sites = np.flatnonzero(fleet.has_generator)
        self.signal_columns = {signal.name: fleet.class_names if signal.per == "class" else fleet.site_names
                               for signal in SIGNAL_TABLE}
        self.signal_columns = {name: columns for name, columns in self.signal_columns.items() if columns}

        def bounds(name: str) -> tuple[float, float]:
            signal = next(s for s in SIGNAL_TABLE if s.name == name)
            return max(signal.low, -UNBOUNDED), min(signal.high, UNBOUNDED)

        self.observation_space = spaces.Dict({
            "time": _box(-1.0, 1.0, (3,)),
            "soc_fraction": _box(0.0, 1.0, (S,)),
            "generator_on": spaces.MultiBinary(S),
            "training_gpus_busy_fraction": _box(0.0, 1.0, (S,)),
            "emissions_tco2": _box(0.0, UNBOUNDED, (1,)),
            "history": spaces.Dict({name: _box(*bounds(name), (self.history_steps, len(columns)))
                                    for name, columns in self.signal_columns.items()}),
            "forecast": spaces.Dict({name: _box(*bounds(name), (self.forecast_steps, len(columns)))
                                     for name, columns in self.signal_columns.items()}),
            "queue": _box(-UNBOUNDED, UNBOUNDED, (J, len(QUEUE_FEATURES))),
            "queue_mask": spaces.MultiBinary(J),
            "queue_eligible": spaces.MultiBinary((J, S)),
        })
        action: dict[str, spaces.Space] = {"job_starts": spaces.MultiDiscrete(np.full(J, S + 1, dtype=np.int64))}
        if K:
            action["routing_shares"] = _box(0.0, 1.0, (K, S), np.float64)
        if len(self.battery_sites):
            action["charge_mw"] = _box(0.0, fleet.battery_charge_mw[self.battery_sites],
                                       (len(self.battery_sites),), np.float64)
            action["discharge_mw"] = _box(0.0, fleet.battery_discharge_mw[self.battery_sites],
                                          (len(self.battery_sites),), np.float64)
        if len(self.generator_sites):
            action["generator_mw"] = _box(0.0, fleet.generator_max_mw[self.generator_sites],
                                          (len(self.generator_sites),), np.float64)
        self.action_space = spaces.Dict(action)
        self.loop: ClosedLoop | None = None
        self.prepared: PreparedRun | None = None
        self.forecaster: Forecaster | None = None
        self.observation: Observation | None = None
        self.result: RunResult | None = None
        self._agent: AgentPlaceholder | None = None
        self._job_reward_so_far = 0.0

    # -- the Gymnasium API ---------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None,
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start a run: ``seed`` is the run's seed (as ``aidc run --seed``); without one, the
        next seed is drawn from the environment's generator."""
        super().reset(seed=seed)
        run_seed = int(seed) if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        self.forecaster = make_forecaster(self.forecast_spec, run_seed)
        self._agent = AgentPlaceholder(self.forecaster)
        self.prepared = prepare_run(self.scenario, self._agent, seed=run_seed, noise=self.noise)
        self.loop = self.prepared.closed_loop(self._agent, stepped=True)
        self.result = None
        self._job_reward_so_far = 0.0
        self.observation = self.loop.advance()
        assert self.observation is not None  # a run has at least one control step
        return self._observe(self.observation), {"seed": run_seed, "step": 0}

    def step(self, action: dict[str, Any]) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Apply ``action`` for one control interval; returns (observation, reward, terminated,
        truncated, info)."""
        if self.loop is None or self.observation is None:
            raise RuntimeError("call reset() before step(), and again after the episode ended")
        loop, observation = self.loop, self.observation
        step = loop._step
        setpoints = self.decode(action, observation)
        loop.act(setpoints)
        following = loop.advance()
        lo = step * loop.clock.ticks_per_control
        hi = min(lo + loop.clock.ticks_per_control, loop.clock.n_ticks)
        parts = self._interval_parts(lo, hi)
        info: dict[str, Any] = {"step": step + 1, "repairs": self._repairs(setpoints)}
        terminated = following is None
        if terminated:
            parts.update(self._terminal_parts())
            assert self.result is not None
            info["kpis"] = dict(self.result.kpis)
            observation_out = self._observe(observation, final=True)
        else:
            assert following is not None
            observation_out = self._observe(following)
        self.observation = following
        reward = sum(-value if name in _COSTS else value for name, value in parts.items())
        info["reward_parts"] = parts
        return observation_out, float(reward), terminated, False, info

    # -- actions -------------------------------------------------------------------------------

    def decode(self, action: dict[str, Any], observation: Observation) -> Setpoints:
        """The set-points of ``action`` at ``observation`` (slots beyond the queue are ignored)."""
        fleet = self.fleet
        S, K = fleet.n_sites, fleet.n_classes
        if not isinstance(action, Mapping):
            raise ValueError(f"action is {type(action).__name__}, expected a dict with keys "
                             f"{', '.join(self.action_space.spaces)}")

        def field(key: str, shape: tuple[int, ...], dtype: type = float) -> np.ndarray:
            if key not in action:
                raise ValueError(f"action has no key {key!r} (expected shape {shape})")
            try:
                values: np.ndarray = np.asarray(action[key], dtype=dtype)
            except (TypeError, ValueError):
                raise ValueError(f"action[{key!r}] is not numeric (expected shape {shape})") from None
            if values.shape != shape:
                raise ValueError(f"action[{key!r}] has shape {values.shape}, expected {shape}")
            return values

        starts = []
        slots = field("job_starts", (self.max_queue,), np.int64)
        queued = observation.queued[:self.max_queue]
        for job, choice in zip(queued, slots[:len(queued)], strict=True):
            if choice > 0:
                starts.append((job.name, int(choice) - 1))
        shares = field("routing_shares", (K, S)) if K else np.zeros((K, S))
        charge, discharge, generator = np.zeros(S), np.zeros(S), np.zeros(S)
        if len(self.battery_sites):
            charge[self.battery_sites] = field("charge_mw", (len(self.battery_sites),))
            discharge[self.battery_sites] = field("discharge_mw", (len(self.battery_sites),))
        if len(self.generator_sites):
            generator[self.generator_sites] = field("generator_mw", (len(self.generator_sites),))
        return Setpoints(tuple(starts), shares.copy(), charge, discharge, generator)

    def encode(self, setpoints: Setpoints, observation: Observation | None = None) -> dict[str, Any]:
        """The action of a controller's ``setpoints`` at ``observation`` (default the pending
        step's): starts of jobs beyond the ``max_queue`` slots are lost (see ``max_queue``)."""
        observation = observation or self.observation
        if observation is None:
            raise RuntimeError("no pending step: call reset() first")
        slot = {job.name: j for j, job in enumerate(observation.queued[:self.max_queue])}
        starts = np.zeros(self.max_queue, dtype=np.int64)
        for name, site in setpoints.job_starts:
            if name in slot:
                starts[slot[name]] = int(site) + 1
        action: dict[str, Any] = {"job_starts": starts}
        if self.fleet.n_classes:
            action["routing_shares"] = np.array(setpoints.routing_shares, dtype=np.float64)
        if len(self.battery_sites):
            action["charge_mw"] = np.array(setpoints.charge_mw, dtype=np.float64)[self.battery_sites]
            action["discharge_mw"] = np.array(setpoints.discharge_mw, dtype=np.float64)[self.battery_sites]
        if len(self.generator_sites):
            action["generator_mw"] = np.array(setpoints.generator_mw, dtype=np.float64)[self.generator_sites]
        return action

    def _repairs(self, setpoints: Setpoints) -> dict[str, float]:
        """What the plant's real-time rules changed of the step's set-points."""
        assert self.loop is not None
        plant, log = self.loop.plant, self.loop.recorder.solver_log[-1]
        battery = plant.battery
        nonfinite = sum(self.loop.control.last_repaired.values())
        setpoints, _ = check_setpoints(setpoints, self.fleet)  # NaN -> 0, inf -> limit: as the plant saw them
        requested_net = np.asarray(setpoints.charge_mw) - np.asarray(setpoints.discharge_mw)
        held_net = battery.charge_setpoint - battery.discharge_setpoint
        return {
            "starts_requested": int(log["starts_requested"]),  # type: ignore[call-overload]
            "starts_refused": int(log["starts_requested"]) - int(log["starts_applied"]),  # type: ignore[call-overload]
            "routing_share_change": float(np.abs(plant.datacenter.shares - np.nan_to_num(setpoints.routing_shares))
                                          .max(initial=0.0)),
            "battery_mw_change": float(np.abs(held_net - requested_net).max(initial=0.0)),
            "generator_mw_change": float(np.abs(plant.generator.setpoint - np.asarray(setpoints.generator_mw))
                                         .max(initial=0.0)),
            "nonfinite_values": int(nonfinite),  # NaN (repaired to 0) and inf (to the limit) in the action
        }

    # -- observations --------------------------------------------------------------------------

    def _observe(self, observation: Observation, final: bool = False) -> dict[str, Any]:
        fleet, scenario = self.fleet, self.scenario
        hour = observation.time.hour + observation.time.minute / 60.0
        elapsed = 1.0 if final else observation.elapsed_h / observation.run_hours
        capacity = np.where(fleet.battery_energy_mwh > 0, fleet.battery_energy_mwh, 1.0)
        busy = np.zeros(fleet.n_sites)
        for running in observation.running:
            busy[running.site] += running.gpus
        J, S = self.max_queue, fleet.n_sites
        queue = np.zeros((J, len(QUEUE_FEATURES)))
        mask = np.zeros(J, dtype=np.int8)
        eligible = np.zeros((J, S), dtype=np.int8)
        for j, job in enumerate(observation.queued[:J]):
            queue[j] = (job.gpus, job.power_mw, job.duration_h, job.release_h - observation.elapsed_h,
                        job.deadline_h - observation.elapsed_h, job.value_usd)
            mask[j] = 1
            eligible[j] = [job.sites is None or name in job.sites for name in fleet.site_names]
        assert self.forecaster is not None
        forecasts = forecast_signals(self.forecaster, observation, self.forecast_steps, scenario)
        history, forecast = {}, {}
        for name, columns in self.signal_columns.items():
            rows = observation.history[name].to_frame()
            values = rows[list(columns)].to_numpy(dtype=float)[-self.history_steps:]
            if len(values) < self.history_steps:
                pad = values[:1] if len(values) else np.zeros((1, len(columns)))
                values = np.vstack([np.repeat(pad, self.history_steps - len(values), axis=0), values])
            history[name] = self._clip(name, values)
            forecast[name] = self._clip(name, forecasts[name][list(columns)].to_numpy(dtype=float))
        return {
            "time": np.array([math.sin(2 * math.pi * hour / 24), math.cos(2 * math.pi * hour / 24), elapsed],
                             dtype=np.float32),
            "soc_fraction": np.clip(observation.soc_mwh / capacity, 0.0, 1.0).astype(np.float32),
            "generator_on": np.asarray(observation.generator_on, dtype=np.int8),
            "training_gpus_busy_fraction": np.clip(busy / np.maximum(fleet.gpus, 1.0), 0.0, 1.0).astype(np.float32),
            "emissions_tco2": np.array([min(observation.cumulative_emissions_tco2, UNBOUNDED)], dtype=np.float32),
            "history": history,
            "forecast": forecast,
            "queue": np.clip(queue, -UNBOUNDED, UNBOUNDED).astype(np.float32),
            "queue_mask": mask,
            "queue_eligible": eligible,
        }

    def _clip(self, name: str, values: np.ndarray) -> np.ndarray:
        space = self.observation_space["history"][name]  # type: ignore[index]  # a Dict of Dicts
        return np.clip(values, space.low[0], space.high[0]).astype(np.float32)

    # -- the reward ----------------------------------------------------------------------------

    def _interval_parts(self, lo: int, hi: int) -> dict[str, float]:
        """The benefit's parts in ticks ``lo .. hi - 1`` (USD; costs positive), as
        :func:`simulator.accounting.realised_kpis` values them over the whole run."""
        assert self.loop is not None
        loop, fleet = self.loop, self.fleet
        records = [r for r in loop.recorder.ticks[lo:hi] if r is not None]
        inputs, dt = loop.inputs, loop.clock.tick_h
        n, S, K = len(records), fleet.n_sites, fleet.n_classes
        if n == 0:
            return {}

        def stack(values: list) -> np.ndarray:
            return np.array(values, dtype=float).reshape(n, S)

        imports = stack([r.flows.import_ for r in records])
        exports = stack([r.flows.export for r in records])
        generation = stack([r.flows.generator for r in records])
        throughput = stack([r.flows.charge for r in records]) + stack([r.flows.discharge for r in records])
        on_h = np.array([dt * (r.flows.generator > EPS) if r.generator_on_h is None else r.generator_on_h
                         for r in records], dtype=float).reshape(n, S)
        rows = slice(lo, lo + n)
        step = lo // loop.clock.ticks_per_control
        demand = inputs.demand_req_per_s[rows]
        served = loop.recorder.shares[step][None, :, :] * demand[:, :, None]
        dropped = np.zeros((n, K, S))
        if K:
            dropped[:, np.arange(K), fleet.home_site] = loop.recorder.unassigned[step] * demand
        for i, r in enumerate(records):
            if r.served_req_per_s is not None:
                served[i], dropped[i] = r.served_req_per_s, r.dropped_req_per_s
        emissions = float((inputs.carbon_t_per_mwh[rows] * imports).sum() * dt
                          + (fleet.generator_emission_t_per_mwh * generation).sum() * dt)
        requests = SECONDS_PER_HOUR * dt
        completed = sum(record.job.value_usd for record in loop.workload.jobs.values()
                        if record.status in ("completed", "late"))
        job_reward, self._job_reward_so_far = completed - self._job_reward_so_far, completed
        return {
            "job_reward_usd": float(job_reward),
            "inference_value_usd": float((fleet.class_value_usd_per_req[None, :, None] * served).sum() * requests),
            "unserved_penalty_usd": float((fleet.class_penalty_usd_per_req[None, :, None] * dropped).sum() * requests),
            "import_cost_usd": float((inputs.import_price_usd_per_mwh[rows] * imports).sum() * dt),
            "export_revenue_usd": float((inputs.export_price_usd_per_mwh[rows] * exports).sum() * dt),
            "fuel_cost_usd": float((fleet.generator_fuel_usd_per_mwh * generation).sum() * dt
                                   + (fleet.generator_no_load_usd_per_h * on_h).sum()),
            "battery_degradation_usd": float((fleet.battery_degradation_usd_per_mwh * throughput).sum() * dt),
            "carbon_cost_usd": self.scenario.carbon.price_usd_per_tco2 * emissions,
        }

    def _terminal_parts(self) -> dict[str, float]:
        """Finish the run (frames, KPIs, manifest as ``simulate``) and return its terminal parts."""
        assert self.loop is not None and self.prepared is not None and self._agent is not None
        raw = self.loop.finish()
        self.result = finish_run(self.prepared, self._agent, self.loop, raw, 0.0)
        kpis = self.result.kpis
        return {
            "terminal_job_reward_usd": float(kpis["job_reward_usd"]) - self._job_reward_so_far,
            "tail_energy_cost_usd": float(kpis["tail_energy_cost_usd"]),
            "battery_terminal_value_usd": float(kpis["battery_terminal_value_usd"]),
            "budget_penalty_usd": float(kpis["budget_penalty_usd"]),
        }


#: the reward parts that are costs (subtracted)
_COSTS = frozenset({"unserved_penalty_usd", "import_cost_usd", "fuel_cost_usd", "battery_degradation_usd",
                    "carbon_cost_usd", "tail_energy_cost_usd", "budget_penalty_usd"})

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="simulator.gym:FleetEnv")
