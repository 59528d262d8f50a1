"""Scenarios: the typed domain model, TOML loading and validation, built-in scenarios, shipped data."""

from scenarios.arrays import SIGNALS, Fleet, build_fleet, nominal_signals, time_index
from scenarios.io import (
    ScenarioError,
    builtin_names,
    dump_scenario,
    load_builtin,
    load_scenario,
    parse_scenario,
    save_scenario,
)
from scenarios.schema import (
    Battery,
    CarbonPolicy,
    Cooling,
    Generator,
    GridConnection,
    InferenceClass,
    JobPopulation,
    Region,
    RunSettings,
    Scenario,
    Site,
    TrainingJob,
)

__all__ = [
    "SIGNALS", "Battery", "CarbonPolicy", "Cooling", "Fleet", "Generator", "GridConnection", "InferenceClass",
    "JobPopulation", "Region", "RunSettings", "Scenario", "ScenarioError", "Site", "TrainingJob", "build_fleet",
    "builtin_names", "dump_scenario", "load_builtin", "load_scenario", "nominal_signals", "parse_scenario",
    "save_scenario", "time_index",
]
