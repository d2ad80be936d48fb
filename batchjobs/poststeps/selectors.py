"""Reads of post-steps for the job page and the API."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from batchjobs.choices import JobStatus, PostStepStatus
from batchjobs.models import BatchJob, PostStep
from batchjobs.poststeps.runner import planned

# Right after a scheduled job succeeds its steps are being created: the page keeps watching.
CREATING_S = 30


def step_list(*, job: BatchJob) -> QuerySet[PostStep]:
    return PostStep.objects.filter(job=job).order_by("position")


def steps_active(job: BatchJob, steps: list[PostStep] | None = None) -> bool:
    """Whether the job's post-steps are still moving: one runs, or some wait and none failed (or
    the job has just succeeded and its steps are being created)."""
    steps = list(step_list(job=job)) if steps is None else steps
    states = {s.status for s in steps}
    if PostStepStatus.RUNNING in states:
        return True
    if PostStepStatus.PENDING in states:
        return PostStepStatus.FAILED not in states
    if steps or job.status != JobStatus.SUCCEEDED or job.schedule_id is None or job.finished_at is None:
        return False
    just_ended = timezone.now() - job.finished_at < timedelta(seconds=CREATING_S)
    return just_ended and bool(planned(job.schedule))
