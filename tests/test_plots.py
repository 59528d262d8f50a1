"""Plots: each writes a PNG from a run result, a runs table or the offline table, and returns the figure."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from test_simulator import small_scenario

from simulator import make_controller, simulate
from simulator.plots import (
    plot_carbon,
    plot_comparison,
    plot_dispatch,
    plot_kpi_vs_forecast_error,
    plot_offline_study,
    plot_routing,
    plot_soc,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result():
    scenario = small_scenario(2, 2, 2, 12, variant=21)
    controller = make_controller("mpc", scenario, forecast="noisy:sigma_24h=0.2", seed=2)
    return simulate(scenario, controller, days=0.25, seed=2)


@pytest.fixture(scope="module")
def runs():
    """A runs table as a sweep writes it: an MPC at three error levels and a heuristic, three seeds."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in (1, 2, 3):
        for sigma in (0.0, 0.1, 0.3):
            rows.append({"variant": "base", "controller": "mpc", "forecast": f"noisy:sigma_24h={sigma}",
                         "forecast_sigma_24h": sigma, "seed": seed, "benefit_usd": 1000 - 500 * sigma + rng.normal(),
                         "regret_usd": 20 + 300 * sigma + rng.normal()})
        rows.append({"variant": "base", "controller": "local", "forecast": "n/a", "forecast_sigma_24h": np.nan,
                     "seed": seed, "benefit_usd": 800 + rng.normal(), "regret_usd": 220 + rng.normal()})
    return pd.DataFrame(rows)


def written(path):
    data = path.read_bytes()
    return data.startswith(PNG) and len(data) > 10_000


@pytest.mark.parametrize("plot", [plot_dispatch, plot_soc, plot_routing, plot_carbon])
def test_run_plots_write_png_files(plot, result, tmp_path):
    path = tmp_path / f"{plot.__name__}.png"
    figure = plot(result, path)
    assert written(path)
    assert figure.axes


def test_run_plots_return_a_figure_without_a_path(result):
    figure = plot_soc(result)
    lines = figure.axes[0].get_lines()
    assert len(lines) == 2  # one SOC line per site with a battery
    soc = result.ticks[result.ticks["site"] == "s0"]["soc_mwh"].to_numpy()
    assert np.allclose(lines[0].get_ydata(), soc)
    carbon = plot_carbon(result)
    total = next(line for line in carbon.axes[0].get_lines() if line.get_label() == "fleet total")
    assert total.get_ydata()[-1] == pytest.approx(result.ticks["emissions_t"].sum())


def test_comparison_bars_have_error_bars(runs, tmp_path):
    path = tmp_path / "comparison.png"
    figure = plot_comparison(runs, "benefit_usd", path=path)
    assert written(path)
    bars = figure.axes[0].patches
    assert len(bars) == 4  # three forecasts of the MPC, one "n/a" for the heuristic
    local = runs[runs["controller"] == "local"]["benefit_usd"]
    assert max(bar.get_height() for bar in bars) == pytest.approx(runs[runs["forecast"] == "noisy:sigma_24h=0.0"]
                                                                   ["benefit_usd"].mean())
    assert any(bar.get_height() == pytest.approx(local.mean()) for bar in bars)
    with pytest.raises(ValueError, match="no column"):
        plot_comparison(runs, "nonsense")


def test_kpi_against_forecast_error(runs, tmp_path):
    path = tmp_path / "error.png"
    figure = plot_kpi_vs_forecast_error(runs, "regret_usd", path=path)
    assert written(path)
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert "mpc" in labels and "local (no forecast)" in labels


def test_offline_study_plot(tmp_path):
    from optimizer.offline import offline_table

    table = offline_table(small_scenario(2, 2, 2, 12, variant=21), ("joint", "compute-only", "energy-only"))
    path = tmp_path / "offline.png"
    figure = plot_offline_study(table, path, rich=table)
    assert written(path) and len(figure.axes) == 3


def test_new_plots_leave_pyplot_alone(result, runs):
    plot_routing(result)
    plot_comparison(runs)
    if "matplotlib.pyplot" in sys.modules:  # imported by another test: no figure of ours is registered there
        import matplotlib.pyplot as plt

        before = plt.get_fignums()
        plot_carbon(result)
        assert plt.get_fignums() == before


def test_comparison_colours_bars_by_controller_and_hatches_the_forecast(runs):
    from matplotlib.colors import to_hex

    from simulator.plots import CONTROLLER_COLOURS

    figure = plot_comparison(runs, "benefit_usd")
    bars = figure.axes[0].patches
    local_mean = runs[runs["controller"] == "local"]["benefit_usd"].mean()
    for bar in bars:  # the colour is the controller's, as in the regret plot
        owner = "local" if bar.get_height() == pytest.approx(local_mean) else "mpc"
        assert to_hex(bar.get_facecolor()) == CONTROLLER_COLOURS[owner]
    mpc_hatches = [bar.get_hatch() or "" for bar in bars if bar.get_height() != pytest.approx(local_mean)]
    assert len(set(mpc_hatches)) == 3  # three forecasts, three hatchings
    legend = figure.axes[0].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == list(dict.fromkeys(runs["forecast"]))


def test_site_colours_are_not_controller_colours():
    from matplotlib.colors import to_rgb

    from simulator.plots import CONTROLLER_COLOURS, site_colours

    sites = site_colours([f"s{i}" for i in range(5)])
    for site in sites.values():
        for controller in CONTROLLER_COLOURS.values():
            assert np.linalg.norm(np.subtract(to_rgb(site), to_rgb(controller))) > 0.15, (site, controller)


def test_the_legend_names_the_line_style_of_each_scenario_variant(runs):
    two = pd.concat([runs, runs.assign(variant="rich", regret_usd=runs["regret_usd"] * 2)], ignore_index=True)
    figure = plot_kpi_vs_forecast_error(two, "regret_usd")
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert "mpc / base (solid)" in labels and "mpc / rich (dashed)" in labels
    assert len(labels) == len(set(labels))
