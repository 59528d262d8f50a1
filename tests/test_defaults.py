"""Every MPC entry point takes its default solve settings from optimizer.defaults."""

import argparse

from optimizer.defaults import MPC_DEFAULTS
from optimizer.mpc import MPCController
from simulator.commands import add_run_parser
from simulator.controllers import make_controller
from simulator.sweep_grid import SweepGrid


def test_mpc_entry_points_share_the_defaults():
    controller = make_controller("mpc")
    assert controller.solve_options.time_limit_s == MPC_DEFAULTS.time_limit_s
    assert controller.solve_options.mip_gap == MPC_DEFAULTS.mip_gap
    bare = MPCController(controller.forecaster)
    assert (bare.solve_options.time_limit_s, bare.solve_options.mip_gap) == (
        MPC_DEFAULTS.time_limit_s, MPC_DEFAULTS.mip_gap)
    grid = SweepGrid("tiny")
    assert (grid.time_limit_s, grid.mip_gap) == (MPC_DEFAULTS.time_limit_s, MPC_DEFAULTS.mip_gap)
    parser = argparse.ArgumentParser()
    add_run_parser(parser.add_subparsers())
    assert parser.parse_args(["run", "tiny"]).time_limit == MPC_DEFAULTS.time_limit_s

