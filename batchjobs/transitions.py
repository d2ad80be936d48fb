"""Every state change of a job, a batch and a batch's attempt, and nothing else.

Each is one conditional UPDATE that names the state it leaves, so it is safe to call twice and a
redelivered task finds the work taken: the return value says how many rows changed (0 means
someone else did it, so the caller returns). Services, pipeline steps and the reaper call these;
nothing else writes a status. Reads live in ``selectors``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from batchjobs.choices import BatchStatus, JobPhase, JobStatus
from batchjobs.models import Batch, BatchAttempt, BatchJob
from mlplatform.warehouse import Part

MESSAGE_CAP = 64 * 1024  # a job's message and detail, a batch's error and traceback, when stored


def lease(seconds: int | None = None) -> datetime:
    return timezone.now() + timedelta(seconds=seconds or settings.BATCH_LEASE_S)


def _jobs(job_id, *statuses: str):
    return BatchJob.objects.filter(pk=job_id, status__in=statuses)


# --- jobs ------------------------------------------------------------------------------------


def job_start(job_id, *, phase: str) -> int:
    """Queued → running, in ``phase`` (extracting; predicting for a retry that kept its input)."""
    return _jobs(job_id, JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, phase=phase, started_at=timezone.now(), message="", lease_expires_at=None
    )


def job_step_claim(job_id, *, phase: str) -> int:
    """Take the lease of a job-level step (extract, commit): free, or left by a worker that died."""
    running = _jobs(job_id, JobStatus.RUNNING).filter(phase=phase)
    return running.filter(lease_expires_at__isnull=True).update(lease_expires_at=lease()) or running.filter(
        lease_expires_at__lt=timezone.now()
    ).update(lease_expires_at=lease())


def job_step_renew(job_id) -> int:
    """The step's worker is alive: extend its lease."""
    return _jobs(job_id, JobStatus.RUNNING).update(lease_expires_at=lease())


def job_extracted(job_id, *, input_rows: int, batches_total: int) -> int:
    """Extracting → predicting: every batch exists, the row count is known."""
    return _jobs(job_id, JobStatus.RUNNING).update(
        phase=JobPhase.PREDICTING,
        input_rows=input_rows,
        batches_total=batches_total,
        extracted_at=timezone.now(),
        lease_expires_at=None,
    )


def job_commit_claim(job_id) -> int:
    """Predicting → committing, once extraction is done and every batch has ended (or take over a
    commit whose worker died)."""
    unfinished = Batch.objects.filter(job=OuterRef("pk")).exclude(status__in=BatchStatus.TERMINAL)
    ready = _jobs(job_id, JobStatus.RUNNING).filter(extracted_at__isnull=False).exclude(Exists(unfinished))
    return ready.filter(phase=JobPhase.PREDICTING).update(
        phase=JobPhase.COMMITTING, predicted_at=timezone.now(), lease_expires_at=lease()
    ) or ready.filter(phase=JobPhase.COMMITTING, lease_expires_at__lt=timezone.now()).update(lease_expires_at=lease())


def job_end(job_id, status: str, *, message: str, detail: str = "", output_rows: int | None = None) -> int:
    """Running or cancelling → succeeded, failed or cancelled."""
    fields = {
        "status": status,
        "phase": JobPhase.DONE,
        "finished_at": timezone.now(),
        "message": message[:MESSAGE_CAP],
        "lease_expires_at": None,
    }
    if detail:
        fields["error_detail"] = detail[:MESSAGE_CAP]
    if output_rows is not None:
        fields["output_rows"] = output_rows
    return _jobs(job_id, JobStatus.RUNNING, JobStatus.CANCELLING).update(**fields)


def job_cancel_queued(job_id) -> int:
    """Queued → cancelled, at once: it never started."""
    return _jobs(job_id, JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED,
        phase=JobPhase.DONE,
        finished_at=timezone.now(),
        message="Cancelled before it started.",
    )


def job_cancel_running(job_id) -> int:
    """Running → cancelling: its running batches stop at their next heartbeat."""
    return _jobs(job_id, JobStatus.RUNNING).update(
        status=JobStatus.CANCELLING, cancel_requested=True, message="Cancelling: stopping the running batches."
    )


def job_requeue_for_retry(job_id) -> int:
    """Failed → queued again, to run its failed batches on the input it kept."""
    return _jobs(job_id, JobStatus.FAILED).update(
        status=JobStatus.QUEUED,
        phase=JobPhase.WAITING,
        message="",
        error_detail="",
        finished_at=None,
        started_at=None,
        predicted_at=None,
        queued_at=timezone.now(),
    )


def job_staging_removed(job_id) -> int:
    return BatchJob.objects.filter(pk=job_id, staging_removed=False).update(staging_removed=True)


# --- batches ---------------------------------------------------------------------------------


