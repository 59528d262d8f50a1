"""The closed loop's parts on their own: the workload's bookkeeping, the recorder, the plant's configuration."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from test_simulator import small_scenario

from scenarios import build_fleet
from scenarios.schema import TrainingJob
from scenarios.timebase import RunClock
from simulator.plant import Plant
from simulator.processes import Submission
from simulator.records import PlantInputs, Recorder
from simulator.workload import Workload


@pytest.fixture()
def parts():
    scenario = small_scenario(2, 1, 0, 6, variant=5)
    fleet = build_fleet(scenario)
    clock = RunClock.of(5, 60, 6.0)
    n, S = clock.n_ticks, fleet.n_sites
    per_site = len(fields(PlantInputs)) - 1  # every input but the demand is (n_ticks, S)
    inputs = PlantInputs(np.ones((n, fleet.n_classes)), *(np.ones((n, S)) for _ in range(per_site)))
    plant = Plant.of(fleet)
    recorder = Recorder(fleet, pd.Timestamp("2022-07-01", tz="UTC"), clock, inputs)
    return fleet, plant, recorder, Workload(plant.datacenter, recorder)


def job(name: str, duration_h: float = 2.0, deadline_h: float = 5.0) -> TrainingJob:
    return TrainingJob(name=name, gpus=10, power_mw=0.01, duration_h=duration_h, release_h=0.0,
                       deadline_h=deadline_h, value_usd=100.0)


def test_workload_starts_refuses_completes_and_drops(parts):
    fleet, plant, recorder, workload = parts
    for name, deadline in (("a", 5.0), ("b", 5.0), ("late", 1.5)):
        workload.submit(Submission(0.0, job(name, deadline_h=deadline)))
    pue = np.ones(fleet.n_sites)
    started = workload.start([("a", 0), ("b", 99), ("missing", 0)], 0.5, pue)
    assert started == [("a", 2.5)] and set(workload.queue) == {"b", "late"}
    assert plant.datacenter.training_gpus[0] == 10
    refused = [e.detail for e in recorder.events if e.kind == "start_refused"]
    assert refused == ["b: no site 99", "missing: not queued"]
    workload.drop_unreachable(0.5)  # "late" needs 2 h before 1.5 h
    assert workload.jobs["late"].status == "dropped" and set(workload.queue) == {"b"}
    workload.complete_due(2.0)
    assert workload.jobs["a"].status == "running"
    workload.complete_due(2.5)
    assert workload.jobs["a"].status == "completed" and not plant.datacenter.running
    assert plant.datacenter.training_gpus.tolist() == [0.0] * fleet.n_sites
    assert [e.kind for e in recorder.events].count("job_completed") == 1


def test_recorder_needs_every_tick(parts):
    _, _, recorder, workload = parts
    with pytest.raises(RuntimeError, match="recorded 0 of 72 ticks"):
        recorder.raw_run(workload.finish(6.0))


def test_plant_config_records_the_battery_efficiencies(parts):
    fleet, plant, _, _ = parts
    config = plant.config()
    assert set(config) == {"datacenter", "battery", "generator", "grid"}
    battery = config["battery"]
    assert battery["charge_efficiency"] == dict(zip(fleet.site_names, fleet.battery_charge_efficiency.tolist(),
                                                    strict=True))
    assert battery["discharge_efficiency"] == dict(zip(fleet.site_names,
                                                       fleet.battery_discharge_efficiency.tolist(), strict=True))
