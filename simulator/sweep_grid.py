"""The grid of a sweep: controllers x forecasts x seeds x scenario variants of one scenario.

:class:`SweepGrid` is built from keyword arguments, from a small TOML file
(:meth:`SweepGrid.from_toml`) or from the ``aidc sweep`` options, checked before anything runs,
and expanded by :meth:`SweepGrid.runs` into :class:`RunSpec` -- one per run, each with a
deterministic id. Heuristic controllers use no forecast and appear once per (variant, seed).
Running the grid is :mod:`simulator.sweep`.

A grid file::

    scenario = "us-3site"            # built-in name, or a TOML file relative to this one
    controllers = ["mpc", "greedy", "local", "carbon_rule:CarbonRule"]  # names, name:options, module:Class
    forecasts = ["perfect", "noisy:sigma_24h=0.1", "noisy:sigma_24h=0.3"]
    seeds = "1-3"                    # or [1, 2, 3]
    days = 1
    budget_scale = "pro-rata"        # what days does to the carbon budget: "pro-rata" (default) or "none"
    bound = true                     # also solve the hindsight bound (dual bound): regret_usd
    [variants]                       # default: one variant "base" without overrides
    base = {}
    rich = { generation_scale = 2.0, carbon = { price_usd_per_tco2 = 60.0 } }
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimizer.defaults import MPC_DEFAULTS, SOLVER_NAMES
from simulator.controllers import (
    REGISTRY,
    ControllerSpec,
    ControllerSpecError,
    controller_names,
    parse_controller_spec,
)

if TYPE_CHECKING:
    from scenarios.schema import Scenario

# the built-in controllers that forecast and those that do not, read from the one registry
# (simulator.controllers.REGISTRY); a grid asks each spec (:func:`uses_forecast`), so a user's
# class and options work too
MPC_CONTROLLERS = tuple(name for name, entry in REGISTRY.items() if entry.uses_forecast)
HEURISTIC_CONTROLLERS = tuple(name for name, entry in REGISTRY.items() if not entry.uses_forecast)
NO_FORECAST = "n/a"  # the forecast column of a heuristic's runs
#: parameter columns of the runs table (before the KPIs)
RUN_COLUMNS = ("run_id", "scenario", "variant", "controller", "forecast", "forecast_sigma_24h", "seed", "days")


class SweepSpecError(ValueError):
    """A grid that cannot be run (unknown controller, bad variant, malformed TOML ...)."""


# ---------------------------------------------------------------------------------------------
# the grid


def parse_value(text: str) -> object:
    """A TOML value (``2``, ``0.5``, ``true``, ``"x"``, ``[1, 2]``); a bare word stays a string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text.strip()


@dataclass(frozen=True)
class ScenarioVariant:
    """A named set of overrides of scenario fields, e.g. ``rich`` = ``{generation_scale: 2}``.

    Keys are field names of :class:`scenarios.schema.Scenario`, dotted for nested fields
    (``carbon.price_usd_per_tco2``, ``run.horizon_hours``); ``base`` has no overrides.
    """

    name: str
    overrides: tuple[tuple[str, object], ...] = ()

    @classmethod
    def parse(cls, text: str) -> ScenarioVariant:
        """``"base"``, ``"generation_scale=2"`` (named after itself) or
        ``"rich:generation_scale=4,carbon.price_usd_per_tco2=60"``."""
        text = text.strip()
        name, colon, rest = text.partition(":")
        if not colon:
            name, rest = ("", text) if "=" in text else (text, "")
        overrides = []
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, equals, value = item.partition("=")
            if not equals or not key.strip() or not value.strip():
                raise SweepSpecError(f"scenario variant {text!r}: write name:field=value,field=value")
            overrides.append((key.strip(), parse_value(value)))
        name = name.strip() or ",".join(f"{key}={value}" for key, value in overrides)
        if not name:
            raise SweepSpecError(f"scenario variant {text!r}: empty")
        return cls(name, tuple(overrides))

    @classmethod
    def from_mapping(cls, name: str, overrides: Mapping[str, object]) -> ScenarioVariant:
        """From a TOML table, nested tables flattened to dotted keys."""
        flat: list[tuple[str, object]] = []

        def walk(prefix: str, table: Mapping[str, object]) -> None:
            for key, value in table.items():
                if isinstance(value, Mapping):
                    walk(f"{prefix}{key}.", value)
                else:
                    flat.append((f"{prefix}{key}", value))

        walk("", overrides)
        return cls(name, tuple(flat))

    def apply(self, scenario: Scenario) -> Scenario:
        """The scenario with the overrides set, validated again like a loaded file."""
        from pydantic import ValidationError

        from scenarios.io import ScenarioError, check_scenario, shorten_value, validation_error
        from scenarios.schema import Scenario as ScenarioModel

        if not self.overrides:
            return scenario
        data = scenario.model_dump(mode="python")
        for key, value in self.overrides:
            *parents, last = key.split(".")
            table: Any = data  # nested tables of the scenario dump
            for part in parents:
                table = table.get(part) if isinstance(table, dict) else None
                if not isinstance(table, dict):
                    raise SweepSpecError(f"scenario variant {self.name!r}: {key}: no such table in the scenario")
            if last not in table:
                raise SweepSpecError(f"scenario variant {self.name!r}: {key}: no such scenario field")
            table[last] = value
        where = f"scenario variant {shorten_value(self.name)}"
        try:
            changed = ScenarioModel.model_validate(data)
        except ValidationError as error:
            raise SweepSpecError(str(validation_error(where, error))) from None
        try:
            check_scenario(changed, where)
        except ScenarioError as error:
            raise SweepSpecError(str(error)) from None
        return changed

    def to_dict(self) -> dict[str, object]:
        return dict(self.overrides)


