"""Choosing a forecaster by name and parameters: ``make_forecaster("noisy:sigma_24h=0.15,rho=0.8")``.

Spec syntax: ``name`` or ``name:param=value,param=value``; a user's class as
``package.module:ClassName`` or ``package.module:ClassName:param=value,...`` (imported with the
current directory on the path, see :mod:`forecasts.plugin`; it must follow
:mod:`forecasts.protocol`); per-signal parameters as
``<signal>.<param>=value``; quantile levels as ``quantiles=0.1/0.5/0.9``. A mapping works too:
``{"name": "noisy", "sigma_24h": 0.15, "carbon": {"rho": 0.95}}`` (as read from a TOML table).
Anything unknown or malformed raises :class:`ForecastSpecError` with a one-line message listing
what is valid.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from forecasts.base import Forecaster
from forecasts.ets import EtsForecaster
from forecasts.models import PerfectForecaster, PersistenceForecaster, SeasonalNaiveForecaster
from forecasts.noisy import NoisyForecaster
from forecasts.params import ForecastSpecError
from forecasts.plugin import import_class, split_import_spec

_CLASSES: dict[str, type[Forecaster]] = {
    cls.name: cls
    for cls in (
        PerfectForecaster,
        PersistenceForecaster,
        SeasonalNaiveForecaster,
        EtsForecaster,
        NoisyForecaster,
    )
}

#: name → one-line description of every forecaster make_forecaster knows
FORECASTERS: dict[str, str] = {name: cls.description for name, cls in _CLASSES.items()}


def forecaster_class(name: str) -> type[Forecaster]:
    """The class registered under ``name``, or imported for ``package.module:ClassName`` and checked
    against :mod:`forecasts.protocol`; ForecastSpecError (one line) otherwise."""
    cls = _CLASSES.get(name)
    if cls is not None:
        return cls
    parts = split_import_spec(name)
    if parts is None:
        raise ForecastSpecError(f"unknown forecaster {name!r}; valid names: {', '.join(_CLASSES)}, "
                                "or package.module:ClassName")
    from forecasts.protocol import protocol_problems

    imported = import_class(parts[0], parts[1], ForecastSpecError, "forecaster")
    problems = protocol_problems(imported)
    if problems:
        raise ForecastSpecError(f"forecaster {name}: not a forecaster ({'; '.join(problems)}); "
                                "subclass forecasts.Forecaster (see forecasts/protocol.py)")
    return imported  # checked structurally above


def parse_forecast_spec(spec: str | Mapping[str, object]) -> tuple[str, dict[str, object]]:
    """Split a spec into its name and raw parameters (values still unparsed strings for a str spec)."""
    params: dict[str, object]
    if isinstance(spec, Mapping):
        params = dict(spec)
        name = params.pop("name", None)
        if not isinstance(name, str):
            keys = sorted(map(str, spec))
            raise ForecastSpecError(f"forecast spec mapping needs a 'name' string; got keys {keys}")
        return name.strip(), params
    if not isinstance(spec, str):
        raise ForecastSpecError(f"forecast spec must be a string or a mapping, got {type(spec).__name__}")
    name, _, rest = spec.strip().partition(":")
    imported = split_import_spec(spec) if name.strip() not in _CLASSES else None
    if imported is not None:  # package.module:ClassName[:params]
        name, rest = f"{imported[0]}:{imported[1]}", imported[2]
    elif rest.startswith(":") or (":" in rest and "=" not in rest.partition(":")[0]):
        raise ForecastSpecError(f"forecast spec {spec!r}: write name[:key=value,...] or "
                                "package.module:ClassName[:key=value,...] (one colon between module and class)")
    params = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        param, equals, value = item.partition("=")
        param = param.strip()
        if not equals or not param:
            raise ForecastSpecError(
                f"malformed parameter {item!r} in forecast spec {spec!r}: write name=value"
            )
        if param in params:
            raise ForecastSpecError(f"parameter {param!r} given twice in forecast spec {spec!r}")
        params[param] = value.strip()
    return name.strip(), params


def make_forecaster(spec: str | Mapping[str, object], seed: int = 0) -> Forecaster:
    """Build a forecaster from a spec string or mapping.

    ``seed`` seeds forecasters that draw random numbers (``noisy``); a ``seed`` given in the spec
    itself takes precedence. Oracles come back without truth: call ``bind_truth`` on them.
    """
    name, params = parse_forecast_spec(spec)
    cls = forecaster_class(name)
    if any(param.name == "seed" for param in getattr(cls, "PARAMETERS", ())):
        params.setdefault("seed", seed)
    if name in _CLASSES:
        return cls(**params)
    try:
        forecaster = cls(**params)
    except ForecastSpecError:
        raise
    except Exception as error:  # noqa: BLE001 -- a user's constructor: one line, not a traceback
        raise ForecastSpecError(f"forecaster {name}: cannot be built from {params}: "
                                f"{type(error).__name__}: {error}") from None
    with contextlib.suppress(AttributeError):  # a class with __slots__ keeps its own name
        forecaster.origin = name
    return forecaster


def describe_forecasters() -> str:
    """Multi-line help: every forecaster with its description and parameters (for the CLI)."""
    lines = []
    for name, cls in _CLASSES.items():
        lines.append(f"{name}: {cls.description}")
        lines.extend(f"    {param.describe()}" for param in cls.PARAMETERS)
    return "\n".join(lines)
