"""Plots of a run (matplotlib, written to files; no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.results import RunResult

SUPPLY = (  # column, label, colour: stacked from the bottom
    ("renewable_used_mw", "renewables", "#4daf4a"),
    ("discharge_mw", "battery discharge", "#984ea3"),
    ("generator_mw", "generator", "#a65628"),
    ("import_mw", "grid import", "#377eb8"),
    ("unmet_load_mw", "unmet", "#e41a1c"),
)


def plot_dispatch(result: RunResult, path: str | Path | None = None, dpi: int = 110) -> object:
    """Per-site dispatch: stacked supply against the load (facility + charge + export), with the
    import price and carbon intensity on twin axes. Returns the figure; saves it when ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ticks = result.ticks
    sites = list(dict.fromkeys(ticks["site"]))
    figure, axes = plt.subplots(len(sites), 1, figsize=(12, 3.2 * len(sites) + 0.8), sharex=True, squeeze=False)
    legend_axes = []
    for axis, site in zip(axes[:, 0], sites, strict=True):
        frame = ticks[ticks["site"] == site]
        time = frame["time"].dt.tz_convert(None).to_numpy()
        layers = [frame[column].to_numpy(dtype=float) for column, _, _ in SUPPLY]
        axis.stackplot(time, *layers, labels=[label for _, label, _ in SUPPLY],
                       colors=[colour for _, _, colour in SUPPLY], alpha=0.85, step="post")
        load = frame["facility_load_mw"].to_numpy() + frame["charge_mw"].to_numpy()
        axis.step(time, load, where="post", color="black", lw=1.2, label="facility load + charge")
        axis.step(time, load + frame["export_mw"].to_numpy(), where="post", color="black", lw=0.8, ls=":",
                  label="+ export")
        axis.set_ylabel(f"{site}\nMW")
        axis.set_xlim(time[0], time[-1])
        price_axis = axis.twinx()
        price_axis.step(time, frame["import_price_usd_per_mwh"].to_numpy(), where="post", color="#ff7f00",
                        lw=1.0, label="import price")
        price_axis.set_ylabel("USD/MWh", color="#ff7f00")
        carbon_axis = axis.twinx()
        carbon_axis.spines["right"].set_position(("axes", 1.07))
        carbon_axis.step(time, 1000 * frame["carbon_t_per_mwh"].to_numpy(), where="post", color="#666666",
                         lw=0.9, ls="--", label="carbon intensity")
        carbon_axis.set_ylabel("gCO2/kWh", color="#666666")
        if not legend_axes:
            legend_axes = [axis, price_axis, carbon_axis]
    handles, labels = [], []
    for axis in legend_axes:
        more = axis.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    manifest = result.manifest
    benefit = result.kpis.get("benefit_usd", np.nan)
    top = 1.0 - 0.75 / figure.get_figheight()
    figure.suptitle(f"{manifest.get('scenario')} | {manifest.get('controller_name')} | seed {manifest.get('seed')} | "
                    f"benefit {benefit:,.0f} USD", y=0.995, fontsize=10)
    figure.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, top + 0.55 / figure.get_figheight()),
                  ncol=5, frameon=False, fontsize=8)
    figure.tight_layout(rect=(0, 0, 1, top))
    if path is not None:
        figure.savefig(path, dpi=dpi)
        plt.close(figure)
    return figure
