"""The controller registry: every controller by name, with its options, and users' classes by import spec.

``make_controller("mpc", scenario, forecast="noisy:sigma_24h=0.2", seed=3)``. A controller spec is

* a registered name, ``mpc`` or ``greedy``, optionally with options:
  ``greedy:low_quantile=0.2,high_quantile=0.8`` (the options each entry declares);
* a user's class, ``package.module:ClassName`` or ``package.module:ClassName:key=value,...``:
  imported with the current directory on the path (:mod:`forecasts.plugin`), checked against the
  protocol of :mod:`optimizer.protocol`, and built as ``ClassName(**options)``; a constructor
  that takes ``forecaster`` receives the run's forecaster (``make_forecaster(forecast, seed)``:
  the controller then forecasts, and a sweep crosses it with its forecasts), one that takes
  ``seed`` receives the run's seed. Option values follow the constructor's type hints
  (``bool``/``int``/``float``/``str``, optionally ``| None``; :func:`typed_option_value`): a
  value the hint refuses is a one-line error before any run; without a hint they are read as
  TOML values (``10``, ``0.5``, ``true``, ``cvar``). Quote a value to include a comma:
  ``mode="a,b"``.

:data:`REGISTRY` is the one list of built-in controllers (name, description, options and their
defaults, whether it forecasts and solves) that the CLI, ``compare``, sweeps and the tables read.
Add one with :func:`register_controller`::

    register_controller(ControllerEntry(
        "mpc-stochastic", "scenario-based MPC", factory=make_stochastic_mpc,
        options=(ControllerOption("scenarios", 10, "forecast scenarios per window"),
                 ControllerOption("risk", "neutral", "risk measure", choices=("neutral", "cvar"))),
        uses_forecast=True, uses_solver=True, mpc_variant="joint"))

where ``make_stochastic_mpc(settings: ControllerSettings, scenarios: int, risk: str) -> Controller``.

This module imports only the standard library at load time (the CLI's parser reads it); the
controllers' modules are imported by the factories.
"""

from __future__ import annotations

import contextlib
import inspect
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from optimizer.defaults import MPC_DEFAULTS, SOLVER_NAMES

if TYPE_CHECKING:
    from forecasts import Forecaster
    from optimizer.protocol import Controller
    from optimizer.solvers import SolveOptions
    from scenarios.schema import Scenario


class ControllerSpecError(ValueError):
    """A controller spec that cannot be used: unknown name or option, a class that cannot be
    imported or does not follow the protocol (one-line message)."""


@dataclass(frozen=True)
class ControllerOption:
    """One option of a registered controller: ``name=value`` after the controller's name.

    The value's type is the default's (bool, int, float or str); ``choices`` restricts a string.
    """

    name: str
    default: bool | int | float | str
    help: str
    choices: tuple[str, ...] = ()

    def parse(self, raw: object, owner: str) -> bool | int | float | str:
        """The value of ``raw`` (a string from a spec, or a value from a TOML grid), checked."""
        value = parse_option_value(raw) if isinstance(raw, str) else raw
        kind = type(self.default)
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if kind is str:
            value, ok = str(value), True
            if self.choices and value not in self.choices:
                ok = False
        if not ok:
            expected = ("one of " + "|".join(self.choices) if self.choices
                        else {bool: "true or false", int: "an int", float: "a float"}.get(kind, "a string"))
            raise ControllerSpecError(f"controller {owner}: option {self.name}={raw!r}: expected {expected}")
        return value  # type: ignore[return-value]  # checked above

    def describe(self) -> str:
        choices = f" ({'|'.join(self.choices)})" if self.choices else ""
        return f"{self.name}={self.default}{choices}: {self.help}"


