"""The time base: the one place that converts minutes, hours, days and step counts.

Times inside aidc are hours after the run start (floats); the scenario gives the plant tick and
the control interval in minutes. A step count is a duration divided by a step length, rounded to
the nearest whole step (durations are validated to be whole multiples, so the rounding only
absorbs floating-point error).
"""

from __future__ import annotations

from dataclasses import dataclass

MINUTES_PER_HOUR = 60.0
HOURS_PER_DAY = 24.0


def minutes_to_hours(minutes: float) -> float:
    """``minutes / 60``."""
    return minutes / MINUTES_PER_HOUR


def days_to_hours(days: float) -> float:
    """``days * 24``."""
    return days * HOURS_PER_DAY


def whole_steps(duration_h: float, step_h: float) -> int:
    """The number of ``step_h`` steps in ``duration_h`` (nearest whole number; both in hours)."""
    return int(round(duration_h / step_h))


@dataclass(frozen=True)
class RunClock:
    """The closed loop's clock: a run of ``run_hours`` ticked every ``tick_h`` hours, controlled
    every ``interval_h`` hours (a whole number of ticks).

    Tick ``i`` covers ``[i * tick_h, (i + 1) * tick_h)``; control step ``k`` acts at
    ``k * interval_h`` and holds for ``ticks_per_control`` ticks.
    """

    tick_h: float
    interval_h: float
    run_hours: float

    @classmethod
    def of(cls, plant_tick_minutes: float, control_interval_minutes: float, run_hours: float) -> RunClock:
        """The clock of a scenario's ``run`` table over ``run_hours``."""
        return cls(minutes_to_hours(plant_tick_minutes), minutes_to_hours(control_interval_minutes), run_hours)

    @property
    def n_ticks(self) -> int:
        """Plant ticks in the run."""
        return whole_steps(self.run_hours, self.tick_h)

    @property
    def n_control(self) -> int:
        """Control steps in the run."""
        return whole_steps(self.run_hours, self.interval_h)

    @property
    def ticks_per_control(self) -> int:
        """Plant ticks per control interval."""
        return whole_steps(self.interval_h, self.tick_h)

    def tick_at(self, time_h: float) -> int:
        """The index of the tick that starts at ``time_h`` (nearest; not clipped to the run)."""
        return whole_steps(time_h, self.tick_h)
