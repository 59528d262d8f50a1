"""Where a controller's regret comes from: a telescoping sequence of paired runs.

``regret = hindsight bound - realised benefit`` (:mod:`simulator.bound`) is split by giving the
MPC, one at a time, what the hindsight bound has and it lacks. Every run uses the same seed, so
traffic, weather, prices, job submissions and forecast errors are common random numbers; each
part is the benefit gained by one step of the sequence, so the parts add up to the total exactly:

====  ==========================  ===========================================================
step  run                         part (USD) = benefit of this run - benefit of the one above
====  ==========================  ===========================================================
0     as specified                (the controller, its forecaster, horizon and interval)
1     perfect forecasts           **forecast error**
2     + every job known at start  **unknown job arrivals** (jobs still start no earlier than
                                  their release; the MPC sees them in its windows beforehand)
3     + horizon = the whole run   **horizon length**
4     + finer control interval    **control resolution** (``fine_control_minutes``)
5     hindsight bound             **residual**: what the closed loop still misses -- variation
                                  within an interval (forecasts are interval means, set-points
                                  are held for the interval), the plant's real-time rules and
                                  the MPC's MIP gap
====  ==========================  ===========================================================

The bound of step 5 lets jobs start at the finer interval of step 4, so it is the bound of every
run in the sequence (and may lie slightly above the ``hindsight_bound_usd`` of the run as
specified). A part can be negative: a rolling-horizon controller is not optimal, so more
information does not always give a better closed-loop outcome; with perfect forecasts a
part's sign is a finding, not an error. The order of the sequence matters (parts interact);
it is the order of the table.
"""

from __future__ import annotations

import pandas as pd

from optimizer.solvers import SolveOptions
from scenarios.io import with_days
from scenarios.schema import Scenario
from scenarios.timebase import days_to_hours
from simulator.controllers import make_controller
from simulator.processes import NoiseParameters
from simulator.results import RunResult
from simulator.run import simulate

#: The parts of the breakdown, in the order of the sequence.
PARTS = ("forecast error", "unknown job arrivals", "horizon length", "control resolution", "residual")


def _with_interval(scenario: Scenario, minutes: float) -> Scenario:
    """The scenario controlled every ``minutes`` (validated again)."""
    data = scenario.model_dump(mode="python")
    data["run"]["control_interval_minutes"] = minutes
    return Scenario.model_validate(data)