@dataclass(frozen=True)
class ControllerSettings:
    """The run-wide settings every controller factory receives (the options of ``aidc run``).

    ``forecast`` is a forecaster spec and ``seed`` the run's seed (forecast errors are common
    random numbers across controllers); ``solver``, ``time_limit_s`` (s per window; hard deadline
    1.5x), ``mip_gap``, ``horizon_hours`` (None: the scenario's), ``shrink_at_run_end``,
    ``fine_hours`` / ``coarse_factor`` are the MPC's (see :class:`optimizer.mpc.MPCController`).
    """

    scenario: Scenario | None = None
    forecast: str = "perfect"
    solver: str = "highs"
    seed: int = 0
    time_limit_s: float = MPC_DEFAULTS.time_limit_s
    mip_gap: float = MPC_DEFAULTS.mip_gap
    horizon_hours: float | None = None
    shrink_at_run_end: bool = True
    fine_hours: float | None = MPC_DEFAULTS.fine_hours
    coarse_factor: int | None = None

    def forecaster(self) -> Forecaster:
        """``make_forecaster(forecast, seed)``."""
        from forecasts import make_forecaster

        return make_forecaster(self.forecast, self.seed)

    def solve_options(self) -> SolveOptions:
        """The window solve's options; ValueError for an unknown solver or a bad time limit."""
        from optimizer.solvers import SolveOptions

        if self.solver not in SOLVER_NAMES:
            raise ValueError(f"unknown solver {self.solver!r}; valid solvers: {', '.join(SOLVER_NAMES)}")
        if self.time_limit_s <= 0:
            raise ValueError(f"time_limit_s must be positive, got {self.time_limit_s:g}")
        return SolveOptions(solver=self.solver, time_limit_s=self.time_limit_s, mip_gap=self.mip_gap,
                            deadline_s=1.5 * self.time_limit_s)


@dataclass(frozen=True)
class ControllerEntry:
    """A registered controller: ``factory(settings, **options) -> Controller``, called with every
    declared option (its default where the spec does not give it).

    ``uses_forecast``: it forecasts (a sweep crosses it with its forecasts; a heuristic runs once
    per seed). ``uses_solver``: it solves MILPs (the solver options apply and enter its run id).
    ``mpc_variant``: the window model it solves (``--solver gurobi`` probes that model's licence
    limits before the run), None for none.
    """

    name: str
    description: str
    factory: Callable[..., Controller]
    options: tuple[ControllerOption, ...] = ()
    uses_forecast: bool = False
    uses_solver: bool = False
    mpc_variant: str | None = None


#: name -> entry: the one list of built-in controllers (in the order tables and help list them)
REGISTRY: dict[str, ControllerEntry] = {}


def register_controller(entry: ControllerEntry) -> ControllerEntry:
    """Add ``entry`` to :data:`REGISTRY` (ValueError if its name is taken or contains ``:``)."""
    if entry.name in REGISTRY or ":" in entry.name or not entry.name:
        raise ValueError(f"controller name {entry.name!r} is taken or not a plain name")
    REGISTRY[entry.name] = entry
    return entry


