"""Batch jobs, their batches (with leases and attempts), and the events users query.

The database is the source of truth, not the broker: every step is claimed with a conditional
UPDATE, so a redelivered or duplicated task finds its work taken and does nothing.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from batchjobs.choices import BatchStatus, EventId, JobPhase, JobStatus
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
