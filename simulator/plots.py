"""Plots of a run (matplotlib, written to files; no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scenarios.timebase import days_to_hours
from simulator.results import RunResult

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SUPPLY = (  # column, label, colour: stacked from the bottom
    ("renewable_used_mw", "renewables", "#4daf4a"),
    ("discharge_mw", "battery discharge", "#984ea3"),
    ("generator_mw", "generator", "#a65628"),
    ("import_mw", "grid import", "#377eb8"),
    ("unmet_load_mw", "unmet", "#e41a1c"),
)


def plot_dispatch(result: RunResult, path: str | Path | None = None, dpi: int = 110) -> Figure:
    """Per-site dispatch: stacked supply against the load (facility + base load + charge + export),
    the base load drawn on its own where a site has one, with the import price and carbon
    intensity on twin axes. Power in MW, tick averages; times in UTC. Returns the figure; saves
    it when ``path``."""
    ticks = result.ticks
    sites = list(dict.fromkeys(ticks["site"]))
    figure = _figure(figsize=(12, 3.2 * len(sites) + 0.9))
    axes = figure.subplots(len(sites), 1, sharex=True, squeeze=False)
    legend_axes: list[Axes] = []
    for axis, site in zip(axes[:, 0], sites, strict=True):
        frame = ticks[ticks["site"] == site]
        time = _naive_times(frame)
        layers = [frame[column].to_numpy(dtype=float) for column, _, _ in SUPPLY]
        axis.stackplot(time, *layers, labels=[label for _, label, _ in SUPPLY],
                       colors=[colour for _, _, colour in SUPPLY], alpha=0.85, step="post")
        base = frame["base_load_mw"].to_numpy(dtype=float) if "base_load_mw" in frame else np.zeros(len(frame))
        load = frame["facility_load_mw"].to_numpy() + base + frame["charge_mw"].to_numpy()
        if base.any():
            axis.step(time, base, where="post", color="#999999", lw=1.0, ls="-.", label="base load")
        axis.step(time, load, where="post", color="black", lw=1.2, label="facility + base load + charge")
        axis.step(time, load + frame["export_mw"].to_numpy(), where="post", color="black", lw=0.8, ls=":",
                  label="+ export")
        axis.set_ylabel(f"{site}\npower (MW)")
        axis.set_xlim(time[0], time[-1])
        price_axis = axis.twinx()
        price_axis.step(time, frame["import_price_usd_per_mwh"].to_numpy(), where="post", color="#ff7f00",
                        lw=1.0, label="import price")
        price_axis.set_ylabel("import price\n(USD/MWh)", color="#ff7f00", fontsize=8)
        carbon_axis = axis.twinx()
        carbon_axis.spines["right"].set_position(("axes", 1.08))
        carbon_axis.step(time, 1000 * frame["carbon_t_per_mwh"].to_numpy(), where="post", color="#666666",
                         lw=0.9, ls="--", label="carbon intensity")
        carbon_axis.set_ylabel("carbon intensity\n(gCO2/kWh)", color="#666666", fontsize=8)
        if not legend_axes:
            legend_axes = [axis, price_axis, carbon_axis]
    _time_axis(axes[-1, 0])
    axes[-1, 0].set_xlabel("time (UTC)")
    handles: list[Artist] = []
    labels: list[str] = []
    for axis in legend_axes:
        more = axis.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    benefit = result.kpis.get("benefit_usd", np.nan)
    top = 1.0 - 0.8 / figure.get_figheight()
    figure.suptitle(_title(result, f"dispatch per site (averages over each {_tick_minutes(result)} tick), "
                                   f"benefit {benefit:,.0f} USD"), y=0.995, fontsize=10)
    figure.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, top + 0.55 / figure.get_figheight()),
                  ncol=5, frameon=False, fontsize=8)
    figure.tight_layout(rect=(0, 0, 1, top))
    if path is not None:
        figure.savefig(path, dpi=dpi)
    return figure


def _tick_minutes(result: RunResult) -> str:
    minutes = result.manifest.get("plant_tick_minutes")
    return f"{minutes:g}-min" if isinstance(minutes, int | float) else "plant"


def _sites_of(result: RunResult) -> list[str]:
    """The run's sites in the scenario's order (the colour of a site follows it)."""
    names = result.manifest.get("accounting", {}).get("site_names")
    return list(names) if names else list(dict.fromkeys(result.ticks["site"]))


# ---------------------------------------------------------------------------------------------
# more plots of a run: SOC, routing, carbon against the budget


def _figure_of(axis: Axes) -> Figure:
    """The top-level figure holding ``axis``."""
    figure = axis.get_figure(root=True)
    if figure is None:
        raise ValueError("the axes belong to no figure")
    return figure


def _figure(**kwargs: Any) -> Figure:
    """A figure outside pyplot: no global backend or figure registry is touched (scripts, the
    CLI and worker processes need no display; a notebook shows the returned figure)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _finish(figure: Figure, path: str | Path | None, dpi: int) -> Figure:
    """Lay out, save when ``path``, return the figure."""
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=dpi)
    return figure


