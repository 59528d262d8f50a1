"""Users' controllers and forecasters: the registries, import specs, the worked example (issue 14)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_simulator import small_scenario

from forecasts import ForecastSpecError, make_forecaster
from optimizer.control import GreedyController
from optimizer.protocol import Controller, protocol_problems
from scenarios import save_scenario
from simulator import simulate
from simulator.commands import CONTROLLER_NAMES
from simulator.controllers import (
    REGISTRY,
    ControllerEntry,
    ControllerOption,
    ControllerSpecError,
    make_controller,
    parse_controller_spec,
    register_controller,
)
from simulator.sweep_grid import HEURISTIC_CONTROLLERS, MPC_CONTROLLERS

REPO = Path(__file__).resolve().parents[1]
AIDC = [sys.executable, "-m", "simulator.cli"]
EXAMPLE = REPO / "examples" / "carbon_rule.py"

USER_MODULE = '''
from forecasts import PersistenceForecaster
from forecasts.params import Param
from optimizer.control import LocalController


class Slow(LocalController):
    """local, with a made-up option and the run's seed."""

    name = "slow"

    def __init__(self, patience: int = 1, seed: int = 0) -> None:
        self.patience, self.seed = patience, seed

    def config(self):
        return {"name": self.name, "patience": self.patience, "seed": self.seed}


class Scaled(PersistenceForecaster):
    name = "scaled"
    PARAMETERS = (Param("factor", "float", 1.0, "multiplies the persistence forecast", low=0.0),)


class NotAController:
    name = "nope"
