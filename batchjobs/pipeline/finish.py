"""Ending a job: its final status, its event, its staging, and a free slot for the queue."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Exists, OuterRef

from batchjobs import dispatch, signals, transitions
from batchjobs.choices import BatchStatus, EventId, JobPhase, JobStatus
from batchjobs.models import Batch, BatchJob, JobEvent
from batchjobs.pipeline import output, staging

logger = logging.getLogger(__name__)
SHOWN_FAILURES = 10


def record_event(job: BatchJob, evid: int, error: str = "") -> JobEvent:
    return JobEvent.objects.create(
        evid=evid,
        job=job,
        model_id=job.model.model_id,
        build_id=job.build_id,
        endpoint_name=job.batch_config.deployment_name,
        job_start_time=job.started_at,
        error=error[: transitions.MESSAGE_CAP],
    )


def finish(job_id, status: str, *, message: str = "", detail: str = "", output_rows: int | None = None) -> bool:
    """End a running (or cancelling) job: status, event, staging, and a free slot for the queue."""
    if status == JobStatus.FAILED and not message.strip():  # the panel's first line is never empty
        phase = BatchJob.objects.filter(pk=job_id).values_list("phase", flat=True).first()
        step = JobPhase(phase).label.lower() if phase else "running"
        message = f"The job failed while {step}; no cause was recorded."
    with transaction.atomic():
        if not transitions.job_end(job_id, status, message=message, detail=detail, output_rows=output_rows):
            return False
        transitions.batches_cancel_waiting(job_id)
        job = BatchJob.objects.select_related("model", "batch_config").get(pk=job_id)
        event = None
        if status == JobStatus.SUCCEEDED:
            event = record_event(job, EventId.SUCCESS)
        elif status == JobStatus.FAILED:
            event = record_event(job, EventId.FAILURE, error=job.message)
        dispatch.send_admit()
        occurrence = str(event.uuid) if event else ""
        transaction.on_commit(
            lambda: signals.job_ended.send(sender=BatchJob, job_id=job_id, status=status, occurrence=occurrence)
        )
    if status == JobStatus.CANCELLED:
        output.discard(job)
    if status != JobStatus.FAILED:  # a failed job keeps its staging and parts for "Retry failed batches"
        remove_staging(job_id)
    logger.info("batch job %s %s: %s", job_id, status, message[:200])
    return True


def remove_staging(job_id) -> None:
    staging.remove_job(job_id)
    transitions.job_staging_removed(job_id)


def remove_kept(job_id) -> None:
    """A failed job's kept input and output parts go (its retention is over)."""
    output.discard(BatchJob.objects.get(pk=job_id))
    remove_staging(job_id)


def finish_cancelled_if_idle(job_id) -> bool:
    """A cancelling job whose last running batch stopped ends cancelled."""
    running = Batch.objects.filter(job_id=job_id, status=BatchStatus.RUNNING)
    idle = BatchJob.objects.filter(pk=job_id, status=JobStatus.CANCELLING).exclude(
        Exists(running.filter(job=OuterRef("pk")))
    )
    if not idle.exists():
        return False
    return finish(job_id, JobStatus.CANCELLED, message="Cancelled: no output table was written.")


def failure_message(job: BatchJob, failed: list[Batch]) -> tuple[str, str]:
    total = job.batches_total
    shown = "; ".join(
        f"batch {b.index} ({b.rows:,} rows): {b.error.splitlines()[0] if b.error else 'failed'}"
        for b in failed[:SHOWN_FAILURES]
    )
    more = f"; and {len(failed) - SHOWN_FAILURES} more" if len(failed) > SHOWN_FAILURES else ""
    rows = sum(b.rows for b in failed)
    message = (
        f"{'The only batch' if total == 1 else f'{len(failed)} of {total} batches'} failed "
        f"({rows:,} of {job.input_rows:,} rows), so no output "
        f"table was written: {shown}{more}."
    )
    first = failed[0]
    detail = f"Batch {first.index} ({first.rows:,} rows), attempt {first.attempts}: {first.error}\n\n{first.traceback}"
    return message, detail.strip()