def _title(result: RunResult, what: str) -> str:
    m = result.manifest
    return f"{what} | {m.get('scenario')} | {m.get('controller_name')}{_forecast_note(m)} | seed {m.get('seed')}"


def _forecast_note(m: dict[str, Any]) -> str:
    """`` | forecast NAME`` with its error level σ at 24 h when one was given (the manifest holds
    every parameter of the forecaster); empty without a forecaster."""
    if not m.get("forecaster"):
        return ""
    config = m.get("forecaster_config") or {}
    name = config.get("name") or str(m["forecaster"]).split(":")[0]
    sigma = config.get("sigma_24h")
    return f" | forecast {name}" + (f" σ24h={sigma:g}" if isinstance(sigma, int | float) else "")


def _naive_times(frame: pd.DataFrame) -> np.ndarray:
    return frame["time"].dt.tz_convert(None).to_numpy()


def plot_soc(result: RunResult, path: str | Path | None = None, dpi: int = 110) -> Figure:
    """Battery state of charge (MWh, at the end of each tick) per site over the run, with charge
    and discharge power (MW) below; sites without a battery are named in the legend, not drawn.
    Returns the figure; saves it when ``path``."""
    ticks = result.ticks
    present = result.manifest.get("accounting", {}).get("battery_present")
    all_sites = list(dict.fromkeys(ticks["site"]))
    sites = all_sites
    if present is not None:
        sites = [site for site, has in zip(all_sites, present, strict=False) if has]
    colours = site_colours(_sites_of(result))
    figure = _figure(figsize=(12, 5.5))
    soc_axis, power_axis = figure.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    for site in sites:
        frame = ticks[ticks["site"] == site]
        time = _naive_times(frame)
        soc_axis.step(time, frame["soc_mwh"].to_numpy(), where="post", label=site, color=colours[site])
        power = frame["charge_mw"].to_numpy() - frame["discharge_mw"].to_numpy()
        power_axis.step(time, power, where="post", color=colours[site], lw=0.9)
    soc_axis.set_ylabel("state of charge\n(MWh)")
    power_axis.set_ylabel("battery power (MW)\ncharge + / discharge −")
    power_axis.set_xlabel("time (UTC)")
    power_axis.axhline(0.0, color="black", lw=0.5)
    _time_axis(power_axis)
    if len(ticks):
        times = _naive_times(ticks)
        soc_axis.set_xlim(times[0], times[-1])
    missing = [site for site in all_sites if site not in sites]
    if sites:
        handles, labels = soc_axis.get_legend_handles_labels()
        if missing:
            from matplotlib.patches import Patch

            handles.append(Patch(color="none"))
            labels.append(f"no battery: {', '.join(missing)}")
        soc_axis.legend(handles, labels, loc="upper right", fontsize=8, ncol=min(len(labels), 6))
    else:
        soc_axis.text(0.5, 0.5, "no site has a battery", ha="center", va="center", transform=soc_axis.transAxes)
    soc_axis.set_title(_title(result, f"battery state of charge and power per site ({_tick_minutes(result)} ticks)"),
                       fontsize=10)
    return _finish(figure, path, dpi)


