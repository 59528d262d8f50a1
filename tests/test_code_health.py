"""Code-health invariants: no import cycles inside a package, one home for signals and time
conversions, the CLI's one mean ± std formatter."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scenarios.timebase import RunClock, minutes_to_hours, whole_steps
from simulator.commands import format_mean_std

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("scenarios", "forecasts", "optimizer", "simulator")


def _runtime_imports(path: Path, package: str) -> set[str]:
    """Modules of ``package`` that ``path`` imports at run time (anywhere but under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(node) for node in ast.walk(tree) if isinstance(node, ast.If)
               and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
               for node in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == package:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == package}
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_inside_a_package(package):
    modules = {f"{package}.{p.stem}" if p.stem != "__init__" else package: p for p in (REPO / package).glob("*.py")}
    graph = {name: _runtime_imports(path, package) & set(modules) for name, path in modules.items()}
    graph[package] = set()  # the package's __init__ only re-exports; its submodules never need it first
    state: dict[str, int] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == 1:
            raise AssertionError(f"import cycle: {' -> '.join((*trail, name))}")
        if state.get(name) == 2:
            return
        state[name] = 1
        for target in sorted(graph[name]):
            visit(target, (*trail, name))
        state[name] = 2

    for name in sorted(graph):
        visit(name, ())


def test_signals_have_one_home():
    import forecasts
    import scenarios
    from scenarios.signals import NONNEGATIVE_SIGNALS, SIGNAL_TABLE, SIGNALS, UNIT_INTERVAL_SIGNALS

    assert scenarios.SIGNALS is SIGNALS and forecasts.SIGNALS is SIGNALS
    assert forecasts.NONNEGATIVE_SIGNALS is NONNEGATIVE_SIGNALS
    assert forecasts.UNIT_INTERVAL_SIGNALS is UNIT_INTERVAL_SIGNALS
    assert UNIT_INTERVAL_SIGNALS <= NONNEGATIVE_SIGNALS <= set(SIGNALS)
    assert all(s.low < s.high and s.unit for s in SIGNAL_TABLE)


@given(tick_minutes=st.sampled_from([1, 5, 10, 15, 30, 60]), ticks_per_control=st.integers(1, 12),
       n_control=st.integers(1, 24 * 14))
def test_run_clock_counts_whole_ticks_and_control_steps(tick_minutes, ticks_per_control, n_control):
    interval_minutes = tick_minutes * ticks_per_control
    run_hours = n_control * interval_minutes / 60
    clock = RunClock.of(tick_minutes, interval_minutes, run_hours)
    assert clock.tick_h == minutes_to_hours(tick_minutes) == tick_minutes / 60
    assert clock.ticks_per_control == ticks_per_control
    assert clock.n_control == n_control and clock.n_ticks == n_control * ticks_per_control
    assert all(clock.tick_at(i * clock.tick_h) == i for i in (0, 1, clock.n_ticks - 1, clock.n_ticks))
    assert whole_steps(run_hours, clock.interval_h) == n_control


def test_format_mean_std():
    assert format_mean_std(np.array([1.0, 3.0, math.nan]), "{:.1f}") == "2.0 ± 1.4"
    assert format_mean_std(np.array([2.5]), "{:.2f}") == "2.50"
    assert format_mean_std(np.array([math.nan, math.inf]), "{:.1f}") == "-"
