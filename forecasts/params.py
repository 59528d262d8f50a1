"""Forecaster parameters: one table per forecaster drives parsing, validation, defaults and docs.

A parameter is written ``name=value`` in a spec string (``noisy:sigma_24h=0.15,rho=0.8``) or given
as a mapping (scenario files, keyword arguments). Parameters marked ``per_signal`` may also be given
for one signal only as ``<signal>.<name>`` (``carbon.sigma_24h=0.1``) or, from a TOML table, as a
nested mapping ``{"carbon": {"sigma_24h": 0.1}}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from scenarios.signals import SIGNALS


class ForecastSpecError(ValueError):
    """A forecaster name, parameter or parameter value that cannot be used (one-line message)."""


@dataclass(frozen=True)
class Param:
    """One forecaster parameter.

    ``kind`` is ``"float"``, ``"int"``, ``"choice"`` or ``"quantiles"`` (levels in (0, 1), written
    ``0.1/0.5/0.9`` in a spec string, ``none`` for no quantiles). ``default=None`` on a per-signal
    parameter means "use the forecaster's per-signal default".
    """

    name: str
    kind: str
    default: object
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    per_signal: bool = False

    def expectation(self) -> str:
        """What a valid value looks like, for error messages."""
        if self.kind == "choice":
            return "one of " + "|".join(self.choices)
        if self.kind == "quantiles":
            return "levels in (0, 1) separated by '/' (e.g. 0.1/0.5/0.9) or 'none'"
        noun = "an integer" if self.kind == "int" else "a number"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{noun} in [{low}, {high}]"

    def coerce(self, raw: object, owner: str, label: str | None = None) -> object:
        """Parse and check one value; raise ForecastSpecError naming the forecaster and parameter."""
        label = label or self.name

        def fail() -> ForecastSpecError:
            return ForecastSpecError(
                f"bad value {raw!r} for parameter '{label}' of forecaster '{owner}': "
                f"expected {self.expectation()}"
            )

        if self.kind == "choice":
            text = str(raw).strip()
            if text not in self.choices:
                raise fail()
            return text
        if self.kind == "quantiles":
            return _coerce_quantiles(raw, fail)
        if isinstance(raw, bool):
            raise fail()
        try:
            number = float(raw.strip()) if isinstance(raw, str) else float(raw)  # type: ignore[arg-type]  # any value: TypeError below
        except (TypeError, ValueError):
            raise fail() from None
        if not math.isfinite(number):
            raise fail()
        if self.kind == "int":
            if number != int(number):
                raise fail()
            number = int(number)
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            raise fail()
        return number

    def describe(self) -> str:
        """One line for help texts: name, accepted values, default, meaning."""
        scope = " (also per signal)" if self.per_signal else ""
        default = "per signal" if self.default is None else _format_value(self.default)
        return f"{self.name}: {self.expectation()}, default {default}{scope} - {self.help}"


def _coerce_quantiles(raw: object, fail: Callable[[], ForecastSpecError]) -> tuple[float, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in ("", "none"):
            return ()
        parts: Sequence[object] = text.split("/")
    elif isinstance(raw, Sequence):
        parts = raw
    else:
        raise fail()
    levels = []
    for part in parts:
        try:
            level = float(part.strip()) if isinstance(part, str) else float(part)  # type: ignore[arg-type]  # any value: TypeError below
        except (TypeError, ValueError):
            raise fail() from None
        if not 0.0 < level < 1.0:
            raise fail()
        levels.append(level)
    return tuple(sorted(set(levels)))


def _format_value(value: object) -> str:
    if isinstance(value, tuple):
        return "/".join(f"{v:g}" for v in value) if value else "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_params(params: Mapping[str, object]) -> str:
    """``name=value`` pairs joined by commas, in the spec-string syntax."""
    return ",".join(f"{name}={_format_value(value)}" for name, value in params.items())


def _flatten(given: Mapping[str, object]) -> dict[str, object]:
    """Turn nested per-signal tables ``{"carbon": {"rho": 0.9}}`` into ``{"carbon.rho": 0.9}``."""
    flat: dict[str, object] = {}
    for name, value in given.items():
        if isinstance(value, Mapping) and name in SIGNALS:
            for inner, inner_value in value.items():
                flat[f"{name}.{inner}"] = inner_value
        else:
            flat[str(name)] = value
    return flat


def resolve_params(owner: str, table: Sequence[Param], given: Mapping[str, object]) -> dict[str, object]:
    """Validate ``given`` against ``table`` and fill defaults.

    Returns global parameters under their name and per-signal overrides under ``<signal>.<name>``.
    Unknown names raise ForecastSpecError listing the valid ones.
    """
    by_name = {param.name: param for param in table}
    resolved: dict[str, object] = {param.name: param.default for param in table}
    for name, raw in _flatten(given).items():
        signal, dot, short = name.partition(".")
        if dot:
            param = by_name.get(short)
            if signal not in SIGNALS or param is None or not param.per_signal:
                raise ForecastSpecError(_unknown_message(owner, name, table))
            resolved[name] = param.coerce(raw, owner, label=name)
        else:
            param = by_name.get(name)
            if param is None:
                raise ForecastSpecError(_unknown_message(owner, name, table))
            resolved[name] = param.coerce(raw, owner)
    return resolved


def _unknown_message(owner: str, name: str, table: Sequence[Param]) -> str:
    if not table:
        return f"unknown parameter '{name}' for forecaster '{owner}': it takes no parameters"
    valid = ", ".join(param.name for param in table)
    message = f"unknown parameter '{name}' for forecaster '{owner}'; valid parameters: {valid}"
    per_signal = [param.name for param in table if param.per_signal]
    if per_signal:
        message += f"; per signal as <signal>.<name> for {', '.join(per_signal)}"
        message += f" with <signal> in {', '.join(SIGNALS)}"
    return message
