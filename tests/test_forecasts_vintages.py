"""Vintage store and skill by lead time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasts import (
    Forecast,
    HistoryView,
    VintageStore,
    make_forecaster,
    pinball_loss,
    skill_by_lead,
)

HOUR = pd.Timedelta("1h")
START = pd.Timestamp("2022-05-01", tz="UTC")


def ramp(hours: int = 200, keys: tuple[str, ...] = ("A",)) -> pd.DataFrame:
    index = pd.date_range(START, periods=hours, freq="h", tz="UTC")
    return pd.DataFrame({key: np.arange(hours, dtype=float) * (i + 1) for i, key in enumerate(keys)}, index=index)


def run_vintages(spec: str, truth: pd.DataFrame, issues: range, horizon: int = 6, signal: str = "carbon",
                 step: pd.Timedelta = HOUR) -> VintageStore:
    forecaster = make_forecaster(spec, seed=1)
    if forecaster.is_oracle:
        forecaster.bind_truth(signal, truth)
    store = VintageStore()
    for hour in issues:
        issue = START + hour * HOUR
        store.record(signal, issue, forecaster.forecast(signal, HistoryView(truth, issue), issue, step, horizon))
    return store


def test_vintage_table_layout():
    truth = ramp(keys=("A", "B"))
    store = run_vintages("noisy:quantiles=0.1/0.9", truth, range(24, 27), horizon=4)
    frame = store.to_frame()
    assert list(frame.columns) == ["issue_time", "target_time", "lead_h", "signal", "key", "quantile", "value"]
    assert len(store) == 3
    assert len(frame) == 3 * 4 * 2 * 3  # issues × steps × keys × (point + 2 quantiles)
    assert str(frame["issue_time"].dtype) == "datetime64[ns, UTC]"
    point = frame[frame["quantile"].isna()]
    assert sorted(point["lead_h"].unique()) == [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_allclose(point["lead_h"], (point["target_time"] - point["issue_time"]) / HOUR + 1)
    assert set(frame["quantile"].dropna()) == {0.1, 0.9}
    first = point[(point["issue_time"] == START + 24 * HOUR) & (point["key"] == "B")]
    assert list(first["target_time"]) == list(pd.date_range(START + 24 * HOUR, periods=4, freq="h"))


def test_empty_store_gives_empty_table_and_skill():
    frame = VintageStore().to_frame()
    assert list(frame.columns)[:3] == ["issue_time", "target_time", "lead_h"] and len(frame) == 0
    assert len(skill_by_lead(frame, {})) == 0


def test_record_checks_issue_time():
    truth = ramp()
    forecaster = make_forecaster("persistence")
    issue = START + 30 * HOUR
    fc = forecaster.forecast("carbon", HistoryView(truth, issue), issue, HOUR, 3)
    with pytest.raises(ValueError, match="issued at"):
        VintageStore().record("carbon", issue + HOUR, fc)
    bare = Forecast(values=fc.values)  # no metadata: the step is read from the index
    store = VintageStore()
    store.record("carbon", issue, bare)
    assert list(store.to_frame()["lead_h"]) == [1.0, 2.0, 3.0]


def test_perfect_has_zero_error():
    truth = ramp(keys=("A", "B"))
    skill = skill_by_lead(run_vintages("perfect", truth, range(24, 100)).to_frame(), {"carbon": truth})
    assert list(skill.columns[:8]) == ["signal", "key", "lead_h", "n", "mae", "rmse", "bias", "pinball"]
    assert (skill["n"] == 76).all() and len(skill) == 2 * 6
    assert (skill[["mae", "rmse", "bias"]].to_numpy() == 0).all()
    assert skill["pinball"].isna().all()


def test_persistence_on_a_ramp_has_error_equal_to_lead():
    # truth x_t = t; persistence at τ forecasts x_{τ-1}; the target ending at lead L has truth τ+L-1
    truth = ramp()
    skill = skill_by_lead(run_vintages("persistence", truth, range(24, 124)).to_frame(), {"carbon": truth})
    np.testing.assert_allclose(skill["mae"], skill["lead_h"])
    np.testing.assert_allclose(skill["rmse"], skill["lead_h"])
    np.testing.assert_allclose(skill["bias"], -skill["lead_h"])


def test_skill_uses_interval_means_for_coarser_steps_and_pools_keys():
    truth = ramp(keys=("A", "B"))
    store = run_vintages("perfect", truth, range(24, 30), horizon=3, step=pd.Timedelta("2h"))
    skill = skill_by_lead(store.to_frame(), {"carbon": truth}, per_key=False)
    assert list(skill["lead_h"]) == [2.0, 4.0, 6.0] and (skill["key"] == "all").all()
    assert (skill["n"] == 12).all() and np.allclose(skill["mae"], 0.0)


def test_rows_without_truth_are_not_counted():
    truth = ramp(hours=40)
    store = run_vintages("persistence", truth, range(24, 30), horizon=12)
    skill = skill_by_lead(store.to_frame(), {"carbon": truth})
    # targets from hour 40 on are outside the truth frame
    expected_n = [sum(1 for issue in range(24, 30) if issue + lead <= 40) for lead in range(1, 13)]
    assert list(skill["n"]) == expected_n
    with pytest.raises(ValueError, match="no truth"):
        skill_by_lead(store.to_frame(), {"pv": truth})


def test_pinball_loss_hand_computed():
    # y = 10: q=0.9 at 8 → 0.9·2 = 1.8; q=0.1 at 12 → (0.1−1)·(−2) = 1.8; q=0.5 at 11 → 0.5
    np.testing.assert_allclose(pinball_loss(10.0, np.array([8.0, 12.0, 11.0]), np.array([0.9, 0.1, 0.5])),
                               [1.8, 1.8, 0.5])


def test_skill_pinball_from_recorded_quantiles_hand_computed():
    index = pd.date_range(START, periods=2, freq="h", tz="UTC")
    truth = pd.DataFrame({"A": [10.0, 20.0]}, index=index)
    values = pd.DataFrame({"A": [11.0, 18.0]}, index=index)
    quantiles = {
        0.1: pd.DataFrame({"A": [12.0, 15.0]}, index=index),
        0.9: pd.DataFrame({"A": [8.0, 25.0]}, index=index),
    }
    store = VintageStore()
    store.record("carbon", START, Forecast(values=values, quantiles=quantiles, issue_time=START, step=HOUR))
    skill = skill_by_lead(store.to_frame(), {"carbon": truth}).set_index("lead_h")
    # lead 1: y=10, f=11 → |e| 1; q0.1 at 12 → 1.8; q0.9 at 8 → 1.8
    # lead 2: y=20, f=18 → |e| 2; q0.1 at 15 → 0.1·5 = 0.5; q0.9 at 25 → 0.1·5 = 0.5
    np.testing.assert_allclose(skill["mae"], [1.0, 2.0])
    np.testing.assert_allclose(skill["bias"], [1.0, -2.0])
    np.testing.assert_allclose(skill["pinball_q0.1"], [1.8, 0.5])
    np.testing.assert_allclose(skill["pinball_q0.9"], [1.8, 0.5])
    np.testing.assert_allclose(skill["pinball"], [1.8, 0.5])


def test_noisy_skill_recovers_its_configured_sigma():
    truth = pd.DataFrame({"A": np.full(1300, 100.0)}, index=pd.date_range(START, periods=1300, freq="h", tz="UTC"))
    store = run_vintages("noisy:sigma_24h=0.2,curve=linear,quantiles=none", truth, range(1, 1201), horizon=24)
    skill = skill_by_lead(store.to_frame(), {"carbon": truth}).set_index("lead_h")
    expected_rmse = 100.0 * 0.2 * np.array([1.0, 12.0, 24.0]) / 24.0
    np.testing.assert_allclose(skill.loc[[1.0, 12.0, 24.0], "rmse"], expected_rmse, rtol=0.08)
