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


FLAKY = '''
from optimizer.control import LocalController


class Flaky(LocalController):
    name = "flaky"

    def __init__(self, seed: int = 0, fail_on: int = 2):
        self.seed, self.fail_on = seed, fail_on

    def decide(self, observation):
        if self.fail_on in (self.seed, -1) and observation.elapsed_h > 1:
            raise RuntimeError(f"flaky on seed {self.seed}")
        return super().decide(observation)

    def config(self):
        return {"name": self.name, "seed": self.seed}
'''


def test_failed_runs_are_counted_per_controller_and_a_failed_reference_is_said(scenario_file, tmp_path, capsys,
                                                                              monkeypatch):
    import sys

    (tmp_path / "flaky_policy.py").write_text(FLAKY, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    base = ["compare", str(scenario_file), "--seeds", "1-3", "--workers", "0", "--days", "0.25"]
    try:
        assert main([*base, "--controllers", "local,greedy,flaky_policy:Flaky", "--reference", "local"]) == 1
        out = capsys.readouterr().out
        assert "flaky_policy:Flaky: over 2 of 3 seeds (1 failed)" in out
        assert "Student t over the seeds both ran: greedy 3, flaky_policy:Flaky 2" in out
        assert main([*base, "--controllers", "local,flaky_policy:Flaky:fail_on=-1", "--seeds", "1-2",
                     "--reference", "flaky_policy:Flaky:fail_on=-1"]) == 1
        out = capsys.readouterr().out
        assert "flaky_policy:Flaky:fail_on=-1: all 2 runs failed" in out
        assert "no paired differences vs flaky_policy:Flaky:fail_on=-1: all runs of the reference failed" in out
    finally:
        sys.modules.pop("flaky_policy", None)


def test_a_variant_named_base_with_overrides_is_refused_and_variants_are_labelled(scenario_file, tmp_path, capsys):
    arguments = ["compare", str(scenario_file), "--controllers", "local", "--seeds", "1", "--workers", "0",
                 "--days", "0.25"]
    assert main([*arguments, "--scenario-variant", "base:carbon.price_usd_per_tco2=0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the name 'base' is reserved" in err
    assert main([*arguments, "--scenario-variant", "cheap:carbon.price_usd_per_tco2=0", "--no-base"]) == 0
    assert "scenario variant cheap" in capsys.readouterr().out
