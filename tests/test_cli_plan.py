"""`aidc plan`: the offline study from the command line."""

import pandas as pd

from optimizer.variants import VARIANTS
from simulator.cli import PLAN_VARIANTS, main


def test_parser_lists_every_variant():
    assert tuple(VARIANTS) == PLAN_VARIANTS


def test_plan_prints_table_findings_and_writes_csv(tmp_path, capsys):
    out = tmp_path / "plan.csv"
    assert main(["plan", "paper-day", "--variants", "joint,no-battery,no-routing", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "total benefit (USD)" in text and "joint" in text and "no-routing" in text
    assert "[yes] removing routing costs more benefit than removing the battery" in text
    table = pd.read_csv(out, index_col=0)
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

