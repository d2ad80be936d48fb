"""Feeding a running job: send pending batches while fewer than its parallelism are in flight, and
the commit once the last batch has ended."""

from __future__ import annotations

from django.db import transaction

from batchjobs import dispatch, selectors, transitions
from batchjobs.choices import BatchStatus, JobStatus
from batchjobs.models import BatchJob
from batchjobs.pipeline.finish import failure_message, finish, finish_cancelled_if_idle


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
    failed = list(job.batches.filter(status=BatchStatus.FAILED).order_by("index"))
    if failed:  # all or nothing: the job cannot succeed any more, so it stops here
        stop_at_failure(job, failed)
        return
    feed(job_id)
    if job.extracted_at and selectors.all_batches_done(job_id):
        send_commit(job_id)


def stop_at_failure(job: BatchJob, failed: list) -> bool:
    """Fail the job at its first batch that failed for good: batches not yet running never run,
    running ones are stopped (their workers see the job ended at their next heartbeat), and the
    batches that succeeded keep their parts for "Retry failed batches"."""
    counts = selectors.batch_counts(job)
    running = counts[BatchStatus.RUNNING]
    waiting = counts[BatchStatus.PENDING] + counts[BatchStatus.QUEUED]
    done = counts[BatchStatus.SUCCEEDED]
    message, detail = failure_message(job, failed)
    transitions.batches_stop_running(job.pk, error="Stopped: another batch of the job failed.")
    stopped = [f"{running:,} running {_batches(running)} stopped"] if running else []
    stopped += [f"{waiting:,} {_batches(waiting)} not run"] if waiting else []
    if stopped:
        kept = f"; {done:,} succeeded {_batches(done)} kept for Retry failed batches" if done else ""
        message += f" The job stopped there: {' and '.join(stopped)}{kept}."
    return finish(job.pk, JobStatus.FAILED, message=message, detail=detail)


def _batches(n: int) -> str:
    return "batch" if n == 1 else "batches"


def send_commit(job_id) -> None:
    with transaction.atomic():
        dispatch.send_commit(job_id)
