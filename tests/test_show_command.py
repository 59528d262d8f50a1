"""``aidc show`` on damaged, partial and foreign folders, its messages about the forecast record,
``--csv --force`` beside the user's files, and its option checks (issue-17 verification)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from test_results_record import _run

from simulator.cli import main
from simulator.results import FRAMES


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return _run(4).save(tmp_path_factory.mktemp("show_damaged") / "run")


@pytest.fixture
def copy(saved, tmp_path):
    folder = tmp_path / "h"
    shutil.copytree(saved, folder)
    return folder


def _one_line_error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("aidc: error:") and len(err.strip().splitlines()) == 1, err
    return err.strip()


def _garbage(name):
    return lambda folder: (folder / name).write_text("x")


def _missing(name):
    return lambda folder: (folder / name).unlink()


def _manifest(text):
    return lambda folder: (folder / "manifest.json").write_text(text)


@pytest.mark.parametrize("damage, file, reason", [
    (_garbage("ticks.parquet"), "ticks.parquet", "not a valid Parquet file"),
    (_garbage("signals.parquet"), "signals.parquet", "not a valid Parquet file"),
    *[(_missing(f"{name}.parquet"), f"{name}.parquet", "incomplete result") for name in FRAMES],
    (_missing("kpis.json"), "kpis.json", "incomplete result"),
    (_garbage("kpis.json"), "kpis.json", "not valid JSON"),
    (_manifest('{"a": 1}'), "manifest.json", "not an aidc manifest"),
    (_manifest("[1, 2]"), "manifest.json", "not an aidc manifest"),
    (_manifest("{bad"), "manifest.json", "not valid JSON"),
])
def test_a_damaged_result_is_one_line_naming_the_file_and_what_is_wrong(damage, file, reason, copy, capsys):
    damage(copy)
    err = _one_line_error(["show", str(copy)], capsys)
    assert err.startswith(f"aidc: error: {copy}:") and reason in err and err.endswith(f"({file})")


def test_a_folder_with_only_a_manifest_says_the_result_is_incomplete(saved, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    shutil.copy(saved / "manifest.json", tmp_path / "mine")
    err = _one_line_error(["show", str(tmp_path / "mine")], capsys)
    assert "incomplete result" in err and err.endswith("(ticks.parquet)")


def test_a_sweep_folder_with_a_damaged_runs_table_is_one_line(tmp_path, capsys):
    (tmp_path / "s1").mkdir()
    (tmp_path / "s1" / "runs.parquet").write_text("x")
    err = _one_line_error(["show", str(tmp_path / "s1")], capsys)
    assert err.endswith("(runs.parquet)") and "not a valid Parquet file" in err


def test_forecast_plot_without_the_realised_signals_is_one_line(copy, capsys):
    (copy / "signals.parquet").unlink()
    err = _one_line_error(["show", str(copy), "--plot", "forecast"], capsys)
    assert err.endswith("(signals.parquet)") and "missing" in err
    assert not (copy / "forecast.png").exists()


# ---------------------------------------------------------------------------------------------
# the forecast record: a message true to each case


def test_a_deleted_vintages_file_is_named(copy, capsys):
    (copy / "vintages.parquet").unlink()
    err = _one_line_error(["show", str(copy), "--plot", "forecast"], capsys)
    assert "(vintages.parquet)" in err and "missing" in err and "heuristic" not in err


def test_a_sweep_run_says_that_sweeps_do_not_record_plans(tmp_path, capsys):
    folder = _run(4, record=False).save(tmp_path / "runs" / "mpc_1")
    (folder / "run.json").write_text("{}")  # the sweep's "finished" marker
    err = _one_line_error(["show", str(folder), "--plot", "forecast"], capsys)
    assert "aidc sweep" in err and "--no-record-plans" not in err
    (folder / "run.json").unlink()
    assert "--no-record-plans" in _one_line_error(["show", str(folder), "--plot", "forecast"], capsys)


def test_a_run_without_forecasts_lists_only_the_files_it_wrote(tmp_path, capsys):
    out_dir = tmp_path / "g"
    assert main(["run", "us-3site", "--days", "0.25", "--controller", "local", "--out", str(out_dir), "-q"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("wrote"))
    for name in ("vintages", "planned", "signals", "ticks", "kpis_by", "manifest.json", "dispatch.png"):
        written = any(path.name.startswith(name) for path in out_dir.iterdir())
        assert (name in line) == written, (name, line)
    err = _one_line_error(["show", str(out_dir), "--plot", "forecast"], capsys)
    assert "uses no forecasts" in err


# ---------------------------------------------------------------------------------------------
# --csv --force keeps the user's files


def test_csv_force_replaces_only_aidcs_files(copy, capsys):
    (copy / "csv").mkdir()
    (copy / "csv" / "notes.txt").write_text("mine2")
    (copy / "csv" / "ticks.csv").write_text("old")
    assert main(["show", str(copy), "--csv", "--force"]) == 0
    assert (copy / "csv" / "notes.txt").read_text() == "mine2"
    assert pd.read_csv(copy / "csv" / "ticks.csv").shape[0] == pd.read_parquet(copy / "ticks.parquet").shape[0]
    assert not [path for path in (copy / "csv").iterdir() if path.name.startswith(".")]


def test_csv_force_refuses_a_file_named_csv(copy, capsys):
    (copy / "csv").write_text("mine")
    err = _one_line_error(["show", str(copy), "--csv", "--force"], capsys)
    assert "not a folder" in err and (copy / "csv").read_text() == "mine"


# ---------------------------------------------------------------------------------------------
# options


@pytest.mark.parametrize("extra, message", [
    (["--lead-hours", "3"], "only to --plot forecast"),
    (["--plot", "soc", "--lead-hours", "3"], "only to --plot forecast"),
    (["--by", "site", "--by", "class"], "--by given 2 times"),
    (["--plot-dir", "elsewhere"], "only to --plot"),
])
def test_options_that_would_be_ignored_are_refused(extra, message, saved, capsys):
    assert message in _one_line_error(["show", str(saved), *extra], capsys)


def test_plot_dir_writes_elsewhere_and_never_overwrites(saved, tmp_path, capsys):
    before = sorted(path.name for path in saved.iterdir())
    plots = tmp_path / "plots"
    assert main(["show", str(saved), "--plot", "soc", "--plot-dir", str(plots)]) == 0
    assert main(["show", str(saved), "--plot", "soc", "--plot-dir", str(plots)]) == 0
    assert sorted(path.name for path in plots.iterdir()) == ["soc-2.png", "soc.png"]
    assert sorted(path.name for path in saved.iterdir()) == before
    capsys.readouterr()


def test_one_day_is_singular(copy, capsys):
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["days"] = 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert main(["show", str(copy)]) == 0
    out = capsys.readouterr().out
    assert " 1 day from" in out and "1 days" not in out


def test_the_sweep_table_prints_equal_counts_as_integers(tmp_path, capsys):
    folder = tmp_path / "sweep"
    folder.mkdir()
    pd.DataFrame({"scenario": "x", "variant": "base", "controller": ["mpc", "mpc", "local"], "forecast": "perfect",
                  "seed": [1, 2, 1], "benefit_usd": [1.0, 3.0, 2.0], "jobs_completed": [6.0, 6.0, 5.0],
                  "fallbacks": [0.0, 1.0, 0.0]}).to_parquet(folder / "runs.parquet")
    assert main(["show", str(folder)]) == 0
    rows = {line.split()[1]: line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("base")}
    assert rows["mpc"][-6:] == ["6", "±", "0", "0.5", "±", "0.7"]  # jobs equal on both seeds; fallbacks differ
    assert rows["local"][-2:] == ["5", "0"]


def test_show_a_compare_folder_prints_the_paired_differences(tmp_path, capsys):
    folder = tmp_path / "cmp"
    folder.mkdir()
    pd.DataFrame({"scenario": "x", "variant": "base", "controller": ["mpc"] * 3 + ["local"] * 3,
                  "forecast": ["perfect"] * 3 + ["n/a"] * 3, "seed": [1, 2, 3] * 2,
                  "benefit_usd": [10.0, 20.0, 30.0, 7.0, 18.0, 21.0]}).to_parquet(folder / "runs.parquet")
    assert main(["show", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "paired differences vs mpc" in out
    benefit = next(line for line in out.splitlines()[out.splitlines().index(next(
        line for line in out.splitlines() if line.startswith("paired"))):] if line.startswith("benefit"))
    assert benefit.split()[2] == "-5"  # local - mpc on the same seed: -3, -2, -9


def test_a_sweep_over_forecasts_prints_no_paired_differences(tmp_path, capsys):
    folder = tmp_path / "sweep"
    folder.mkdir()
    pd.DataFrame({"scenario": "x", "variant": "base", "controller": ["mpc", "mpc", "local"],
                  "forecast": ["perfect", "noisy", "n/a"], "seed": 1,
                  "benefit_usd": [1.0, 2.0, 3.0]}).to_parquet(folder / "runs.parquet")
    assert main(["show", str(folder)]) == 0
    assert "paired differences" not in capsys.readouterr().out


def test_sweep_quiet_prints_nothing_on_stderr(tmp_path, capsys):
    argv = ["sweep", "us-3site", "--days", "0.25", "--controllers", "local", "--seeds", "1", "--workers", "0",
            "--scenario-variant", "v:generation_scale=1.0", "--out", str(tmp_path / "sw")]
    assert main([*argv, "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "1 ran" in captured.out
