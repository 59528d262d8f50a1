"""A site's exogenous load (base_load_mw), deterministic replays ([noise], --noise) and the worked
example in scenarios/examples (issue 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reference_model import TIGHT
from scipy.optimize import linprog
from scipy.sparse import bmat, eye

from optimizer import accounting
from optimizer.model import build_model
from optimizer.plan import read_plan
from optimizer.solvers import solve
from optimizer.window import offline_inputs
from scenarios import SIGNALS, load_builtin, nominal_signals, parse_scenario
from simulator import make_controller, simulate
from simulator.processes import NoiseParameters, realise_signals

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "scenarios" / "examples" / "microgrid" / "microgrid.toml"
HOURS = 168
TOU = [80.0] * 7 + [140.0] * 10 + [220.0] * 4 + [110.0] * 3  # USD/MWh by hour of day
TERMINAL_USD_PER_MWH = 100.0


def week_data(seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hourly load (MW), PV availability (per unit) and ToU import price (USD/MWh) for one week."""
    rng = np.random.default_rng(seed)
    hour = np.arange(HOURS) % 24
    load = 8.0 + 3.0 * np.sin(np.pi * np.clip(hour - 7, 0, 12) / 12) + rng.uniform(-0.5, 0.5, HOURS)
    pv = np.clip(np.sin(np.pi * (hour - 6) / 14), 0.0, None) * rng.uniform(0.4, 1.0, HOURS)
    return load, pv, np.array(TOU * 7)


def plain_site(load: np.ndarray, pv: np.ndarray) -> dict:
    """The one-site scenario as a TOML would give it (bare lists are hourly values)."""
    return {
        "name": "plain-site", "run": {"start": "2022-06-13T00:00:00Z", "days": 7},
        "sites": [{
            "name": "site", "region": "here", "gpus": 0, "throughput_req_per_s_per_gpu": 1.0,
            "idle_power_mw": 0.0, "power_capacity_mw": 0.0,
            "base_load_mw": list(load), "pv_capacity_mw": 15.0, "pv_availability": list(pv),
            "battery": {"energy_capacity_mwh": 40.0, "charge_power_mw": 10.0, "discharge_power_mw": 10.0,
                        "charge_efficiency": 0.95, "discharge_efficiency": 0.95, "soc_min_fraction": 0.1,
                        "soc_max_fraction": 0.9, "initial_soc_fraction": 0.5, "degradation_cost_usd_per_mwh": 0.0,
                        "terminal_value_usd_per_mwh": TERMINAL_USD_PER_MWH},
            "grid": {"import_limit_mw": 40.0, "export_limit_mw": 40.0, "import_price_usd_per_mwh": TOU,
                     "export_price_fraction": 0.5, "carbon_intensity_g_per_kwh": 300.0},
        }],
        "regions": [{"name": "here"}], "latency_ms": {"here": {"site": 0.0}},
    }


def independent_lp(load: np.ndarray, pv_mw: np.ndarray, price: np.ndarray) -> float:
    """min sum_t (c imp - c/2 exp) - V (soc_T - soc_0), hourly steps, written without aidc.

    Variables per hour: import, export, charge, discharge, PV used, SOC at the hour's end.
    pv_used + imp + dis - ch - exp = load;  soc_t = soc_{t-1} + 0.95 ch - dis / 0.95;
    4 <= soc <= 36 MWh (10-90 % of 40), soc_{-1} = 20; |ch|, |dis| <= 10 MW; PV curtailable.
    """
    T = len(load)
    I, shift = eye(T, format="csr"), eye(T, k=-1, format="csr")
    a_eq = bmat([[I, -I, -I, I, I, None],                             # balance
                 [None, None, -0.95 * I, I / 0.95, None, I - shift]]).tocsr()  # SOC dynamics
    soc0 = 20.0
    b_eq = np.concatenate([load, np.r_[soc0, np.zeros(T - 1)]])
    cost = np.concatenate([price, -0.5 * price, np.zeros(T), np.zeros(T), np.zeros(T), np.zeros(T)])
    cost[-1] = -TERMINAL_USD_PER_MWH
    bounds = ([(0, 40.0)] * T + [(0, 40.0)] * T + [(0, 10.0)] * T + [(0, 10.0)] * T
              + [(0, p) for p in pv_mw] + [(4.0, 36.0)] * T)
    result = linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    assert result.status == 0, result.message
    return float(result.fun) + TERMINAL_USD_PER_MWH * soc0


