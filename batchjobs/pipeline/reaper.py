"""The reaper: runs every REAPER_INTERVAL_S (Celery beat) and puts right what dead workers and lost
messages left. Each step is a small function that handles at most ROUND rows a round (the next
round takes the rest), so one round stays short whatever piled up.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from batchjobs import dispatch, transitions
from batchjobs.choices import BatchStatus, JobPhase, JobStatus
from batchjobs.models import Batch, BatchJob
from batchjobs.pipeline import admit, feed, finish
from batchjobs.poststeps import runner as post_steps

logger = logging.getLogger(__name__)
ROUND = 200  # rows each step handles in one round


def lost_after(now: datetime) -> datetime:
    """A message sent before this and still not picked up is taken as lost."""
    return now - timedelta(seconds=max(60, settings.REAPER_INTERVAL_S * 4))


def requeue_or_fail_lost_batches(now: datetime) -> tuple[int, int]:
    """A running batch whose lease expired lost its worker: send it again, up to MAX_BATCH_ATTEMPTS,
    then fail it with the reason. Returns (requeued, failed)."""
    requeued = failed = 0
    expired = Batch.objects.filter(status=BatchStatus.RUNNING, lease_expires_at__lt=now)
    for batch in expired.select_related("job__batch_config__instance_type")[:ROUND]:
        if batch.attempts < settings.MAX_BATCH_ATTEMPTS and batch.job.status == JobStatus.RUNNING:
            with transaction.atomic():
                taken = transitions.batch_requeue_lost(batch)
                if taken:
                    dispatch.send_predict(batch.pk, batch.job.batch_config.instance_type.queue)
            requeued += taken
            transitions.attempt_close_lost(batch)
            logger.warning("%s lost its worker %s; sent again", batch, batch.worker)
            continue
        error = (
            f"the worker running it ({batch.worker}) stopped responding on attempt {batch.attempts} of "
            f"{settings.MAX_BATCH_ATTEMPTS}"
        )
        if transitions.batch_fail_lost(batch, error=error):
            failed += 1
            transitions.attempt_close_lost(batch)
            feed.after_batch(batch.job_id)
    return requeued, failed


def fail_timed_out_jobs(now: datetime) -> int:
    """A job running longer than JOB_TIMEOUT_S fails, saying in which step."""
    timed_out = 0
    started_before = now - timedelta(seconds=settings.JOB_TIMEOUT_S)
    for job in BatchJob.objects.filter(status=JobStatus.RUNNING, started_at__lt=started_before)[:ROUND]:
        hours = settings.JOB_TIMEOUT_S / 3600
        timed_out += finish.finish(
            job.pk,
            JobStatus.FAILED,
            message=(
                f"The job ran longer than JOB_TIMEOUT_S ({settings.JOB_TIMEOUT_S:,} s = {hours:g} h) and was stopped "
                f"in the {job.get_phase_display().lower()} step; no output table was written."
            ),
        )
    return timed_out


def resend_lost_steps(now: datetime) -> int:
    """Send again an extraction whose message never arrived, and an extraction or commit whose
    worker died (its lease expired). Claiming the step makes a duplicate harmless."""
    resent = 0
    running = BatchJob.objects.filter(status=JobStatus.RUNNING)
    never_claimed = running.filter(
        phase=JobPhase.EXTRACTING, lease_expires_at__isnull=True, started_at__lt=lost_after(now)
    )
    stale = running.filter(lease_expires_at__lt=now)
    for job_id in [
        *never_claimed.values_list("pk", flat=True)[:ROUND],
        *stale.filter(phase=JobPhase.EXTRACTING).values_list("pk", flat=True)[:ROUND],
    ]:
        with transaction.atomic():
            dispatch.send_extract(job_id)
        resent += 1
    for job_id in stale.filter(phase=JobPhase.COMMITTING).values_list("pk", flat=True)[:ROUND]:
        feed.send_commit(job_id)
        resent += 1
    return resent


def resend_unclaimed_batches(now: datetime) -> int:
    """A batch sent long ago and never claimed: its message may be lost. Sending it again is safe (the
    claim is a conditional UPDATE), and its sent time moves on so it is not sent every round."""
    resent = 0
    unclaimed = Batch.objects.filter(
        status=BatchStatus.QUEUED, queued_at__lt=lost_after(now), job__status=JobStatus.RUNNING
    )
    for batch in unclaimed.select_related("job__batch_config__instance_type")[:ROUND]:
        with transaction.atomic():
            if transitions.batch_resend(batch):
                dispatch.send_predict(batch.pk, batch.job.batch_config.instance_type.queue)
                resent += 1
    return resent


def nudge_predicting_jobs() -> None:
    """Feed every predicting job (or send its commit): a message lost between two batches is found
    again here."""
    for job_id in BatchJob.objects.filter(status=JobStatus.RUNNING, phase=JobPhase.PREDICTING).values_list(
        "pk", flat=True
    )[:ROUND]:
        feed.after_batch(job_id)


def finish_idle_cancelling_jobs() -> int:
    """A cancelling job with nothing running any more ends cancelled."""
    cancelling = BatchJob.objects.filter(status=JobStatus.CANCELLING).values_list("pk", flat=True)[:ROUND]
    return sum(finish.finish_cancelled_if_idle(job_id) for job_id in cancelling)


def remove_old_staging(now: datetime) -> int:
    """A failed job's kept input and output parts go after STAGING_RETENTION_H."""
    retention = now - timedelta(hours=settings.STAGING_RETENTION_H)
    old = BatchJob.objects.filter(status=JobStatus.FAILED, finished_at__lt=retention, staging_removed=False)
    removed = 0
    for job_id in old.values_list("pk", flat=True)[:ROUND]:
        finish.remove_kept(job_id)
        removed += 1
    return removed


def reap() -> dict[str, int]:
    now = timezone.now()
    requeued, failed = requeue_or_fail_lost_batches(now)
    counts = {
        "requeued": requeued,
        "failed_batches": failed,
        "timed_out": fail_timed_out_jobs(now),
        "resent": resend_lost_steps(now) + resend_unclaimed_batches(now),
    }
    nudge_predicting_jobs()
    counts["cancelled"] = finish_idle_cancelling_jobs()
    counts["staging_removed"] = remove_old_staging(now)
    counts.update(post_steps.reap(now))
    admit.jobs_admit()
    return counts
