"""A user's controller or forecaster that misbehaves during a run (issue 14, verification): one
line naming it, the time and the field, never a traceback; NaN/inf set-points repaired and counted."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from test_simulator import small_scenario

from forecasts.plugin import UserCodeFailed
from scenarios import save_scenario
from scenarios.arrays import build_fleet
from simulator import make_controller, simulate
from simulator.cli import main
from simulator.setpoint_check import SetpointError, check_setpoints

BAD_MODULE = '''
import numpy as np
from optimizer.protocol import Controller, Setpoints
from forecasts import PersistenceForecaster


class Bad(Controller):
    name = "bad"

    def __init__(self, mode: str = "ok", after: int = 0, frac: float = 0.5, flag: bool = False):
        self.mode, self.after, self.frac, self.flag, self.n = mode, after, frac, flag, 0

    def decide(self, obs):
        S, K = self.fleet.n_sites, self.fleet.n_classes
        self.n += 1
        shares = np.full((K, S), 1.0 / S)
        z = np.zeros(S)
        if self.n <= self.after or self.mode == "ok":
            return Setpoints((), shares, z + self.frac * 0, z.copy(), z.copy())
        if self.mode == "raise":
            raise RuntimeError("my controller broke")
        if self.mode == "shape":
            return Setpoints((), np.zeros((S, K + 1)), z, z, z)
        if self.mode == "none":
            return None
        if self.mode == "starts":
            return Setpoints(5, shares, z, z, z)
        if self.mode == "text":
            return Setpoints((), shares, "x", z, z)
        if self.mode == "nan":
            return Setpoints((), np.full((K, S), np.nan), np.full(S, np.nan), z, np.full(S, np.inf))
        raise AssertionError(self.mode)


class Seeded(Bad):
    def __init__(self, seed: int = 0):
        super().__init__()
        self.seed = seed


class ResetRaises(Bad):
    def reset(self, scenario, fleet):
        raise RuntimeError("reset broke")


class WrongShape(PersistenceForecaster):
    name = "wrongshape"

    def _predict(self, request, history):
        prediction = super()._predict(request, history)
        prediction.values = np.zeros((request.horizon_steps + 3, len(request.keys) + 1))
        return prediction


class Raises(PersistenceForecaster):
    name = "raises"

    def _predict(self, request, history):
        raise RuntimeError("forecaster broke")
'''


@pytest.fixture
def bad_module(user_code, tmp_path):
    save_scenario(small_scenario(2, 2, 2, 6, variant=3), tmp_path / "small.toml")
    return user_code("bad_user_code", BAD_MODULE)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["run", "small.toml", "--days", "0.25", "--seed", "1", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("mode", "words"), [
    ("raise", "RuntimeError: my controller broke"),
    ("shape", "routing_shares has shape (2, 3), expected (K, S) = (2, 2)"),
    ("none", "decide() returned NoneType, expected optimizer.protocol.Setpoints"),
    ("starts", "job_starts is int 5, expected a sequence of (job name, site index) pairs"),
    ("text", "charge_mw is str 'x', expected (S) = (2,) numbers"),
])
def test_failing_user_controller_is_one_line_exit_1(bad_module, capsys, mode, words):
    code, _, err = run_cli(capsys, "--controller", f"bad_user_code:Bad:mode={mode},after=1")
    last = err.strip().splitlines()[-1]
    assert code == 1
    assert "Traceback" not in err
    assert last.startswith("aidc: error: controller 'bad_user_code:Bad:mode=") and "failed at" in last
    assert "(step 1)" in last and words in last


def test_user_controller_reset_failure_is_one_line(bad_module, capsys):
    code, _, err = run_cli(capsys, "--controller", "bad_user_code:ResetRaises")
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == ("aidc: error: controller 'bad_user_code:ResetRaises' failed in reset(): "
                                            "RuntimeError: reset broke")


def test_nan_setpoints_are_repaired_recorded_and_warned_once_per_field(bad_module, capsys):
    code, _, err = run_cli(capsys, "--controller", "bad_user_code:Bad:mode=nan,after=1")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "non-finite" in line]
    assert sorted(line.split("non-finite ")[1].split()[0] for line in warnings) == [
        "charge_mw", "generator_mw", "routing_shares"]  # one line per field, not per step
    scenario = small_scenario(2, 2, 2, 6, variant=3)
    result = simulate(scenario, make_controller("bad_user_code:Bad:mode=nan,after=1"), days=0.25, seed=1)
    events = result.events[result.events["kind"] == "setpoint_repaired"]
    assert len(events) == 3
    assert np.isfinite(result.routing.select_dtypes("number").to_numpy()).all()


def test_check_setpoints_repairs_nan_to_zero_and_inf_to_the_limit():
    fleet = build_fleet(small_scenario(2, 2, 2, 6, variant=3))
    from optimizer.protocol import Setpoints

    S, K = fleet.n_sites, fleet.n_classes
    raw = Setpoints((), np.full((K, S), np.nan), np.full(S, np.inf), np.full(S, -np.inf), np.array([np.nan, 1.0]))
    checked, repaired = check_setpoints(raw, fleet)
    assert repaired == {"routing_shares": K * S, "charge_mw": S, "discharge_mw": S, "generator_mw": 1}
    assert np.array_equal(checked.routing_shares, np.zeros((K, S)))
    assert np.array_equal(checked.charge_mw, fleet.battery_charge_mw)
    assert np.array_equal(checked.discharge_mw, np.zeros(S)) and checked.generator_mw.tolist() == [0.0, 1.0]
    with pytest.raises(SetpointError, match=r"generator_mw has shape \(3,\), expected \(S\) = \(2,\)"):
        check_setpoints(Setpoints((), np.zeros((K, S)), np.zeros(S), np.zeros(S), np.zeros(3)), fleet)


@pytest.mark.parametrize(("spec", "words"), [
    ("bad_user_code:WrongShape",
     "WrongShape._predict returned values of shape (9, 3), expected (horizon steps, columns) = (6, 2)"),
    ("bad_user_code:Raises", "forecaster bad_user_code:Raises failed forecasting"),
])
def test_failing_user_forecaster_is_one_line_naming_it(bad_module, capsys, spec, words):
    code, _, err = run_cli(capsys, "--controller", "mpc", "--forecast", spec)
    last = err.strip().splitlines()[-1]
    assert code == 1 and "Traceback" not in err
    assert last.startswith("aidc: error: controller 'mpc' failed at") and words in last


def test_aidc_bugs_keep_their_traceback(bad_module):
    """Only a user's class is turned into one line: aidc's own controllers raising is a bug."""
    from optimizer.control import LocalController

    class Broken(LocalController):
        def decide(self, observation):
            raise RuntimeError("a bug")

    Broken.__module__ = "optimizer.control"
    with pytest.raises(RuntimeError, match="a bug"):
        simulate(small_scenario(2, 2, 2, 6, variant=3), Broken(), days=0.25, seed=1)
    assert not math.isnan(0.0) and issubclass(UserCodeFailed, Exception)


def test_user_options_follow_the_constructor_type_hints(bad_module):
    from simulator.controllers import ControllerSpecError, controller_names, parse_controller_spec

    spec = parse_controller_spec('bad_user_code:Bad:mode=nan,after=3,frac=1,flag=true')
    assert spec.options == {"mode": "nan", "after": 3, "frac": 1.0, "flag": True}
    assert type(spec.options["frac"]) is float
    assert parse_controller_spec('bad_user_code:Bad:mode="x,y",after=2').options == {"mode": "x,y", "after": 2}
    assert controller_names('local,bad_user_code:Bad:mode="x,y",after=2,greedy') == [
        "local", 'bad_user_code:Bad:mode="x,y",after=2', "greedy"]
    for bad, words in (("frac=abc", "option frac='abc': expected a number (frac: float)"),
                       ("frac=", "option frac='': expected a number"),
                       ("after=2.5", "option after='2.5': expected an integer (after: int)"),
                       ("flag=1", "option flag='1': expected true or false (flag: bool)")):
        with pytest.raises(ControllerSpecError, match=words.replace("(", r"\(").replace(")", r"\)")):
            parse_controller_spec(f"bad_user_code:Bad:{bad}")
    with pytest.raises(ControllerSpecError, match="empty controller"):
        controller_names("greedy,,local")


def test_bad_option_value_is_one_line_before_the_run(bad_module, capsys):
    code, _, err = run_cli(capsys, "--controller", "bad_user_code:Bad:frac=abc")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("aidc: error: --controller: controller bad_user_code:Bad: option frac='abc'")


def test_runs_folder_reruns_an_edited_user_controller(bad_module, capsys):
    from simulator.sweep_grid import user_code_digest

    def compare() -> str:
        user_code_digest.cache_clear()
        sys.modules.pop("bad_user_code", None)
        code = main(["compare", "small.toml", "--controllers", "local,bad_user_code:Bad", "--seeds", "1",
                     "--days", "0.25", "--workers", "0", "--runs", "cmp"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        return next(line for line in (captured.out + captured.err).splitlines() if "already finished" in line)

    assert "(2 ran, 0 already finished)" in compare()
    assert "(0 ran, 2 already finished)" in compare()
    source = bad_module / "bad_user_code.py"
    source.write_text(source.read_text().replace("frac: float = 0.5", "frac: float = 0.25"), encoding="utf-8")
    assert "(1 ran, 1 already finished)" in compare()  # the edited class runs again; local is reused


def test_minor_messages_name_the_option_and_the_run_seed(bad_module, capsys, tmp_path):
    code, _, err = run_cli(capsys, "--controller", "bad_user_code:Seeded:nokey=1")
    assert code == 2 and "Seeded(**{'nokey': 1, 'seed': 1}) failed" in err  # the run's --seed 1, not 0
    code, _, err = run_cli(capsys, "--controller", "local", "--forecast", "bad_user_code::Raises")
    assert code == 2 and "one colon between module and class" in err and "malformed parameter" not in err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep", encoding="utf-8")
    (tmp_path / "afile").write_text("keep", encoding="utf-8")
    compare = ["compare", "small.toml", "--controllers", "local", "--seeds", "1", "--days", "0.25", "--workers", "0"]
    for folder, words in (("mine", "choose another --runs"), ("afile/sub", "Not a directory")):
        assert main([*compare, "--runs", folder]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"aidc: error: --runs {folder}: cannot keep the run folders there") and words in err
        assert "--out" not in err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    assert (tmp_path / "afile").read_text(encoding="utf-8") == "keep"