def plot_routing(result: RunResult, path: str | Path | None = None, dpi: int = 110) -> Figure:
    """Inference routing over time: per class, the requests/s served at each site (stacked, one
    colour per site) and those dropped (red, on top); tick averages. Returns the figure; saves
    it when ``path``."""
    routing = result.routing
    classes = list(dict.fromkeys(routing["class"]))
    sites = _sites_of(result)
    colours = site_colours(sites)
    figure = _figure(figsize=(12, 2.4 * max(len(classes), 1) + 0.8))
    axes = figure.subplots(max(len(classes), 1), 1, sharex=True, squeeze=False)
    for axis, name in zip(axes[:, 0], classes, strict=False):
        frame = routing[routing["class"] == name]
        served = frame.pivot_table(index="time", columns="site", values="served_req_per_s", aggfunc="sum",
                                   sort=False)
        dropped = frame.groupby("time", sort=False)["dropped_req_per_s"].sum()
        time = served.index.tz_convert(None).to_numpy()
        layers = [served[site].to_numpy() for site in served.columns] + [dropped.reindex(served.index).to_numpy()]
        axis.stackplot(time, *layers, labels=[*served.columns, "dropped"], step="post", alpha=0.85,
                       colors=[colours[site] for site in served.columns] + ["#e41a1c"])
        axis.set_ylabel(f"{name}\n(requests/s)", fontsize=9)
        axis.set_xlim(time[0], time[-1])
    if not classes:
        axes[0, 0].text(0.5, 0.5, "no inference classes", ha="center", va="center", transform=axes[0, 0].transAxes)
    from matplotlib.patches import Patch

    handles = [Patch(color=colours[site], label=f"served at {site}") for site in sites]
    handles.append(Patch(color="#e41a1c", label="dropped"))
    axes[0, 0].legend(handles=handles, loc="upper right", fontsize=8, ncol=len(handles))
    axes[0, 0].set_title(_title(result, "inference served per class by site, stacked"), fontsize=10)
    axes[-1, 0].set_xlabel("time (UTC)")
    _time_axis(axes[-1, 0])
    return _finish(figure, path, dpi)


def plot_carbon(result: RunResult, path: str | Path | None = None, dpi: int = 110) -> Figure:
    """Cumulative emissions (tCO2) per site (stacked) against the run's budget and its pro-rata
    pace (budget x elapsed share of the run). Returns the figure; saves it when ``path``."""
    ticks = result.ticks
    per_site = ticks.pivot_table(index="time", columns="site", values="emissions_t", aggfunc="sum", sort=False)
    cumulative = per_site.cumsum()
    time = cumulative.index.tz_convert(None).to_numpy()
    colours = site_colours(_sites_of(result))
    figure = _figure(figsize=(12, 4))
    axis = figure.subplots()
    axis.stackplot(time, *[cumulative[site].to_numpy() for site in cumulative.columns], labels=list(cumulative.columns),
                   alpha=0.8, step="post", colors=[colours.get(site, "#999999") for site in cumulative.columns])
    axis.step(time, cumulative.sum(axis=1).to_numpy(), where="post", color="black", lw=1.2, label="fleet total")
    budget = float(result.kpis.get("budget_tco2", np.nan))
    if np.isfinite(budget):
        tick_h = float(result.manifest.get("accounting", {}).get("tick_hours", 0.0) or 0.0)
        run_h = days_to_hours(float(result.manifest.get("days", 0.0)))
        elapsed = np.arange(1, len(time) + 1) * tick_h
        if run_h > 0 and tick_h > 0:
            axis.plot(time, budget * elapsed / run_h, color="#e41a1c", ls=":", lw=1.2, label="budget pro rata")
        axis.axhline(budget, color="#e41a1c", lw=1.2, label=f"budget {budget:,.0f} t")
    axis.set_ylabel("cumulative emissions\n(tCO2)")
    axis.set_xlabel("time (UTC)")
    axis.set_xlim(time[0], time[-1])
    _time_axis(axis)
    axis.legend(loc="upper left", fontsize=8, ncol=4)
    use = result.kpis.get("budget_use_fraction", np.nan)
    emissions = result.kpis.get("emissions_tco2", np.nan)
    axis.set_title(_title(result, f"cumulative emissions per site (stacked): {emissions:,.1f} t, "
                                  f"budget use {use:.1%}"), fontsize=10)
    return _finish(figure, path, dpi)


# ---------------------------------------------------------------------------------------------
# plots of many runs (``aidc compare --out``, a sweep's runs table) and of the offline study


