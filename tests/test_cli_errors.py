"""Bad input through the installed command line, as a user meets it (issue 13).

Each case runs ``python -m simulator.cli`` in a subprocess, in a folder holding the user's
files, and checks the README's promise: exactly one line on stderr (``aidc: error: ...`` and
exit 2; ``bad ...`` and exit 1 from ``validate``), naming the field or the reason, no
traceback, no pydantic wording, and no file of the user's written or changed. The cases are
the cheapest commands that reach each check (mostly ``paper-day``, a one-day scenario); they
run a few at a time in a module fixture, so the module costs about as much as its slowest cases.

Ctrl-C: an MPC ``run``, a ``compare`` and a ``sweep`` get SIGINT once under way and must end
with exit 130, ``aidc: interrupted`` as their last stderr line, no traceback, and no result
that looks complete.
"""

from __future__ import annotations

import copy
import hashlib
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomli_w

from scenarios.io import builtin_path

REPO = Path(__file__).resolve().parents[1]
AIDC = [sys.executable, "-m", "simulator.cli"]


def paper_day() -> dict:
    candidate = builtin_path("paper-day")
    assert candidate is not None
    return tomllib.loads(candidate.read_text(encoding="utf-8"))


def with_population(**changes: object) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        data["job_population"] = {
            "arrival_rate_per_h": 1.0, "gpus_choices": [256, 512], "gpus_weights": [0.5, 0.5],
            "duration_h_min": 1.0, "duration_h_max": 4.0, "value_usd_per_gpu_h_min": 0.5,
            "value_usd_per_gpu_h_max": 1.0, **changes,
        }
    return mutate


def setter(*path: object, value: object) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        table = data
        for key in path[:-1]:
            table = table[key]
        table[path[-1]] = value
    return mutate


def no_zone(data: dict) -> None:
    data["run"]["start"] = data["run"]["start"].replace(tzinfo=None)


#: bad scenario files: (file name, mutation of paper-day)
BAD_FILES: dict[str, Callable[[dict], None]] = {
    "negative-weight.toml": with_population(gpus_weights=[-1.0, 2.0]),
    "zero-weights.toml": with_population(gpus_weights=[0.0, 0.0]),
    "no-sites.toml": setter("jobs", 0, "sites", value=[]),
    "quoted-value.toml": setter("inference_classes", 0, "demand_req_per_s",
                                value={"kind": "inline", "values": [100.0] * 23 + ["100"]}),
    "huge-battery.toml": setter("sites", 0, "battery", "energy_capacity_mwh", value=1e30),
    "huge-job-value.toml": setter("jobs", 0, "value_usd", value=1e300),
    "long-text.toml": setter("sites", 0, "power_capacity_mw", value="9" * 20_000),
    "no-zone.toml": no_zone,
}


@dataclass(frozen=True)
class Case:
    """One bad input: the arguments, the exit code, and text the single stderr line must hold."""

    args: tuple[str, ...]
    code: int
    expect: tuple[str, ...]


VALIDATION = 1  # `aidc validate`: the file is bad (one "bad ..." line)
USAGE = 2  # every other command: "aidc: error: ..."

