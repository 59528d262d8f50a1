"""The MPC's forecasts keep the scenario's contractual structure: a derived export price follows
the import-price forecast (fraction x import) instead of carrying an error of its own."""

from __future__ import annotations

import numpy as np

from optimizer.model import build_model
from optimizer.mpc import MPCController
from scenarios import Scenario, load_builtin
from simulator import make_controller, simulate


class RecordingMPC(MPCController):
    """The joint MPC, keeping every window it solved."""

    def __init__(self, base: MPCController) -> None:
        super().__init__(base.forecaster, solve_options=base.solve_options)
        self.windows: list = []

    def window(self, observation):
        w = super().window(observation)
        self.windows.append(w)
        return w


def test_noisy_export_price_forecast_follows_the_import_price_forecast():
    scenario = load_builtin("us-3site")
    controller = RecordingMPC(make_controller("mpc", scenario, forecast="noisy:sigma_24h=0.5", seed=3))
    simulate(scenario, controller, days=0.25, seed=3)
    assert len(controller.windows) == 6
    fraction = np.array([site.grid.export_price_fraction for site in scenario.sites])
    for w in controller.windows:
        np.testing.assert_allclose(w.export_price_usd_per_mwh, fraction[:, None] * w.import_price_usd_per_mwh,
                                   rtol=0, atol=1e-9)
        # so export pays more than import only at a negative price, and only there can the
        # no-simultaneous-flow binary of the grid matter
        arbitrage = w.export_price_usd_per_mwh > w.import_price_usd_per_mwh + 1e-9
        assert (w.import_price_usd_per_mwh[arbitrage] < 0).all()
        _, index = build_model(w)
        assert index.kept_binaries.get("Grid-mode", 0) == int(arbitrage.sum())


def test_a_site_with_its_own_export_series_keeps_its_own_forecast():
    scenario = load_builtin("us-3site")
    data = scenario.model_dump(mode="python")
    data["sites"][0]["grid"]["export_price_usd_per_mwh"] = 20.0
    scenario = Scenario.model_validate(data)
    controller = RecordingMPC(make_controller("mpc", scenario, forecast="noisy:sigma_24h=0.5", seed=3))
    simulate(scenario, controller, days=0.125, seed=3)
    for w in controller.windows:
        derived = scenario.sites[0].grid.export_price_fraction * w.import_price_usd_per_mwh[0]
        assert not np.allclose(w.export_price_usd_per_mwh[0], derived)  # its own forecast, not derived
        np.testing.assert_allclose(w.export_price_usd_per_mwh[1:], 0.7 * w.import_price_usd_per_mwh[1:], atol=1e-9)


def test_default_horizon_is_hourly_past_the_fine_hours_and_full_resolution_on_request():
    """15-min control (fleet-10): the default window has 4 h of 15-min steps, then hourly steps;
    hourly control (us-3site) keeps full resolution; fine_hours=None gives 15-min steps throughout."""
    from optimizer.defaults import MPC_DEFAULTS

    fleet10 = load_builtin("fleet-10")
    assert fleet10.run.control_interval_minutes == 15
    default = RecordingMPC(make_controller("mpc", fleet10, seed=1))
    default.fine_hours, default.coarse_factor = MPC_DEFAULTS.fine_hours, None
    simulate(fleet10, default, days=0.25, seed=1)
    first = default.windows[0]
    fine = int(MPC_DEFAULTS.fine_hours * 4)
    assert np.allclose(first.dt[:fine], 0.25) and np.allclose(first.dt[fine:], 1.0)
    assert first.dt.sum() == np.float64(6.0)  # the window still ends with the run (6 h)
    assert default.config()["coarse_factor"] == 4

    full = RecordingMPC(make_controller("mpc", fleet10, seed=1, fine_hours=None))
    full.fine_hours = None
    simulate(fleet10, full, days=0.25, seed=1)
    assert np.allclose(full.windows[0].dt, 0.25) and full.config()["fine_hours"] is None

    us = load_builtin("us-3site")
    hourly = RecordingMPC(make_controller("mpc", us, seed=1))
    simulate(us, hourly, days=0.125, seed=1)
    assert np.allclose(hourly.windows[0].dt, 1.0) and hourly.config()["coarse_factor"] is None
