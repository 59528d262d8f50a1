"""The generation-rich gain as a curve over the generation scale (issue 12, item 9)."""

from __future__ import annotations

import pandas as pd
import pytest

from optimizer.offline import (
    GAIN_CURVE_SCALES,
    curve_findings,
    generation_gain_curve,
    is_study_pair,
    offline_table,
    study_findings,
)
from scenarios import load_builtin


def test_the_curve_runs_from_1x_to_6x_in_half_steps():
    assert GAIN_CURVE_SCALES == (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0)


def test_the_study_pair_is_recognised():
    base, rich = load_builtin("paper-day"), load_builtin("paper-day-genrich")
    assert is_study_pair(base, rich)
    assert not is_study_pair(rich, base)  # smaller generation
    assert not is_study_pair(base, base)
    other = rich.model_copy(update={"carbon": rich.carbon.model_copy(update={"price_usd_per_tco2": 99.0})})
    assert not is_study_pair(base, other)  # more than the generation changed


def test_a_point_of_the_curve_is_the_rich_scenarios_table(offline_tables):
    curve = generation_gain_curve(load_builtin("paper-day"), scales=(1.0, 4.0))
    assert list(curve.index) == [1.0, 4.0]
    for scale, name in ((1.0, "paper-day"), (4.0, "paper-day-genrich")):
        table = offline_tables[name]
        for baseline in ("compute-only", "energy-only"):
            gain = table.loc["joint", "benefit_usd"] - table.loc[baseline, "benefit_usd"]
            # the same MILPs: equal up to the solves' certified gaps
            tolerance = 2e-3 * abs(table.loc["joint", "benefit_usd"])
            assert curve.loc[scale, f"gain_over_{baseline}_usd"] == pytest.approx(gain, abs=tolerance)
        assert curve.loc[scale, "joint_emissions_tco2"] == pytest.approx(table.loc["joint", "emissions_tco2"],
                                                                          rel=1e-2)


def test_curve_findings_name_where_the_gain_is_larger_and_where_not():
    curve = pd.DataFrame({"gain_over_energy-only_usd": [10.0, 8.0, 12.0, 9.0],
                          "gain_over_compute-only_usd": [5.0, 6.0, 7.0, 8.0]},
                         index=pd.Index([1.0, 2.0, 4.0, 6.0], name="generation_scale"))
    (energy, holds_energy, numbers_energy), (compute, holds_compute, numbers_compute) = curve_findings(curve)
    assert "energy-only" in energy and not holds_energy
    assert numbers_energy == "10 USD at 1x; larger at 4x; not at 2x, 6x"
    assert "compute-only" in compute and holds_compute and numbers_compute == "5 USD at 1x; larger at 2x, 4x, 6x"


def test_findings_need_joint_and_another_variant(offline_tables):
    table = offline_tables["paper-day"]
    assert study_findings(table.loc[["joint"]]) == []
    assert study_findings(table.loc[["joint"]], offline_tables["paper-day-genrich"].loc[["joint"]]) == []
    assert study_findings(table.drop(index="joint")) == []
    assert len(study_findings(offline_table(load_builtin("paper-day"), ("joint", "energy-only")))) == 2
