"""Bad scenario input (SPEC §8) and the `aidc` command line.

Every rule is checked twice: through :func:`scenarios.load_scenario`, where the error must read
``<file>: <field path>: <reason>``, and through ``aidc validate``, which must print exactly one
line naming the same three things, no traceback, and exit 1. Bad files are built by mutating
the built-in ``paper-day`` scenario, so the rest of each file stays valid.
"""

from __future__ import annotations

import copy
import math
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import tomli_w

from scenarios import ScenarioError, builtin_names, load_scenario, save_scenario
from scenarios.io import builtin_path
from simulator import cli

REPO = Path(__file__).resolve().parents[1]


def paper_day() -> dict:
    candidate = builtin_path("paper-day")
    assert candidate is not None
    return tomllib.loads(candidate.read_text(encoding="utf-8"))


BASE = paper_day()


def write_toml(tmp_path: Path, data: dict, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def validate_via_cli(capsys: pytest.CaptureFixture[str], target: str) -> tuple[int, list[str]]:
    code = cli.main(["validate", target])
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    return code, lines


def assert_rejected(path: Path, field: str, reason: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`path` fails with `<path>: <field>: ...reason...` in the API and in `aidc validate`."""
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    prefix = f"{path}: {field}: " if field else f"{path}: "
    assert message.startswith(prefix), message
    assert re.search(reason, message.removeprefix(prefix)), message
    assert (caught.value.source, caught.value.field) == (str(path), field)
    assert "\n" not in message
    for internal in ("tagged-union", "function-", "Value error", "[type=", "pydantic"):
        assert internal not in message, message

    code, lines = validate_via_cli(capsys, str(path))
    assert code == 1
    assert len(lines) == 1, lines
    assert prefix in lines[0] and re.search(reason, lines[0]), lines[0]
    assert "Traceback" not in lines[0]


# --- helpers that mutate the paper-day dict -------------------------------------------------


def site(data: dict, i: int = 0) -> dict:
    return data["sites"][i]


def grid(data: dict, i: int = 0) -> dict:
    return data["sites"][i]["grid"]


def set_in(path: tuple[object, ...], value: object) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]  # type: ignore[index]
        target[path[-1]] = value  # type: ignore[index]
    return mutate


def drop(path: tuple[object, ...]) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]  # type: ignore[index]
        del target[path[-1]]  # type: ignore[arg-type]
    return mutate


def add_generator(p_min_mw: float, p_max_mw: float) -> Callable[[dict], None]:
    return set_in(("sites", 0, "generator"),
                  {"p_min_mw": p_min_mw, "p_max_mw": p_max_mw, "fuel_cost_usd_per_mwh": 90.0})


def series_of(values: object) -> Callable[[dict], None]:
    return set_in(("sites", 0, "grid", "import_price_usd_per_mwh"), values)


def first_region_and_site(data: dict) -> tuple[str, str]:
    return data["regions"][0]["name"], data["sites"][0]["name"]


def tighten_latency(data: dict) -> None:
    klass = data["inference_classes"][0]
    nearest = min(data["latency_ms"][klass["origin"]].values())
    klass["latency_limit_ms"] = nearest / 2


def too_many_gpus(data: dict) -> None:
    data["jobs"][0]["gpus"] = max(s["gpus"] for s in data["sites"]) + 1
    data["jobs"][0].pop("sites", None)


def too_much_power(data: dict) -> None:
    data["jobs"][0]["power_mw"] = max(s["power_capacity_mw"] for s in data["sites"]) * 2
    data["jobs"][0].pop("sites", None)


def impossible_deadline(data: dict) -> None:
    data["jobs"][0].update(release_h=2.0, duration_h=8.0, deadline_h=6.0)


def unknown_job_site(data: dict) -> None:
    data["jobs"][0]["sites"] = [data["sites"][0]["name"], "atlantis-dc"]


def missing_latency_for_site(data: dict) -> None:
    region, site_name = first_region_and_site(data)
    del data["latency_ms"][region][site_name]


def missing_latency_row(data: dict) -> None:
    del data["latency_ms"][data["regions"][0]["name"]]


def latency_for_unknown_site(data: dict) -> None:
    data["latency_ms"][data["regions"][0]["name"]]["atlantis-dc"] = 5.0


def duplicate(collection: str) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        data[collection][1]["name"] = data[collection][0]["name"]
    return mutate


def nan_in_inline(data: dict) -> None:
    grid(data)["import_price_usd_per_mwh"] = {"kind": "inline", "values": [50.0] * 3 + [math.nan] + [50.0] * 20}


def short_run_series(data: dict) -> None:
    grid(data)["import_price_usd_per_mwh"] = {"kind": "inline", "repeat": "none", "values": [50.0] * 12}


def data_outside_coverage(data: dict) -> None:
    data["run"]["start"] = data["run"]["start"].replace(year=2024)
    grid(data)["import_price_usd_per_mwh"] = {"kind": "data", "dataset": "price_2022", "key": "US-CAL-CISO"}


NEG = r"greater than (or equal to )?0 \(got -"

# (id, mutation, field path, reason pattern)
RULES: list[tuple[str, Callable[[dict], None], str, str]] = [
    # missing required fields
    ("missing-site-gpus", drop(("sites", 0, "gpus")), "sites[0].gpus", "missing required field"),
    ("missing-grid", drop(("sites", 0, "grid")), "sites[0].grid", "missing required field"),
    ("missing-run", drop(("run",)), "run", "missing required field"),
    ("missing-battery-energy", drop(("sites", 0, "battery", "energy_capacity_mwh")),
     "sites[0].battery.energy_capacity_mwh", "missing required field"),
    ("missing-job-deadline", drop(("jobs", 0, "deadline_h")), "jobs[0].deadline_h", "missing required field"),
    # wrong types
    ("type-text-for-int", set_in(("sites", 0, "gpus"), "many"), "sites[0].gpus", "expected a number, got str"),
    ("type-quoted-number", set_in(("sites", 0, "power_capacity_mw"), "30"), "sites[0].power_capacity_mw",
     "expected a number, got str '30'"),
    ("type-bool-for-int", set_in(("jobs", 0, "gpus"), True), "jobs[0].gpus", "expected a number, got bool"),
    ("type-fraction-for-int", set_in(("sites", 0, "gpus"), 1.5), "sites[0].gpus", "valid integer"),
    ("type-text-for-table", set_in(("sites", 0, "battery"), "big"), "sites[0].battery",
     "expected a table, got str 'big'"),
    ("type-text-for-list", set_in(("jobs", 0, "sites"), "west"), "jobs[0].sites", "valid list"),
    ("type-bad-date", set_in(("run", "start"), "yesterday"), "run.start", "datetime"),
    ("type-bad-literal", set_in(("carbon", "pacing"), "fast"), "carbon.pacing", "'proportional' or 'none'"),
    ("type-text-for-series", series_of("cheap"), "sites[0].grid.import_price_usd_per_mwh",
     "expected a number, a list of hourly values or a table"),
    ("series-unknown-kind", series_of({"kind": "magic", "values": [1.0]}),
     "sites[0].grid.import_price_usd_per_mwh", "unknown 'kind' 'magic'; expected 'inline', 'generated', 'data'"),
    ("series-missing-kind", series_of({"values": [1.0] * 24}), "sites[0].grid.import_price_usd_per_mwh",
     "missing 'kind'"),
    # unknown / misspelt fields
    ("unknown-site-field", set_in(("sites", 0, "gpu_count"), 10), "sites[0].gpu_count", "unknown field"),
    ("unknown-top-field", set_in(("jobz",), []), "jobz", r"unknown field \(check the spelling\)"),
    ("unknown-nested-field", set_in(("sites", 0, "battery", "capacity_mwh"), 3.0),
     "sites[0].battery.capacity_mwh", "unknown field"),
    ("unknown-series-field", set_in(("sites", 0, "grid", "import_price_usd_per_mwh", "valuez"), [1.0]),
     "sites[0].grid.import_price_usd_per_mwh.valuez", "unknown field"),
    # negative capacities
    ("negative-gpus", set_in(("sites", 0, "gpus"), -100), "sites[0].gpus", NEG),
    ("negative-power-capacity", set_in(("sites", 0, "power_capacity_mw"), -30.0), "sites[0].power_capacity_mw",
     NEG),
    ("negative-battery-energy", set_in(("sites", 0, "battery", "energy_capacity_mwh"), -40.0),
     "sites[0].battery.energy_capacity_mwh", NEG),
    ("negative-import-limit", set_in(("sites", 0, "grid", "import_limit_mw"), -1.0),
     "sites[0].grid.import_limit_mw", NEG),
    ("negative-pv-capacity", set_in(("sites", 1, "pv_capacity_mw"), -5.0), "sites[1].pv_capacity_mw", NEG),
    ("infinite-capacity", set_in(("sites", 0, "power_capacity_mw"), math.inf), "sites[0].power_capacity_mw",
     r"finite number \(got inf\)"),
    # ordering rules inside one component
    ("soc-bounds-out-of-order", set_in(("sites", 0, "battery", "soc_min_fraction"), 0.97), "sites[0].battery",
     "SOC bounds out of order"),
    ("pue-min-above-max", set_in(("sites", 0, "cooling"), {"pue_min": 1.6, "pue_max": 1.2}), "sites[0].cooling",
     r"pue_min \(1.6\) must not exceed pue_max \(1.2\)"),
    ("generator-pmin-above-pmax", add_generator(5.0, 2.0), "sites[0].generator",
     r"p_min_mw \(5.0\) exceeds p_max_mw \(2.0\)"),
    ("interval-not-multiple-of-tick", set_in(("run", "control_interval_minutes"), 7), "run",
     "must be a multiple of plant_tick_minutes"),
    ("horizon-not-multiple-of-interval", set_in(("run", "horizon_hours"), 2.5), "run",
     "must be a multiple of the control interval"),
    # cross-field rules
    ("class-without-feasible-site", tighten_latency, "inference_classes[0].latency_limit_ms", "no site within"),
    ("job-misses-deadline", impossible_deadline, "jobs[0].deadline_h",
     "release 2 h \\+ duration 8 h ends after the deadline 6 h"),
    ("job-too-many-gpus", too_many_gpus, "jobs[0].gpus", "cannot run at any eligible site"),
    ("job-too-much-power", too_much_power, "jobs[0].gpus", "cannot run at any eligible site"),
    ("job-unknown-site", unknown_job_site, "jobs[0].sites", "unknown site 'atlantis-dc'"),
    ("site-unknown-region", set_in(("sites", 0, "region"), "mars"), "sites[0].region", "unknown region 'mars'"),
    ("class-unknown-origin", set_in(("inference_classes", 0, "origin"), "mars"), "inference_classes[0].origin",
     "unknown region 'mars'"),
    ("latency-missing-row", missing_latency_row, "latency_ms.west", "missing row for region"),
    ("latency-missing-site", missing_latency_for_site, "latency_ms.west.west-dc", "missing latency for site"),
    ("latency-unknown-site", latency_for_unknown_site, "latency_ms.west.atlantis-dc", "unknown site"),
    ("duplicate-site", duplicate("sites"), "sites[1].name", "duplicate name"),
    ("duplicate-region", duplicate("regions"), "regions[1].name", "duplicate name"),
    ("duplicate-class", duplicate("inference_classes"), "inference_classes[1].name", "duplicate name"),
    ("duplicate-job", duplicate("jobs"), "jobs[1].name", "duplicate name"),
    # series
    ("daily-profile-wrong-length", series_of({"kind": "inline", "values": [50.0] * 23}),
     "sites[0].grid.import_price_usd_per_mwh", "a daily profile must cover 24 h: 23 values x 60 min"),
    ("daily-profile-wrong-step", series_of({"kind": "inline", "values": [50.0] * 24, "step_minutes": 30}),
     "sites[0].grid.import_price_usd_per_mwh", "must cover 24 h"),
    ("run-series-too-short", short_run_series, "sites[0].grid.import_price_usd_per_mwh",
     "repeat = 'none' covers 12 h .* but 24 h are needed"),
    ("nan-in-inline-series", nan_in_inline, "sites[0].grid.import_price_usd_per_mwh.values[3]",
     r"finite number \(got nan\)"),
    ("nan-in-generated-series", set_in(("sites", 0, "ambient_temperature_c"), {"kind": "generated",
                                                                               "mean": math.nan}),
     "sites[0].ambient_temperature_c.mean", "finite number"),
    ("nan-capacity", set_in(("sites", 0, "idle_power_mw"), math.nan), "sites[0].idle_power_mw", "finite number"),
    ("nan-latency", set_in(("latency_ms", "west", "west-dc"), math.nan), "latency_ms.west.west-dc",
     "finite number"),
    ("availability-above-one", set_in(("sites", 0, "pv_availability"), {"kind": "generated", "mean": 1.5}),
     "sites[0].pv_availability", r"availability must lie in \[0, 1\]"),
    ("availability-negative", set_in(("sites", 1, "wind_availability"), [-0.1] * 24),
     "sites[1].wind_availability", r"availability must lie in \[0, 1\]"),
    ("negative-demand", set_in(("inference_classes", 0, "demand_req_per_s"), -5.0),
     "inference_classes[0].demand_req_per_s", "must not be negative"),
    ("unknown-dataset", series_of({"kind": "data", "dataset": "prices_1999", "key": "US-CAL-CISO"}),
     "sites[0].grid.import_price_usd_per_mwh", "unknown dataset 'prices_1999'"),
    ("unknown-dataset-key", series_of({"kind": "data", "dataset": "price_2022", "key": "MOON"}),
     "sites[0].grid.import_price_usd_per_mwh", "unknown key 'MOON' for dataset 'price_2022'"),
    ("data-outside-coverage", data_outside_coverage, "sites[0].grid.import_price_usd_per_mwh", "has no data at"),
]


def test_paper_day_has_the_shape_the_mutations_assume():
    """The mutations index sites/jobs/classes; fail loudly here if paper-day changes shape."""
    assert len(BASE["sites"]) >= 2 and len(BASE["regions"]) >= 2
    assert len(BASE["jobs"]) >= 2 and len(BASE["inference_classes"]) >= 2
    assert first_region_and_site(BASE) == ("west", "west-dc")
    assert "battery" in site(BASE) and "cooling" in site(BASE)


@pytest.mark.parametrize(("mutate", "field", "reason"), [rule[1:] for rule in RULES], ids=[r[0] for r in RULES])
def test_rule(tmp_path, capsys, mutate, field, reason):
    data = copy.deepcopy(BASE)
    mutate(data)
    assert_rejected(write_toml(tmp_path, data), field, reason, capsys)


def test_unmutated_paper_day_is_valid(tmp_path, capsys):
    """Guards the rules above: each failure comes from its mutation, not from the base file."""
    path = write_toml(tmp_path, copy.deepcopy(BASE), "good.toml")
    assert load_scenario(path).name == BASE["name"]
    code, lines = validate_via_cli(capsys, str(path))
    assert code == 0 and len(lines) == 1 and lines[0].startswith(f"ok  {path}")


def test_nan_written_as_toml_text(tmp_path, capsys):
    """A literal `nan` typed into the TOML file (not produced by a writer)."""
    text = builtin_path("paper-day").read_text(encoding="utf-8")  # type: ignore[union-attr]
    text, count = re.subn(r"(power_capacity_mw\s*=\s*)[0-9.]+", r"\1nan", text, count=1)
    assert count == 1
    path = tmp_path / "nan.toml"
    path.write_text(text, encoding="utf-8")
    assert_rejected(path, "sites[0].power_capacity_mw", "finite number", capsys)


# --- file-level problems --------------------------------------------------------------------


def test_missing_file(tmp_path, capsys):
    assert_rejected(tmp_path / "nowhere.toml", "", "file not found", capsys)


def test_unknown_builtin_name(capsys):
    code, lines = validate_via_cli(capsys, "no-such-scenario")
    assert code == 1 and len(lines) == 1
    assert "no-such-scenario: file not found (and not a built-in scenario name" in lines[0]


def test_empty_file(tmp_path, capsys):
    path = tmp_path / "empty.toml"
    path.write_text("  \n\n", encoding="utf-8")
    assert_rejected(path, "", "file is empty", capsys)


def test_broken_toml(tmp_path, capsys):
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\n[run\nstart = 2022-01-01\n', encoding="utf-8")
    assert_rejected(path, "", "not valid TOML", capsys)


def test_directory(tmp_path, capsys):
    assert_rejected(tmp_path, "", "is a directory", capsys)


def test_save_scenario_never_overwrites(tmp_path):
    scenario = load_scenario("paper-day")
    path = save_scenario(scenario, tmp_path / "s.toml")
    with pytest.raises(FileExistsError, match="exists"):
        save_scenario(scenario, path)
    save_scenario(scenario, path, overwrite=True)
    assert load_scenario(path) == scenario


# --- README example -------------------------------------------------------------------------


def test_readme_example_validates(tmp_path, capsys):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", readme, flags=re.DOTALL)
    assert len(blocks) == 1, "README.md should hold exactly one ```toml example"
    path = tmp_path / "example.toml"
    path.write_text(blocks[0], encoding="utf-8")
    scenario = load_scenario(path)
    assert (len(scenario.sites), len(scenario.regions), len(scenario.inference_classes), len(scenario.jobs)) == (
        1, 1, 1, 1)
    code, lines = validate_via_cli(capsys, str(path))
    assert code == 0 and lines[0].startswith("ok  ")


# --- the command line -----------------------------------------------------------------------


def test_validate_builtin_by_name(capsys):
    code, lines = validate_via_cli(capsys, "paper-day")
    assert code == 0
    assert lines == [lines[0]] and re.match(r"ok  paper-day: \d+ sites, \d+ regions, \d+ classes, \d+ jobs", lines[0])


def test_validate_all(capsys):
    assert cli.main(["validate", "--all"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = builtin_names()
    checked = [line.split(":")[0] for line in out[:-1] if not line.startswith("    file ")]  # file series lines
    assert checked[:len(names)] == [f"ok  {name}" for name in names]
    assert checked[len(names):] and all(line.startswith("ok  ") and "/examples/" in line
                                        for line in checked[len(names):])  # then the shipped examples
    assert out[-1] == f"{len(checked)} valid, 0 invalid"


def test_validate_mixed_reports_each_and_fails(tmp_path, capsys):
    bad = copy.deepcopy(BASE)
    bad["sites"][0]["gpus"] = -1
    path = write_toml(tmp_path, bad)
    code = cli.main(["validate", "paper-day", str(path), "paper-day"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.count("ok  paper-day:") == 2
    assert captured.out.splitlines()[-1] == "2 valid, 1 invalid"
    assert captured.err.splitlines() == [
        f"bad {path}: sites[0].gpus: Input should be greater than or equal to 0 (got -1)"
    ]


def test_validate_without_targets_is_a_usage_error(capsys):
    assert cli.main(["validate"]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == "aidc: error: validate: give scenario files or built-in names, or --all"


def test_scenarios_lists_every_builtin(capsys):
    assert cli.main(["scenarios"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "sites", "regions", "classes", "jobs", "days", "description"]
    assert [line.split()[0] for line in out[1:]] == builtin_names()
    for line, name in zip(out[1:], builtin_names(), strict=True):
        scenario = load_scenario(name)
        assert line.split()[1:6] == [str(len(scenario.sites)), str(len(scenario.regions)),
                                     str(len(scenario.inference_classes)), str(len(scenario.jobs)),
                                     f"{scenario.run.days:g}"]
        assert line.endswith(scenario.description.strip().splitlines()[0].strip())


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert re.fullmatch(r"aidc \S+\n", capsys.readouterr().out)


def test_no_command_is_a_one_line_usage_error(capsys):
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aidc: error: give a command: scenarios, validate") and err.count("\n") == 1


def test_unknown_command(capsys):
    assert cli.main(["fly"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aidc: error: ") and "invalid choice: 'fly'" in err and err.count("\n") == 1


def test_every_command_has_its_functions():
    for name in cli.COMMANDS:
        identifier = name.replace("-", "_")
        assert callable(getattr(cli, f"add_{identifier}_parser"))
        assert callable(getattr(cli, f"run_{identifier}"))


class SolverUnavailable(RuntimeError):
    """Stands in for optimizer.solvers.SolverUnavailable: matched by class name."""


class ForecastSpecError(ValueError):
    """Stands in for forecasts.ForecastSpecError."""


@pytest.mark.parametrize("error", [
    SolverUnavailable("gurobi: model too large for the size-limited licence"),
    ForecastSpecError("unknown forecaster 'crystal-ball'"),
    ScenarioError("x.toml", "sites[0].gpus", "must be positive"),
    FileExistsError(17, "File exists", "results/run-1"),
    FileNotFoundError(2, "No such file or directory", "missing.toml"),
], ids=lambda e: type(e).__name__)
def test_user_errors_become_one_line(monkeypatch, capsys, error):
    def failing(args):
        raise error
    monkeypatch.setattr(cli, "run_validate", failing)
    assert cli.main(["validate", "anything"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aidc: error: ")
    assert "Traceback" not in captured.err
    if isinstance(error, OSError):
        assert lines[0] == f"aidc: error: {error.filename}: {error.strerror}"
    else:
        assert lines[0] == f"aidc: error: {error}"


def test_bugs_keep_their_traceback(monkeypatch):
    def failing(args):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(cli, "run_validate", failing)
    with pytest.raises(ZeroDivisionError):
        cli.main(["validate", "anything"])
    assert not cli.is_user_error(ValueError("a plain ValueError is not known to be the user's fault"))


def test_interrupt(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "run_validate", interrupted)
    assert cli.main(["validate", "anything"]) == 130
    assert capsys.readouterr().err.strip() == "aidc: interrupted"


def test_cli_startup_imports_nothing_heavy():
    """`aidc --help` must not pay for pandas, the solvers or simpy (lazy imports in run_*)."""
    # optimizer.defaults (a frozen dataclass of numbers) is the one light module of the packages allowed
    probe = ("import sys, simulator.cli as c; c.build_parser(); "
             "heavy = {'numpy', 'pandas', 'pydantic', 'simpy', 'highspy', 'gurobipy', 'scenarios', "
             "'optimizer', 'forecasts'}; "
             "loaded = {m for m in sys.modules if m.split('.')[0] in heavy} - {'optimizer', 'optimizer.defaults'}; "
             "print(sorted(loaded))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"


def test_console_script_reports_bad_file_in_one_line(tmp_path):
    """The installed `aidc` entry point, end to end, as a user sees it."""
    path = tmp_path / "bad.toml"
    data = copy.deepcopy(BASE)
    data["sites"][0]["battery"]["soc_max_fraction"] = 0.05
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "simulator.cli", "validate", str(path)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"bad {path}: sites[0].battery: SOC bounds out of order: need soc_min_fraction")
    assert lines[0].endswith("<= 0.05")
