"""Shared fixtures. Optimizer: the paper-day windows, their offline tables and a quiet Gurobi environment
(builders and the reference model live in ``tests/reference_model.py``)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

# imports inside the fixtures: collecting the other test files must not depend on the optimizer
HAS_GUROBI = importlib.util.find_spec("gurobipy") is not None


@pytest.fixture(scope="session")
def paper_day():
    from optimizer.window import offline_inputs
    from scenarios import load_builtin

    return offline_inputs(load_builtin("paper-day"))


@pytest.fixture(scope="session")
def paper_day_genrich():
    from optimizer.window import offline_inputs
    from scenarios import load_builtin

    return offline_inputs(load_builtin("paper-day-genrich"))


@pytest.fixture(scope="session")
def offline_tables():
    """The offline study table (all variants, default solve options) of both paper-day scenarios."""
    from optimizer.offline import offline_table
    from scenarios import load_builtin

    return {name: offline_table(load_builtin(name)) for name in ("paper-day", "paper-day-genrich")}


@pytest.fixture(scope="session")
def gurobi_env():
    if not HAS_GUROBI:
        pytest.skip("gurobipy is not installed")
    import gurobipy as gp

    env = gp.Env(empty=True)
    env.setParam("OutputFlag", 0)
    env.start()
    yield env
    env.dispose()


@pytest.fixture
def user_code(tmp_path, monkeypatch):
    """``write(module_name, source)``: a module of a user's own code in ``tmp_path``, which is made
    the current directory (not on ``sys.path``: aidc adds it when importing ``module:Class``
    specs); ``sys.path`` is restored and the written modules are forgotten afterwards."""
    written: list[str] = []

    def write(name: str, source: str):
        (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
        written.append(name)
        return tmp_path

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield write
    for name in written:
        sys.modules.pop(name, None)
