"""The controller boundary: set-points checked before the plant applies them.

Every control step, the set-points a controller returns pass :func:`check_setpoints` before the
plant sees them (in ``aidc run``, ``compare``, sweeps and the Gymnasium environment alike):

* a result that is not :class:`~optimizer.protocol.Setpoints`-like, a field that is not numeric,
  or of the wrong shape raises :class:`SetpointError` naming the field, its shape and the expected
  shape (``routing_shares`` (K, S); ``charge_mw``, ``discharge_mw``, ``generator_mw`` and
  ``import_mw`` (S,); ``job_starts`` (job name, site index) pairs);
* non-finite numbers are repaired as the plant's real-time rules would: NaN and -inf become 0
  (no share, no power), +inf becomes the field's limit (share 1, the battery's power, the
  generator's capacity, the import limit); the number of repaired values per field is returned, so
  the loop can record a ``setpoint_repaired`` event and warn once per field per run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from forecasts.plugin import UserCodeFailed, is_users_class
from optimizer.protocol import Setpoints
from scenarios.arrays import Fleet

T = TypeVar("T")

#: the numeric fields and their expected shape, by name ("K, S" or "S")
NUMERIC_FIELDS = (("routing_shares", "K, S"), ("charge_mw", "S"), ("discharge_mw", "S"), ("generator_mw", "S"),
                  ("import_mw", "S"))


class SetpointError(ValueError):
    """Set-points the plant cannot apply: wrong type, wrong shape, not numeric (one line naming the field)."""


def _upper(fleet: Fleet, name: str) -> np.ndarray | float:
    """The value +inf is repaired to (the field's limit)."""
    if name == "routing_shares":
        return 1.0
    if name == "charge_mw":
        return fleet.battery_charge_mw
    if name == "discharge_mw":
        return fleet.battery_discharge_mw
    if name == "generator_mw":
        return fleet.generator_max_mw
    return fleet.import_limit_mw


def _job_starts(value: object) -> tuple[tuple[str, int], ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray | set | frozenset):
        raise SetpointError(f"job_starts is {type(value).__name__} {value!r:.60}, expected a sequence of "
                            "(job name, site index) pairs")
    pairs = []
    for item in value:
        if isinstance(item, str | bytes) or not isinstance(item, Sequence | np.ndarray) or len(item) != 2:
            raise SetpointError(f"job_starts holds {item!r:.60}, expected (job name, site index) pairs")
        pairs.append((item[0], item[1]))
    return tuple(pairs)  # names and sites are checked by the plant (unknown or out of range: refused)


def check_setpoints(setpoints: object, fleet: Fleet) -> tuple[Setpoints, dict[str, int]]:
    """``setpoints`` checked and made finite for ``fleet``: (the set-points to apply, the number
    of non-finite values repaired per field (fields without any left out)).

    Raises :class:`SetpointError` (one line naming the field and the expected shape) for a result
    that is not Setpoints-like, a field that cannot be read as numbers, or a wrong shape.
    """
    missing = [name for name in ("job_starts", *(n for n, _ in NUMERIC_FIELDS[:-1])) if not hasattr(setpoints, name)]
    if missing:
        raise SetpointError(f"decide() returned {type(setpoints).__name__}, expected optimizer.protocol.Setpoints "
                            f"(missing {', '.join(missing)})")
    dims = {"K": fleet.n_classes, "S": fleet.n_sites}
    values: dict[str, object] = {"job_starts": _job_starts(setpoints.job_starts)}  # type: ignore[attr-defined]
    repaired: dict[str, int] = {}
    for name, letters in NUMERIC_FIELDS:
        raw = getattr(setpoints, name, None)  # import_mw is optional
        if raw is None and name == "import_mw":
            values[name] = None
            continue
        expected = tuple(dims[letter] for letter in letters.split(", "))
        try:
            array = np.array(raw, dtype=float)
        except (TypeError, ValueError):
            raise SetpointError(f"{name} is {type(raw).__name__} {raw!r:.60}, expected ({letters}) = {expected} "
                                "numbers") from None
        if array.shape != expected:
            raise SetpointError(f"{name} has shape {array.shape}, expected ({letters}) = {expected}")
        bad = ~np.isfinite(array)
        if bad.any():
            repaired[name] = int(bad.sum())
            upper = np.broadcast_to(np.asarray(_upper(fleet, name), dtype=float), expected)
            array = np.where(np.isposinf(array), upper, np.where(bad, 0.0, array))
        values[name] = array
    if isinstance(setpoints, Setpoints):
        checked = dataclasses.replace(setpoints, **values)  # type: ignore[arg-type]
    else:  # duck-typed: the plan and log are optional
        checked = Setpoints(plan=getattr(setpoints, "plan", None), log=dict(getattr(setpoints, "log", None) or {}),
                            window=getattr(setpoints, "window", None), **values)  # type: ignore[arg-type]
    return checked, repaired


def user_call(controller: object, what: str, call: Callable[[], T]) -> T:
    """``call()`` (a method ``what`` of ``controller``, e.g. ``"reset()"``); when it raises and the
    controller is a user's class, :class:`~forecasts.plugin.UserCodeFailed` with one line naming
    the controller instead (aidc's own controllers keep their traceback: a bug)."""
    try:
        return call()
    except Exception as error:
        if not is_users_class(controller):
            raise
        name = getattr(controller, "spec", None) or getattr(controller, "name", type(controller).__name__)
        raise UserCodeFailed(f"controller {name!r} failed in {what}: {type(error).__name__}: {error}") from None
