"""Reads for batch jobs, filtered by team in the query itself (another team's job is a 404)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from batchjobs.choices import JobStatus
from batchjobs.models import Batch, BatchJob, JobEvent


def _visible(queryset: QuerySet, user: AbstractBaseUser, path: str = "model__team__in") -> QuerySet:
    return queryset if user.is_staff else queryset.filter(**{path: user.groups.all()})


def job_list(*, user: AbstractBaseUser, model_id: str = "", status: str = "") -> QuerySet[BatchJob]:
    jobs = BatchJob.objects.select_related("model", "build", "batch_config", "requested_by")
    jobs = _visible(jobs, user)
    if model_id:
        jobs = jobs.filter(model__model_id=model_id)
    if status:
        if status not in JobStatus.values:
            raise ValidationError({"status": [f"status must be one of {', '.join(JobStatus.values)}."]})
        jobs = jobs.filter(status=status)
    return jobs.order_by("-created_at", "-id")


def job_get(*, user: AbstractBaseUser, job_id) -> BatchJob:
    try:
        return job_list(user=user).select_related("batch_config__instance_type", "build__model").get(pk=job_id)
    except (BatchJob.DoesNotExist, ValidationError):
        raise Http404("No such batch job.") from None


def batch_list(*, job: BatchJob) -> QuerySet[Batch]:
    return job.batches.order_by("index")


def batch_counts(job: BatchJob) -> dict[str, int]:
    counts = {status: 0 for status in ("pending", "queued", "running", "succeeded", "failed", "cancelled")}
    for status in job.batches.values_list("status", flat=True):
        counts[status] += 1
    return counts


def event_list(*, user: AbstractBaseUser, evid: int | None = None, model_id: str = "", job_id: str = "") -> QuerySet:
    events = _visible(JobEvent.objects.select_related("job"), user, "job__model__team__in")
    if evid:
        events = events.filter(evid=evid)
    if model_id:
        events = events.filter(model_id=model_id)
    if job_id:
        events = events.filter(job_id=job_id)
    return events
