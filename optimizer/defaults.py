"""The MPC's default solve settings: the one place they are written.

``make_controller``, :class:`optimizer.mpc.MPCController`, the CLI (``aidc run`` / ``compare``
``--time-limit``) and sweep grids all read :data:`MPC_DEFAULTS`; change a default here and every
entry point follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

#: the solver backends (:mod:`optimizer.solvers`): the one list the CLI, sweep grids and
#: ``make_controller`` check against. ``auto`` = Gurobi when it can solve, else HiGHS.
SolverName = Literal["highs", "gurobi", "auto"]
SOLVER_NAMES: tuple[SolverName, ...] = get_args(SolverName)


@dataclass(frozen=True)
class MPCDefaults:
    """Default settings of one MPC window solve.

    ``time_limit_s`` is the solver's wall-clock limit per window (s); the controller's hard
    deadline is 1.5 x that. It is a safety net: with the defaults no decision of the benchmark's
    runs stops on it (``make bench`` counts them), so results do not depend on machine load.

    ``mip_gap`` is the relative gap, certified against the window's LP bound, at which a plan is
    accepted: 5e-3 of the window's benefit. Why that and not less: only the first interval of a
    plan is applied and the rest is re-planned an interval later on new forecasts, and the
    plans it accepts differ from the 1e-3 plans by less than the forecast error moves the
    realised benefit: on us-3site (one week, noisy forecasts, seeds 1-3) the mean realised
    benefit at 5e-3 was +0.02 % of that at 1e-3 (1e-3 used 1.6x the CPU time), see the README's
    speed section.

    ``fine_hours`` / ``coarse_step_hours``: the horizon's resolution. Control-interval steps for
    the first ``fine_hours``, then steps of ``coarse_step_hours`` (series averaged, jobs starting
    at step boundaries, a coarse step's job load pro rata; see :func:`optimizer.window.coarsen`).
    With hourly control (us-3site) the horizon stays at full resolution; with 15-min control
    (fleet-10, fleet-50) the last 20 h of a 24 h horizon are hourly: 4x fewer job-start
    binaries where a decision taken now does not need them (they are re-planned at full
    resolution once they come within ``fine_hours``). Measured on fleet-10, one day, noisy
    forecasts, seed 1: CPU time 151 s -> 65 s, benefit +0.03 %. ``fine_hours = None`` plans at
    full resolution throughout.
    """

    time_limit_s: float = 20.0
    mip_gap: float = 5e-3
    fine_hours: float | None = 4.0
    coarse_step_hours: float = 1.0


#: the defaults every MPC entry point uses
MPC_DEFAULTS = MPCDefaults()
