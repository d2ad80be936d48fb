"""Reads for batch jobs, filtered by team in the query itself (another team's job is a 404)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Q, QuerySet, Sum
from django.http import Http404

from batchjobs.choices import BatchStatus, JobStatus
from batchjobs.models import Batch, BatchAttempt, BatchJob, JobEvent, PostStep
from mlplatform.warehouse import TableName, WarehouseError, is_valid_name
from tables import selectors as table_selectors

HEX = re.compile(r"[0-9a-f]+")


def _visible(queryset: QuerySet, user: AbstractBaseUser, path: str = "model__team__in") -> QuerySet:
    return queryset if user.is_staff else queryset.filter(**{path: user.groups.all()})


def job_list(*, user: AbstractBaseUser) -> QuerySet[BatchJob]:
    """Visible jobs, newest first (batchjobs.filters narrows them). Progress is not annotated here
    (it would aggregate every job's batches before the page is cut): call with_progress() on the
    jobs actually shown."""
    jobs = _visible(BatchJob.objects.select_related("model", "build", "batch_config", "requested_by"), user)
    # A list never shows a build's log or schema, nor a config's environment (job_get loads them).
    jobs = jobs.defer("model__description", "build__log", "build__schema", "batch_config__env")
    return jobs.order_by("-created_at", "-id")


BATCH_INDEX_RULE = "batch must be a batch index (a whole number, 0 to 999,999,999)."


def is_batch_index(text: str) -> bool:
    """A batch index as a query gives it: ASCII digits only ("²" is a digit to str.isdigit, not to int)."""
    return text.isascii() and text.isdigit() and len(text) <= 9


def clean_id_prefix(value: str) -> str:
    """The start of a job id as users paste it (any case, with or without dashes), as 1-32 hex digits."""
    digits = value.strip().lower().replace("-", "")
    if not digits or len(digits) > 32 or not HEX.fullmatch(digits):
        raise ValidationError(
            "A job id (or its start) is hexadecimal digits and dashes, like 3f2a9c1e.", code="invalid"
        )
    return digits


def status_counts(jobs: QuerySet[BatchJob]) -> dict[str, int]:
    """How many of these jobs are in each status (one query), for the board's chips."""
    counts = dict.fromkeys(JobStatus.values, 0)
    counts.update(jobs.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return counts


def readable_tables(*, user: AbstractBaseUser, jobs) -> set[str]:
    """The names among these jobs' input and output tables that `user` may open: one query for the
    whole page (another team's table would be a 404 for them, so it gets no link)."""
    names = {name for job in jobs for name in (job.input_table, job.output_table)}
    return names - table_selectors.hidden_names(user) if names else set()


def with_progress(jobs) -> list[BatchJob]:
    """The jobs, each with batches_succeeded/failed/running, rows_done and queue_position: two
    queries whatever the number of jobs."""
    jobs = list(jobs)
    progress = {
        row["job_id"]: row
        for row in Batch.objects.filter(job_id__in=[j.pk for j in jobs])
        .order_by()
        .values("job_id")
        .annotate(
            succeeded=Count("id", filter=Q(status=BatchStatus.SUCCEEDED)),
            failed=Count("id", filter=Q(status=BatchStatus.FAILED)),
            running=Count("id", filter=Q(status=BatchStatus.RUNNING)),
            rows_done=Sum("rows", filter=Q(status=BatchStatus.SUCCEEDED)),
        )
    }
    positions = queue_positions([j.pk for j in jobs if j.status == JobStatus.QUEUED])
    for job in jobs:
        row = progress.get(job.pk, {})
        job.batches_succeeded = row.get("succeeded", 0)
        job.batches_failed = row.get("failed", 0)
        job.batches_running = row.get("running", 0)
        job.rows_done = row.get("rows_done") or 0
        job.queue_position = positions.get(job.pk)
        job.progress_percent = _percent(job)
    return jobs


def _percent(job: BatchJob) -> int:
    """Rows predicted as a whole percentage; 100 only when the job succeeded (a status never lies)."""
    if job.status == JobStatus.SUCCEEDED:
        return 100
    if not job.input_rows:
        return 0
    return min(99, job.rows_done * 100 // job.input_rows)


def team_usernames(user: AbstractBaseUser) -> list[str]:
    """Who could have triggered the jobs this user sees: their teams' members (everyone, for staff)."""
    users = get_user_model().objects.filter(is_active=True)
    if not user.is_staff:
        users = users.filter(groups__in=user.groups.all())
    return list(users.order_by("username").values_list("username", flat=True).distinct())


def job_get(*, user: AbstractBaseUser, job_id) -> BatchJob:
    try:
        job = job_list(user=user).defer(None).select_related("batch_config__instance_type").get(pk=job_id)
    except (BatchJob.DoesNotExist, ValidationError):
        raise Http404("No such batch job.") from None
    return with_progress([job])[0]


def job_live_version(*, user: AbstractBaseUser, job_id) -> tuple | None:
    """What the job page's live part shows, in one indexed query: the job's state and its batches'
    counts and latest starts and ends (None when the user may not see the job); for a succeeded job,
    its post-steps' states too (a second query). Equal versions render alike, so a poll that finds
    the same one is answered 304 Not Modified."""
    batches = {
        "running": Count("batches", filter=Q(batches__status=BatchStatus.RUNNING)),
        "ended": Count("batches", filter=Q(batches__status__in=BatchStatus.TERMINAL)),
        "started": Max("batches__started_at"),
        "finished": Max("batches__finished_at"),
    }
    try:
        version = (
            _visible(BatchJob.objects.filter(pk=job_id), user)
            .annotate(**batches)
            .values_list(
                "status",
                "phase",
                "message",
                "cancel_requested",
                "batches_total",
                "input_rows",
                "extracted_at",
                "running",
                "ended",
                "started",
                "finished",
            )  # fmt: skip
            .first()
        )
    except ValidationError:
        return None
    if version is not None and version[0] == JobStatus.QUEUED:  # its place moves as the jobs ahead start
        version = (*version, queue_positions([job_id]).get(job_id))
    if version is not None and version[0] == JobStatus.SUCCEEDED:  # a scheduled run's post-steps move on
        steps = PostStep.objects.filter(job_id=job_id).order_by("position")
        version = (*version, tuple(steps.values_list("status", "attempts", "rows", "started_at", "finished_at")))
    return version


def job_logs_version(*, user: AbstractBaseUser, job_id) -> tuple | None:
    """What the job page's Logs card shows: the live part's version and the attempts' count and
    latest end (a log is stored when its attempt ends, just after its batch does)."""
    version = job_live_version(user=user, job_id=job_id)
    if version is None:
        return None
    attempts = BatchAttempt.objects.filter(batch__job_id=job_id).aggregate(n=Count("id"), last=Max("finished_at"))
    return (*version, attempts["n"], attempts["last"])


def prediction_names(job: BatchJob) -> list[str]:
    """The job's prediction columns, as its build's schema names them."""
    return [p["name"] for p in (job.build.schema or {}).get("predictions", [])]


def output_predictions(table_name: str) -> list[str]:
    """The prediction columns of the succeeded job that made this table (none if no job made it)."""
    job = (
        BatchJob.objects.filter(output_table=table_name, status=JobStatus.SUCCEEDED)
        .select_related("build")
        .only("build__schema")
        .order_by("-finished_at")
        .first()
    )
    return prediction_names(job) if job else []


OUTPUT_PREVIEW_ROWS = 20


@dataclass
class OutputPreview:
    columns: list[str]
    rows: list[list]
    predictions: int  # the first this many columns are the predictions


def output_preview(job: BatchJob, *, user: AbstractBaseUser) -> OutputPreview | None:
    """A succeeded job's first output rows for reading (predictions first, rounded), or None when
    the table is gone (dropped since) or cannot be read now."""
    try:
        columns, rows = table_selectors.table_preview(job.output_table, user=user, limit=OUTPUT_PREVIEW_ROWS)
    except (ValidationError, table_selectors.TableMissing, WarehouseError):
        return None
    names = prediction_names(job)
    columns, rows = table_selectors.readable_preview(columns, rows, first=names)
    return OutputPreview(columns, rows, predictions=len(set(names) & set(columns)))


def repeated_error(job: BatchJob) -> str:
    """The error every attempt of the job's failed batches ended with, when there were two attempts
    or more and all failed alike: a retry then likely fails the same way ("" otherwise)."""
    attempts = BatchAttempt.objects.filter(batch__job=job, batch__status=BatchStatus.FAILED).order_by()
    outcomes = list(attempts.values_list("status", "error").distinct()[:2])
    if len(outcomes) != 1 or outcomes[0][0] != BatchStatus.FAILED or not outcomes[0][1]:
        return ""
    return outcomes[0][1] if attempts.count() >= 2 else ""


SUGGESTED_TABLES = 20


def table_suggestions(*, user: AbstractBaseUser, team, text: str = "", limit: int = SUGGESTED_TABLES) -> list[str]:
    """Names of tables both the user and the model's team may read that contain `text`, for a table
    name field's suggestions: at most `limit`, in name order."""
    text = text.strip().lower()
    hidden = table_selectors.hidden_names(user)
    registry = table_selectors.catalogs()
    found: list[str] = []
    for catalog_name in registry.names():
        catalog = registry.get(catalog_name)
        try:
            for schema in sorted(catalog.list_schemas()):
                if not is_valid_name(schema):
                    continue
                for table in sorted(catalog.list_tables(schema)):
                    name = f"{catalog.name}.{schema}.{table}"
                    if text not in name or name in hidden or not is_valid_name(table):
                        continue
                    if table_selectors.team_may_read(team, TableName(catalog.name, schema, table)):
                        found.append(name)
                        if len(found) >= limit:
                            return found
        except WarehouseError:  # a catalog that cannot be read now: suggest from the others
            continue
    return found


def batch_list(*, job: BatchJob) -> QuerySet[Batch]:
    """The job's batches, each with `tries`: its attempts over its whole life (a retry resets the
    `attempts` counter the reaper limits, not the history)."""
    return job.batches.annotate(tries=Count("attempt_log")).order_by("index")


def batch_counts(job: BatchJob) -> dict[str, int]:
    counts = dict.fromkeys(BatchStatus.values, 0)
    counts.update(job.batches.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return counts


def attempt_list(*, job: BatchJob, index: int | None = None) -> QuerySet[BatchAttempt]:
    attempts = BatchAttempt.objects.filter(batch__job=job).select_related("batch")
    if index is not None:
        attempts = attempts.filter(batch__index=index)
    return attempts.order_by("batch__index", "-number")


def event_list(*, user: AbstractBaseUser) -> QuerySet[JobEvent]:
    """Visible events, newest first (batchjobs.filters narrows them)."""
    events = _visible(JobEvent.objects.select_related("job"), user, "job__model__team__in")
    return events.order_by("-date_created", "-id")


@dataclass
class Span:
    """One step of a job's life on its timeline."""

    label: str
    seconds: float | None
    state: str  # done, current, pending, stopped (the job ended in it), skipped
    note: str = ""
    width: float = 0.0
    since: datetime | None = None  # the current step's start: the page's clock ticks from it


def job_timeline(job: BatchJob, now: datetime) -> list[Span]:
    """Time spent queued, extracting, predicting and committing (the current step runs to now).
    A retried job shows its latest run: queued since the retry, its input kept from the first run."""
    queued_from = job.queued_at or job.created_at
    if job.started_at is None:  # still queued (again, for a retry), or cancelled in the queue
        later = "pending" if job.is_active else "skipped"
        return _widths([_span("Queued", queued_from, None, job, now), *(Span(label, None, later) for label in LATER)])
    reused = bool(job.extracted_at and job.extracted_at < job.started_at)
    predict_from = job.started_at if reused else job.extracted_at
    return _widths(
        [
            _span("Queued", queued_from, job.started_at, job, now),
            _span(
                "Extracting", job.started_at, predict_from, job, now, "input kept from the first run" if reused else ""
            ),
            _span("Predicting", predict_from, job.predicted_at, job, now),
            _span("Committing", job.predicted_at, job.finished_at if job.predicted_at else None, job, now),
        ]
    )


LATER = ("Extracting", "Predicting", "Committing")


def _span(label: str, start, end, job: BatchJob, now: datetime, note: str = "") -> Span:
    if start is None:
        return Span(label, None, "pending" if job.is_active else "skipped", note)
    if end is None:
        if job.is_active:
            return Span(label, max(0.0, (now - start).total_seconds()), "current", note, since=start)
        return Span(label, max(0.0, ((job.finished_at or now) - start).total_seconds()), "stopped", note)
    return Span(label, max(0.0, (end - start).total_seconds()), "done", note)


def _widths(spans: list[Span]) -> list[Span]:
    total = sum(s.seconds or 0 for s in spans) or 1
    for span in spans:
        span.width = round(max(1.5, 100 * (span.seconds or 0) / total), 1) if span.seconds is not None else 0
    return spans


@dataclass
class Speed:
    rows_per_s: float | None
    eta_s: float | None


def job_speed(job: BatchJob, now: datetime, rows_this_run: int) -> Speed:
    """Rows predicted per second in this run (batches start while the input is still being
    extracted, so from its start), and, while it predicts, the time left at that pace. A retried
    job's rows from its first run count towards what is left, not towards the pace."""
    began = job.started_at
    if began is None or not rows_this_run:
        return Speed(None, None)
    ended = job.predicted_at or (now if job.is_active else job.finished_at) or now
    seconds = (ended - began).total_seconds()
    if seconds <= 0:
        return Speed(None, None)
    rate = rows_this_run / seconds
    left = (job.input_rows or 0) - job.rows_done
    eta = left / rate if job.status == JobStatus.RUNNING and job.predicted_at is None and left > 0 else None
    return Speed(rate, eta)


def rows_done_since(job: BatchJob, since: datetime | None) -> int:
    """Rows of the batches that succeeded since a time (a run's start)."""
    if since is None:
        return 0
    done = job.batches.filter(status=BatchStatus.SUCCEEDED, finished_at__gte=since).aggregate(n=Sum("rows"))
    return done["n"] or 0


def queue_positions(job_ids: list) -> dict:
    """The 1-based position of each queued job among all queued jobs."""
    if not job_ids:
        return {}
    queued = list(
        BatchJob.objects.filter(status=JobStatus.QUEUED).order_by("created_at", "id").values_list("pk", flat=True)
    )
    position = {pk: i + 1 for i, pk in enumerate(queued)}
    return {pk: position.get(pk) for pk in job_ids}


def all_batches_done(job_id) -> bool:
    return not Batch.objects.filter(job_id=job_id).exclude(status__in=BatchStatus.TERMINAL).exists()


def job_is_live(job_id) -> bool:
    """Whether a worker should go on working for this job (not cancelled, not ended)."""
    return BatchJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, cancel_requested=False).exists()