BASE = ScenarioVariant("base")


def forecast_sigma_24h(forecast: str | None) -> float:
    """The forecast-error level of a spec: 0 for ``perfect``, ``sigma_24h`` for ``noisy``, else NaN."""
    from forecasts.registry import parse_forecast_spec

    if forecast is None:
        return math.nan
    name, params = parse_forecast_spec(forecast)
    if name == "perfect":
        return 0.0
    if name == "noisy" and "sigma_24h" in params:
        try:
            return float(params["sigma_24h"])  # type: ignore[arg-type]  # any value: caught below
        except (TypeError, ValueError):
            return math.nan
    return math.nan


def _slug(text: str, limit: int = 40) -> str:
    """``text`` as a file-name part: runs of other characters than letters, digits and dots become
    ``-``; at most ``limit`` characters (a run id carries a hash of all its parameters, so a cut
    name stays unique, and a 300-character variant name cannot exceed the file system's limit)."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:limit].strip("-") or "x"


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: everything that determines its result."""

    scenario: str  # the scenario's name (its content enters through scenario_sha256)
    scenario_sha256: str  # of the variant's scenario
    variant: str
    controller: str
    forecast: str | None  # None: the controller uses no forecast
    seed: int
    days: float | None
    solver: str | None
    time_limit_s: float | None
    mip_gap: float | None
    bound: bool
    horizon_hours: float | None = None  # None: the scenario's
    fine_hours: float | None = None  # 0: full resolution
    coarse_factor: int | None = None
    budget_scale: str = "pro-rata"  # scenarios.io.DEFAULT_BUDGET_SCALE (left out of the run id at the default)
    # users' classes (controller, forecaster): sha256 of their source files and the controller's
    # config() (user_code_digest), so an edited class is run again; None (left out of the run id): built-ins
    user_code_sha256: str | None = None

    def mpc_settings(self) -> dict[str, Any]:
        """``make_controller`` keyword arguments of the MPC's settings (defaults where not set)."""
        return {"time_limit_s": self.time_limit_s or MPC_DEFAULTS.time_limit_s,
                "mip_gap": MPC_DEFAULTS.mip_gap if self.mip_gap is None else self.mip_gap,
                "horizon_hours": self.horizon_hours,
                "fine_hours": MPC_DEFAULTS.fine_hours if self.fine_hours is None else (self.fine_hours or None),
                "coarse_factor": self.coarse_factor}

    @property
    def run_id(self) -> str:
        """``<controller>_<forecast>_<variant>_seed<seed>-<hash>``: readable, unique per parameters."""
        fields = asdict(self)
        if fields["budget_scale"] == "pro-rata":  # the ids of sweeps from before the choice existed stay valid
            del fields["budget_scale"]
        if fields["user_code_sha256"] is None:  # built-ins only: the ids stay as before
            del fields["user_code_sha256"]
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]
        forecast = _slug(self.forecast) if self.forecast is not None else "none"
        return f"{_slug(self.controller)}_{forecast}_{_slug(self.variant)}_seed{self.seed}-{digest}"

    def row(self) -> dict[str, object]:
        """The parameter columns of the runs table."""
        return {
            "run_id": self.run_id, "scenario": self.scenario, "variant": self.variant, "controller": self.controller,
            "forecast": self.forecast if self.forecast is not None else NO_FORECAST,
            "forecast_sigma_24h": forecast_sigma_24h(self.forecast), "seed": self.seed,
            "days": math.nan if self.days is None else float(self.days),
        }


