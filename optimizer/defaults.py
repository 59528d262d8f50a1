"""The MPC's default solve settings: the one place they are written.

``make_controller``, :class:`optimizer.mpc.MPCController`, the CLI (``aidc run`` / ``compare``
``--time-limit``) and sweep grids all read :data:`MPC_DEFAULTS`; change a default here and every
entry point follows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MPCDefaults:
    """Default settings of one MPC window solve.

    ``time_limit_s`` is the solver's wall-clock limit per window (s); the controller's hard
    deadline is 1.5 x that. ``mip_gap`` is the relative MIP gap at which the solver stops.
    """

    time_limit_s: float = 20.0
    mip_gap: float = 1e-3


#: the defaults every MPC entry point uses
MPC_DEFAULTS = MPCDefaults()
