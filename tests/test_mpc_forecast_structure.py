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
        arbitrage = w.export_price_usd_per_mwh > w.import_price_usd_per_mwh
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
