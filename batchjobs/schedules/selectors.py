"""Reads for schedules, filtered by team in the query itself: another team's schedule is a 404."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from batchjobs.choices import JobStatus, RunStatus
from batchjobs.models import BatchJob, Schedule, ScheduleRun
from batchjobs.schedules import cron
from builds.models import MLModel

RUNS_SHOWN = 20


def schedule_list(*, user: AbstractBaseUser, model: MLModel | None = None) -> QuerySet[Schedule]:
    """A schedule belongs to its model's team now (an admin may move a model to another team)."""
    schedules = Schedule.objects.select_related("model__team", "created_by")
    if not user.is_staff:
        schedules = schedules.filter(model__team__in=user.groups.all())
    if model is not None:
        schedules = schedules.filter(model=model)
    last = ScheduleRun.objects.filter(schedule=OuterRef("pk")).order_by("-created_at", "-id")
    return schedules.annotate(
        last_run_status=Subquery(last.values("status")[:1]),
        last_run_job_status=Subquery(last.values("job__status")[:1]),
    ).order_by("model__model_id", "name")


def with_recent_runs(schedules: QuerySet[Schedule]) -> QuerySet[Schedule]:
    """Each schedule's latest RUNS_SHOWN runs in one query for all (a sliced prefetch: a window
    function), as `recent_runs`."""
    runs = ScheduleRun.objects.select_related("job").order_by("-created_at", "-id")[:RUNS_SHOWN]
    return schedules.prefetch_related(Prefetch("runs", queryset=runs, to_attr="recent_runs"))


def schedule_get(*, user: AbstractBaseUser, schedule_id) -> Schedule:
    try:
        return schedule_list(user=user).get(pk=schedule_id)
    except (Schedule.DoesNotExist, ValidationError, ValueError):
        raise Http404("No such schedule.") from None


def active_job(schedule: Schedule) -> BatchJob | None:
    """The schedule's job still queued or running, if any (a run is skipped while there is one)."""
    return BatchJob.objects.filter(schedule=schedule, status__in=JobStatus.ACTIVE).order_by("-created_at").first()


def run_list(schedule: Schedule, limit: int = RUNS_SHOWN) -> list[ScheduleRun]:
    if limit == RUNS_SHOWN and hasattr(schedule, "recent_runs"):
        return schedule.recent_runs
    return list(schedule.runs.select_related("job").order_by("-created_at", "-id")[:limit])


@dataclass
class DueTime:
    local: datetime
    utc: datetime


def next_runs(schedule: Schedule, count: int = 5, now: datetime | None = None) -> list[DueTime]:
    """The next due times after now (after the last claimed one, if that is later)."""
    now = now or timezone.now()
    after = max(now, schedule.last_due_at) if schedule.last_due_at else now
    due = cron.next_runs(schedule.cron, schedule.timezone, after, count)
    return [DueTime(when, when.astimezone(UTC)) for when in due]


def missed_count(schedule: Schedule) -> int:
    return schedule.runs.filter(status=RunStatus.MISSED).count()


def next_output_name(schedule: Schedule) -> str:
    runs = next_runs(schedule, 1)
    return cron.render(schedule.output_table_template, runs[0].local, schedule.runs_started + 1) if runs else ""
