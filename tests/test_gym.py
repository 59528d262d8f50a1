"""The Gymnasium environment: the API checker, an exact replay of the joint MPC, repairs, rewards."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from scenarios import load_scenario
from scenarios.signals import SIGNALS
from simulator import make_controller, simulate
from simulator.gym import ENV_ID, FleetEnv
from simulator.sweep import is_timing_column

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def paper_day():
    return load_scenario("paper-day")


def test_passes_gymnasiums_checker():
    env = gym.make(ENV_ID, scenario="paper-day", days=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # the battery and generator set-points are in MW by design (a user rescales with
        # gymnasium.wrappers.RescaleAction if a learner wants [-1, 1])
        warnings.filterwarnings("ignore", message=".*For Box action spaces, we recommend")
        check_env(env.unwrapped)
    env.close()


def test_replays_the_joint_mpc_exactly(paper_day):
    """The MPC's set-points, encoded as actions, give the MPC's closed-loop KPIs on the same seed
    (every KPI but wall-clock times), and the rewards sum to its benefit."""
    seed = 3
    reference = simulate(paper_day, make_controller("mpc", paper_day, forecast="noisy", seed=seed), seed=seed)
    env = FleetEnv(paper_day, forecast="noisy")
    env.reset(seed=seed)
    mpc = make_controller("mpc", paper_day, forecast="noisy", seed=seed)
    prepared = env.prepared
    for signal in SIGNALS:  # as simulate binds an oracle forecaster to the realised truth
        mpc.forecaster.bind_truth(signal, prepared.control_signals[signal])
    mpc.reset(prepared.scenario, prepared.fleet)
    rewards, terminated, steps = [], False, 0
    while not terminated:
        setpoints = mpc.decide(env.observation)
        action = env.encode(setpoints)
        _, reward, terminated, truncated, info = env.step(action)
        assert not truncated
        rewards.append(reward)
        steps += 1
    assert steps == reference.kpis["control_steps"]
    kpis = info["kpis"]
    compared = [key for key in reference.kpis if not is_timing_column(key) and key not in ("tick_us",)]
    assert len(compared) > 40
    for key in compared:
        a, b = reference.kpis[key], kpis[key]
        assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), (key, a, b)
    assert sum(rewards) == pytest.approx(reference.kpis["benefit_usd"], rel=1e-9)
    assert env.result is not None and env.result.manifest["seed"] == seed


def test_invalid_actions_are_repaired_and_reported(paper_day):
    env = FleetEnv(paper_day, days=0.25)
    env.reset(seed=1)
    action = env.action_space.sample()
    action["routing_shares"] = np.ones_like(action["routing_shares"]) * 3.0  # outside [0, 1], rows > 1
    action["charge_mw"] = np.full_like(action["charge_mw"], 1e3)  # beyond the batteries' power
    action["discharge_mw"] = np.zeros_like(action["discharge_mw"])
    action["generator_mw"] = np.full_like(action["generator_mw"], 0.1)  # below the minimum load
    queued = len(env.observation.queued)
    action["job_starts"] = np.full(env.max_queue, 1)
    _, reward, _, _, info = env.step(action)
    repairs = info["repairs"]
    assert repairs["routing_share_change"] > 0.5
    assert repairs["battery_mw_change"] > 900
    assert repairs["generator_mw_change"] > 0
    assert repairs["starts_requested"] == min(queued, env.max_queue)
    assert 0 <= repairs["starts_refused"] <= repairs["starts_requested"]
    plant = env.loop.plant
    assert np.all(plant.datacenter.shares.sum(axis=1) <= 1 + 1e-12)
    assert np.all(plant.battery.charge_setpoint <= env.fleet.battery_charge_mw + 1e-12)
    assert math.isfinite(reward)
    assert sum(info["reward_parts"].values()) != 0


def test_same_seed_same_episode_and_seeds_differ(paper_day):
    def episode(seed: int) -> list[float]:
        env = FleetEnv(paper_day, days=0.25)
        env.reset(seed=seed)
        env.action_space.seed(0)
        out, done = [], False
        while not done:
            _, reward, done, _, _ = env.step(env.action_space.sample())
            out.append(reward)
        return out

    first = episode(5)
    assert first == episode(5)
    assert first != episode(6)


def test_importing_the_simulator_needs_no_gymnasium():
    probe = ("import sys, simulator, simulator.run, simulator.cli; "
             "print('gymnasium' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "False"


def test_nan_and_inf_actions_report_finite_repairs_and_bad_keys_are_named(paper_day):
    env = FleetEnv(paper_day, days=0.25)
    env.reset(seed=1)
    for fill in (np.nan, np.inf):
        action = env.action_space.sample()
        for key in ("routing_shares", "charge_mw", "discharge_mw", "generator_mw"):
            action[key] = np.full_like(action[key], fill)
        _, reward, _, _, info = env.step(action)
        repairs = info["repairs"]
        assert all(math.isfinite(value) for value in repairs.values()), repairs
        assert repairs["nonfinite_values"] == sum(action[key].size for key in
                                                  ("routing_shares", "charge_mw", "discharge_mw", "generator_mw"))
        assert math.isfinite(reward)
    good = env.action_space.sample()
    for action, words in (({k: v for k, v in good.items() if k != "charge_mw"}, "no key 'charge_mw'"),
                          ({**good, "routing_shares": np.zeros(5)}, r"action\['routing_shares'\] has shape \(5,\)"),
                          ({**good, "generator_mw": "abc"}, r"action\['generator_mw'\] is not numeric"),
                          ([1, 2], "action is list, expected a dict")):
        with pytest.raises(ValueError, match=words):
            env.step(action)