def _mean_std(values: pd.Series) -> tuple[float, float, int]:
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if not array.size:
        return np.nan, np.nan, 0
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0, int(array.size)


#: one colour per controller, the same in every plot (others get the next free colours of tab10)
CONTROLLER_COLOURS = {"mpc": "#1f77b4", "mpc-compute-only": "#17becf", "mpc-energy-only": "#9467bd",
                      "greedy": "#ff7f0e", "local": "#8c564b"}


def controller_colours(names: list[str]) -> dict[str, str]:
    """Colours of ``names``: :data:`CONTROLLER_COLOURS` for the built-in controllers, then the
    unused tab10 colours in order."""
    spare = [c for c in ("#2ca02c", "#d62728", "#e377c2", "#7f7f7f", "#bcbd22")
             if c not in CONTROLLER_COLOURS.values()]
    out, i = {}, 0
    for name in names:
        if name in CONTROLLER_COLOURS:
            out[name] = CONTROLLER_COLOURS[name]
        else:
            out[name] = spare[i % len(spare)]
            i += 1
    return out


#: units of the KPI column suffixes (the KPI names carry their unit)
KPI_UNITS = (("_usd", "USD"), ("_tco2", "tCO2"), ("_mwh", "MWh"), ("_mreq", "M requests"), ("_ms", "ms"),
             ("_fraction", "fraction"), ("_s", "s"))


def kpi_label(kpi: str) -> str:
    """The axis label of a KPI column with its unit, read from the name's suffix:
    ``regret_usd`` -> ``regret (USD)``, ``emissions_tco2`` -> ``emissions (tCO2)``."""
    for suffix, unit in KPI_UNITS:
        if kpi.endswith(suffix):
            return f"{kpi[: -len(suffix)].replace('_', ' ')} ({unit})"
    return kpi.replace("_", " ")


def _seed_counts(counts: list[int]) -> str:
    """``n = 3 runs per point`` (or a range): how many runs each mean is over."""
    counts = [c for c in counts if c]
    if not counts:
        return "no runs"
    low, high = min(counts), max(counts)
    return f"n = {low} run{'s' if low != 1 else ''} per point" if low == high else f"n = {low}–{high} runs per point"


#: hatching of the hue levels (forecasts) in :func:`plot_comparison`, the colour being the controller's
HUE_HATCHES = ("", "//", "..", "xx", "\\\\", "++")
#: names of the line styles, written into legend labels (a legend handle may not show the style)
STYLE_NAMES = {"-": "solid", "--": "dashed", "-.": "dash-dot", ":": "dotted"}


