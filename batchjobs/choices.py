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
    """The numbers the platform's users already query; the label is how a number is shown (with its word)."""

    SUCCESS = 400, "400 succeeded"
    FAILURE = 401, "401 failed"
    START = 402, "402 started"
    POST_STEP_FAILURE = 403, "403 post-step failed"  # a scheduled run's post-step; the job stays succeeded


# The word shown next to each number ("402 started"), and under `evid_name` in the API.
EventId.WORDS = {
    EventId.SUCCESS: "succeeded",
    EventId.FAILURE: "failed",
    EventId.START: "started",
    EventId.POST_STEP_FAILURE: "post-step failed",
}


# --- schedules ---------------------------------------------------------------------------------


class NotifyOn(models.TextChoices):
    FAILURE = "failure", "When a run or a post-step fails"
    ALWAYS = "always", "After every run (success too)"


class RunStatus(models.TextChoices):
    """What became of one due time of a schedule (or one Run now)."""

    STARTED = "started", "Started a job"
    SKIPPED_BUSY = "skipped_busy", "Skipped: the previous run was still active"
    MISSED = "missed", "Missed: the platform was not running"
    REFUSED = "refused", "Refused: the job's checks failed"


class PostStepKind(models.TextChoices):
    HISTORY = "history", "Append to the history table"
    EVENTS = "events", "Publish synthetic events"
    KEEP_LAST = "keep_last", "Keep the last run outputs"


class PostStepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed to send"