def test_plain_site_week_solves_to_the_independent_lp_optimum():
    load, pv, price = week_data()
    scenario = parse_scenario(plain_site(load, pv))
    w = offline_inputs(scenario, step_hours=1.0)
    np.testing.assert_allclose(w.base_load, load[None, :])
    model, index = build_model(w)
    result = solve(model, TIGHT)
    assert result.has_solution
    plan = read_plan(w, index, model.variable_blocks, result.x)
    kpis = accounting.account(w, plan)
    expected = independent_lp(load, 15.0 * pv, price)
    assert result.objective == pytest.approx(expected, rel=1e-7, abs=1e-4)
    assert -kpis["benefit_usd"] == pytest.approx(expected, rel=1e-7, abs=1e-4)
    assert kpis["base_load_energy_mwh"] == pytest.approx(load.sum())
    np.testing.assert_allclose(accounting.balance_residual_mw(w, plan), 0.0, atol=1e-6)


def test_without_the_base_load_in_the_balance_the_optimum_differs():
    # the test above can fail: the same site with no load has a different (lower-cost) optimum
    load, pv, price = week_data()
    w = offline_inputs(parse_scenario(plain_site(np.zeros(HOURS), pv)), step_hours=1.0)
    result = solve(build_model(w)[0], TIGHT)
    assert result.objective < independent_lp(load, 15.0 * pv, price) - 1000.0


def test_plant_serves_the_base_load_beside_pue_times_it():
    data = load_builtin("paper-day").model_dump(mode="python", exclude_none=True)
    data["sites"][0]["base_load_mw"] = 3.0
    data["noise"] = {"enabled": False}
    scenario = parse_scenario(data)
    result = simulate(scenario, make_controller("greedy", scenario), seed=1)
    ticks = result.ticks
    dt = scenario.run.plant_tick_minutes / 60.0
    first = ticks[ticks["site"] == scenario.sites[0].name]
    assert (first["base_load_mw"] == 3.0).all()
    assert (ticks[ticks["site"] != scenario.sites[0].name]["base_load_mw"] == 0.0).all()
    supply = ticks["renewable_used_mw"] + ticks["import_mw"] + ticks["discharge_mw"] + ticks["generator_mw"] \
        + ticks["unmet_load_mw"]
    uses = ticks["facility_load_mw"] + ticks["base_load_mw"] + ticks["charge_mw"] + ticks["export_mw"]
    np.testing.assert_allclose(supply, uses, atol=1e-6)
    np.testing.assert_allclose(first["facility_load_mw"], first["pue"] * first["it_load_mw"], rtol=1e-12)
    assert result.kpis["base_load_energy_mwh"] == pytest.approx(3.0 * 24 * scenario.run.days, rel=1e-12)
    assert result.kpis["base_load_energy_mwh"] == pytest.approx(float(ticks["base_load_mw"].sum() * dt))
    from simulator.plots import plot_dispatch

    figure = plot_dispatch(result)
    first_axis = figure.axes[0]
    labels = first_axis.get_legend_handles_labels()[1]
    assert "base load" in labels and "facility + base load + charge" in labels
    load_line = next(line for line in first_axis.get_lines() if line.get_label() == "facility + base load + charge")
    np.testing.assert_allclose(load_line.get_ydata(), first["facility_load_mw"] + 3.0 + first["charge_mw"])
    import matplotlib.pyplot as plt

    plt.close(figure)


# --- deterministic replays ---------------------------------------------------------------------

def test_noise_off_replays_every_signal_exactly_and_noise_on_does_not():
    scenario = load_builtin("paper-day")
    tick_h = scenario.run.plant_tick_minutes / 60.0
    n = int(round(24 / tick_h))
    nominal = nominal_signals(scenario, pd.Timestamp(scenario.run.start), n, tick_h)
    for switch, equal in (("off", True), ("on", False)):
        realised = realise_signals(scenario, 7, 24.0, 24.0, NoiseParameters.for_scenario(scenario, switch))
        first = realised.run_offset
        same = [np.array_equal(realised.frames[s].to_numpy()[first:first + n], nominal[s].to_numpy())
                for s in SIGNALS]
        assert all(same) if equal else not any(same[:1]) and not all(same)


