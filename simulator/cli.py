"""The ``aidc`` command line.

Adding a subcommand ``foo``: write ``add_foo_parser(subparsers)``, which adds and returns its
:class:`argparse.ArgumentParser`, and ``run_foo(args) -> int``, which does the work and returns
the exit code; then add ``"foo"`` to :data:`COMMANDS` and the pair to ``_HANDLERS``. Import anything heavy (pandas, the
solver, simpy, a module of your own for a long command) *inside* ``run_foo`` so that
``aidc --help`` and ``aidc validate`` stay fast.

Errors: raise; do not print tracebacks or call ``sys.exit`` yourself. :func:`main` turns the
errors a user can cause (see :func:`is_user_error`) into one line ``aidc: error: <message>``
on stderr and exit code 2; anything else is a bug and keeps its traceback. Usage errors found
by argparse get the same single line (no usage block). Check everything a command needs
(options, the scenario over the requested days, the output path) *before* the work starts.

Exit codes: 0 success, 1 a check failed (e.g. ``validate`` found a bad scenario), 2 bad input or
usage, 130 interrupted (Ctrl-C), 141 stdout closed early (``aidc plan x | head -1``; no message).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import typing
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from optimizer.defaults import SOLVER_NAMES

# aidc run / aidc compare / aidc sweep live in their own modules (light at import: argparse only)
from simulator.commands import (
    add_run_parser,
    check_output,
    gap_fraction,
    positive_number,
    run_run,
)
from simulator.compare_command import add_compare_parser, run_compare
from simulator.errors import UserError
from simulator.show_command import add_show_parser, run_show
from simulator.sweep_command import add_sweep_parser, run_sweep

if TYPE_CHECKING:
    from scenarios import Scenario

#: Subcommands in the order ``aidc --help`` lists them. Each name needs its pair of functions
#: ``add_<name>_parser`` and ``run_<name>`` in :data:`_HANDLERS`.
COMMANDS: tuple[str, ...] = ("scenarios", "validate", "plan", "run", "compare", "sweep", "show")

#: Exceptions (matched by class name anywhere in the MRO, so this module imports none of the
#: packages that define them) that mean "the input is wrong", not "the code is wrong".
USER_ERROR_NAMES: frozenset[str] = frozenset({
    "UserError",  # simulator.errors: for checks done by the commands
    "ControllerSpecError",  # simulator.controllers: unknown controller or option, a user's class unusable
    "ScenarioError",  # scenarios.io: a scenario file or built-in name that cannot be used
    "DatasetError",  # scenarios.datasets: unknown dataset or key
    "ForecastSpecError",  # forecasts.params: unknown forecaster or parameter
    "SolverUnavailable",  # optimizer.solvers: solver not installed or licence refused
    "InfeasibleWindow",  # optimizer.variants: the model of the given input has no solution
})
#: Longest message printed (longer ones keep their start and end around an ellipsis), so that a
#: 20,000-character value typed into a file is not echoed whole.
MAX_MESSAGE_CHARS = 400
#: Exit code when stdout is closed before the command has finished writing (as if killed by SIGPIPE).
EXIT_BROKEN_PIPE = 141


def is_user_error(error: BaseException) -> bool:
    """True if ``error`` is caused by the user's input or environment and deserves a one-line message.

    Every :class:`OSError` counts (a missing or unwritable file, a name too long for the file
    system, a full disk, an unreachable Dask scheduler): the environment, not the code.
    """
    if isinstance(error, OSError):
        return True
    return any(klass.__name__ in USER_ERROR_NAMES for klass in type(error).__mro__)


def shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` on one line, at most about ``limit`` characters (the middle cut out and counted)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    keep = (limit - 30) // 2
    return f"{text[:keep]} ... ({len(text) - 2 * keep:,} characters) ... {text[-keep:]}"


def error_message(error: BaseException) -> str:
    """The one-line message shown for a user error (see :func:`shorten`)."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = re.sub(r"^\[Errno \d+\] ", "", str(error)) or type(error).__name__
    return shorten(text)


class OneLineParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose usage errors are one line: ``aidc: error: ...``.

    argparse prints a usage block and ``aidc run: error: ...``; the README promises one line
    (exit code 2) for every mistake. The subcommand is named in the message, with a pointer to
    its ``--help``.
    """

    def error(self, message: str) -> typing.NoReturn:
        command = self.prog.partition(" ")[2]
        where = f"{command}: " if command else ""
        help_hint = f"aidc {command} --help" if command else "aidc --help"
        self.exit(2, f"aidc: error: {where}{shorten(message)} (see {help_hint})\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aidc")
    except PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------------------------------------
# aidc scenarios


def add_scenarios_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        "scenarios",
        help="list the built-in scenarios",
        description="List the built-in scenarios (use a name wherever a scenario file is expected).",
    )


def run_scenarios(args: argparse.Namespace) -> int:
    from scenarios import ScenarioError, builtin_names, load_builtin

    header = ("name", "sites", "regions", "classes", "jobs", "days", "description")
    rows: list[tuple[str, ...]] = []
    broken: list[str] = []
    for name in builtin_names():
        try:
            scenario = load_builtin(name)
        except ScenarioError as error:
            broken.append(error_message(error))
            continue
        rows.append((
            name, str(len(scenario.sites)), str(len(scenario.regions)), str(len(scenario.inference_classes)),
            str(len(scenario.jobs)), f"{scenario.run.days:g}", _first_line(scenario.description),
        ))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        counts = [cell.rjust(width) for cell, width in zip(row[1:-1], widths[1:], strict=True)]
        cells = [row[0].ljust(widths[0]), *counts]
        print("  ".join([*cells, row[-1]]).rstrip())
    _report_bad(broken)
    return 1 if broken else 0


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


# ---------------------------------------------------------------------------------------------
# aidc validate


def add_validate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "validate",
        help="check scenario files or built-in scenarios",
        description="Load and check scenarios, one line each. Exit 0 if all are valid, 1 if not.",
    )
    parser.add_argument("targets", nargs="*", metavar="FILE|NAME",
                        help="scenario file (.toml) or built-in name")
    parser.add_argument("--all", action="store_true",
                        help="every built-in scenario (see `aidc scenarios`) and shipped example (scenarios/examples)")
    return parser


def run_validate(args: argparse.Namespace) -> int:
    from scenarios import ScenarioError, build_fleet, builtin_names, load_scenario
    from scenarios.io import example_paths, file_series_report

    targets = list(args.targets) + (builtin_names() + example_paths() if args.all else [])
    if not targets:
        raise UserError("validate: give scenario files or built-in names, or --all")
    bad: list[str] = []
    for target in targets:
        try:
            scenario = load_scenario(target)
        except ScenarioError as error:
            bad.append(error_message(error))
            _report_bad(bad[-1:])
            continue
        build_fleet(scenario)  # a valid scenario must compile; a failure here is a bug
        label = target if target == scenario.name else f"{target} ({scenario.name})"
        print(f"ok  {label}: {summarise(scenario)}", flush=True)
        for line in file_series_report(scenario):
            print(f"    file {line}", flush=True)
    if len(targets) > 1:
        print(f"{len(targets) - len(bad)} valid, {len(bad)} invalid", flush=True)
    return 1 if bad else 0


def summarise(scenario: Scenario) -> str:
    """One line of counts: sites, regions, classes, jobs, storage, generators, time base."""
    batteries = sum(site.battery is not None for site in scenario.sites)
    generators = sum(site.generator is not None for site in scenario.sites)
    parts = [
        _count(len(scenario.sites), "site"), _count(len(scenario.regions), "region"),
        _count(len(scenario.inference_classes), "class", "classes"), _count(len(scenario.jobs), "job"),
        _count(batteries, "battery", "batteries"), _count(generators, "generator"),
    ]
    if scenario.job_population is not None:
        parts.append(f"{scenario.job_population.arrival_rate_per_h:g} random jobs/h")
    run = scenario.run
    parts.append(f"{_count(run.days, 'day')}, control every {run.control_interval_minutes:g} min, "
                 f"horizon {run.horizon_hours:g} h")
    return ", ".join(parts)


def _count(number: float, singular: str, plural: str | None = None) -> str:
    return f"{number:g} {singular if number == 1 else (plural or singular + 's')}"


def _report_bad(messages: Sequence[str]) -> None:
    sys.stdout.flush()  # keep the ok/bad lines in order when both streams go to one terminal
    for message in messages:
        print(f"bad {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# entry point


def _command_functions(name: str) -> tuple[Callable[..., argparse.ArgumentParser], Callable[..., int]]:
    return _HANDLERS[name]


# ---------------------------------------------------------------------------------------------
# aidc plan

#: The model variants of :data:`optimizer.variants.VARIANTS` (kept here so the parser stays light;
#: a test checks the two agree).
PLAN_VARIANTS: tuple[str, ...] = ("joint", "compute-only", "energy-only", "no-battery", "no-routing", "no-carbon")


def add_plan_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from pathlib import Path

    parser = subparsers.add_parser(
        "plan", help="offline study: one MILP over the scenario's run per model variant, as a table",
        description="Solve the scenario's run as one window with each variant and print one table "
                    "(benefit and its parts, emissions, inference, jobs, energy, solve time and gap), "
                    "and, for a study pair (--compare-rich), the gain over the generation scale and the study's "
                    "findings.",
    )
    parser.add_argument("scenario", help="built-in name or TOML file")
    parser.add_argument("--solver", choices=SOLVER_NAMES, default="highs")
    parser.add_argument("--variants", default=",".join(PLAN_VARIANTS),
                        help=f"comma-separated subset of: {', '.join(PLAN_VARIANTS)}")
    # 1e-3 (was 1e-4): the variants differ by percents, and 1e-4 spent the whole limit on fleet-10 proving
    # digits that do not matter (4.5 % gap at 120 s); at 1e-3 paper-day plans in 0.03 s per variant
    parser.add_argument("--time-limit", type=positive_number, default=60.0,
                        help="seconds per solve (default 60; the table shows each solve's certified gap)")
    parser.add_argument("--gap", type=gap_fraction, default=1e-3, help="relative MIP gap, in [0, 1) (default 1e-3)")
    parser.add_argument("--compare-rich", metavar="SCENARIO",
                        help="also solve this generation-rich scenario; for a study pair (it is SCENARIO with a "
                             "larger generation_scale, nothing else changed) also print the gain over the "
                             "generation scale 1x-6x and check the study's findings")
    parser.add_argument("--out", type=Path, help="write the table(s) as CSV; refuses to overwrite unless --force")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bar on stderr (there is none either when stderr is not a terminal)")
    return parser


def run_plan(args: argparse.Namespace) -> int:
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for variant in variants:
        if variant not in PLAN_VARIANTS:
            raise UserError(f"unknown variant {variant!r}; choose from {', '.join(PLAN_VARIANTS)}")
    if not variants:
        raise UserError(f"--variants: give at least one of {', '.join(PLAN_VARIANTS)}")
    check_output(args.out, args.force, "table")
    from simulator.plan_command import run_offline_study

    return run_offline_study(args, variants)


#: each subcommand's (add its parser, run it) pair; the run functions are looked up when called
#: (so a test may replace one)
_HANDLERS: dict[str, tuple[Callable[..., argparse.ArgumentParser], Callable[..., int]]] = {
    "scenarios": (add_scenarios_parser, lambda args: run_scenarios(args)),
    "validate": (add_validate_parser, lambda args: run_validate(args)),
    "plan": (add_plan_parser, lambda args: run_plan(args)),
    "run": (add_run_parser, lambda args: run_run(args)),
    "compare": (add_compare_parser, lambda args: run_compare(args)),
    "sweep": (add_sweep_parser, lambda args: run_sweep(args)),
    "show": (add_show_parser, lambda args: run_show(args)),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``aidc`` parser with every subcommand of :data:`COMMANDS`."""
    parser = OneLineParser(
        prog="aidc",
        description="Carbon-aware compute-power control of geo-distributed AI data centers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        add_parser, run = _command_functions(name)
        add_parser(subparsers).set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``aidc`` with ``argv`` (default: the process arguments); returns the exit code.

    Every outcome is one of: the command's own exit code; ``aidc: error: <one line>`` and 2 for a
    usage error or a user error (:func:`is_user_error`); ``aidc: error: <one line>`` and 1 when a
    user's controller or forecaster failed during the run (:class:`forecasts.plugin.UserCodeFailed`);
    ``aidc: interrupted`` and 130 on Ctrl-C;
    no message and 141 when stdout is closed early. Anything else is a bug and keeps its traceback.
    """
    if sys.stdout is None:  # started with stdout closed (`aidc ... >&-`): print nowhere, like a closed pipe
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help, --version and usage errors (printed by the parser)
        return exit_request.code if isinstance(exit_request.code, int) else 2
    if getattr(args, "run", None) is None:
        print(f"aidc: error: give a command: {', '.join(COMMANDS)} (see aidc --help)", file=sys.stderr)
        return 2
    try:
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below
        return code
    except KeyboardInterrupt:
        _flush_quietly()
        print("aidc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as error:
        failed_run = type(error).__name__ == "UserCodeFailed"  # forecasts.plugin: a user's class failed mid-run
        if not (failed_run or is_user_error(error)):
            raise  # a bug: keep the traceback
        _flush_quietly()
        print(f"aidc: error: {error_message(error)}", file=sys.stderr)
        return 1 if failed_run else 2


def _flush_quietly() -> None:
    """Flush stdout before an error line (keeps the order on a shared terminal); a closed pipe is ignored."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail again (see the
    note on SIGPIPE in the Python documentation of :mod:`signal`)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (e.g. captured by a test)
        pass


if __name__ == "__main__":
    sys.exit(main())
