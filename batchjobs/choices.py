from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLING = "cancelling", "Cancelling"
    CANCELLED = "cancelled", "Cancelled"


# Status groups, declared the same way as builds.choices.BuildStatus's. Unfinished jobs hold their
# output table; finished ones release it.
JobStatus.ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING)
JobStatus.TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobPhase(models.TextChoices):
    WAITING = "waiting", "Waiting in the queue"
    EXTRACTING = "extracting", "Extracting the input"
    PREDICTING = "predicting", "Predicting"
    COMMITTING = "committing", "Writing the output table"
    DONE = "done", "Done"


class BatchStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # not yet sent to a worker
    QUEUED = "queued", "Queued"  # sent, not yet claimed
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


BatchStatus.TERMINAL = (BatchStatus.SUCCEEDED, BatchStatus.FAILED, BatchStatus.CANCELLED)


class EventId(models.IntegerChoices):
    SUCCESS = 400, "400 job success"
    FAILURE = 401, "401 job failure"
    START = 402, "402 job start"