def plot_comparison(runs: pd.DataFrame, kpi: str = "benefit_usd", by: str = "controller", hue: str | None = "forecast",
                    path: str | Path | None = None, dpi: int = 110, ax: Axes | None = None) -> Figure:
    """Bars of ``kpi``'s mean over seeds per ``by`` (grouped by ``hue`` when the table has it),
    error bars one standard deviation (ddof 1). ``runs``: one row per run (a sweep's runs
    table, the CSV of ``aidc compare --out``). When the table holds several scenario variants,
    each (variant, ``by``) pair is its own group, labelled with the variant: variants are never
    pooled. With ``by="controller"`` every bar takes the colour of its controller
    (:data:`CONTROLLER_COLOURS`, as in every other plot) and the ``hue`` levels (the forecast) are
    told apart by hatching; otherwise the hue levels take the colours C0, C1, ... Returns the
    figure; saves it when ``path``."""
    frame = runs
    if kpi not in frame.columns:
        raise ValueError(f"no column {kpi!r} in the runs table")
    variants = list(dict.fromkeys(frame["variant"])) if "variant" in frame.columns and by != "variant" else []
    several = len(variants) > 1
    if several:
        frame = frame.assign(_group=frame[by].astype(str) + "\n(" + frame["variant"].astype(str) + ")")
        group_column = "_group"
    else:
        group_column = by
    groups = list(dict.fromkeys(frame[group_column]))
    hues = list(dict.fromkeys(frame[hue])) if hue is not None and hue in frame.columns else [None]
    # per group, the hue levels it has (a heuristic has only forecast "n/a"), bars centred on the group
    per_group = []  # per group: (hue index, mean, std) of the hue levels present
    counts = []
    for group in groups:
        rows = frame[frame[group_column] == group]
        stats = []
        for h, level in enumerate(hues):
            mean, std, count = _mean_std(rows[kpi] if level is None else rows.loc[rows[hue] == level, kpi])
            if count:
                stats.append((h, mean, std))
                counts.append(count)
        per_group.append(stats)
    widest = max([len(stats) for stats in per_group] + [1])
    width = 0.8 / widest
    bars = [(g, g + width * (i - (len(stats) - 1) / 2), h, mean, std, width)  # (group, x, hue, mean, std, width)
            for g, stats in enumerate(per_group) for i, (h, mean, std) in enumerate(stats)]
    if ax is None:
        figure = _figure(figsize=(min(max(6.0, 0.9 * len(groups) * widest + 2), 16), 4.2))
        axis = figure.subplots()
    else:
        axis, figure = ax, _figure_of(ax)
    owners = [str(frame.loc[frame[group_column] == group, by].iloc[0]) for group in groups]
    colours = controller_colours(list(dict.fromkeys(owners))) if by == "controller" else {}
    from matplotlib.patches import Patch

    hue_handles = []
    for h, level in enumerate(hues):
        mine = [bar for bar in bars if bar[2] == h]
        if not mine:
            continue
        hatch = HUE_HATCHES[h % len(HUE_HATCHES)] if colours and level is not None else None
        if colours or level is None:
            bar_colours = [colours.get(owners[b[0]], f"C{b[0] % 10}") for b in mine]
        else:
            bar_colours = [f"C{h % 10}"] * len(mine)
        axis.bar([b[1] for b in mine], [b[3] for b in mine], width=[0.95 * b[5] for b in mine],
                 yerr=[b[4] for b in mine], capsize=3, color=bar_colours, hatch=hatch,
                 edgecolor="black" if hatch is not None else None, linewidth=0.6 if hatch is not None else None,
                 label=None if level is None or colours else str(level))
        if hatch is not None:
            hue_handles.append(Patch(facecolor="white", edgecolor="black", hatch=hatch, label=str(level)))
    axis.set_xticks(range(len(groups)), [str(g) for g in groups], rotation=15 if len(groups) > 4 else 0)
    axis.set_xlabel(by if not several else f"{by} (scenario variant)")
    axis.set_ylabel(kpi_label(kpi))
    axis.axhline(0.0, color="black", lw=0.5)
    if hue_handles:
        axis.legend(handles=hue_handles, title=f"{hue} (hatching; colour = controller)", fontsize=8, title_fontsize=8)
    elif hues != [None]:
        axis.legend(title=hue, fontsize=8, title_fontsize=8)
    where = f", {len(variants)} scenario variants apart" if several else ""
    axis.set_title(f"{kpi_label(kpi)}: mean ± std over seeds ({_seed_counts(counts)}){where}", fontsize=10)
    return _finish(figure, path, dpi) if ax is None else figure


