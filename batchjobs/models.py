"""Batch jobs, their batches (with leases and attempts), and the events users query.

The database is the source of truth, not the broker: every step is claimed with a conditional
UPDATE, so a redelivered or duplicated task finds its work taken and does nothing.
"""

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q

from batchjobs.choices import (
    BatchStatus,
    EventId,
    JobPhase,
    JobStatus,
    NotificationStatus,
    NotifyOn,
    PostStepKind,
    PostStepStatus,
    RunStatus,
)
from builds.models import BatchConfig, Build, MLModel


class BatchJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(MLModel, on_delete=models.CASCADE, related_name="batch_jobs")
    build = models.ForeignKey(Build, on_delete=models.PROTECT, related_name="batch_jobs")
    batch_config = models.ForeignKey(BatchConfig, on_delete=models.PROTECT, related_name="batch_jobs")
    status = models.CharField(max_length=16, choices=JobStatus, default=JobStatus.QUEUED, db_index=True)
    phase = models.CharField(max_length=16, choices=JobPhase, default=JobPhase.WAITING)
    message = models.TextField(blank=True, help_text="Why the job failed, or what it is doing.")
    error_detail = models.TextField(blank=True, help_text="The first failure in full: error, traceback.")
    input_table = models.CharField(max_length=200)
    output_table = models.CharField(max_length=200)
    input_rows = models.BigIntegerField(null=True, blank=True)
    output_rows = models.BigIntegerField(null=True, blank=True)
    batches_total = models.PositiveIntegerField(default=0)
    input_version = models.BigIntegerField(
        null=True, blank=True, help_text="the input table's version the job read (a lake table's Delta version)"
    )
    input_schema = models.BinaryField(null=True, blank=True, editable=False, help_text="the input's Arrow schema")
    parallelism = models.PositiveSmallIntegerField(default=1)
    # A lease on the job-level steps (extract, commit), so a dead worker's step is taken over.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    staging_removed = models.BooleanField(default=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    schedule = models.ForeignKey(
        "Schedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
        help_text="the schedule that ran it",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="when it last entered the queue (a retry)")
    started_at = models.DateTimeField(null=True, blank=True)
    extracted_at = models.DateTimeField(null=True, blank=True)
    predicted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Two triggers racing for one output table: the database accepts exactly one.
            models.UniqueConstraint(
                fields=["output_table"],
                condition=Q(status__in=JobStatus.ACTIVE),
                name="one_unfinished_job_per_output_table",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            # The board's order: newest first, the id breaking ties (a deep page reads no sort).
            models.Index(fields=["-created_at", "-id"], name="batchjob_board_order"),
        ]

    def __str__(self) -> str:
        return f"batch job {self.id}"

    @property
    def job_id(self):
        return self.id

    @property
    def is_active(self) -> bool:
        return self.status in JobStatus.ACTIVE


class Batch(models.Model):
    """A slice of the input rows, given to one predict() call."""

    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="batches")
    index = models.PositiveIntegerField()
    rows = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=BatchStatus, default=BatchStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="when it was last sent to a worker")
    worker = models.CharField(max_length=255, blank=True, help_text="host and process running it")
    worker_pid = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    first_ordinal = models.BigIntegerField(null=True, blank=True, help_text="its first row's position in the input")
    source = models.JSONField(
        default=list, blank=True, help_text="the row groups of the input snapshot it reads ([]: a staged shard)"
    )
    output_rows = models.BigIntegerField(null=True, blank=True, help_text="rows its output part holds")
    part_name = models.CharField(max_length=255, blank=True, help_text="its output part, committed with the job")
    part_bytes = models.BigIntegerField(null=True, blank=True)
    predict_seconds = models.FloatField(null=True, blank=True)
    peak_rss_mib = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="batch_index_unique_per_job")]
        indexes = [models.Index(fields=["status", "lease_expires_at"])]

    def __str__(self) -> str:
        return f"batch {self.index} of {self.job_id}"


class BatchAttempt(models.Model):
    """One try of a batch, with what the model printed (capped)."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=BatchStatus, default=BatchStatus.RUNNING)
    worker = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "-number"]
        constraints = [models.UniqueConstraint(fields=["batch", "number"], name="attempt_number_unique_per_batch")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.batch}"


def events_source() -> int:
    """The `src` of the events recorded here (the EVENTS_SOURCE setting)."""
    return settings.EVENTS_SOURCE


class JobEvent(models.Model):
    """A record of a job's life, with the fields the platform's users already query."""

    evid = models.PositiveSmallIntegerField(choices=EventId, db_index=True)
    src = models.PositiveSmallIntegerField(default=events_source, db_index=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="events")
    model_id = models.CharField(max_length=63, db_index=True)
    build_id = models.UUIDField()
    endpoint_name = models.CharField(max_length=63)
    job_start_time = models.DateTimeField(null=True, blank=True)
    job_type = models.CharField(max_length=32, default="batch_prediction")
    error = models.TextField(blank=True)
    date_created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-date_created", "-id"]

    def __str__(self) -> str:
        return f"{self.evid} {self.evid_name} {self.job_id}"

    @property
    def evid_name(self) -> str:
        """The word shown next to the number: started, succeeded, failed."""
        return EventId.WORDS.get(self.evid, "")


class QueueLock(models.Model):
    """One row, locked while jobs are admitted, so two admitters cannot both take the last slot."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)

    def __str__(self) -> str:
        return "queue lock"


