"""``aidc compare`` as a sweep: run folders kept and resumed, paired differences with t-intervals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from test_simulator import small_scenario

from scenarios import save_scenario
from simulator.cli import main
from simulator.compare_command import differences_table, paired_differences

KPI = (("benefit_usd", "benefit (USD)", "{:,.0f}"),)


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("compare") / "small.toml"
    save_scenario(small_scenario(2, 2, 2, 6, variant=5), path)
    return path


def frame(reference: list[float], other: list[float]) -> pd.DataFrame:
    seeds = list(range(1, len(reference) + 1))
    return pd.DataFrame({"controller": ["ref"] * len(seeds) + ["x"] * len(seeds), "seed": seeds * 2,
                         "benefit_usd": [*reference, *other]})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=12), st.floats(-1e4, 1e4), st.data())
def test_paired_difference_is_a_t_interval_on_the_seed_differences(reference, shift, data):
    noise = data.draw(st.lists(st.floats(-100, 100), min_size=len(reference), max_size=len(reference)))
    other = [r + shift + e for r, e in zip(reference, noise, strict=True)]
    row = paired_differences(frame(reference, other), "ref", ["x"], KPI).iloc[0]
    difference = np.array(other) - np.array(reference)
    n = len(difference)
    assert row["n"] == n
    assert row["mean"] == pytest.approx(difference.mean(), abs=1e-6)
    half = stats.t.ppf(0.975, n - 1) * difference.std(ddof=1) / math.sqrt(n)
    assert row["high"] - row["low"] == pytest.approx(2 * half, abs=1e-6)
    assert row["low"] <= row["mean"] <= row["high"]
    # pairing: spreading the seeds apart (the same differences) leaves the interval as it was
    spread = [10 * r + 1e5 * i for i, r in enumerate(reference)]
    moved = paired_differences(frame(spread, [s + d for s, d in zip(spread, difference, strict=True)]), "ref", ["x"],
                               KPI).iloc[0]
    assert moved["high"] - moved["low"] == pytest.approx(row["high"] - row["low"], rel=1e-6, abs=1e-3)


def test_paired_difference_of_a_controller_with_itself_is_zero_and_left_out():
    runs = frame([1.0, 5.0, 9.0], [1.0, 5.0, 9.0])
    row = paired_differences(runs, "ref", ["x"], KPI).iloc[0]
    assert (row["mean"], row["std"], row["low"], row["high"]) == (0.0, 0.0, 0.0, 0.0)
    assert differences_table(paired_differences(runs, "ref", ["x"], KPI), ["x"]).splitlines()[1:] == []
    one_seed = paired_differences(frame([1.0], [3.0]), "ref", ["x"], KPI).iloc[0]
    assert one_seed["mean"] == 2.0 and math.isnan(one_seed["low"])


def test_compare_keeps_its_run_folders_and_resumes(scenario_file, tmp_path, capsys):
    arguments = ["compare", str(scenario_file), "--controllers", "local,greedy", "--seeds", "1-2",
                 "--reference", "local", "--workers", "0", "--runs", str(tmp_path / "cmp"), "--out",
                 str(tmp_path / "kpis.csv"), "--force"]
    assert main(arguments) == 0
    first = capsys.readouterr().out
    assert "(4 ran, 0 already finished)" in first
    assert "paired differences vs local" in first and "Student t over 2 seeds" in first
    assert len(list((tmp_path / "cmp" / "runs").iterdir())) == 4
    assert main(arguments) == 0
    second = capsys.readouterr().out
    assert "(0 ran, 4 already finished)" in second
    table = lambda text: text[text.index("mean ± std"):]  # noqa: E731
    assert table(first) == table(second)  # the same numbers from the kept folders
    runs = pd.read_csv(tmp_path / "kpis.csv")
    greedy = runs[runs["controller"] == "greedy"].set_index("seed")["benefit_usd"]
    local = runs[runs["controller"] == "local"].set_index("seed")["benefit_usd"]
    mean = f"{(greedy - local).mean():+,.0f}"
    line = next(text for text in second.splitlines() if text.startswith("benefit (USD)") and "[" in text)
    assert line.split()[2] == mean


def test_a_scenario_variant_alone_is_compared_next_to_base(scenario_file, tmp_path, capsys):
    arguments = ["compare", str(scenario_file), "--controllers", "local,greedy", "--seeds", "1", "--workers", "0",
                 "--scenario-variant", "cheap:carbon.price_usd_per_tco2=0", "--out", str(tmp_path / "k.csv")]
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    assert "scenario variant base" in printed and "scenario variant cheap" in printed
    assert set(pd.read_csv(tmp_path / "k.csv")["variant"]) == {"base", "cheap"}
    assert main([*arguments, "--no-base", "--force"]) == 0
    assert set(pd.read_csv(tmp_path / "k.csv")["variant"]) == {"cheap"}
    assert main(["compare", str(scenario_file), "--controllers", "local", "--reference", "mpc"]) == 2
    assert "--reference" in capsys.readouterr().err
    assert main(["compare", str(scenario_file), "--controllers", "local", "--no-base"]) == 2
    assert "--no-base" in capsys.readouterr().err


def test_sweep_says_when_base_is_left_out(scenario_file, tmp_path, capsys):
    assert main(["sweep", str(scenario_file), "--controllers", "local", "--seeds", "1", "--workers", "0",
                 "--no-progress", "--scenario-variant", "cheap:carbon.price_usd_per_tco2=0",
                 "--out", str(tmp_path / "s")]) == 0
    assert "add --scenario-variant base" in capsys.readouterr().err
