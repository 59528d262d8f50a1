"""The training workload of a run: submissions, the queue, starts, completions and drops.

Plain bookkeeping over the plant's :class:`~simulator.plant.DataCenter` (which carries the load
of running jobs); every change is written to the :class:`~simulator.records.Recorder` as an event.
The closed loop (:mod:`simulator._engine`) decides *when* these methods run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scenarios.schema import TrainingJob
from simulator.plant import EPS, DataCenter
from simulator.processes import Submission
from simulator.records import JobRecord, Recorder


class Workload:
    """Submitted jobs (:class:`JobRecord` by name) and the queue of those not yet started."""

    def __init__(self, datacenter: DataCenter, recorder: Recorder) -> None:
        self.datacenter, self.recorder = datacenter, recorder
        self.jobs: dict[str, JobRecord] = {}
        self.queue: dict[str, TrainingJob] = {}

    def submit(self, submission: Submission) -> None:
        """Queue a submitted job."""
        job = submission.job
        self.jobs[job.name] = JobRecord(submission.submitted_h, job)
        self.queue[job.name] = job
        self.recorder.event(submission.submitted_h, None, "job_submitted", job.name)

    def drop_unreachable(self, now_h: float) -> None:
        """Drop queued jobs that can no longer finish by their deadline."""
        for name, job in list(self.queue.items()):
            if now_h + job.duration_h > job.deadline_h + EPS:
                del self.queue[name]
                self.jobs[name].status = "dropped"
                self.recorder.event(now_h, None, "job_dropped", f"{name}: deadline {job.deadline_h:.2f} h unreachable")

    def start(self, job_starts: Sequence[tuple[str, int]], now_h: float, pue: np.ndarray) -> list[tuple[str, float]]:
        """Start the requested (job name, site index) pairs the plant accepts at ``now_h``, at the
        sites' current ``pue`` (S,); refusals are recorded as events. Returns (name, end hour) of
        each job started."""
        n_sites = len(self.datacenter.gpus)
        started = []
        for name, site in job_starts:
            job = self.queue.get(name)
            if job is None:
                reason: str | None = "not queued"
            elif now_h + EPS < job.release_h:  # a job known before its release (explain_regret) waits for it
                reason = f"released at {job.release_h:.2f} h"
            elif not 0 <= int(site) < n_sites:
                reason = f"no site {site}"
            else:
                reason = self.datacenter.start_refusal(job, int(site), pue)
            if reason is not None or job is None:
                self.recorder.event(now_h, int(site) if 0 <= int(site) < n_sites else None, "start_refused",
                                    f"{name}: {reason}")
                continue
            del self.queue[name]
            running = self.datacenter.start(job, int(site), now_h)
            record = self.jobs[name]
            record.site, record.start_h, record.end_h, record.status = int(site), now_h, running.end_h, "running"
            self.recorder.event(now_h, int(site), "job_started", name)
            started.append((name, running.end_h))
        return started

    def complete(self, name: str) -> None:
        """Complete a running job (on time or late); nothing for a job no longer running."""
        record = self.jobs[name]
        if record.status != "running":
            return
        self.datacenter.complete(name)
        record.status = "completed" if record.end_h <= record.job.deadline_h + EPS else "late"
        self.recorder.event(record.end_h, record.site, "job_completed", name)

    def complete_due(self, now_h: float) -> None:
        """Complete every running job whose end is at or before ``now_h``."""
        for name, running in list(self.datacenter.running.items()):
            if running.end_h <= now_h + EPS:
                self.complete(name)

    def finish(self, run_hours: float) -> list[JobRecord]:
        """Close the run: complete the jobs that end exactly at its end; every job's record."""
        for record in self.jobs.values():
            if record.status == "running" and record.end_h <= run_hours + EPS:
                self.complete(record.job.name)
        return list(self.jobs.values())
