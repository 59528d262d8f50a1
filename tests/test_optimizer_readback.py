"""A solved plan reads back into labelled pandas frames."""

import pytest


def test_plan_reads_back_into_labelled_frames():
    from optimizer.variants import run_variant
    from optimizer.window import offline_inputs
    from scenarios import load_builtin

    w = offline_inputs(load_builtin("paper-day"))
    plan = run_variant(w, "joint").plan
    starts = plan.starts_frame(w)
    assert sorted(starts["job"]) == sorted(w.jobs.names[j] for j in plan.start_job)
    assert ((starts["end_time"] - starts["start_time"]).dt.total_seconds() / 3600
            == w.jobs.duration_steps[plan.start_job] * w.step_hours).all()
    sites = plan.site_frame(w)
    assert len(sites) == w.fleet.n_sites * w.n_steps
    assert sites.groupby("site")["import_mw"].sum().to_dict() == pytest.approx(
        dict(zip(w.fleet.site_names, plan.import_mw.sum(axis=1), strict=True)))
    routing = plan.routing_frame(w)
    assert routing["served_req_per_s"].sum() == pytest.approx(plan.served_req_per_s.sum())
    assert set(zip(routing["class"], routing["site"], strict=True)) <= {
        (w.fleet.class_names[k], w.fleet.site_names[s]) for k, s in zip(*w.fleet.route_feasible.nonzero(), strict=True)}