CASES: dict[str, Case] = {
    # 1. everything a run needs is checked by validation and by every command, before work
    "validate-negative-weight": Case(("validate", "negative-weight.toml"), VALIDATION,
                                     ("job_population", "gpus_weights", "[0, 1e6]")),
    "validate-zero-weights": Case(("validate", "zero-weights.toml"), VALIDATION,
                                  ("job_population", "gpus_weights are all zero")),
    "run-zero-weights": Case(("run", "zero-weights.toml", "--controller", "local"), USAGE,
                             ("zero-weights.toml: job_population", "all zero")),
    "run-days-beyond-data": Case(("run", "us-3site", "--controller", "local", "--days", "200"), USAGE,
                                 ("--days 200", "has no data at 2023-01-01")),
    "run-days-not-whole-intervals": Case(("run", "paper-day", "--days", "0.3"), USAGE, ("run.days", "whole number")),
    "run-negative-seed": Case(("run", "paper-day", "--seed", "-1"), USAGE, ("--seed", "[0, 2**63)")),
    "compare-seed-range": Case(("compare", "paper-day", "--seeds", "3-1"), USAGE, ("--seeds", "3-1")),
    # 2. errors of the input or the environment, never a traceback
    "sweep-unknown-dask-scheme": Case(("sweep", "paper-day", "--controllers", "local", "--seeds", "1",
                                       "--dask", "foo://bar:1", "--out", "sweep"), USAGE,
                                      ("--dask foo://bar:1", "unknown address scheme")),
    "sweep-binary-grid": Case(("sweep", "--grid", "binary.toml", "--out", "sweep"), USAGE,
                              ("binary.toml", "not a text file")),
    "sweep-negative-workers": Case(("sweep", "paper-day", "--workers", "-1", "--out", "sweep"), USAGE,
                                   ("--workers", "0 or more")),
    # 3. accepted silently before, although wrong
    "validate-job-without-sites": Case(("validate", "no-sites.toml"), VALIDATION, ("jobs[0].sites", "no site")),
    "validate-quoted-number-in-values": Case(("validate", "quoted-value.toml"), VALIDATION,
                                             ("inference_classes[0].demand_req_per_s", "expected a number",
                                              "'100'")),
    "plan-negative-time-limit": Case(("plan", "paper-day", "--time-limit", "-1"), USAGE,
                                     ("--time-limit", "must be positive")),
    "plan-negative-gap": Case(("plan", "paper-day", "--gap", "-1"), USAGE, ("--gap", "[0, 1)")),
    "run-bogus-forecast-with-heuristic": Case(("run", "paper-day", "--controller", "greedy", "--forecast", "bogus"),
                                              USAGE, ("unknown forecaster 'bogus'",)),
    # 4. ranges that keep the solver sound, named; long values cut
    "validate-huge-battery": Case(("validate", "huge-battery.toml"), VALIDATION,
                                  ("sites[0].battery.energy_capacity_mwh", "less than or equal to")),
    "validate-huge-job-value": Case(("validate", "huge-job-value.toml"), VALIDATION,
                                    ("jobs[0].value_usd", "less than or equal to")),
    "validate-long-text-for-number": Case(("validate", "long-text.toml"), VALIDATION,
                                          ("sites[0].power_capacity_mw", "expected a number", "20,000 characters")),
    # 5. the form: one line, no usage block, no pydantic prefix; outputs checked first; zones
    "no-command": Case((), USAGE, ("give a command",)),
    "unknown-command": Case(("fly",), USAGE, ("invalid choice: 'fly'",)),
    "run-missing-scenario-argument": Case(("run",), USAGE, ("run:", "required: scenario")),
    "run-bad-int": Case(("run", "paper-day", "--seed", "x"), USAGE, ("--seed", "'x'")),
    "run-unknown-controller": Case(("run", "paper-day", "--controller", "oracle"), USAGE, ("--controller", "oracle")),
    "run-out-under-a-file": Case(("run", "paper-day", "--controller", "local", "--out", "notes.txt/run"), USAGE,
                                 ("notes.txt/run", "is a file, not a folder")),
    "run-out-exists": Case(("run", "paper-day", "--controller", "local", "--out", "old-run"), USAGE,
                           ("old-run", "--force")),
    "compare-out-is-a-folder": Case(("compare", "paper-day", "--controllers", "local", "--out", "old-run", "--force"),
                                    USAGE, ("old-run", "is a folder")),
    "plan-out-under-a-file": Case(("plan", "paper-day", "--out", "notes.txt/table.csv"), USAGE,
                                  ("notes.txt/table.csv", "is a file, not a folder")),
    "validate-start-without-zone": Case(("validate", "no-zone.toml"), VALIDATION, ("run.start", "no time zone")),
}