# --- schedules ---------------------------------------------------------------------------------


class Schedule(models.Model):
    """A cron rule that runs a model's active batch config over an input table into a templated
    output table, then runs the post-steps it names (history table, synthetic events, keep last N)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(MLModel, on_delete=models.CASCADE, related_name="schedules")
    team = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="+", help_text="the owning team")
    name = models.CharField(max_length=100)
    input_table = models.CharField(max_length=200)
    output_table_template = models.CharField(
        max_length=200, help_text="the output table's name, with {date}, {datetime} and {run} filled in at run time"
    )
    cron = models.CharField(max_length=100, help_text="five fields: minute hour day-of-month month day-of-week")
    timezone = models.CharField(max_length=64, default="UTC")
    enabled = models.BooleanField(default=True)
    history_table = models.CharField(max_length=200, blank=True, help_text="append each run's output here")
    events_table = models.CharField(max_length=200, blank=True, help_text="publish synthetic events (src 70) here")
    event_key_column = models.CharField(max_length=63, blank=True, help_text="the entity key column of each event")
    keep_last = models.PositiveIntegerField(
        null=True, blank=True, help_text="drop older output tables of this schedule (empty: keep every one)"
    )
    notify_urls = models.JSONField(default=list, blank=True, help_text="Apprise URLs: mailto://, slack://, json://…")
    notify_on = models.CharField(max_length=16, choices=NotifyOn, default=NotifyOn.FAILURE)
    # The latest due time claimed (run or skipped): a tick claims the next one with a conditional UPDATE.
    last_due_at = models.DateTimeField(null=True, blank=True)
    runs_started = models.PositiveIntegerField(default=0, help_text="{run} of the output template: 1, 2, …")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "name"]
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="schedule_name_unique_per_model")]
        indexes = [models.Index(fields=["enabled", "last_due_at"])]

    def __str__(self) -> str:
        return f"schedule {self.name} of {self.model_id}"


class ScheduleRun(models.Model):
    """One due time of a schedule (or one Run now) and what became of it."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    due_at = models.DateTimeField()
    manual = models.BooleanField(default=False, help_text="Run now, not a due time")
    status = models.CharField(max_length=16, choices=RunStatus)
    job = models.OneToOneField(BatchJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="schedule_run")
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-due_at", "-id"]
        constraints = [
            # Two beats (or a restarted one) racing for one due time: the database keeps one run.
            models.UniqueConstraint(
                fields=["schedule", "due_at"], condition=Q(manual=False), name="one_run_per_due_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.schedule} at {self.due_at:%Y-%m-%d %H:%M}"


class PostStep(models.Model):
    """A step run after a scheduled job succeeded, in `position` order, each exactly once."""

    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="post_steps")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16, choices=PostStepKind)
    target = models.CharField(max_length=200, blank=True, help_text="the table it writes (history, events)")
    status = models.CharField(max_length=16, choices=PostStepStatus, default=PostStepStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    rows = models.BigIntegerField(null=True, blank=True, help_text="rows appended or events published")
    detail = models.TextField(blank=True, help_text="what it did, in a sentence")
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "position"]
        constraints = [models.UniqueConstraint(fields=["job", "position"], name="post_step_position_unique_per_job")]

    def __str__(self) -> str:
        return f"{self.kind} after {self.job_id}"


class Notification(models.Model):
    """One message about a job to one of its schedule's URLs, and whether it went out."""

    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="notifications")
    url_shown = models.CharField(max_length=255, help_text="the URL with its secrets masked")
    url_index = models.PositiveSmallIntegerField(help_text="which of the schedule's notify_urls")
    reason = models.CharField(max_length=32, help_text="failed, succeeded, post_step_failed")
    occurrence = models.CharField(
        max_length=36,
        blank=True,
        default="",
        help_text="the uuid of the JobEvent that reported it (a 401 or 403): a job failed again after a retry "
        "is notified again",
    )
    title = models.CharField(max_length=255)
    body = models.TextField()
    status = models.CharField(max_length=16, choices=NotificationStatus, default=NotificationStatus.PENDING)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "reason", "url_index", "occurrence"], name="one_notification_per_occurrence_and_url"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reason} of {self.job_id} to {self.url_shown}"