def test_noise_table_in_the_scenario_switches_the_run_to_an_exact_replay():
    data = load_builtin("paper-day").model_dump(mode="python", exclude_none=True)
    data["noise"] = {"enabled": False}
    scenario = parse_scenario(data)
    result = simulate(scenario, make_controller("local", scenario), seed=3)
    assert result.manifest["noise"]["demand_poisson"] is False
    assert result.manifest["noise"]["price_sigma"] == 0.0
    tick_h = scenario.run.plant_tick_minutes / 60.0
    n = int(round(24 * scenario.run.days / tick_h))
    nominal = nominal_signals(scenario, pd.Timestamp(scenario.run.start), n, tick_h)
    first = result.ticks[result.ticks["site"] == scenario.sites[0].name]
    np.testing.assert_array_equal(first["import_price_usd_per_mwh"].to_numpy(),
                                  nominal["import_price"][scenario.sites[0].name].to_numpy())
    demand = result.routing.groupby(["time", "class"])[["served_req_per_s", "dropped_req_per_s"]].sum().sum(axis=1)
    realised = demand.unstack("class")[list(nominal["demand"].columns)].to_numpy()
    np.testing.assert_allclose(realised, nominal["demand"].to_numpy(), rtol=1e-9)


# --- the worked example, run as the README shows it ----------------------------------------------

def aidc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "simulator.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, check=False, timeout=600)


def test_example_validates_with_its_file_report():
    done = aidc("validate", "scenarios/examples/microgrid/microgrid.toml", cwd=REPO)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip().startswith("file ")]
    assert len(lines) == 3
    load_line = next(line for line in lines if "base_load_mw" in line)
    for part in ("load_15min.csv", "'load_mw'", "2022-06-11 22:00 to 2022-06-20 22:00 UTC", "every 15 min",
                 "scale 1", "2 gap points filled (interpolate)"):
        assert part in load_line


def readme_example_commands() -> list[list[str]]:
    """The `aidc ...` lines of the README's worked-example block, comments dropped."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text[text.index("**Worked example: your own data.**"):]
    block = block[block.index("```bash") + len("```bash"):]
    block = block[:block.index("```")]
    return [line.split("#")[0].split() for line in block.strip().splitlines() if line.startswith("aidc ")]


def test_readme_example_commands_run_as_written(tmp_path):
    # a working directory that looks like the checkout (scenarios/ linked), so the command's
    # relative path is used as written and the result folder lands in tmp_path
    (tmp_path / "scenarios").symlink_to(REPO / "scenarios")
    commands = readme_example_commands()
    assert [c[:2] for c in commands] == [["aidc", "validate"], ["aidc", "run"]]
    for command in commands:
        done = aidc(*command[1:], cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "microgrid-run" / "dispatch.png").is_file()


def test_example_runs_from_any_directory(tmp_path):
    done = aidc("run", str(EXAMPLE), "--controller", "mpc", "--noise", "off", "--days", "2",
                "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "base load (MWh)" in done.stdout
    ticks = pd.read_parquet(tmp_path / "out" / "ticks.parquet")
    assert ticks["base_load_mw"].between(4.0, 14.0).all()
    assert (tmp_path / "out" / "dispatch.png").is_file()


def test_a_bad_example_file_is_one_line_naming_file_column_and_row(tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    for item in EXAMPLE.parent.iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    prices = pd.read_csv(folder / "prices.csv")
    prices.loc[40, "DE_LU"] = np.nan
    prices.to_csv(folder / "prices.csv", index=False)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    done = aidc("validate", str(folder / "microgrid.toml"), cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "prices.csv" in lines[0] and "'DE_LU'" in lines[0] and "row 41 (line 42)" in lines[0]
    run = aidc("run", str(folder / "microgrid.toml"), "--days", "1", cwd=tmp_path)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and "row 41" in run.stderr
    assert before == {p.name: p.read_bytes() for p in folder.iterdir()}
