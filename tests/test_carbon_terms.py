"""The end-of-window carbon terms and derived noisy signals are consistent (issue 12, item 8).

* the tail price of jobs running past a window and the battery's terminal value carry the same
  carbon term (derived: the carbon price on the mean intensity);
* compute-only, which does not price carbon, does not see it in the tail price either;
* the noisy forecaster's export-price error follows the import-price error, so a contractual
  export price (0.7 x import) is forecast at 0.7 x the import forecast, never above it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from reference_model import make_site, tiny_window

from forecasts import HistoryView, NoisyForecaster
from optimizer.variants import run_variant
from scenarios.schema import Battery, CarbonPolicy, TrainingJob

PRICE, CARBON_G_PER_KWH, CARBON_PRICE = 50.0, 500.0, 200.0  # carbon: 0.5 t/MWh x 200 USD/t = 100 USD/MWh


def carbon_window(value_usd: float = 200.0):
    """One site, 2 hourly steps; a 1 MW job of 3 h released at 0 runs 1 h past the window."""
    battery = Battery(energy_capacity_mwh=4, charge_power_mw=1, discharge_power_mw=1, discharge_efficiency=0.9)
    job = TrainingJob(name="j", gpus=10, power_mw=1.0, duration_h=3, release_h=0, deadline_h=20, value_usd=value_usd)
    return tiny_window(2, sites=[make_site(price=PRICE, carbon_g_per_kwh=CARBON_G_PER_KWH, battery=battery)],
                       jobs=[job], carbon=CarbonPolicy(price_usd_per_tco2=CARBON_PRICE))


def test_tail_price_and_terminal_value_carry_the_same_carbon_term():
    w = carbon_window()
    carbon_usd_per_mwh = CARBON_PRICE * CARBON_G_PER_KWH / 1000
    assert w.tail_energy_price_usd_per_mwh[0] == pytest.approx(PRICE + carbon_usd_per_mwh)  # PUE 1
    assert w.battery_terminal_value_usd_per_mwh[0] == pytest.approx((PRICE + carbon_usd_per_mwh) * 0.9)
    blind = w.without_carbon_price()
    assert blind.carbon_price_usd_per_tco2 == 0.0
    assert blind.tail_energy_price_usd_per_mwh[0] == pytest.approx(PRICE)
    assert blind.battery_terminal_value_usd_per_mwh[0] == pytest.approx(PRICE * 0.9)


def test_an_explicit_tail_price_or_terminal_value_is_kept_as_given():
    battery = Battery(energy_capacity_mwh=4, charge_power_mw=1, discharge_power_mw=1, terminal_value_usd_per_mwh=33.0)
    w = tiny_window(2, sites=[make_site(price=PRICE, carbon_g_per_kwh=CARBON_G_PER_KWH, battery=battery)],
                    carbon=CarbonPolicy(price_usd_per_tco2=CARBON_PRICE), tail_price=70.0)
    blind = w.without_carbon_price()
    assert w.tail_energy_price_usd_per_mwh[0] == blind.tail_energy_price_usd_per_mwh[0] == pytest.approx(70.0)
    assert w.battery_terminal_value_usd_per_mwh[0] == blind.battery_terminal_value_usd_per_mwh[0] == 33.0


def test_compute_only_prices_the_tail_as_it_prices_the_window_without_carbon():
    # in the window the job costs 2 MWh x 50 (compute-only sees no carbon); its last hour falls past
    # the window: 1 MWh x 50 without carbon (value 200 - 150 > 0: start it), x 150 with it (< 0)
    w = carbon_window(value_usd=200.0)
    compute_only = run_variant(w, "compute-only")
    assert compute_only.plan.start_job.tolist() == [0]
    # the joint model prices carbon everywhere: 200 - 2 x 150 - 150 < 0, it does not start the job
    assert run_variant(w, "joint").plan.start_job.tolist() == []


def test_noisy_export_price_errors_follow_the_import_price_errors():
    rng = np.random.default_rng(4)
    index = pd.date_range("2022-01-01", periods=24 * 40, freq="h", tz="UTC")
    import_price = pd.DataFrame({"a": 60 + 25 * rng.standard_normal(len(index)),
                                 "b": 40 + 10 * rng.standard_normal(len(index))}, index=index)
    export_price = 0.7 * import_price
    forecaster = NoisyForecaster(seed=3)
    forecaster.bind_truth("import_price", import_price)
    forecaster.bind_truth("export_price", export_price)
    above = 0
    for day in range(1, 30):
        issue = index[0] + pd.Timedelta(days=day)
        imports = forecaster.forecast("import_price", HistoryView(import_price, issue), issue, pd.Timedelta("1h"), 24)
        exports = forecaster.forecast("export_price", HistoryView(export_price, issue), issue, pd.Timedelta("1h"), 24)
        np.testing.assert_allclose(exports.values.to_numpy(), 0.7 * imports.values.to_numpy(), rtol=1e-12)
        positive = imports.values.to_numpy() >= 0
        above += int((exports.values.to_numpy() > imports.values.to_numpy())[positive].sum())
        assert not np.allclose(imports.values.to_numpy(), import_price.loc[imports.values.index].to_numpy())
    # (0.7 x a negative import forecast lies above it, as 0.7 x a negative import price does in reality)
    assert above == 0


def test_a_derived_signal_takes_its_parents_settings_unless_given_its_own():
    assert NoisyForecaster(**{"import_price.sigma_24h": 0.2}).settings["export_price"].sigma_24h == 0.2
    own = NoisyForecaster(**{"import_price.sigma_24h": 0.2, "export_price.sigma_24h": 0.1})
    assert own.settings["export_price"].sigma_24h == 0.1 and own.settings["import_price"].sigma_24h == 0.2
