"""Reads for batch jobs, filtered by team in the query itself (another team's job is a 404)."""

from __future__ import annotations

import uuid
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404

from batchjobs.choices import BatchStatus, JobStatus
from batchjobs.models import Batch, BatchAttempt, BatchJob, JobEvent


def _visible(queryset: QuerySet, user: AbstractBaseUser, path: str = "model__team__in") -> QuerySet:
    return queryset if user.is_staff else queryset.filter(**{path: user.groups.all()})


def job_list(*, user: AbstractBaseUser, model_id: str = "", status: str = "") -> QuerySet[BatchJob]:
    jobs = BatchJob.objects.select_related("model", "build", "batch_config", "requested_by").annotate(
        batches_succeeded=Count("batches", filter=Q(batches__status=BatchStatus.SUCCEEDED)),
        batches_failed=Count("batches", filter=Q(batches__status=BatchStatus.FAILED)),
        rows_done=Sum("batches__rows", filter=Q(batches__status=BatchStatus.SUCCEEDED)),
    )
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
    counts = dict.fromkeys(BatchStatus.values, 0)
    counts.update(job.batches.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return counts


def attempt_list(*, job: BatchJob, index: int | None = None) -> QuerySet[BatchAttempt]:
    attempts = BatchAttempt.objects.filter(batch__job=job).select_related("batch")
    if index is not None:
        attempts = attempts.filter(batch__index=index)
    return attempts.order_by("batch__index", "-number")


def event_list(
    *,
    user: AbstractBaseUser,
    evid: int | None = None,
    model_id: str = "",
    job_id: str = "",
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[JobEvent]:
    events = _visible(JobEvent.objects.select_related("job"), user, "job__model__team__in")
    if evid:
        events = events.filter(evid=evid)
    if model_id:
        events = events.filter(model_id=model_id)
    if job_id:
        try:
            events = events.filter(job_id=uuid.UUID(job_id))
        except ValueError:
            raise ValidationError({"job_id": ["job_id must be a job's full id (a UUID)."]}) from None
    if since:
        events = events.filter(date_created__date__gte=since)
    if until:
        events = events.filter(date_created__date__lte=until)
    return events.order_by("-date_created", "-id")