def explain_regret(
    scenario: Scenario,
    controller: str = "mpc",
    forecast: str = "noisy:sigma_24h=0.15",
    seed: int | None = None,
    days: float | None = None,
    *,
    fine_control_minutes: float | None = None,
    solver: str = "highs",
    bound_options: SolveOptions | None = None,
    specified: RunResult | None = None,
    noise: NoiseParameters | None = None,
    **mpc_settings: object,
) -> pd.DataFrame:
    """The regret of an MPC run split into forecast error, unknown job arrivals, horizon length,
    control resolution and a residual (see the module docstring for the sequence and its order).

    ``controller`` is an MPC name (``mpc``, ``mpc-energy-only``, ...) run with ``forecast`` and
    ``mpc_settings`` (``horizon_hours``, ``time_limit_s``, ... of :func:`simulator.make_controller`);
    ``seed`` and ``days`` as for :func:`simulator.simulate`. ``fine_control_minutes`` is the finer
    control interval of step 4 (default: 15 minutes, or the plant tick if it is longer; a multiple
    of the tick). ``specified`` reuses an already simulated run of step 0; ``noise`` as for
    :func:`simulator.simulate` (the same for every run).

    Returns one row per run of the sequence (index ``step``: ``as specified``, the four
    improvements and ``hindsight bound``) with columns ``run`` (what changed), ``benefit_usd``,
    ``part`` (the name of the part the step measures), ``part_usd`` (benefit gained over the row
    above) and ``part_share`` (of the total regret). ``part_usd`` sums to ``total regret``, which
    ``DataFrame.attrs["regret_usd"]`` also holds. Raises ValueError for a controller that is not
    an MPC or a fine interval that is not a multiple of the plant tick.
    """
    if not controller.startswith("mpc"):
        raise ValueError(f"explain_regret needs an MPC controller (forecasts, horizon), got {controller!r}")
    scenario = with_days(scenario, days)
    seed = scenario.run.seed if seed is None else int(seed)
    run_hours = days_to_hours(scenario.run.days)
    tick = scenario.run.plant_tick_minutes
    fine = max(15.0, tick) if fine_control_minutes is None else float(fine_control_minutes)
    if fine <= 0 or abs(fine / tick - round(fine / tick)) > 1e-9:
        raise ValueError(f"fine_control_minutes must be a positive multiple of the plant tick ({tick:g} min), "
                         f"got {fine:g}")
    fine = min(fine, scenario.run.control_interval_minutes)
    settings = dict(mpc_settings)

    def run(label: str, sc: Scenario, fc: str, known: bool, **changes: object) -> tuple[str, float]:
        made = make_controller(controller, sc, forecast=fc, solver=solver, seed=seed,
                               **{**settings, **changes})  # type: ignore[arg-type]
        result = simulate(sc, made, seed=seed, jobs_known=known, noise=noise)
        return label, float(result.kpis["benefit_usd"])

    if specified is None:
        specified = simulate(scenario, make_controller(controller, scenario, forecast=forecast, solver=solver,
                                                       seed=seed, **settings),  # type: ignore[arg-type]
                             seed=seed, noise=noise)
    fine_scenario = _with_interval(scenario, fine)
    rows = [
        ("as specified", f"{controller}, forecast {forecast}", float(specified.kpis["benefit_usd"]), ""),
        ("perfect forecasts", *run("forecast perfect", scenario, "perfect", False), PARTS[0]),
        ("jobs known", *run("+ every job known at the start", scenario, "perfect", True), PARTS[1]),
        ("whole-run horizon", *run(f"+ horizon {run_hours:g} h", scenario, "perfect", True,
                                   horizon_hours=run_hours), PARTS[2]),
        ("finer control", *run(f"+ control every {fine:g} min", fine_scenario, "perfect", True,
                               horizon_hours=run_hours), PARTS[3]),
    ]
    bound_run = simulate(fine_scenario, make_controller("greedy"), seed=seed, bound=True, bound_options=bound_options,
                         bound_start_minutes=fine, noise=noise)
    bound = float(bound_run.kpis["hindsight_bound_usd"])
    rows.append(("hindsight bound", f"dual bound, jobs start every {fine:g} min", bound, PARTS[4]))
    table = pd.DataFrame(rows, columns=["step", "run", "benefit_usd", "part"]).set_index("step")
    table["part_usd"] = table["benefit_usd"].diff()
    total = bound - rows[0][2]
    table["part_share"] = table["part_usd"] / total if total else float("nan")
    table.attrs["regret_usd"] = total
    table.attrs["hindsight_gap"] = float(bound_run.kpis["hindsight_gap"])
    return table


def format_breakdown(table: pd.DataFrame) -> str:
    """The breakdown of :func:`explain_regret` as an aligned text table (parts and shares)."""
    lines = [f"  {'part':<22} {'USD':>12} {'share':>8}   run"]
    for _, row in table.iloc[1:].iterrows():
        lines.append(f"  {row['part']:<22} {row['part_usd']:>12,.0f} {row['part_share']:>8.1%}   {row['run']}")
    total = table.attrs["regret_usd"]
    lines.append(f"  {'total regret':<22} {total:>12,.0f} {1.0 if total else float('nan'):>8.1%}   "
                 f"bound {table['benefit_usd'].iloc[-1]:,.0f} - realised {table['benefit_usd'].iloc[0]:,.0f}")
    return "\n".join(lines)