class _View(Mapping[str, str]):
    """A live read-only view of the registry: name -> one field of its entry."""

    def __init__(self, read: Callable[[ControllerEntry], str | None]) -> None:
        self._read = read

    def __getitem__(self, name: str) -> str:
        value = self._read(REGISTRY[name])
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return (name for name, entry in REGISTRY.items() if self._read(entry) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


#: controller name -> what it does (a live view of :data:`REGISTRY`)
CONTROLLERS: Mapping[str, str] = _View(lambda entry: entry.description)
#: MPC controller name -> the model variant it solves (a live view of :data:`REGISTRY`)
MPC_VARIANTS: Mapping[str, str] = _View(lambda entry: entry.mpc_variant)


def parse_option_value(text: str) -> object:
    """A TOML value (``2``, ``0.5``, ``true``, ``"x"``); a bare word stays a string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def split_commas(text: str) -> list[str]:
    """``text`` split at commas outside double or single quotes (``mode="x,y",n=2`` is two items)."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == ",":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _split_options(text: str, owner: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in split_commas(text))):
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise ControllerSpecError(f"controller {owner}: malformed option {item!r}: write key=value")
        if key.strip() in options:
            raise ControllerSpecError(f"controller {owner}: option {key.strip()!r} given twice")
        options[key.strip()] = value.strip()
    return options


@dataclass(frozen=True)
class ControllerSpec:
    """A parsed controller spec: a registered entry or an imported class, and its options."""

    text: str  # as given (what travels to worker processes and into the manifest)
    name: str  # the registered name, or ``package.module:ClassName``
    options: Mapping[str, object] = field(default_factory=dict)
    entry: ControllerEntry | None = None
    cls: type | None = None

    @property
    def uses_forecast(self) -> bool:
        """The controller forecasts (an imported class: its constructor takes ``forecaster``)."""
        if self.entry is not None:
            return self.entry.uses_forecast
        return "forecaster" in _parameters(self.cls)

    @property
    def uses_solver(self) -> bool:
        return self.entry.uses_solver if self.entry is not None else False

    @property
    def mpc_variant(self) -> str | None:
        return self.entry.mpc_variant if self.entry is not None else None

    def build(self, settings: ControllerSettings) -> Controller:
        """The controller for ``settings`` (ValueError for bad settings; ControllerSpecError when
        a user's class refuses its options)."""
        if self.entry is not None:
            controller = self.entry.factory(settings, **self.options)
        else:
            controller = self._build_imported(settings)
        with contextlib.suppress(AttributeError):  # a class with __slots__: the manifest falls back to its name
            controller.spec = self.text  # type: ignore[attr-defined]  # any class: recorded in the manifest
        return controller

    def _build_imported(self, settings: ControllerSettings) -> Controller:
        accepted = _parameters(self.cls)
        kwargs = dict(self.options)
        if "forecaster" in accepted and "forecaster" not in kwargs:
            kwargs["forecaster"] = settings.forecaster()
        if "seed" in accepted and "seed" not in kwargs:
            kwargs["seed"] = settings.seed
        assert self.cls is not None
        try:
            return self.cls(**kwargs)
        except Exception as error:  # noqa: BLE001 -- a user's constructor: one line, not a traceback
            shown = {key: value for key, value in kwargs.items() if key != "forecaster"}
            raise ControllerSpecError(f"controller {self.name}: {self.cls.__name__}(**{shown}) failed: "
                                      f"{type(error).__name__}: {error}") from None


def _parameters(cls: type | None) -> set[str]:
    """The keyword parameters of ``cls``'s constructor (all of them for ``**kwargs``: ``{"*"}``)."""
    if cls is None:
        return set()
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return set()
    return {name for name, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def parse_controller_spec(text: str) -> ControllerSpec:
    """Parse ``name[:key=value,...]`` or ``package.module:ClassName[:key=value,...]``.

    A user's class is imported and checked against :func:`optimizer.protocol.protocol_problems`
    here. Raises :class:`ControllerSpecError` (one line) for anything unusable.
    """
    from forecasts.plugin import import_class, split_import_spec

    text = str(text).strip()
    name, _, rest = text.partition(":")
    entry = REGISTRY.get(name.strip())
    if entry is not None:
        raw = _split_options(rest, name)
        known = {option.name: option for option in entry.options}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            valid = ", ".join(known) or "none"
            raise ControllerSpecError(f"controller {name}: unknown option(s) {', '.join(unknown)}; valid: {valid}")
        # every declared option, at its default unless given: the factory and the manifest see all
        options: dict[str, object] = {option.name: option.default for option in entry.options}
        options.update({key: known[key].parse(value, name) for key, value in raw.items()})
        return ControllerSpec(text, entry.name, options, entry=entry)
    parts = split_import_spec(text)
    if parts is None:
        raise ControllerSpecError(f"unknown controller {text!r}; valid names: {', '.join(REGISTRY)}, "
                                  "or package.module:ClassName")
    module, qualname, option_text = parts
    cls = import_class(module, qualname, ControllerSpecError, "controller")
    from optimizer.protocol import protocol_problems

    problems = protocol_problems(cls)
    if problems:
        raise ControllerSpecError(f"controller {module}:{qualname}: not a controller ({'; '.join(problems)}); "
                                  "subclass optimizer.protocol.Controller (see optimizer/protocol.py)")
    owner = f"{module}:{qualname}"
    hints = _constructor_hints(cls)
    imported_options = {key: typed_option_value(value, hints.get(key), owner, key)
                        for key, value in _split_options(option_text, owner).items()}
    return ControllerSpec(text, owner, imported_options, cls=cls)


_SIMPLE_TYPES: tuple[type, ...] = (bool, int, float, str)


def _constructor_hints(cls: type) -> dict[str, object]:
    """The type hints of ``cls.__init__``'s parameters (empty where they cannot be read)."""
    import typing

    try:
        return typing.get_type_hints(cls.__init__)  # type: ignore[misc]  # the class's constructor
    except Exception:  # noqa: BLE001 -- unresolvable hints (a name not importable): values typed by TOML
        return {}


def typed_option_value(text: str, hint: object, owner: str, key: str) -> object:
    """The option ``key=text`` of a user's class as the constructor's type hint asks: ``bool``
    (``true``/``false``), ``int``, ``float`` (``nan``, ``inf`` allowed, as in TOML) or ``str``
    (the text as given; quote it, ``"x,y"``, to include a comma), also inside ``X | None``
    (``none`` gives None). Without such a hint the value is read as TOML (:func:`parse_option_value`).
    Raises :class:`ControllerSpecError` naming the option and the expected type."""
    import types
    import typing

    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else ()
    optional = type(None) in args
    simple = [arg for arg in args if arg in _SIMPLE_TYPES] if args else ([hint] if hint in _SIMPLE_TYPES else [])
    if len(simple) != 1:
        return parse_option_value(text)
    kind = simple[0]
    if optional and text.strip().lower() == "none":
        return None
    value = parse_option_value(text)
    if kind is str:
        return value if isinstance(value, str) else text.strip()
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        expected = {bool: "true or false", int: "an integer", float: "a number"}[kind]
        raise ControllerSpecError(f"controller {owner}: option {key}={text.strip()!r}: expected {expected} "
                                  f"({key}: {kind.__name__}{' | None' if optional else ''})")
    return value


def controller_names(specs: str) -> list[str]:
    """Split a comma-separated list of controller specs (``mpc,greedy:low_quantile=0.2,mod:Cls``):
    an item with ``=`` and no ``:`` continues the previous spec's options."""
    out: list[str] = []
    for part in (p.strip() for p in split_commas(specs)):
        if not part:
            raise ControllerSpecError(f"empty controller in {specs!r}: remove the extra comma")
        if out and "=" in part and ":" not in part:
            out[-1] += "," + part
        else:
            out.append(part)
    return out


def horizon_problem(scenario: Scenario, horizon_hours: float) -> str | None:
    """Why ``horizon_hours`` cannot be the MPC's horizon on ``scenario`` (not a positive whole
    number of control intervals), or None."""
    steps = horizon_hours * 60.0 / scenario.run.control_interval_minutes
    if steps < 1 or abs(steps - round(steps)) > 1e-9:
        return (f"horizon_hours ({horizon_hours:g}) must be a positive multiple of the control interval "
                f"({scenario.run.control_interval_minutes:g} min)")
    return None


def make_controller(
    name: str,
    scenario: Scenario | None = None,
    forecast: str = "perfect",
    solver: str = "highs",
    time_limit_s: float = MPC_DEFAULTS.time_limit_s,
    seed: int = 0,
    mip_gap: float = MPC_DEFAULTS.mip_gap,
    horizon_hours: float | None = None,
    shrink_at_run_end: bool = True,
    fine_hours: float | None = MPC_DEFAULTS.fine_hours,
    coarse_factor: int | None = None,
) -> Controller:
    """A controller by spec (a name of :data:`REGISTRY` with options, or ``package.module:ClassName``).

    MPC controllers forecast with ``make_forecaster(forecast, seed)`` (pass the run's seed so
    forecast errors are common random numbers across controllers) and solve with ``solver``
    within ``time_limit_s`` (a hard deadline of 1.5 x that interrupts HiGHS). ``horizon_hours``
    defaults to the scenario's; with ``shrink_at_run_end`` it stops at the run's end;
    ``fine_hours``/``coarse_factor`` give a variable-resolution horizon (see
    :class:`optimizer.mpc.MPCController`). ``scenario`` is only checked for consistency of the horizon.
    Heuristics ignore the forecast and solver arguments. An unknown name raises
    :class:`ControllerSpecError` (a ValueError); bad settings raise ValueError.
    """
    spec = parse_controller_spec(name)
    settings = ControllerSettings(scenario, forecast, solver, seed, time_limit_s, mip_gap, horizon_hours,
                                  shrink_at_run_end, fine_hours, coarse_factor)
    return spec.build(settings)


def describe_controllers() -> str:
    """Multi-line help: every registered controller with its description and options."""
    lines = []
    for name, entry in REGISTRY.items():
        lines.append(f"{name}: {entry.description}")
        lines.extend(f"    {option.describe()}" for option in entry.options)
    lines.append("package.module:ClassName[:key=value,...]: your own class (optimizer/protocol.py)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# the built-in controllers


def _mpc_factory(variant: str) -> Callable[..., Controller]:
    def build(settings: ControllerSettings) -> Controller:
        from optimizer.mpc import MPCController

        options = settings.solve_options()
        if settings.scenario is not None and settings.horizon_hours is not None:
            problem = horizon_problem(settings.scenario, settings.horizon_hours)
            if problem:
                raise ValueError(problem)
        return MPCController(settings.forecaster(), variant=variant, horizon_hours=settings.horizon_hours,
                             solve_options=options, shrink_at_run_end=settings.shrink_at_run_end,
                             fine_hours=settings.fine_hours, coarse_factor=settings.coarse_factor)

    return build


def _stochastic_mpc(settings: ControllerSettings, **options: object) -> Controller:
    """``mpc-stochastic``: :class:`optimizer.stochastic.StochasticMPCController` with the run's
    forecaster, seed (its scenario streams) and MPC settings; bad option values -> ControllerSpecError."""
    from forecasts.scenarios import source_problem
    from optimizer.stochastic import StochasticMPCController, StochasticOptions

    try:
        stochastic = StochasticOptions(**options)  # type: ignore[arg-type]  # types checked by the registry
    except ValueError as error:
        raise ControllerSpecError(str(error)) from None
    solve_options = settings.solve_options()
    if settings.scenario is not None and settings.horizon_hours is not None:
        problem = horizon_problem(settings.scenario, settings.horizon_hours)
        if problem:
            raise ValueError(problem)
    horizon = settings.horizon_hours or (settings.scenario.run.horizon_hours if settings.scenario else None)
    if horizon is not None and stochastic.recourse_step_hours > horizon:
        raise ControllerSpecError(f"mpc-stochastic: recourse_step_hours={stochastic.recourse_step_hours:g} is longer "
                                  f"than the {horizon:g} h horizon; use at most {horizon:g} (0: the MPC's own steps)")
    forecaster = settings.forecaster()
    problem = source_problem(forecaster, stochastic.source)
    if problem:
        raise ControllerSpecError(f"mpc-stochastic: {problem}")
    return StochasticMPCController(forecaster, stochastic, seed=settings.seed,
                                   horizon_hours=settings.horizon_hours, solve_options=solve_options,
                                   shrink_at_run_end=settings.shrink_at_run_end, fine_hours=settings.fine_hours,
                                   coarse_factor=settings.coarse_factor)


def _greedy(settings: ControllerSettings, low_quantile: float = 0.3, high_quantile: float = 0.7) -> Controller:
    from optimizer.control import GreedyController

    if not 0 <= low_quantile <= high_quantile <= 1:
        raise ControllerSpecError(f"controller greedy: need 0 <= low_quantile <= high_quantile <= 1, got "
                                  f"{low_quantile:g} and {high_quantile:g}")
    return GreedyController(low_quantile, high_quantile)


def _local(settings: ControllerSettings) -> Controller:
    from optimizer.control import LocalController

    return LocalController()


register_controller(ControllerEntry(
    "mpc", "rolling-horizon joint MILP (compute and energy together)", _mpc_factory("joint"),
    uses_forecast=True, uses_solver=True, mpc_variant="joint"))
register_controller(ControllerEntry(
    "mpc-compute-only", "rolling-horizon MILP of the workload at grid prices; passive energy side",
    _mpc_factory("compute-only"), uses_forecast=True, uses_solver=True, mpc_variant="compute-only"))
register_controller(ControllerEntry(
    "mpc-energy-only", "naive workload; rolling-horizon MILP of the energy dispatch",
    _mpc_factory("energy-only"), uses_forecast=True, uses_solver=True, mpc_variant="energy-only"))
register_controller(ControllerEntry(
    "mpc-stochastic", "two-stage stochastic MILP over forecast scenarios, the first interval shared by all",
    _stochastic_mpc,
    options=(ControllerOption("scenarios", 10, "forecast scenarios per window (1-200)"),
             ControllerOption("source", "auto", "where scenarios come from: the forecaster's error model, its "
                              "quantiles, or copies of its point forecast",
                              choices=("auto", "model", "quantiles", "point")),
             ControllerOption("risk", "neutral", "objective: expected benefit, or mixed with CVaR",
                              choices=("neutral", "cvar")),
             ControllerOption("cvar_weight", 0.5, "weight of CVaR in the objective, in [0, 1]"),
             ControllerOption("cvar_alpha", 0.9, "CVaR level in [0, 1): the mean loss of the worst "
                              "1 - alpha (0: the whole distribution, i.e. the plain expectation)"),
             ControllerOption("budget", "expected", "carbon budget on the expected emissions, or per scenario",
                              choices=("expected", "scenario")),
             ControllerOption("recourse", "lp", "decisions after the first interval: LP-relaxed or integer",
                              choices=("lp", "mip")),
             ControllerOption("recourse_step_hours", 3.0, "scenario steps after fine_hours, at most the "
                              "horizon (0: the MPC's own)"),
             ControllerOption("merge", True, "merge identical scenarios (false only for ablations)")),
    uses_forecast=True, uses_solver=True, mpc_variant="joint"))
register_controller(ControllerEntry(
    "greedy", "jobs at the cheapest site now, inference cheapest first, battery on price quantiles", _greedy,
    options=(ControllerOption("low_quantile", 0.3, "charge below this quantile of the last day's prices"),
             ControllerOption("high_quantile", 0.7, "discharge above this quantile of the last day's prices"))))
register_controller(ControllerEntry(
    "local", "jobs at release at the first eligible site, inference at the nearest site, grid only", _local))