def plot_kpi_vs_forecast_error(runs: pd.DataFrame, kpi: str = "regret_usd", error: str = "forecast_sigma_24h",
                               path: str | Path | None = None, dpi: int = 110, ax: Axes | None = None) -> Figure:
    """``kpi`` (mean ± std over seeds) against the forecast-error level, one line per controller
    (and scenario variant when there are several), in the controller's colour. Runs without an
    error level are drawn as horizontal lines with a band of one std, never dropped: heuristics
    (``(no forecast)``) and forecasters without a σ (persistence, seasonal-naive, ets: labelled
    with the forecaster, e.g. ``mpc, persistence (no σ level)``). Returns the figure; saves it
    when ``path``."""
    frame = runs
    for column in (kpi, error, "controller"):
        if column not in frame.columns:
            raise ValueError(f"no column {column!r} in the runs table")
    if ax is None:
        figure = _figure(figsize=(8.5, 4.8))
        axis = figure.subplots()
    else:
        axis, figure = ax, _figure_of(ax)
    several = "variant" in frame.columns and frame["variant"].nunique() > 1
    keys = ["controller", "variant"] if several else ["controller"]
    colours = controller_colours(list(dict.fromkeys(frame["controller"].astype(str))))
    variant_styles = {v: s for v, s in zip(dict.fromkeys(frame["variant"]) if several else [],
                                            ("-", "--", "-.", ":") * 4, strict=False)}
    levels = np.sort(frame[error].dropna().unique())
    span = (levels.min(), levels.max()) if levels.size else (0.0, 1.0)
    counts: list[int] = []
    flat_styles = iter(("--", ":", "-.", (0, (5, 1)), (0, (1, 3))) * 4)  # a plotted line's handle shows its style
    for key, group in frame.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        name = str(key[0])
        label = " / ".join(map(str, key))
        colour = colours[name]
        style = variant_styles.get(key[1], "-") if several else "-"
        with_level = group[group[error].notna()]
        if len(with_level):
            stats = [(level, *_mean_std(rows[kpi])) for level, rows in with_level.groupby(error)]
            counts += [s[3] for s in stats]
            x = np.array([s[0] for s in stats], dtype=float)
            shown = f"{label} ({STYLE_NAMES[style]})" if several else label
            axis.errorbar(x, [s[1] for s in stats], yerr=[s[2] for s in stats], marker="o", capsize=3, label=shown,
                          color=colour, ls=style)
        without = group[group[error].isna()]
        forecasts = list(dict.fromkeys(without["forecast"])) if "forecast" in without.columns else [None]
        for forecast in forecasts:
            rows = without if forecast is None else without[without["forecast"] == forecast]
            mean, std, count = _mean_std(rows[kpi])
            if not count:
                continue
            counts.append(count)
            no_forecast = forecast in (None, "n/a", "", "none")
            text = f"{label} (no forecast)" if no_forecast else f"{label}, {forecast} (no σ level)"
            axis.plot(span, (mean, mean), ls=next(flat_styles), color=colour, label=text)
            axis.fill_between(span, mean - std, mean + std, color=colour, alpha=0.12)
    axis.set_xlabel("forecast error σ at 24 h lead (noisy forecaster's sigma_24h)"
                    if error == "forecast_sigma_24h" else error)
    axis.set_ylabel(kpi_label(kpi))
    axis.legend(fontsize=8)
    axis.set_title(f"{kpi_label(kpi)} against forecast error: mean ± std over seeds ({_seed_counts(counts)})",
                   fontsize=10)
    return _finish(figure, path, dpi) if ax is None else figure


def plot_offline_study(table: pd.DataFrame, path: str | Path | None = None, rich: pd.DataFrame | None = None,
                       dpi: int = 110) -> Figure:
    """The offline study (:func:`optimizer.offline.offline_table`, rows = variants): total
    benefit, emissions against the budget, and the cost parts per variant; with ``rich`` (the
    generation-rich scenario's table) side by side. Returns the figure; saves it when ``path``."""
    tables = {"base": table} if rich is None else {"base": table, "generation-rich": rich}
    variants = list(table.index)
    figure = _figure(figsize=(15, 5.0))
    benefit_axis, carbon_axis, cost_axis = figure.subplots(1, 3)
    width = 0.8 / len(tables)
    x = np.arange(len(variants))
    for i, (name, frame) in enumerate(tables.items()):
        offset = -0.4 + width * (i + 0.5)
        benefit_axis.bar(x + offset, frame.loc[variants, "benefit_usd"] / 1e3, width * 0.95, label=name)
        carbon_axis.bar(x + offset, frame.loc[variants, "emissions_tco2"], width * 0.95, label=name)
        # the budget is not a column of the table: emissions / budget use, where a budget applies
        ratios = (frame["emissions_tco2"] / frame["budget_use_fraction"]).to_numpy(dtype=float)
        ratios = ratios[np.isfinite(ratios)]
        budget = float(np.median(ratios)) if ratios.size else np.nan
        if np.isfinite(budget):
            carbon_axis.axhline(budget, color=f"C{i}", ls="--", lw=1, label=f"{name} budget")
    parts = [("import_cost_usd", "import"), ("fuel_cost_usd", "fuel"), ("battery_degradation_usd", "battery wear"),
             ("carbon_cost_usd", "carbon"), ("budget_penalty_usd", "budget penalty")]
    bottom = np.zeros(len(variants))
    for column, label in parts:
        if column in table.columns:
            values = table.loc[variants, column].to_numpy(dtype=float) / 1e3
            cost_axis.bar(x, values, 0.6, bottom=bottom, label=label)
            bottom = bottom + values
    for axis, ylabel in ((benefit_axis, "total benefit (kUSD)"), (carbon_axis, "emissions (tCO2)"),
                         (cost_axis, "costs, base scenario (kUSD)")):
        axis.set_xticks(x, variants, rotation=30, ha="right")
        axis.set_ylabel(ylabel)
        axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, frameon=False)
    cost_axis.set_ylim(0.0, 1.08 * max(float(bottom.max()), 1e-9))
    low = min(float(frame["benefit_usd"].min()) for frame in tables.values()) / 1e3
    high = max(float(frame["benefit_usd"].max()) for frame in tables.values()) / 1e3
    benefit_axis.set_ylim(low - 0.15 * (high - low + 1e-9), high + 0.1 * (high - low + 1e-9))  # differences matter
    figure.suptitle("offline study: one MILP over the run per model variant", fontsize=10)
    return _finish(figure, path, dpi)