'''


@pytest.fixture
def user_module(user_code):
    """A module ``user_policies`` in a folder that is the current directory (not on sys.path)."""
    return user_code("user_policies", USER_MODULE)


def test_one_registry_read_by_cli_and_sweeps():
    assert tuple(REGISTRY) == CONTROLLER_NAMES
    assert set(MPC_CONTROLLERS) | set(HEURISTIC_CONTROLLERS) == set(REGISTRY)
    assert set(MPC_CONTROLLERS) == {name for name, entry in REGISTRY.items() if entry.uses_forecast}
    help_text = subprocess.run([*AIDC, "run", "--help"], capture_output=True, text=True, check=True).stdout
    for name in REGISTRY:
        assert name in help_text


def test_builtin_options_are_typed_and_checked():
    controller = make_controller("greedy:low_quantile=0.2,high_quantile=0.9")
    assert isinstance(controller, GreedyController)
    assert (controller.low_quantile, controller.high_quantile) == (0.2, 0.9)
    assert controller.spec == "greedy:low_quantile=0.2,high_quantile=0.9"
    for bad, words in (("greedy:lowquantile=0.2", "unknown option"), ("greedy:low_quantile=x", "expected a float"),
                       ("greedy:low_quantile", "key=value"), ("local:x=1", "valid: none"),
                       ("greedy:low_quantile=0.9,high_quantile=0.1", "low_quantile <= high_quantile")):
        with pytest.raises(ControllerSpecError, match=words):
            make_controller(bad)


def test_registered_entry_receives_its_options():
    """An entry declares keyword options (the shape of mpc-stochastic's scenarios=10, risk=cvar)."""
    received = {}

    def factory(settings, scenarios: int, risk: str) -> Controller:
        received.update(scenarios=scenarios, risk=risk, seed=settings.seed, forecast=settings.forecast)
        return GreedyController()

    entry = ControllerEntry("test-options", "for the test", factory, uses_forecast=True,
                            options=(ControllerOption("scenarios", 10, "scenarios per window"),
                                     ControllerOption("risk", "neutral", "risk", choices=("neutral", "cvar"))))
    register_controller(entry)
    try:
        make_controller("test-options:risk=cvar", forecast="noisy", seed=4)
        assert received == {"scenarios": 10, "risk": "cvar", "seed": 4, "forecast": "noisy"}
        make_controller("test-options:scenarios=3")
        assert received["scenarios"] == 3 and isinstance(received["scenarios"], int)
        with pytest.raises(ControllerSpecError, match="neutral|cvar"):
            make_controller("test-options:risk=var")
        assert parse_controller_spec("test-options").uses_forecast
        with pytest.raises(ValueError, match="taken"):
            register_controller(entry)
    finally:
        REGISTRY.pop("test-options")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab:=,._ 0123-", max_size=30))
def test_any_spec_parses_or_fails_in_one_line(text):
    try:
        spec = parse_controller_spec(text)
    except ControllerSpecError as error:
        assert "\n" not in str(error)
    else:
        assert spec.name in REGISTRY


def test_user_controller_and_forecaster_by_import_spec(user_module):
    controller = make_controller("user_policies:Slow:patience=3", seed=7)
    assert type(controller).__name__ == "Slow" and (controller.patience, controller.seed) == (3, 7)
    assert not parse_controller_spec("user_policies:Slow").uses_forecast
    forecaster = make_forecaster("user_policies:Scaled:factor=2", seed=1)
    assert forecaster.params["factor"] == 2.0
    assert forecaster.spec == "user_policies:Scaled:factor=2"
    assert make_forecaster(forecaster.spec).spec == forecaster.spec  # the spec rebuilds it
    for bad, words in (("user_policies:NotAController", "not a controller"), ("user_policies:Nothing", "no attribute"),
                       ("no_such_module_xyz:Cls", "cannot import module"), ("user_policies:Slow:speed=2", "failed")):
        with pytest.raises(ControllerSpecError, match=words):
            make_controller(bad)
    with pytest.raises(ForecastSpecError, match="not a forecaster"):
        make_forecaster("user_policies:Slow")
    with pytest.raises(ForecastSpecError, match="factor"):
        make_forecaster("user_policies:Scaled:factor=-1")


def test_protocol_check_accepts_duck_typed_classes():
    class Duck:
        name = "duck"

        def reset(self, scenario, fleet): ...

        def decide(self, observation): ...

        def config(self):
            return {}

    assert protocol_problems(Duck) == []
    assert protocol_problems(Controller) and protocol_problems(object()) and protocol_problems(dict)


def test_manifest_records_spec_and_config(user_module):
    scenario = small_scenario(2, 2, 2, 6, variant=3)
    result = simulate(scenario, make_controller("user_policies:Slow:patience=2", scenario, seed=5), seed=5)
    manifest = result.manifest
    assert manifest["controller_spec"] == "user_policies:Slow:patience=2"
    assert manifest["controller_class"] == "user_policies:Slow"
    assert manifest["controller"] == {"name": "slow", "patience": 2, "seed": 5}
    mpc = simulate(scenario, make_controller("mpc", scenario, forecast="user_policies:Scaled:factor=1.5", seed=5),
                   seed=5)
    assert mpc.manifest["forecaster"] == "user_policies:Scaled:factor=1.5"
    assert mpc.manifest["forecaster_config"] == {"name": "scaled", "factor": 1.5}
    assert mpc.manifest["controller_spec"] == "mpc"


def test_example_controller_runs_through_compare(tmp_path):
    """The worked example, from the folder that holds it, next to the built-ins on one seed (1 day)."""
    shutil.copy(EXAMPLE, tmp_path / "carbon_rule.py")
    result = subprocess.run([*AIDC, "compare", "paper-day", "--controllers", "mpc,greedy,carbon_rule:CarbonRule",
                             "--seeds", "1", "--days", "1", "--out", "kpis.csv"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if line.startswith("KPI"))
    assert header.split()[1:] == ["mpc", "greedy", "carbon_rule:CarbonRule"]
    assert "paired differences vs mpc" in result.stdout
    runs = pd.read_csv(tmp_path / "kpis.csv")
    assert list(runs["controller"]) == ["mpc", "greedy", "carbon_rule:CarbonRule"]
    rule, greedy = runs.iloc[2], runs.iloc[1]
    # the rule routes by carbon, not by price: it serves closer to clean sites and emits less than greedy
    assert rule["emissions_tco2"] < greedy["emissions_tco2"]
    assert rule["battery_throughput_mwh"] > 0


def test_bad_user_class_is_one_line_before_work(tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    for spec, words in (("broken:X", "importing 'broken' failed: RuntimeError: boom"),
                        ("json:JSONDecoder", "not a controller")):
        result = subprocess.run([*AIDC, "compare", "paper-day", "--controllers", f"local,{spec}", "--seeds", "1",
                                 "--days", "1"], capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("aidc: error: ") and words in result.stderr
        assert "Traceback" not in result.stderr


def test_sweep_refuses_bad_controller_options_before_any_run(tmp_path):
    shutil.copy(EXAMPLE, tmp_path / "carbon_rule.py")
    for spec, words in (("carbon_rule:CarbonRule:speed=2", "unexpected keyword argument 'speed'"),
                        ("greedy:low_quantile=2", "low_quantile <= high_quantile")):
        result = subprocess.run([*AIDC, "sweep", "paper-day", "--controllers", f"local,{spec}", "--seeds", "1",
                                 "--out", "sweep"], capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and words in result.stderr, result.stderr
        assert not (tmp_path / "sweep").exists()


def test_user_controller_in_a_sweep_grid_on_dask(tmp_path):
    """A controller from a file outside the package next to mpc in a sweep on Dask (its workers
    import it by its spec from the same folder), and in a grid file."""
    shutil.copy(EXAMPLE, tmp_path / "carbon_rule.py")
    save_scenario(small_scenario(2, 2, 2, 6, variant=21), tmp_path / "small.toml")
    (tmp_path / "grid.toml").write_text(textwrap.dedent('''
        scenario = "small.toml"
        controllers = ["mpc", "carbon_rule:CarbonRule:margin=1.0"]
        forecasts = ["perfect"]
        seeds = [1, 2]
    '''), encoding="utf-8")
    result = subprocess.run([*AIDC, "sweep", "--grid", "grid.toml", "--dask", "local", "--workers", "1",
                             "--no-progress", "--out", "sweep"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = pd.read_csv(tmp_path / "sweep" / "runs.csv", keep_default_na=False)
    assert sorted(set(runs["controller"])) == ["carbon_rule:CarbonRule:margin=1.0", "mpc"]
    assert len(runs) == 4 and runs["benefit_usd"].notna().all()
    rule_runs = [p for p in (tmp_path / "sweep" / "runs").iterdir() if p.name.startswith("carbon")]
    manifest = json.loads((rule_runs[0] / "manifest.json").read_text())
    assert manifest["controller"] == {"name": "carbon-rule", "margin_usd_per_mwh": 1.0}
    # the grid knows the rule uses no forecast: one run per seed, forecast n/a
    assert set(runs.loc[runs["controller"] != "mpc", "forecast"]) == {"n/a"}
