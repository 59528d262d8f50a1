"""Shared fixtures. Optimizer: the paper-day windows, their offline tables and a quiet Gurobi environment
(builders and the reference model live in ``tests/reference_model.py``)."""

from __future__ import annotations

import importlib.util

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
