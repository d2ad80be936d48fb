"""The job's state changes: admit from the queue, feed batches, finish with an event.

Each change is a conditional UPDATE; losing the race means someone else did it, so return.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from batchjobs import dispatch
from batchjobs.choices import BATCH_TERMINAL, BatchStatus, EventId, JobPhase, JobStatus
from batchjobs.models import Batch, BatchJob, JobEvent, QueueLock
from batchjobs.pipeline import staging

logger = logging.getLogger(__name__)
MESSAGE_CAP = 64 * 1024


def lease(seconds: int | None = None):
    return timezone.now() + timedelta(seconds=seconds or settings.BATCH_LEASE_S)


def record_event(job: BatchJob, evid: int, error: str = "") -> JobEvent:
    return JobEvent.objects.create(
        evid=evid,
        job=job,
        model_id=job.model.model_id,
        build_id=job.build_id,
        endpoint_name=job.batch_config.deployment_name,
        job_start_time=job.started_at,
        error=error[:MESSAGE_CAP],
    )


def jobs_admit() -> list[str]:
    """Start queued jobs, oldest first, while fewer than MAX_CONCURRENT_JOBS run."""
    started = []
    with transaction.atomic():
        QueueLock.objects.get_or_create(pk=1)
        QueueLock.objects.select_for_update().get(pk=1)  # one admitter at a time
        running = BatchJob.objects.filter(status__in=[JobStatus.RUNNING, JobStatus.CANCELLING]).count()
        free = settings.MAX_CONCURRENT_JOBS - running
        if free <= 0:
            return started
        candidates = BatchJob.objects.filter(status=JobStatus.QUEUED).order_by("created_at", "id")[:free]
        for job in candidates.select_related("model", "batch_config"):
            now = timezone.now()
            # A retried job keeps its shards: it goes straight back to predicting its failed batches.
            phase = JobPhase.PREDICTING if job.extracted_at else JobPhase.EXTRACTING
            claimed = BatchJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
                status=JobStatus.RUNNING, phase=phase, started_at=now, message="", lease_expires_at=None
            )
            if not claimed:
                continue
            job.status, job.phase, job.started_at = JobStatus.RUNNING, phase, now
            record_event(job, EventId.START)
            if phase == JobPhase.EXTRACTING:
                dispatch.send_extract(job.pk)
            else:
                transaction.on_commit(lambda job_id=job.pk: feed(job_id))
            started.append(str(job.pk))
    return started


def queue_positions(job_ids: list) -> dict:
    """The 1-based position of each queued job among all queued jobs."""
    if not job_ids:
        return {}
    queued = list(
        BatchJob.objects.filter(status=JobStatus.QUEUED).order_by("created_at", "id").values_list("pk", flat=True)
    )
    position = {pk: i + 1 for i, pk in enumerate(queued)}
    return {pk: position.get(pk) for pk in job_ids}


def feed(job_id) -> int:
    """Send pending batches to workers while fewer than the job's parallelism are in flight."""
    with transaction.atomic():
        job = (
            BatchJob.objects.select_for_update().select_related("batch_config__instance_type").filter(pk=job_id).first()
        )
        if job is None or job.status != JobStatus.RUNNING or job.cancel_requested:
            return 0
        in_flight = job.batches.filter(status__in=[BatchStatus.QUEUED, BatchStatus.RUNNING]).count()
        slots = job.parallelism - in_flight
        if slots <= 0:
            return 0
        queue = job.batch_config.instance_type.queue
        ids = list(
            job.batches.filter(status=BatchStatus.PENDING).order_by("index").values_list("pk", flat=True)[:slots]
        )
        Batch.objects.filter(pk__in=ids, status=BatchStatus.PENDING).update(
            status=BatchStatus.QUEUED, queued_at=timezone.now()
        )
        for batch_id in ids:
            dispatch.send_predict(batch_id, queue)
        return len(ids)


def all_batches_done(job_id) -> bool:
    unfinished = Batch.objects.filter(job_id=job_id).exclude(status__in=BATCH_TERMINAL)
    return not unfinished.exists()


def after_batch(job_id) -> None:
    """A batch ended: send the next one, or the commit when it was the last."""
    job = BatchJob.objects.filter(pk=job_id).first()
    if job is None:
        return
    if job.status == JobStatus.CANCELLING:
        finish_cancelled_if_idle(job_id)
        return
    if job.status != JobStatus.RUNNING:
        return
    feed(job_id)
    if job.extracted_at and all_batches_done(job_id):
        dispatch_commit(job_id)


def dispatch_commit(job_id) -> None:
    with transaction.atomic():
        dispatch.send_commit(job_id)


def finish(job_id, status: str, *, message: str = "", detail: str = "", output_rows: int | None = None) -> bool:
    """End a running (or cancelling) job: status, event, staging, and a free slot for the queue."""
    now = timezone.now()
    if status == JobStatus.FAILED and not message.strip():  # the panel's first line is never empty
        phase = BatchJob.objects.filter(pk=job_id).values_list("phase", flat=True).first()
        step = JobPhase(phase).label.lower() if phase else "running"
        message = f"The job failed while {step}; no cause was recorded."
    fields = {
        "status": status,
        "phase": JobPhase.DONE,
        "finished_at": now,
        "message": message[:MESSAGE_CAP],
        "lease_expires_at": None,
    }
    if detail:
        fields["error_detail"] = detail[:MESSAGE_CAP]
    if output_rows is not None:
        fields["output_rows"] = output_rows
    with transaction.atomic():
        done = BatchJob.objects.filter(pk=job_id, status__in=[JobStatus.RUNNING, JobStatus.CANCELLING]).update(**fields)
        if not done:
            return False
        Batch.objects.filter(job_id=job_id, status__in=[BatchStatus.PENDING, BatchStatus.QUEUED]).update(
            status=BatchStatus.CANCELLED
        )
        job = BatchJob.objects.select_related("model", "batch_config").get(pk=job_id)
        if status == JobStatus.SUCCEEDED:
            record_event(job, EventId.SUCCESS)
        elif status == JobStatus.FAILED:
            record_event(job, EventId.FAILURE, error=message)
        dispatch.send_admit()
    if status != JobStatus.FAILED:  # a failed job keeps its shards for "Retry failed batches"
        staging.remove_job(job_id)
        BatchJob.objects.filter(pk=job_id).update(staging_removed=True)
    logger.info("batch job %s %s: %s", job_id, status, message[:200])
    return True


def finish_cancelled_if_idle(job_id) -> bool:
    running = Batch.objects.filter(job_id=job_id, status=BatchStatus.RUNNING)
    idle = BatchJob.objects.filter(pk=job_id, status=JobStatus.CANCELLING).exclude(
        Exists(running.filter(job=OuterRef("pk")))
    )
    if not idle.exists():
        return False
    return finish(job_id, JobStatus.CANCELLED, message="Cancelled: no output table was written.")


def job_is_live(job_id) -> bool:
    """Whether a worker should go on working for this job (not cancelled, not ended)."""
    return BatchJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, cancel_requested=False).exists()
