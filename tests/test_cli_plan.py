"""`aidc plan`: the offline study from the command line."""

import pandas as pd

from optimizer.variants import VARIANTS
from simulator.cli import PLAN_VARIANTS, main


def test_parser_lists_every_variant():
    assert tuple(VARIANTS) == PLAN_VARIANTS


def test_plan_prints_table_findings_and_writes_csv(tmp_path, capsys):
    out = tmp_path / "plan.csv"
    assert main(["plan", "paper-day", "--variants", "joint,no-battery,no-routing", "--compare-rich",
                 "paper-day-genrich", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "total benefit (USD)" in text and "joint" in text and "no-routing" in text
    assert "[yes] removing routing costs more benefit than removing the battery" in text
    assert "generation-rich gain" not in text  # neither baseline asked for: no gain curve
    table = pd.read_csv(out, index_col=[0, 1]).loc["paper-day"]
    assert list(table.index) == ["joint", "no-battery", "no-routing"]
    assert table.loc["joint", "benefit_usd"] >= table["benefit_usd"].max() - 1e-6 * abs(table["benefit_usd"].max())


def test_plan_refuses_to_overwrite_and_rejects_unknown_variant(tmp_path, capsys):
    out = tmp_path / "plan.csv"
    out.write_text("keep me")
    assert main(["plan", "paper-day", "--variants", "joint", "--out", str(out)]) == 2
    assert out.read_text() == "keep me"
    assert main(["plan", "paper-day", "--variants", "joint,bogus"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("aidc: error:") for line in errors)
    assert "bogus" in errors[1] and "Traceback" not in errors[1]



def test_findings_only_for_a_study_pair_and_joint_alone_works(capsys):
    # one scenario: its table, and no findings (they belong to the study pair)
    assert main(["plan", "paper-day", "--variants", "joint,no-battery"]) == 0
    text = capsys.readouterr().out
    assert "total benefit (USD)" in text and "findings:" not in text and "study pair" in text
    # a pair that is not a study: no findings either
    assert main(["plan", "paper-day", "--variants", "joint,compute-only", "--compare-rich", "paper-day"]) == 0
    text = capsys.readouterr().out
    assert "findings:" not in text and "not paper-day with a larger generation_scale" in text
    # joint alone, with and without the rich scenario (crashed in study_findings before)
    for extra in ([], ["--compare-rich", "paper-day-genrich"]):
        assert main(["plan", "paper-day", "--variants", "joint", *extra]) == 0
        text = capsys.readouterr().out
        assert "total benefit (USD)" in text and "[yes]" not in text and "[NO" not in text
        if extra:  # a study pair without a baseline says why it shows no curve or findings
            assert "--variants needs joint and at least one of them" in text


def test_a_study_pair_prints_the_gain_curve_from_1x_to_6x(capsys):
    assert main(["plan", "paper-day", "--variants", "joint,energy-only", "--compare-rich", "paper-day-genrich"]) == 0
    text = capsys.readouterr().out
    curve = text.split("generation-rich gain of joint over the generation scale")[1].split("findings:")[0]
    rows = [line.split()[0] for line in curve.strip().splitlines()[3:]]  # after the title, header, index name
    assert rows == ["1x", "1.5x", "2x", "2.5x", "3x", "3.5x", "4x", "4.5x", "5x", "5.5x", "6x"]
    assert "gain over energy-only (USD)" in curve and "gain over compute-only" not in curve
    assert "joint's gain over energy-only is larger than at 1x at every scale up to 6x" in text
