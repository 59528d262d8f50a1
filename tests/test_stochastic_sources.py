"""mpc-stochastic against forecasters that cannot give its scenario source (issue-15 verification):
refused before the run where the pairing is known, one line at run time where only the forecasts
tell, and quantile scenarios that fell back to the point forecast recorded, not silent."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from simulator.cli import main
from simulator.controllers import ControllerSpecError, make_controller

USER_FORECASTERS = '''
import numpy as np
from forecasts import PersistenceForecaster
from forecasts.base import Prediction


class Last(PersistenceForecaster):
    name = "last"


class NaNQ(PersistenceForecaster):
    """Persistence with 0.1 and 0.9 quantiles that are all NaN (a failed fit)."""

    name = "nanq"

    def _predict(self, request, history):
        point = super()._predict(request, history).values
        nan = np.full_like(point, np.nan)
        return Prediction(values=point, quantiles={0.1: nan, 0.9: nan.copy()})
'''


@pytest.fixture
def user_forecasters(user_code):
    return user_code("user_fc", USER_FORECASTERS)


@pytest.mark.parametrize(("source", "forecast", "words"), [
    ("quantiles", "perfect", "source=quantiles needs a forecaster that reports two or more quantile levels; "
                             "'perfect' reports none"),
    ("quantiles", "noisy:quantiles=0.5", "reports 1"),
    ("model", "persistence", "source=model needs a forecaster with an error model (noisy); 'persistence'"),
])
def test_a_source_the_forecaster_cannot_give_is_refused_before_the_run(tmp_path, capsys, source, forecast, words):
    out = tmp_path / "out"
    code = main(["run", "paper-day", "--controller", f"mpc-stochastic:source={source}", "--forecast", forecast,
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("aidc: error: --controller: mpc-stochastic: ") and words in err
    assert "use source=auto" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    # compare refuses it too, before any run
    assert main(["compare", "paper-day", "--controllers", f"mpc,mpc-stochastic:source={source}",
                 "--forecast", forecast, "--seeds", "1"]) == 2
    assert words in capsys.readouterr().err


def test_a_sweep_grid_refuses_a_pairing_with_any_of_its_forecasts(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(textwrap.dedent('''
        scenario = "paper-day"
        controllers = ["mpc-stochastic:source=quantiles"]
        forecasts = ["noisy", "perfect"]
        seeds = [1]
    '''), encoding="utf-8")
    assert main(["sweep", "--grid", str(grid), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "forecast perfect" in err and "'perfect' reports none" in err
    assert not (tmp_path / "out").exists()


def test_model_source_with_a_users_forecaster_is_refused_before_the_run(user_forecasters, capsys):
    code = main(["run", "paper-day", "--controller", "mpc-stochastic:source=model", "--forecast", "user_fc:Last",
                 "--out", "x"])
    assert code == 2
    assert "source=model needs a forecaster with an error model" in capsys.readouterr().err


def test_quantiles_from_a_users_forecaster_without_them_is_one_line_at_run_time(user_forecasters, capsys):
    code = main(["run", "paper-day", "--controller", "mpc-stochastic:source=quantiles,scenarios=4",
                 "--forecast", "user_fc:Last", "--out", "x", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("aidc: error: controller 'mpc-stochastic:source=quantiles,scenarios=4' failed at ")
    assert "needs two or more quantile levels" in err and len(err.strip().splitlines()) == 1


def test_nan_quantiles_are_recorded_when_source_is_quantiles(user_forecasters, capsys):
    import json

    code = main(["run", "paper-day", "--controller", "mpc-stochastic:source=quantiles,scenarios=4",
                 "--forecast", "user_fc:NaNQ", "--out", "q", "--quiet", "--days", "0.25"])
    err = capsys.readouterr().err
    assert code == 0
    warnings = [line for line in err.splitlines() if "quantiles were NaN" in line]
    assert len(warnings) == 1 and warnings[0].startswith("aidc: warning: ")
    manifest = json.loads((user_forecasters / "q" / "manifest.json").read_text())
    assert manifest["controller"]["point_filled_decisions"] > 1  # every decision, one warning
    from simulator.results import RunResult

    events = RunResult.load(user_forecasters / "q").events
    assert (events["kind"] == "scenarios_point_filled").sum() == 1


def test_recourse_step_longer_than_the_horizon_is_refused():
    from scenarios import load_builtin

    scenario = load_builtin("paper-day")
    with pytest.raises(ControllerSpecError, match="recourse_step_hours=25 is longer than the 24 h horizon"):
        make_controller("mpc-stochastic:recourse_step_hours=25", scenario, forecast="noisy")
    assert make_controller("mpc-stochastic:recourse_step_hours=24", scenario, forecast="noisy")
    with pytest.raises(ControllerSpecError, match="recourse_step_hours=12 is longer than the 6 h horizon"):
        make_controller("mpc-stochastic:recourse_step_hours=12", scenario, forecast="noisy", horizon_hours=6)


@pytest.mark.parametrize(("bad", "expected"), [
    ("scenarios=abc", "expected an int"), ("cvar_alpha=x", "expected a float"), ("merge=2", "expected true or false")])
def test_option_type_errors_read_well(bad, expected):
    with pytest.raises(ControllerSpecError, match=expected):
        make_controller(f"mpc-stochastic:{bad}", None, forecast="noisy")


def test_cvar_alpha_domain_is_the_documented_one():
    from optimizer.stochastic import StochasticOptions
    from simulator.controllers import REGISTRY

    assert "[0, 1)" in next(o.help for o in REGISTRY["mpc-stochastic"].options if o.name == "cvar_alpha")
    assert StochasticOptions(cvar_alpha=0.0).cvar_alpha == 0.0  # the plain expectation, documented
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"cvar_alpha must lie in \[0, 1\)"):
            StochasticOptions(cvar_alpha=bad)
    assert np.isfinite(StochasticOptions().cvar_alpha)
