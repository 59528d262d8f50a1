"""Classes named by an import spec, ``package.module:ClassName``: users' controllers and forecasters.

``aidc run --controller mypkg.rules:CarbonRule`` and ``--forecast mypkg.fc:MyForecaster:alpha=0.3``
name a class by the module that defines it and its (qualified) name, as ``uvicorn app:api`` or an
entry point does. The module is imported with the current directory on ``sys.path`` (inserted
first, as pytest and uvicorn do), so a file ``rules.py`` next to where ``aidc`` runs is
importable as ``rules``. Worker processes (the sweep's pool, Dask workers) receive the spec string
and import the class again, so the module must be importable there too (the same current
directory for a local pool and ``--dask local``; installed, or on a shared path, for a remote
cluster).

Shared by :mod:`forecasts.registry` and :mod:`simulator.controllers` (the lowest package both
may import).
"""

from __future__ import annotations

import importlib
import os
import re
import sys

#: ``package.module`` (dotted Python identifiers)
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def split_import_spec(spec: str) -> tuple[str, str, str] | None:
    """``"pkg.mod:Class:key=value,..."`` -> ``("pkg.mod", "Class", "key=value,...")``; None when
    ``spec`` is not of that form (a registered name, or malformed).

    The class part is a dotted identifier without ``=`` (``Outer.Inner`` works); the options,
    after a second colon, are returned unparsed.
    """
    module, colon, rest = spec.strip().partition(":")
    if not colon:
        return None
    qualname, _, options = rest.partition(":")
    if not _MODULE.match(module.strip()) or not _MODULE.match(qualname.strip()):
        return None
    return module.strip(), qualname.strip(), options.strip()


def add_current_directory() -> None:
    """Put the current directory first on ``sys.path`` (once), so modules next to the user import."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def import_class(module_name: str, qualname: str, error: type[Exception], what: str) -> type:
    """The class ``qualname`` of module ``module_name``, imported with the current directory on
    the path; any failure raises ``error`` with one line naming the spec (``what`` says what the
    class is for, e.g. ``"controller"``)."""
    spec = f"{module_name}:{qualname}"
    add_current_directory()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        raise error(f"{what} {spec}: cannot import module {module_name!r} (no module named {missing!r}); "
                    f"install it, or run from the folder that holds {module_name.split('.')[0]}") from None
    except Exception as exc:  # noqa: BLE001 -- a user's module failing at import: one line, not a traceback
        raise error(f"{what} {spec}: importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    target: object = module
    for part in qualname.split("."):
        if not hasattr(target, part):
            raise error(f"{what} {spec}: module {module_name!r} has no attribute {qualname!r}")
        target = getattr(target, part)
    if not isinstance(target, type):
        raise error(f"{what} {spec}: {qualname!r} is not a class (got {type(target).__name__})")
    return target


class UserCodeFailed(Exception):
    """A user's controller or forecaster (a class named by an import spec) raised, or returned
    something of the wrong type or shape, during a run: one line naming the class, the time and
    the field; ``aidc`` prints it as ``aidc: error: ...`` with exit code 1 (no traceback)."""


#: the packages of aidc itself: a class defined elsewhere is a user's
AIDC_PACKAGES = frozenset({"forecasts", "optimizer", "scenarios", "simulator"})


def is_users_class(obj: object) -> bool:
    """True if ``obj``'s class is defined outside aidc's own packages (a user's plug-in)."""
    module = type(obj).__module__ or ""
    return module.split(".")[0] not in AIDC_PACKAGES
