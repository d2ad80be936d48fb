"""Feeding a running job: send pending batches while fewer than its parallelism are in flight, and
the commit once the last batch has ended."""

from __future__ import annotations

from django.db import transaction

from batchjobs import dispatch, selectors, transitions
from batchjobs.choices import BatchStatus, JobStatus
from batchjobs.models import BatchJob
from batchjobs.pipeline.finish import finish_cancelled_if_idle


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
        ids = list(
            job.batches.filter(status=BatchStatus.PENDING).order_by("index").values_list("pk", flat=True)[:slots]
        )
        transitions.batches_send(ids)
        for batch_id in ids:
            dispatch.send_predict(batch_id, job.batch_config.instance_type.queue)
        return len(ids)


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
    if job.extracted_at and selectors.all_batches_done(job_id):
        send_commit(job_id)


def send_commit(job_id) -> None:
    with transaction.atomic():
        dispatch.send_commit(job_id)