def batches_send(batch_ids: Iterable[int]) -> int:
    """Pending → queued: sent to a worker."""
    return Batch.objects.filter(pk__in=list(batch_ids), status=BatchStatus.PENDING).update(
        status=BatchStatus.QUEUED, queued_at=timezone.now()
    )


def batch_resend(batch: Batch) -> int:
    """Still queued, never claimed, since ``batch.queued_at``: mark it sent again now."""
    return Batch.objects.filter(pk=batch.pk, status=BatchStatus.QUEUED, queued_at=batch.queued_at).update(
        queued_at=timezone.now()
    )


def batch_claim(batch_id: int, *, worker: str) -> int:
    """Queued → running on this worker, with a lease and the next attempt number."""
    return Batch.objects.filter(pk=batch_id, status=BatchStatus.QUEUED, job__status=JobStatus.RUNNING).update(
        status=BatchStatus.RUNNING,
        attempts=F("attempts") + 1,
        lease_expires_at=lease(),
        worker=worker,
        worker_pid=os.getpid(),
        started_at=timezone.now(),
        finished_at=None,
        error="",
        traceback="",
    )


def _running(batch: Batch):
    """The batch, still running the same attempt (a reaped and re-sent batch is a new attempt)."""
    return Batch.objects.filter(pk=batch.pk, status=BatchStatus.RUNNING, attempts=batch.attempts)


def batch_heartbeat(batch: Batch) -> int:
    return _running(batch).update(lease_expires_at=lease())


def batch_end(
    batch: Batch,
    status: str,
    *,
    error: str = "",
    traceback: str = "",
    result: dict | None = None,
    part: Part | None = None,
) -> int:
    """Running → succeeded, failed or cancelled, with what the attempt measured and the output part
    it wrote."""
    result = result or {}
    return _running(batch).update(
        output_rows=part.rows if part else None,
        part_name=part.name if part else "",
        part_bytes=part.size if part else None,
        status=status,
        error=error[:MESSAGE_CAP],
        traceback=traceback[:MESSAGE_CAP],
        finished_at=timezone.now(),
        lease_expires_at=None,
        predict_seconds=result.get("predict_seconds"),
        peak_rss_mib=(result["peak_rss_kib"] / 1024) if "peak_rss_kib" in result else None,
    )


def batch_requeue_lost(batch: Batch) -> int:
    """Running, its worker gone (lease expired) → queued again, for another attempt."""
    return _running(batch).update(status=BatchStatus.QUEUED, lease_expires_at=None, queued_at=timezone.now())


def batch_fail_lost(batch: Batch, *, error: str) -> int:
    """Running, its worker gone on the last attempt allowed → failed."""
    return _running(batch).update(
        status=BatchStatus.FAILED, error=error, finished_at=timezone.now(), lease_expires_at=None
    )


def batches_cancel_waiting(job_id) -> int:
    """The job ended or is cancelling: batches not yet running never run."""
    return Batch.objects.filter(job_id=job_id, status__in=[BatchStatus.PENDING, BatchStatus.QUEUED]).update(
        status=BatchStatus.CANCELLED
    )


def batches_stop_running(job_id, *, error: str) -> int:
    """The job stops at a failed batch: its running batches and their attempts end cancelled at once
    (their workers stop their model processes at their next heartbeat; their own end of the batch
    is then a no-op, and their end of the attempt adds what the model printed)."""
    now = timezone.now()
    with transaction.atomic():
        stopped = Batch.objects.filter(job_id=job_id, status=BatchStatus.RUNNING).update(
            status=BatchStatus.CANCELLED, error=error, finished_at=now, lease_expires_at=None
        )
        BatchAttempt.objects.filter(batch__job_id=job_id, status=BatchStatus.RUNNING).update(
            status=BatchStatus.CANCELLED, error=error[:MESSAGE_CAP], finished_at=now
        )
    return stopped


def batches_reset_for_retry(job_id, indexes: list[int]) -> int:
    """Failed or cancelled → pending, attempts counted afresh (their history stays)."""
    return Batch.objects.filter(
        job_id=job_id, index__in=indexes, status__in=[BatchStatus.FAILED, BatchStatus.CANCELLED]
    ).update(status=BatchStatus.PENDING, error="", traceback="", attempts=0, lease_expires_at=None)


# --- attempts --------------------------------------------------------------------------------


def attempt_end(attempt_id: int, status: str, *, error: str, log: str) -> int:
    """The attempt ends with what its model printed (even when the reaper closed it meanwhile)."""
    return BatchAttempt.objects.filter(pk=attempt_id).update(
        status=status, error=error[:MESSAGE_CAP], log=log, finished_at=timezone.now()
    )


def attempt_close_lost(batch: Batch) -> int:
    """The attempt whose worker died ends failed, saying so (its log is what was kept: nothing)."""
    return BatchAttempt.objects.filter(batch=batch, status=BatchStatus.RUNNING).update(
        status=BatchStatus.FAILED, finished_at=timezone.now(), error=f"the worker ({batch.worker}) stopped responding"
    )
