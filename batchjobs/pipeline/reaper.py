"""The reaper: runs every REAPER_INTERVAL_S (Celery beat) and puts right what dead workers left.

- a batch whose lease expired goes back to the queue, up to MAX_BATCH_ATTEMPTS, then fails;
- an extraction or commit whose lease expired is sent again;
- a job running longer than JOB_TIMEOUT_S fails; a cancelling job with nothing running ends;
- a failed job's shards go after STAGING_RETENTION_H; a build stuck in verification fails;
- queued jobs are admitted when there is room.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from batchjobs import dispatch
from batchjobs.choices import BatchStatus, JobPhase, JobStatus
from batchjobs.models import Batch, BatchAttempt, BatchJob
from batchjobs.pipeline import lifecycle, staging
from builds.choices import BuildStatus
from builds.models import Build
from builds.tasks import verify_build

logger = logging.getLogger(__name__)


def _close_lost_attempt(batch: Batch, now) -> None:
    """The attempt whose worker died ends failed, saying so (its log is what was kept: nothing)."""
    BatchAttempt.objects.filter(batch=batch, status=BatchStatus.RUNNING).update(
        status=BatchStatus.FAILED, finished_at=now, error=f"the worker ({batch.worker}) stopped responding"
    )


def reap() -> dict[str, int]:
    now = timezone.now()
    counts = {"requeued": 0, "failed_batches": 0, "timed_out": 0, "resent": 0, "cancelled": 0}
    for batch in Batch.objects.filter(status=BatchStatus.RUNNING, lease_expires_at__lt=now).select_related(
        "job__batch_config__instance_type"
    ):
        if batch.attempts < settings.MAX_BATCH_ATTEMPTS and batch.job.status == JobStatus.RUNNING:
            with transaction.atomic():
                taken = Batch.objects.filter(pk=batch.pk, status=BatchStatus.RUNNING, attempts=batch.attempts).update(
                    status=BatchStatus.QUEUED, lease_expires_at=None, queued_at=now
                )
                if taken:
                    dispatch.send_predict(batch.pk, batch.job.batch_config.instance_type.queue)
            counts["requeued"] += taken
            _close_lost_attempt(batch, now)
            logger.warning("%s lost its worker %s; sent again", batch, batch.worker)
            continue
        error = (
            f"the worker running it ({batch.worker}) stopped responding on attempt {batch.attempts} of "
            f"{settings.MAX_BATCH_ATTEMPTS}"
        )
        failed = Batch.objects.filter(pk=batch.pk, status=BatchStatus.RUNNING, attempts=batch.attempts).update(
            status=BatchStatus.FAILED, error=error, finished_at=now, lease_expires_at=None
        )
        counts["failed_batches"] += failed
        if failed:
            _close_lost_attempt(batch, now)
            lifecycle.after_batch(batch.job_id)

    for job in BatchJob.objects.filter(
        status=JobStatus.RUNNING, started_at__lt=now - timedelta(seconds=settings.JOB_TIMEOUT_S)
    ):
        hours = settings.JOB_TIMEOUT_S / 3600
        counts["timed_out"] += lifecycle.finish(
            job.pk,
            JobStatus.FAILED,
            message=(
                f"The job ran longer than JOB_TIMEOUT_S ({settings.JOB_TIMEOUT_S:,} s = {hours:g} h) and was stopped "
                f"in the {job.get_phase_display().lower()} step; no output table was written."
            ),
        )

    stale = BatchJob.objects.filter(status=JobStatus.RUNNING, lease_expires_at__lt=now)
    lost = now - timedelta(seconds=max(60, settings.REAPER_INTERVAL_S * 4))
    for job in BatchJob.objects.filter(
        status=JobStatus.RUNNING, phase=JobPhase.EXTRACTING, lease_expires_at__isnull=True, started_at__lt=lost
    ):
        with transaction.atomic():  # its extract message never arrived (a broker hiccup)
            dispatch.send_extract(job.pk)
        counts["resent"] += 1
    for job in stale.filter(phase=JobPhase.EXTRACTING):
        with transaction.atomic():
            dispatch.send_extract(job.pk)
        counts["resent"] += 1
    for job in stale.filter(phase=JobPhase.COMMITTING):
        lifecycle.dispatch_commit(job.pk)
        counts["resent"] += 1
    # A batch sent long ago and never claimed: its message may be lost. Sending it again is safe
    # (the claim is a conditional UPDATE), and queued_at moves on so it is not sent every round.
    for batch in Batch.objects.filter(
        status=BatchStatus.QUEUED, queued_at__lt=lost, job__status=JobStatus.RUNNING
    ).select_related("job__batch_config__instance_type"):
        with transaction.atomic():
            if Batch.objects.filter(pk=batch.pk, status=BatchStatus.QUEUED, queued_at=batch.queued_at).update(
                queued_at=now
            ):
                dispatch.send_predict(batch.pk, batch.job.batch_config.instance_type.queue)
                counts["resent"] += 1
    for job in BatchJob.objects.filter(status=JobStatus.RUNNING, phase=JobPhase.PREDICTING):
        lifecycle.after_batch(job.pk)  # a lost message between two batches is found again here

    for job in BatchJob.objects.filter(status=JobStatus.CANCELLING):
        counts["cancelled"] += lifecycle.finish_cancelled_if_idle(job.pk)

    retention = now - timedelta(hours=settings.STAGING_RETENTION_H)
    for job_id in BatchJob.objects.filter(
        status=JobStatus.FAILED, finished_at__lt=retention, staging_removed=False
    ).values_list("pk", flat=True):
        staging.remove_job(job_id)
        BatchJob.objects.filter(pk=job_id).update(staging_removed=True)

    for build_id in Build.objects.filter(status=BuildStatus.PENDING, created_at__lt=lost).values_list("pk", flat=True):
        verify_build.delay(str(build_id))  # its verification message was lost; claiming makes this safe
    Build.objects.filter(
        status=BuildStatus.BUILDING, started_at__lt=now - timedelta(seconds=3 * settings.BUILD_TIMEOUT_S)
    ).update(
        status=BuildStatus.FAILED,
        finished_at=now,
        log="The worker verifying this build stopped before it finished; upload the build again.",
    )

    lifecycle.jobs_admit()
    return counts