# ---------------------------------------------------------------------------------------------
# the controller's record: forecasts against the realised signals


#: signals the forecast plot shows by default (those recorded), top to bottom
FORECAST_PLOT_SIGNALS = ("carbon", "import_price", "pv", "wind", "demand")


def signal_axis_label(signal: str) -> tuple[str, float]:
    """(axis label with unit, factor to multiply values by) of an exogenous signal; carbon
    intensity is shown in gCO2/kWh (= 1000 x tCO2/MWh)."""
    labels = {
        "carbon": ("carbon intensity\n(gCO2/kWh)", 1000.0), "import_price": ("import price\n(USD/MWh)", 1.0),
        "export_price": ("export price\n(USD/MWh)", 1.0), "pv": ("PV availability\n(fraction of capacity)", 1.0),
        "wind": ("wind availability\n(fraction of capacity)", 1.0), "demand": ("inference demand\n(requests/s)", 1.0),
        "temperature": ("ambient temperature\n(°C)", 1.0),
    }
    return labels.get(signal, (signal, 1.0))


def plot_forecast(result: RunResult, lead_h: float = 6.0, signals: tuple[str, ...] | None = None,
                  path: str | Path | None = None, dpi: int = 110) -> Figure:
    """Forecast against realised, per signal (rows) and site or class (columns), at one lead time.

    For every target interval the plot shows the forecast issued ``lead_h`` hours before the
    interval's end (``lead_h`` as in :mod:`forecasts.vintages`): the point forecast, the fan
    between its quantiles (outermost pair lightest) when the forecaster gives quantiles, and the
    realised interval mean. Needs a result recorded with ``record_plans`` (``result.vintages``
    and ``result.signals``); raises ValueError when they are missing or hold no forecast at
    ``lead_h``. Returns the figure; saves it when ``path``.
    """
    vintages, truth = result.vintages, result.signals
    if vintages is None or not len(vintages) or truth is None:
        raise ValueError("the result holds no forecast record "
                         "(run with record_plans=True and a forecasting controller)")
    at_lead = vintages[np.isclose(vintages["lead_h"].to_numpy(dtype=float), lead_h)]
    if not len(at_lead):
        raise ValueError(f"no forecast at lead {lead_h:g} h (leads recorded: {vintages['lead_h'].min():g} to "
                         f"{vintages['lead_h'].max():g} h)")
    recorded = list(dict.fromkeys(at_lead["signal"]))
    wanted = FORECAST_PLOT_SIGNALS if signals is None else signals
    rows = [signal for signal in wanted if signal in recorded]
    if not rows:
        raise ValueError(f"none of the signals {', '.join(wanted)} was forecast (recorded: {', '.join(recorded)})")
    keys = {signal: list(dict.fromkeys(at_lead.loc[at_lead["signal"] == signal, "key"])) for signal in rows}
    n_columns = max(len(k) for k in keys.values())
    figure = _figure(figsize=(3.6 * n_columns + 0.8, 2.4 * len(rows) + 1.0))
    axes = figure.subplots(len(rows), n_columns, squeeze=False, sharex=True)
    start = pd.Timestamp(result.manifest.get("start"))
    end = start + pd.Timedelta(days=float(result.manifest.get("days", 0.0)))
    colours = site_colours(list(result.manifest.get("accounting", {}).get("site_names", [])))
    has_quantiles = at_lead["quantile"].notna().any()
    for r, signal in enumerate(rows):
        label, factor = signal_axis_label(signal)
        mine = at_lead[at_lead["signal"] == signal]
        observed = truth[(truth["signal"] == signal) & (truth["time"] < end)]
        for c in range(n_columns):
            axis = axes[r, c]
            if c >= len(keys[signal]):
                axis.set_visible(False)
                continue
            key = keys[signal][c]
            rows_key = mine[mine["key"] == key]
            point = rows_key[rows_key["quantile"].isna()].sort_values("target_time")
            time = point["target_time"].dt.tz_convert(None).to_numpy()
            colour = colours.get(key, "#1f77b4")
            levels = sorted(rows_key["quantile"].dropna().unique())
            for low, high in zip(levels, reversed(levels), strict=False):
                if low >= high:
                    break
                band = [rows_key[rows_key["quantile"] == q].sort_values("target_time")["value"].to_numpy(float) * factor
                        for q in (low, high)]
                axis.fill_between(time, band[0], band[1], step="post", color=colour,
                                  alpha=0.18 + 0.12 * levels.index(low), lw=0, label=f"forecast q{low:g}–q{high:g}")
            truth_key = observed[observed["key"] == key].sort_values("time")
            axis.step(*_closed_steps(truth_key["time"].dt.tz_convert(None).to_numpy(),
                                     truth_key["value"].to_numpy(float) * factor),
                      where="post", color="black", lw=1.1, label="realised")
            axis.step(*_closed_steps(time, point["value"].to_numpy(float) * factor), where="post", color=colour,
                      lw=1.2, ls="--", label=f"forecast at {lead_h:g} h lead")
            axis.set_title(str(key), fontsize=9)
            if c == 0:
                axis.set_ylabel(label, fontsize=8)
            if r == len(rows) - 1 or c >= len(keys[rows[min(r + 1, len(rows) - 1)]]):
                axis.set_xlabel("time (UTC)", fontsize=8)
            axis.tick_params(labelsize=7)
            axis.set_xlim(start.tz_convert(None), end.tz_convert(None))
            _time_axis(axis)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if not has_quantiles:
        from matplotlib.patches import Patch

        handles.append(Patch(color="none"))
        labels.append("no fan: the forecaster gives no quantiles")
    figure.legend(handles, labels, loc="upper center", ncol=len(labels), frameon=False, fontsize=8,
                  bbox_to_anchor=(0.5, 1.0 - 0.45 / figure.get_figheight()))
    figure.suptitle(_title(result, f"forecast issued {lead_h:g} h before the end of each interval vs realised "
                                   "(interval means)"), fontsize=10, y=1.0 - 0.1 / figure.get_figheight())
    figure.tight_layout(rect=(0, 0, 1, 1.0 - 0.75 / figure.get_figheight()))
    if path is not None:
        figure.savefig(path, dpi=dpi)
    return figure


def _closed_steps(time: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step data drawn with ``where="post"`` up to the end of the last interval (one more point)."""
    if len(time) < 2:
        return time, values
    return np.append(time, time[-1] + (time[-1] - time[-2])), np.append(values, values[-1])


def _time_axis(axis: Axes) -> None:
    """Concise date ticks (day, then hours) on a time axis."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def site_colours(sites: list[str]) -> dict[str, str]:
    """One colour per site, by its position in the scenario (Dark2, the hues unlike the built-in
    controllers' first, then Set2): the same site has the same colour in every plot of a run.
    Controllers take the tab10 colours of :data:`CONTROLLER_COLOURS`, a different palette, so that
    a site is never mistaken for a controller."""
    from matplotlib import colormaps

    dark2 = colormaps["Dark2"].colors  # type: ignore[attr-defined]
    palette = [*(dark2[i] for i in (0, 3, 5, 4, 7, 2, 1, 6)), *colormaps["Set2"].colors]  # type: ignore[attr-defined]
    from matplotlib.colors import to_hex

    return {site: to_hex(palette[i % len(palette)]) for i, site in enumerate(sites)}