@dataclass(frozen=True)
class SweepGrid:
    """Controllers x forecasts x seeds x scenario variants of one scenario (see the module docstring)."""

    scenario: str  # built-in name or TOML file
    controllers: tuple[str, ...] = ("mpc", "greedy", "local")
    forecasts: tuple[str, ...] = ("perfect",)
    seeds: tuple[int, ...] = (1, 2, 3)
    variants: tuple[ScenarioVariant, ...] = (BASE,)
    days: float | None = None  # None: the scenario's
    solver: str = "highs"
    time_limit_s: float = MPC_DEFAULTS.time_limit_s
    mip_gap: float = MPC_DEFAULTS.mip_gap
    bound: bool = False
    horizon_hours: float | None = None  # None: the scenario's
    fine_hours: float = MPC_DEFAULTS.fine_hours or 0.0  # 0: full resolution
    coarse_factor: int | None = None  # None: steps of MPC_DEFAULTS.coarse_step_hours
    budget_scale: str = "pro-rata"  # what days does to the carbon budget (scenarios.io.BUDGET_SCALES)

    def __post_init__(self) -> None:
        if not self.controllers:
            raise SweepSpecError(f"controllers: none given; choose from {', '.join(REGISTRY)}, "
                                 "or package.module:ClassName")
        for controller in self.controllers:
            controller_spec(controller)
        if not self.forecasts and any(uses_forecast(c) for c in self.controllers):
            raise SweepSpecError("forecasts: give at least one forecast for the MPC controllers")
        if not self.seeds or min(self.seeds) < 0:
            raise SweepSpecError(f"seeds: need non-negative seeds, got {list(self.seeds)}")
        names = [v.name for v in self.variants]
        if not names or len(set(names)) != len(names):
            raise SweepSpecError(f"scenario variants: need distinct names, got {names}")
        if self.days is not None and not self.days > 0:
            raise SweepSpecError(f"days must be positive, got {self.days:g}")
        from scenarios.io import BUDGET_SCALES

        if self.budget_scale not in BUDGET_SCALES:
            raise SweepSpecError(f"budget_scale: unknown {str(self.budget_scale)[:40]!r}; choose from "
                                 f"{', '.join(BUDGET_SCALES)}")
        if self.solver not in SOLVER_NAMES:
            raise SweepSpecError(f"solver: unknown {self.solver!r}; choose from {', '.join(SOLVER_NAMES)}")
        if not self.time_limit_s > 0:
            raise SweepSpecError(f"time_limit_s must be positive, got {self.time_limit_s:g}")
        if not 0 <= self.mip_gap < 1:
            raise SweepSpecError(f"mip_gap must lie in [0, 1), got {self.mip_gap:g}")
        if self.horizon_hours is not None and not self.horizon_hours > 0:
            raise SweepSpecError(f"horizon_hours must be positive, got {self.horizon_hours:g}")
        if not self.fine_hours >= 0:
            raise SweepSpecError(f"fine_hours must be positive (0 = full resolution), got {self.fine_hours:g}")
        if self.coarse_factor is not None and (self.coarse_factor != int(self.coarse_factor) or self.coarse_factor < 1):
            raise SweepSpecError(f"coarse_factor must be a whole number >= 1, got {self.coarse_factor}")
        self._check_forecasts()

    def _check_forecasts(self) -> None:
        from forecasts import ForecastSpecError, make_forecaster

        for spec in self.forecasts:
            try:
                make_forecaster(spec, 0)
            except ForecastSpecError as error:
                raise SweepSpecError(f"forecasts: {error}") from None

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: object) -> SweepGrid:
        """A grid from a small TOML file; ``overrides`` (not None) replace its keys.

        ``scenario``, ``controllers``, ``forecasts``, ``seeds`` (list or ``"1-5"``), ``days``,
        ``budget_scale`` (``"pro-rata"`` or ``"none"``: what ``days`` does to the carbon budget),
        ``solver``, ``time_limit_s``, ``mip_gap``, ``horizon_hours``, ``fine_hours`` (0 = a
        full-resolution horizon), ``coarse_factor``, ``bound``, and a table ``[variants]`` of
        named override tables (``rich = { generation_scale = 2.0 }``; ``base = {}``). A relative
        scenario path is taken relative to the TOML file.
        """
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise SweepSpecError(f"{path}: not a text file (a grid is TOML text in UTF-8)") from None
        except tomllib.TOMLDecodeError as error:
            raise SweepSpecError(f"{path}: not valid TOML: {error}") from None
        data.update({key: value for key, value in overrides.items() if value is not None})
        return cls.from_mapping(data, where=str(path), base_dir=path.parent)

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], where: str = "grid", base_dir: Path | None = None) -> SweepGrid:
        """A grid from a mapping with the keys of :meth:`from_toml`."""
        known = {"scenario", "controllers", "forecasts", "seeds", "variants", "days", "solver", "time_limit_s",
                 "mip_gap", "bound", "horizon_hours", "fine_hours", "coarse_factor", "budget_scale"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SweepSpecError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        if "scenario" not in data:
            raise SweepSpecError(f"{where}: missing 'scenario'")
        scenario = str(data["scenario"])
        if base_dir is not None and scenario.endswith(".toml") and not Path(scenario).is_absolute():
            candidate = base_dir / scenario
            if candidate.exists():
                scenario = str(candidate)
        variants_data = data.get("variants")
        if variants_data is None:
            variants: tuple[ScenarioVariant, ...] = (BASE,)
        elif isinstance(variants_data, Mapping):
            variants = tuple(ScenarioVariant.from_mapping(name, table if isinstance(table, Mapping) else {})
                             for name, table in variants_data.items())
        elif isinstance(variants_data, Sequence) and not isinstance(variants_data, str):
            variants = tuple(v if isinstance(v, ScenarioVariant) else ScenarioVariant.parse(str(v))
                             for v in variants_data)
        else:
            raise SweepSpecError(f"{where}: variants: give a table of named override tables")
        kwargs: dict[str, object] = {"scenario": scenario, "variants": variants}
        if "controllers" in data:
            listed = data["controllers"]
            kwargs["controllers"] = tuple(controller_names(listed) if isinstance(listed, str)
                                          else _names(listed, f"{where}: controllers"))
        if "forecasts" in data:
            forecasts = data["forecasts"]
            kwargs["forecasts"] = tuple(split_forecasts(forecasts) if isinstance(forecasts, str)
                                        else _names(forecasts, f"{where}: forecasts"))
        if "seeds" in data:
            kwargs["seeds"] = tuple(parse_seeds(data["seeds"]))
        for key in ("days", "time_limit_s", "mip_gap", "horizon_hours", "fine_hours", "coarse_factor"):
            if data.get(key) is not None:
                kwargs[key] = _number(data[key], f"{where}: {key}")
        factor = kwargs.get("coarse_factor")
        if isinstance(factor, float) and factor.is_integer():
            kwargs["coarse_factor"] = int(factor)
        if "solver" in data:
            kwargs["solver"] = str(data["solver"])
        if "budget_scale" in data:
            kwargs["budget_scale"] = str(data["budget_scale"])
        if "bound" in data:
            if not isinstance(data["bound"], bool):
                raise SweepSpecError(f"{where}: bound must be true or false")
            kwargs["bound"] = data["bound"]
        try:
            return cls(**kwargs)  # type: ignore[arg-type]  # each key's value type checked above
        except SweepSpecError as error:
            raise SweepSpecError(f"{where}: {error}") from None

    def to_dict(self) -> dict[str, object]:
        """What ``sweep.json`` records (readable back by :meth:`from_mapping`)."""
        return {
            "scenario": self.scenario, "controllers": list(self.controllers), "forecasts": list(self.forecasts),
            "seeds": list(self.seeds), "variants": {v.name: v.to_dict() for v in self.variants}, "days": self.days,
            "solver": self.solver, "time_limit_s": self.time_limit_s, "mip_gap": self.mip_gap, "bound": self.bound,
            "horizon_hours": self.horizon_hours, "fine_hours": self.fine_hours, "coarse_factor": self.coarse_factor,
            "budget_scale": self.budget_scale,
        }

    def scenarios(self) -> dict[str, Scenario]:
        """The scenario of every variant (loaded and validated; bad input fails here, before any run)."""
        from scenarios import load_scenario
        from scenarios.io import with_days

        base = load_scenario(self.scenario)
        out = {}
        from simulator.controllers import horizon_problem

        for variant in self.variants:
            scenario = variant.apply(base)
            with_days(scenario, self.days, self.budget_scale)  # a run length not whole control intervals fails now
            problem = horizon_problem(scenario, self.horizon_hours) if self.horizon_hours is not None else None
            if problem and any(controller_spec(c).uses_solver for c in self.controllers):
                raise SweepSpecError(f"variant {variant.name}: {problem}")
            out[variant.name] = scenario
        self._check_controllers(next(iter(out.values())))
        return out

    def _check_controllers(self, scenario: Scenario) -> None:
        """Build every controller once with the grid's settings, so that options a controller (or a
        user's constructor) refuses fail here, before any run, not in every worker."""
        from simulator.controllers import make_controller

        for controller in self.controllers:
            # with every forecast of the grid: a pairing (mpc-stochastic:source=quantiles × perfect) may be refused
            forecasts = list(self.forecasts or ["perfect"])
            forecasts = forecasts if uses_forecast(controller) else forecasts[:1]
            for forecast in forecasts:
                try:
                    make_controller(controller, scenario, forecast=forecast, solver=self.solver, seed=0,
                                    time_limit_s=self.time_limit_s, mip_gap=self.mip_gap,
                                    fine_hours=self.fine_hours or None, coarse_factor=self.coarse_factor)
                except ControllerSpecError as error:  # names the controller itself
                    where = f" (forecast {forecast})" if len(forecasts) > 1 else ""
                    raise SweepSpecError(f"controllers{where}: {error}") from None
                except ValueError as error:
                    raise SweepSpecError(f"controllers: {controller}: {error}") from None

    def runs(self, scenarios: Mapping[str, Scenario] | None = None) -> list[RunSpec]:
        """Every run of the grid, heuristics once per (variant, seed); grid order."""
        from scenarios.io import dump_scenario

        scenarios = self.scenarios() if scenarios is None else scenarios
        specs = []
        for variant in self.variants:
            scenario = scenarios[variant.name]
            digest = hashlib.sha256(dump_scenario(scenario).encode("utf-8")).hexdigest()
            for controller in self.controllers:
                forecasts: Iterable[str | None] = self.forecasts if uses_forecast(controller) else (None,)
                mpc = controller_spec(controller).uses_solver
                for forecast in forecasts:
                    for seed in self.seeds:
                        specs.append(RunSpec(
                            scenario=scenario.name, scenario_sha256=digest, variant=variant.name,
                            controller=controller, forecast=forecast, seed=int(seed),
                            days=None if self.days is None else float(self.days),
                            solver=self.solver if mpc else None, time_limit_s=self.time_limit_s if mpc else None,
                            mip_gap=self.mip_gap if mpc else None, bound=self.bound,
                            horizon_hours=self.horizon_hours if mpc else None,
                            fine_hours=self.fine_hours if mpc else None,
                            coarse_factor=self.coarse_factor if mpc else None, budget_scale=self.budget_scale,
                            user_code_sha256=user_code_digest(controller, forecast),
                        ))
        return specs


def _source_digest(cls: type) -> str:
    """sha256 of the file that defines ``cls`` (its qualified name when there is no file)."""
    import inspect

    try:
        path = inspect.getsourcefile(cls)
    except TypeError:
        path = None
    if path is None or not Path(path).is_file():
        return f"{cls.__module__}:{cls.__qualname__}"
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _stable(value: object) -> object:
    """A JSON stand-in for a value of a config() that JSON cannot hold (no memory addresses)."""
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else type(value).__name__


@functools.cache
def user_code_digest(controller: str, forecast: str | None) -> str | None:
    """A digest of the users' code behind a run: the source file of a user's controller class
    (with its ``config()`` as built with seed 0) and of a user's forecaster class; None when
    both are built-ins. Part of the run id, so that ``--runs``/a sweep folder re-runs a run whose
    class was edited instead of reusing its old result. Only the file that defines each class is
    hashed: a change in a module it imports is not seen (use a new folder, or ``--force``)."""
    from forecasts.plugin import AIDC_PACKAGES
    from forecasts.registry import forecaster_class, parse_forecast_spec
    from simulator.controllers import make_controller

    parts: list[str] = []
    spec = controller_spec(controller)
    if spec.cls is not None:
        parts.append(_source_digest(spec.cls))
        built = make_controller(controller, forecast=forecast or "perfect", seed=0)
        try:
            parts.append(json.dumps(built.config(), sort_keys=True, default=_stable))
        except Exception as error:  # noqa: BLE001 -- a user's config(): its failure is the run's to report
            parts.append(f"config() failed: {type(error).__name__}")
    if forecast is not None:
        cls = forecaster_class(parse_forecast_spec(forecast)[0])
        if cls.__module__.split(".")[0] not in AIDC_PACKAGES:
            parts.append(_source_digest(cls))
    if not parts:
        return None
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def controller_spec(text: str) -> ControllerSpec:
    """The parsed controller spec (a user's class imported and checked); SweepSpecError otherwise."""
    try:
        return parse_controller_spec(text)
    except ControllerSpecError as error:
        raise SweepSpecError(f"controllers: {error}") from None


def uses_forecast(controller: str) -> bool:
    """The controller of this spec forecasts (the grid crosses it with its forecasts)."""
    return controller_spec(controller).uses_forecast


def _names(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise SweepSpecError(f"{where}: give a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SweepSpecError(f"{where}: need a number, got {value!r}")
    return float(value)


#: more seeds than anyone runs in one grid or comparison (a typo like 1-100000000 is refused at once)
MAX_SEEDS = 10_000


def parse_seeds(value: object) -> list[int]:
    """``"1-5"`` -> [1, ..., 5]; ``"1,4,9"`` or ``[1, 4, 9]`` -> [1, 4, 9]; ranges and lists combine."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, Sequence) and not isinstance(value, str):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise SweepSpecError(f"seeds: need integers, got {list(value)}")
        seeds = [int(v) for v in value]
    else:
        seeds = []
        try:
            for part in filter(None, (p.strip() for p in str(value).split(","))):
                low, dash, high = part.partition("-")
                if dash:
                    if int(high) < int(low):
                        raise ValueError
                    if int(high) - int(low) >= MAX_SEEDS:
                        raise SweepSpecError(f"seeds: at most {MAX_SEEDS:,} seeds, got the range {part[:60]}")
                    seeds.extend(range(int(low), int(high) + 1))
                else:
                    seeds.append(int(part))
        except SweepSpecError:
            raise
        except ValueError:
            raise SweepSpecError(f"seeds: cannot read {value!r}; write e.g. 1-5 or 1,4,9") from None
    if not seeds or min(seeds) < 0 or max(seeds) >= 2**63:
        raise SweepSpecError(f"seeds: need seeds in [0, 2**63), got {str(value)[:80]!r}")
    if len(seeds) > MAX_SEEDS:
        raise SweepSpecError(f"seeds: at most {MAX_SEEDS:,} seeds, got {len(seeds):,}")
    return list(dict.fromkeys(seeds))


def split_forecasts(text: str) -> list[str]:
    """Split a ``--forecasts`` list on ``;``, or on commas that start a new forecaster name.

    ``"perfect,noisy:sigma_24h=0.1,rho=0.8,ets"`` -> ``["perfect", "noisy:sigma_24h=0.1,rho=0.8", "ets"]``:
    a comma-separated item with ``=`` continues the previous spec's parameters.
    """
    if ";" in text:
        return [part.strip() for part in text.split(";") if part.strip()]
    specs: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if specs and "=" in part and ":" not in part:
            specs[-1] += "," + part
        else:
            specs.append(part)
    return specs