def user_files(folder: Path) -> None:
    """The user's files the cases point at (and must leave untouched)."""
    base = paper_day()
    for name, mutate in BAD_FILES.items():
        data = copy.deepcopy(base)
        mutate(data)
        (folder / name).write_text(tomli_w.dumps(data), encoding="utf-8")
    (folder / "binary.toml").write_bytes(bytes(range(256)) * 4)
    (folder / "notes.txt").write_text("my notes\n", encoding="utf-8")
    (folder / "old-run").mkdir()
    (folder / "old-run" / "manifest.json").write_text("{}", encoding="utf-8")


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` with a hash of its content."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            for path in sorted(folder.rglob("*"))}


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str
    changed: bool


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every case, run in its own folder of user files, three at a time."""
    environment = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(name: str) -> Outcome:
        folder = tmp_path_factory.mktemp(name)
        user_files(folder)
        before = snapshot(folder)
        result = subprocess.run([*AIDC, *CASES[name].args], capture_output=True, text=True, cwd=folder,
                                env=environment, timeout=300)
        return Outcome(result.returncode, result.stdout, result.stderr, snapshot(folder) != before)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(CASES, pool.map(run, CASES), strict=True))


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_before_any_work(outcomes: dict[str, Outcome], name: str) -> None:
    case, outcome = CASES[name], outcomes[name]
    lines = outcome.stderr.splitlines()
    assert outcome.code == case.code, outcome.stderr
    assert len(lines) == 1, outcome.stderr
    line = lines[0]
    prefix = "bad " if case.code == VALIDATION else "aidc: error: "
    assert line.startswith(prefix), line
    for text in case.expect:
        assert text in line, line
    assert len(line) <= 500, f"{len(line)} characters"
    for leak in ("Traceback", "Value error", "pydantic", "[type=", "usage:"):
        assert leak not in outcome.stderr, line
    assert not outcome.changed, "a file of the user's was written or changed"
    if case.code == USAGE:
        assert outcome.stdout == ""  # nothing was run


def test_every_case_names_an_existing_command() -> None:
    """Guards the table: each case reaches the command it means (a typo would test argparse only)."""
    from simulator.cli import COMMANDS

    named = {case.args[0] for case in CASES.values() if case.args}
    assert named <= {*COMMANDS, "fly"} and {"validate", "run", "plan", "compare", "sweep"} <= named


def test_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    """`aidc plan paper-day | head -0`: the reader has gone before the first line; exit 141, no message."""
    process = subprocess.Popen([*AIDC, "plan", "paper-day", "--variants", "joint"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    with process.stderr:
        stderr = process.stderr.read().decode()
    assert process.wait(timeout=300) == 141
    assert stderr == ""


def test_a_long_variant_name_runs(tmp_path: Path) -> None:
    """A 300-character --scenario-variant name used to fail with 'file name too long'."""
    name = "v" * 300
    result = subprocess.run([*AIDC, "sweep", "paper-day", "--controllers", "local", "--seeds", "1", "--days", "0.25",
                             "--workers", "0", "--no-progress", "--scenario-variant", f"{name}:generation_scale=2",
                             "--out", "sweep"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    (run_folder,) = (tmp_path / "sweep" / "runs").iterdir()
    assert len(run_folder.name) < 100 and (run_folder / "kpis.json").is_file()


def gurobi_is_size_limited() -> bool:
    """True when gurobipy is installed with the size-limited pip licence (2,000 variables)."""
    try:
        import gurobipy as gp
    except ImportError:
        return False
    try:
        with gp.Env(params={"OutputFlag": 0}) as env, gp.Model(env=env) as model:
            model.addMVar(2001)
            model.optimize()
    except gp.GurobiError as error:
        return error.errno == 10010
    return False


@pytest.mark.skipif(not gurobi_is_size_limited(), reason="needs gurobipy with the size-limited pip licence")
def test_run_with_a_refused_gurobi_licence_stops_before_work(tmp_path: Path) -> None:
    result = subprocess.run([*AIDC, "run", "fleet-10", "--solver", "gurobi", "--out", "run"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("aidc: error: Gurobi refused the model") and "--solver highs" in lines[-1]
    assert len(lines) == 1 and not (tmp_path / "run").exists()


def test_fallback_steps_are_warned_about_and_counted(tmp_path: Path) -> None:
    """An MPC run whose solves all end without a plan (a 0.1 ms limit) says so on stderr and in the KPIs."""
    result = subprocess.run([*AIDC, "run", "paper-day", "--controller", "mpc", "--time-limit", "0.0001", "--days",
                             "0.25"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("aidc: warning: ")]
    assert len(warnings) == 1 and "6 of 6 control steps were decided by the fallback" in warnings[0]
    (kpi,) = [line for line in result.stdout.splitlines() if line.split()[:1] == ["fallbacks"]]
    assert kpi.split()[-1] == "6"


# ---------------------------------------------------------------------------------------------
# Ctrl-C


def interrupt(args: list[str], folder: Path, started: str) -> subprocess.CompletedProcess[str]:
    """Start ``aidc args`` in ``folder``, wait for ``started`` on its stderr and a second more, send
    SIGINT to its process group (as a terminal does), and collect it (generous timeout)."""
    # the child starts with Ctrl-C's default handling: a pytest-xdist worker ignores SIGINT, and an ignored
    # signal is inherited (Python then installs no KeyboardInterrupt handler), as under nohup
    process = subprocess.Popen([*AIDC, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder,
                               env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler))  # noqa: PLW1509
    assert process.stderr is not None
    seen = ""
    while started not in seen:
        character = process.stderr.read(1)
        assert character, f"ended before {started!r}: {seen}"
        seen += character
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(args, process.returncode, stdout, seen + stderr)


def assert_interrupted(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 130, result.stderr[-2000:]
    assert result.stderr.rstrip().splitlines()[-1] == "aidc: interrupted"
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr


def test_ctrl_c_stops_an_mpc_run_without_a_result_folder(tmp_path: Path) -> None:
    # fleet-10 at full precision: its decisions take seconds, so the signal lands inside a solve (a us-3site
    # week now runs in about 8 s and could end before the signal)
    result = interrupt(["run", "fleet-10", "--controller", "mpc", "--forecast", "noisy", "--days", "1",
                        "--gap", "1e-4", "--fine-hours", "none", "--out", "run"], tmp_path, "simulating ...\n")
    assert_interrupted(result)
    assert list(tmp_path.iterdir()) == []  # no result folder, and no temporary one left behind


def test_ctrl_c_stops_compare(tmp_path: Path) -> None:
    result = interrupt(["compare", "fleet-10", "--controllers", "mpc,greedy", "--days", "1", "--seeds", "1-2",
                        "--gap", "1e-4", "--fine-hours", "none", "--out", "runs.csv"], tmp_path, "running ...\n")
    assert_interrupted(result)
    assert not (tmp_path / "runs.csv").exists()


def test_ctrl_c_stops_a_sweep_and_its_workers(tmp_path: Path) -> None:
    result = interrupt(["sweep", "fleet-10", "--controllers", "mpc", "--days", "1", "--seeds", "1-2",
                        "--gap", "1e-4", "--fine-hours", "none", "--workers", "2", "--out", "sweep"],
                       tmp_path, "running ...\n")
    assert_interrupted(result)
    sweep = tmp_path / "sweep"
    assert not (sweep / "runs.parquet").exists() and not (sweep / "summary.csv").exists()
    assert not [run for run in (sweep / "runs").iterdir() if (run / "kpis.json").exists()]


def test_start_up_imports_no_heavy_optional_module() -> None:
    """`aidc --version` and the checks before a run pay for no Dask, statsmodels, matplotlib or scipy.stats."""
    probe = ("import sys, simulator.cli, simulator.commands, scenarios.io, simulator.run, simulator.controllers; "
             "heavy = {'dask', 'distributed', 'statsmodels', 'matplotlib', 'scipy.stats', 'scipy.signal'}; "
             "print(sorted(heavy & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# found by a fresh tester after the MPC options landed


def one_line_error(args: list[str], folder: Path) -> str:
    result = subprocess.run([*AIDC, *args], capture_output=True, text=True, cwd=folder, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2, (result.returncode, result.stderr[-1500:])
    assert result.stderr.startswith("aidc: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_mpc_options_that_cannot_fit_the_scenario_are_refused_before_work(tmp_path: Path) -> None:
    for args in (["run", "paper-day", "--controller", "mpc", "--horizon-hours", "1.5", "--out", "r"],
                 ["compare", "paper-day", "--controllers", "mpc", "--horizon-hours", "0.5"],
                 ["sweep", "paper-day", "--controllers", "mpc", "--horizon-hours", "1.5", "--out", "s"]):
        assert "horizon_hours (" in one_line_error(args, tmp_path)
    assert list(tmp_path.iterdir()) == []  # no result, sweep or CSV written


def test_seed_lists_are_bounded(tmp_path: Path) -> None:
    assert "2**63" in one_line_error(["compare", "paper-day", "--controllers", "greedy",
                                      "--seeds", "18446744073709551617"], tmp_path)
    assert "at most" in one_line_error(["compare", "paper-day", "--seeds", "1-100000000"], tmp_path)
    assert "2**63" in one_line_error(["sweep", "paper-day", "--controllers", "greedy", "--out", "x",
                                      "--seeds", "99999999999999999999"], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_force_replaces_only_result_folders(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    for out in ("mine", "", "."):
        one_line_error(["run", "paper-day", "--controller", "greedy", "--days", "0.125", "--out", out, "--force"],
                       tmp_path)
    assert (mine / "thesis.tex").read_text() == "years of work"
    # a result folder is replaced with --force
    run = ["run", "paper-day", "--controller", "greedy", "--days", "0.125", "--out", "result"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    assert subprocess.run([*AIDC, *run], cwd=tmp_path, env=env, capture_output=True).returncode == 0
    assert subprocess.run([*AIDC, *run, "--force"], cwd=tmp_path, env=env, capture_output=True).returncode == 0


def test_a_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    result = subprocess.run([*AIDC, "scenarios"], capture_output=False, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60,
                            preexec_fn=lambda: os.close(1))  # noqa: PLW1509 (a child with its stdout closed, as `>&-`)
    assert result.returncode in (0, 141) and "Traceback" not in result.stderr, result.stderr
