"""Loading, checking and writing scenario files (TOML).

Every problem becomes one :class:`ScenarioError` whose message reads
``<file>: <field>: <reason>`` (SPEC §8), raised before any simulation starts.
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w
from pydantic import ValidationError

from scenarios.schema import Scenario
from scenarios.series import SIGNAL_RULES, resolve_series
from scenarios.timebase import days_to_hours, minutes_to_hours, whole_steps


class ScenarioError(ValueError):
    """A scenario that cannot be used, with the file, the field and the reason."""

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source, self.field, self.reason = source, field, reason
        super().__init__(f"{source}: {field}: {reason}" if field else f"{source}: {reason}")


def _location(loc: tuple[object, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("inline", "generated", "data", "file", "function-before[coerce_series(), tagged-union]"):
            continue  # the series union's internal tags say nothing to the user
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


#: Longest echo of a given value in a message (a 20,000-character string is cut, not echoed whole).
MAX_ECHO_CHARS = 80


def shorten_value(value: object, limit: int = MAX_ECHO_CHARS) -> str:
    """``repr(value)``, cut in the middle to at most about ``limit`` characters."""
    text = repr(value)
    if len(text) <= limit:
        return text
    keep = (limit - 10) // 2
    return f"{text[:keep]}...{text[-keep:]} ({len(text):,} characters)"


def validation_error(source: str, error: ValidationError) -> ScenarioError:
    """The first problem of a pydantic :class:`ValidationError` as one :class:`ScenarioError`
    (``<source>: <field path>: <reason>``, without pydantic's internal wording)."""
    return _first_error(source, error)


def _first_error(source: str, error: ValidationError) -> ScenarioError:
    detail = error.errors(include_url=False)[0]
    kind, context, given = detail["type"], detail.get("ctx", {}), detail.get("input")
    reason = detail["msg"].removeprefix("Value error, ")
    if kind == "missing":
        reason = "missing required field"
    elif kind == "extra_forbidden":
        reason = "unknown field (check the spelling)"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        reason = f"expected a table, got {type(given).__name__} {shorten_value(given)}"
    elif kind == "union_tag_not_found":
        # the only discriminated union in the schema is the series form
        reason = "missing 'kind': a series table needs kind = 'inline', 'generated', 'data' or 'file'"
    elif kind == "union_tag_invalid":
        reason = (f"unknown {context.get('discriminator')} {context.get('tag')!r}; "
                  f"expected {context.get('expected_tags')}")
    elif isinstance(given, int | float | str) and "got " not in reason:
        reason += f" (got {shorten_value(given)})"
    if len(reason) > 4 * MAX_ECHO_CHARS:  # a long value echoed inside pydantic's own message
        keep = 2 * MAX_ECHO_CHARS
        reason = f"{reason[:keep]} ... {reason[-keep:]}"
    return ScenarioError(source, _location(tuple(detail["loc"])), reason)


def series_fields(scenario: Scenario) -> list[tuple[str, object, float | None]]:
    """Every series of a scenario as (field path, spec, longitude of its site or region)."""
    fields: list[tuple[str, object, float | None]] = []
    for i, site in enumerate(scenario.sites):
        prefix = f"sites[{i}]"
        fields += [
            (f"{prefix}.ambient_temperature_c", site.ambient_temperature_c, site.longitude_deg),
            (f"{prefix}.pv_availability", site.pv_availability, site.longitude_deg),
            (f"{prefix}.wind_availability", site.wind_availability, site.longitude_deg),
            (f"{prefix}.grid.import_price_usd_per_mwh", site.grid.import_price_usd_per_mwh,
             site.longitude_deg),
            (f"{prefix}.grid.carbon_intensity_g_per_kwh", site.grid.carbon_intensity_g_per_kwh,
             site.longitude_deg),
        ]
        fields.append((f"{prefix}.base_load_mw", site.base_load_mw, site.longitude_deg))
        if site.grid.export_price_usd_per_mwh is not None:
            fields.append((f"{prefix}.grid.export_price_usd_per_mwh", site.grid.export_price_usd_per_mwh,
                           site.longitude_deg))
    longitude = {region.name: region.longitude_deg for region in scenario.regions}
    for i, klass in enumerate(scenario.inference_classes):
        fields.append((f"inference_classes[{i}].demand_req_per_s", klass.demand_req_per_s,
                       longitude.get(klass.origin)))
    return fields


def file_series_report(scenario: Scenario) -> list[str]:
    """One line per series of kind ``file``: field, file, column, span (UTC), resolution, rows,
    unit scale and offset, and the grid points filled by its ``fill`` rule (``aidc validate``).

    The scenario must be valid (its files readable), as :func:`load_scenario` ensures.
    """
    from scenarios.datasets import load_file_series
    from scenarios.series import FileSeries

    lines = []
    for field, spec, _ in series_fields(scenario):
        if not isinstance(spec, FileSeries):
            continue
        _, info = load_file_series(spec.path, spec.column, spec.time_column, spec.timezone, spec.fill)
        stamp = "%Y-%m-%d %H:%M"
        end = info.last + info.resolution
        filled = f"{info.filled} gap point{'s' if info.filled != 1 else ''} filled ({spec.fill})" if info.filled \
            else "no gaps"
        offset = f" + {spec.offset:g}" if spec.offset else ""
        lines.append(
            f"{field}: {info.path} column {info.column!r}, {info.first.strftime(stamp)} to {end.strftime(stamp)} UTC, "
            f"{info.rows} rows every {info.resolution.total_seconds() / 60:g} min (stamps in {spec.timezone} unless "
            f"zoned), scale {spec.scale:g}{offset}, {filled}"
        )
    return lines


#: Largest magnitude of a series' values over the run (as :data:`scenarios.schema.MAX_POWER_MW`
#: and its kin: far above real data, small enough for the solver's tolerances), by field suffix.
SERIES_LIMITS: dict[str, float] = {
    "ambient_temperature_c": 100.0,  # availabilities: [0, 1], checked above
    "price_usd_per_mwh": 1e5,
    "carbon_intensity_g_per_kwh": 1e4,
    "demand_req_per_s": 1e9,
    "base_load_mw": 1e5,
}


def check_scenario(scenario: Scenario, source: str = "<scenario>", releases_within_run: bool = True) -> None:
    """Cross-field rules that pydantic's per-field checks cannot see (SPEC §8).

    ``releases_within_run=False`` lets jobs be released after the run's end (a run shortened
    with ``--days`` simply never sees them). Raises :class:`ScenarioError` naming the first
    offending field.
    """
    site_names = [site.name for site in scenario.sites]
    region_names = [region.name for region in scenario.regions]
    for names, what in ((site_names, "sites"), (region_names, "regions"),
                        ([k.name for k in scenario.inference_classes], "inference_classes"),
                        ([j.name for j in scenario.jobs], "jobs")):
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise ScenarioError(source, f"{what}[{i}].name", f"duplicate name {name!r}")
            seen.add(name)
    for i, site_spec in enumerate(scenario.sites):
        if site_spec.region not in region_names:
            raise ScenarioError(source, f"sites[{i}].region", f"unknown region {site_spec.region!r}")
        if site_spec.idle_power_mw * site_spec.cooling.pue_min > site_spec.power_capacity_mw:
            raise ScenarioError(source, f"sites[{i}].idle_power_mw",
                                "idle facility power exceeds power_capacity_mw")
    for region in region_names:
        row = scenario.latency_ms.get(region)
        if row is None:
            raise ScenarioError(source, f"latency_ms.{region}", "missing row for region")
        for site in site_names:
            if site not in row:
                raise ScenarioError(source, f"latency_ms.{region}.{site}", "missing latency for site")
            if not np.isfinite(row[site]) or not 0 <= row[site] <= 1e5:
                raise ScenarioError(source, f"latency_ms.{region}.{site}",
                                    f"must be a finite number in [0, 1e5] ms, got {row[site]}")
    for region, row in scenario.latency_ms.items():
        if region not in region_names:
            raise ScenarioError(source, f"latency_ms.{region}", "unknown region")
        for site in row:
            if site not in site_names:
                raise ScenarioError(source, f"latency_ms.{region}.{site}", "unknown site")
    for i, klass in enumerate(scenario.inference_classes):
        if klass.origin not in region_names:
            raise ScenarioError(source, f"inference_classes[{i}].origin", f"unknown region {klass.origin!r}")
        row = scenario.latency_ms[klass.origin]
        if not any(row[site] <= klass.latency_limit_ms for site in site_names):
            raise ScenarioError(
                source, f"inference_classes[{i}].latency_limit_ms",
                f"no site within {klass.latency_limit_ms:g} ms of region {klass.origin!r} "
                f"(nearest is {min(row.values()):g} ms)",
            )
    horizon_end_h = scenario.run.days * 24.0
    sites_by_name = {site.name: site for site in scenario.sites}
    for i, job in enumerate(scenario.jobs):
        field = f"jobs[{i}]"
        for site in job.sites or []:
            if site not in sites_by_name:
                raise ScenarioError(source, f"{field}.sites", f"unknown site {site!r}")
        if job.release_h + job.duration_h > job.deadline_h + 1e-9:
            raise ScenarioError(source, f"{field}.deadline_h",
                                f"release {job.release_h:g} h + duration {job.duration_h:g} h ends after the "
                                f"deadline {job.deadline_h:g} h")
        eligible = [sites_by_name[s] for s in (job.sites or site_names)]
        fits = [s for s in eligible if s.gpus >= job.gpus
                and (s.idle_power_mw + job.power_mw) * s.cooling.pue_min <= s.power_capacity_mw * (1 + 1e-9)]
        if not fits:
            raise ScenarioError(source, f"{field}.gpus",
                                f"job cannot run at any eligible site (needs {job.gpus} GPUs and "
                                f"{job.power_mw:g} MW)")
        if releases_within_run and job.release_h >= horizon_end_h:
            raise ScenarioError(source, f"{field}.release_h",
                                f"released after the run ends ({horizon_end_h:g} h)")
    population = scenario.job_population
    if population is not None and max(population.gpus_choices) > max(s.gpus for s in scenario.sites):
        raise ScenarioError(source, "job_population.gpus_choices", "more GPUs than the largest site has")
    check_supply(scenario, source)
    # Series: resolvable over the run (coverage, dataset keys) and free of NaN.
    start = scenario.run.start
    n_steps = whole_steps(days_to_hours(scenario.run.days), 1.0)
    for field, spec, longitude in series_fields(scenario):
        try:
            values = resolve_series(spec, start, n_steps, 1.0, longitude_deg=longitude,  # type: ignore[arg-type]  # a series field
                                    rule=field_rule(field))
        except ValueError as error:
            raise ScenarioError(source, field, str(error)) from None
        if not np.all(np.isfinite(values)):
            raise ScenarioError(source, field, "series contains NaN or infinite values over the run")
        if field.endswith("_availability") and (values.min() < -1e-9 or values.max() > 1 + 1e-9):
            raise ScenarioError(source, field, "availability must lie in [0, 1]")
        if field.endswith(("demand_req_per_s", "carbon_intensity_g_per_kwh", "base_load_mw")) and values.min() < 0:
            raise ScenarioError(source, field, "must not be negative")
        limit = next((limit for suffix, limit in SERIES_LIMITS.items() if field.endswith(suffix)), math.inf)
        if np.abs(values).max() > limit:
            raise ScenarioError(source, field, f"values must lie within ±{limit:g} over the run "
                                               f"(got {values[np.argmax(np.abs(values))]:g})")
    check_cooling_capacity(scenario, source)


def check_cooling_capacity(scenario: Scenario, source: str = "<scenario>") -> None:
    """Refuse a site whose idle IT load times the PUE of the run's hottest plant tick exceeds its
    ``power_capacity_mw``: the facility could not even idle then (PUE(T) as in
    :class:`scenarios.schema.Cooling`, T the scenario's ambient temperature series over the run;
    realisation noise may still push a tick beyond it, which the plant records as unmet load).
    A temperature series that cannot be read is left to the series checks of :func:`check_scenario`.
    Raises :class:`ScenarioError` naming ``sites[i].idle_power_mw`` and the numbers."""
    tick_h = minutes_to_hours(scenario.run.plant_tick_minutes)
    n_ticks = whole_steps(days_to_hours(scenario.run.days), tick_h)
    for i, site in enumerate(scenario.sites):
        if site.idle_power_mw <= 0:
            continue
        try:
            temperature = resolve_series(site.ambient_temperature_c, scenario.run.start, n_ticks, tick_h,
                                         longitude_deg=site.longitude_deg, rule=SIGNAL_RULES["temperature"])
        except ValueError:
            continue
        if not np.isfinite(temperature).all():
            continue
        hottest = int(np.argmax(temperature))
        pue = site.cooling.pue_at(float(temperature[hottest]))
        if site.idle_power_mw * pue > site.power_capacity_mw * (1 + 1e-9) + 1e-9:
            at = pd.Timestamp(scenario.run.start) + pd.Timedelta(hours=hottest * tick_h)
            raise ScenarioError(source, f"sites[{i}].idle_power_mw",
                                f"site {site.name!r}: idle facility load {site.idle_power_mw * pue:.4g} MW "
                                f"(idle {site.idle_power_mw:g} MW x PUE {pue:.4g} at {temperature[hottest]:.3g} °C, "
                                f"{at:%Y-%m-%d %H:%M} UTC, the run's hottest tick) exceeds power_capacity_mw "
                                f"{site.power_capacity_mw:g} MW; raise the capacity or lower the idle power")


def check_supply(scenario: Scenario, source: str = "<scenario>") -> None:
    """Refuse a site whose base load (plus its idle facility load) exceeds, at some plant tick of
    the run, the most the site can ever supply.

    That most is ``import_limit_mw`` + generator ``p_max_mw`` + battery ``discharge_power_mw`` +
    PV and wind capacity (x ``generation_scale``, at full availability: realised availability
    may exceed the nominal series, never 1). The load that must be served is ``base_load_mw``
    (never shed) + ``idle_power_mw`` x ``pue_min``. Beyond that bound no dispatch balances the
    site: every MPC window would be infeasible and the plant would record unmet load.
    A base load that cannot be read is left to the series checks of :func:`check_scenario`.
    Raises :class:`ScenarioError` naming ``sites[i].base_load_mw``, the tick and the bound
    (``sites[i].idle_power_mw`` when the idle load alone is too much).
    """
    tick_h = minutes_to_hours(scenario.run.plant_tick_minutes)
    n_ticks = whole_steps(days_to_hours(scenario.run.days), tick_h)
    start = scenario.run.start
    for i, site in enumerate(scenario.sites):
        parts = {
            "import_limit_mw": site.grid.import_limit_mw,
            "generator p_max_mw": site.generator.p_max_mw if site.generator is not None else 0.0,
            "battery discharge_power_mw": site.battery.discharge_power_mw if site.battery is not None else 0.0,
            "PV capacity": site.pv_capacity_mw * scenario.generation_scale,
            "wind capacity": site.wind_capacity_mw * scenario.generation_scale,
        }
        supply = sum(parts.values())
        idle = site.idle_power_mw * site.cooling.pue_min
        try:
            base = resolve_series(site.base_load_mw, start, n_ticks, tick_h, longitude_deg=site.longitude_deg,
                                  rule=SIGNAL_RULES["base_load"])
        except ValueError:
            continue
        over = np.flatnonzero(base + idle > supply * (1 + 1e-9) + 1e-9)
        if len(over):
            at = pd.Timestamp(start) + pd.Timedelta(hours=float(over[0]) * tick_h)
            listed = " + ".join(f"{name} {value:g}" for name, value in parts.items() if value)
            sources = listed or "no grid, generator, battery or renewables"
            if base[over[0]] > 0:
                idle_text = f" plus idle facility load {idle:g} MW" if idle else ""
                field, load = "base_load_mw", f"{base[over[0]]:g} MW at {at:%Y-%m-%d %H:%M} UTC{idle_text}"
            else:
                field, load = "idle_power_mw", f"idle facility load {idle:g} MW (x pue_min)"
            raise ScenarioError(source, f"sites[{i}].{field}",
                                f"{load} exceeds the most the site can ever supply, {supply:g} MW ({sources}); "
                                "raise a limit or lower the load")


def field_rule(field: str) -> str:
    """Resolution rule of a series field (:data:`scenarios.series.SIGNAL_RULES`): temperature interpolates."""
    return SIGNAL_RULES["temperature"] if field.endswith("ambient_temperature_c") else SIGNAL_RULES["import_price"]


def parse_scenario(data: dict, source: str = "<scenario>", base_dir: str | Path | None = None) -> Scenario:
    """Validate a scenario given as a plain dict (as read from TOML).

    ``base_dir`` is the folder relative file paths (series of kind ``file``) are read from; None
    means the working directory.
    """
    try:
        scenario = Scenario.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as error:
        raise _first_error(source, error) from None
    check_scenario(scenario, source)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file, or a built-in scenario by name."""
    path_text = str(path)
    if not path_text.endswith(".toml") and builtin_path(path_text) is not None:
        return load_builtin(path_text)
    path = Path(path)
    if not path.exists():
        raise ScenarioError(path_text, "",
                            "file not found (and not a built-in scenario name; see `aidc scenarios`)")
    if path.is_dir():
        raise ScenarioError(path_text, "", "is a directory, not a scenario file")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise ScenarioError(path_text, "", f"cannot read the file: {error.strerror or error}") from None
    if not text.strip():
        raise ScenarioError(path_text, "", "file is empty")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(path_text, "", f"not valid TOML: {error}") from None
    return parse_scenario(data, path_text, base_dir=path.resolve().parent)


#: what ``--days`` does to the scenario's carbon budget: scale it with the run length (the budget
#: keeps its pace, tCO2 per day) or keep the whole budget for the shorter or longer run
BUDGET_SCALES = ("pro-rata", "none")
DEFAULT_BUDGET_SCALE = "pro-rata"


def budget_for_days(scenario: Scenario, days: float | None, budget_scale: str = DEFAULT_BUDGET_SCALE) -> float | None:
    """The carbon budget (tCO2) of the scenario run over ``days`` (None: its own length) by
    ``budget_scale`` (:data:`BUDGET_SCALES`); None when the scenario has no budget.
    Raises ``ValueError`` for an unknown ``budget_scale``."""
    if budget_scale not in BUDGET_SCALES:
        raise ValueError(f"budget scale must be one of {', '.join(BUDGET_SCALES)}, got {budget_scale!r}")
    budget = scenario.carbon.budget_tco2
    if budget is None or days is None or budget_scale == "none":
        return budget
    return budget * days / scenario.run.days


def budget_note(scenario: Scenario, days: float | None, budget_scale: str = DEFAULT_BUDGET_SCALE) -> str | None:
    """One line saying which carbon budget a run of ``days`` uses and why, e.g. ``carbon budget
    for the simulated 1 day: 7.14 tCO2 (the scenario's 50 tCO2 over 7 days, scaled pro rata;
    --budget-scale none keeps 50)``; None when the scenario has no budget."""
    budget = scenario.carbon.budget_tco2
    if budget is None:
        return None
    span = scenario.run.days if days is None else days
    used = budget_for_days(scenario, days, budget_scale)
    assert used is not None
    if days is None or days == scenario.run.days:
        return f"carbon budget: {budget:,.4g} tCO2 over the scenario's {_days(span)}"
    own = f"the scenario's {budget:,.4g} tCO2 over {_days(scenario.run.days)}"
    if budget_scale == "none":
        how = f"{own}, kept whole; --budget-scale pro-rata gives {budget * days / scenario.run.days:,.4g}"
    else:
        how = f"{own}, scaled pro rata; --budget-scale none keeps {budget:,.4g}"
    return f"carbon budget for the simulated {_days(span)}: {used:,.4g} tCO2 ({how})"


def _days(days: float) -> str:
    return f"{days:g} day" if days == 1 else f"{days:g} days"


def with_days(scenario: Scenario, days: float | None, budget_scale: str = DEFAULT_BUDGET_SCALE) -> Scenario:
    """The scenario with its run length replaced, validated again like a loaded file.

    Every rule of :func:`scenarios.io.check_scenario` is checked over the new length (whole
    control intervals, series covering the longer run, jobs released within it), so a bad
    ``--days`` fails here with one :class:`ScenarioError`, before any simulation starts. The
    carbon budget covers the whole run: ``budget_scale="pro-rata"`` (the default) scales it in
    proportion to the new length, ``"none"`` keeps it (:func:`budget_for_days`; the commands
    print :func:`budget_note`). Raises ``ValueError`` for an unknown ``budget_scale``.
    """
    budget = budget_for_days(scenario, days, budget_scale)
    if days is None or days == scenario.run.days:
        return scenario
    data = scenario.model_dump(mode="python")
    data["run"]["days"] = days
    data["carbon"]["budget_tco2"] = budget
    source = f"{scenario.name} with --days {days:g}"
    try:
        changed = Scenario.model_validate(data)
    except ValidationError as error:  # only the length changed: the problem is the length
        raise ScenarioError(source, "run.days", validation_error(source, error).reason) from None
    if days > scenario.run.days:  # a shorter run needs nothing the loaded scenario was not checked for
        check_scenario(changed, source, releases_within_run=False)  # (late jobs simply never come)
    return changed


def scenario_to_dict(scenario: Scenario) -> dict:
    """Plain-data form of a scenario (TOML-compatible: no None values)."""
    return scenario.model_dump(mode="python", exclude_none=True)


def dump_scenario(scenario: Scenario) -> str:
    """The scenario as TOML text; :func:`parse_scenario` of it gives an equal scenario."""
    return tomli_w.dumps(scenario_to_dict(scenario))


def save_scenario(scenario: Scenario, path: str | Path, overwrite: bool = False) -> Path:
    """Write a scenario file; refuses to replace an existing file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists; pass overwrite=True to replace it")
    path.write_text(dump_scenario(scenario), encoding="utf-8")
    return path


def _library() -> resources.abc.Traversable:
    return resources.files("scenarios") / "library"


def builtin_path(name: str) -> resources.abc.Traversable | None:
    """The shipped TOML of a built-in scenario, or None."""
    candidate = _library() / f"{name}.toml"
    return candidate if candidate.is_file() else None


def example_paths() -> list[str]:
    """Scenario files of the worked examples shipped in ``scenarios/examples/<example>/`` (sorted
    paths; their data files sit next to them)."""
    root = resources.files("scenarios") / "examples"
    if not root.is_dir():
        return []
    return sorted(str(item) for folder in root.iterdir() if folder.is_dir()
                  for item in folder.iterdir() if item.name.endswith(".toml"))


def builtin_names() -> list[str]:
    """Names of the built-in scenarios, sorted."""
    return sorted(
        item.name.removesuffix(".toml") for item in _library().iterdir() if item.name.endswith(".toml")
    )


def load_builtin(name: str) -> Scenario:
    """Load a built-in scenario by name."""
    candidate = builtin_path(name)
    if candidate is None:
        raise ScenarioError(
            name, "", f"no built-in scenario of that name; choose from {', '.join(builtin_names())}"
        )
    data = tomllib.loads(candidate.read_text(encoding="utf-8"))
    return parse_scenario(data, f"{name} (built-in)")
