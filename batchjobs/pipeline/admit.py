"""The queue: queued jobs start oldest first while fewer than MAX_CONCURRENT_JOBS run."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from batchjobs import dispatch, transitions
from batchjobs.choices import EventId, JobPhase, JobStatus
from batchjobs.models import BatchJob, QueueLock
from batchjobs.pipeline import feed
from batchjobs.pipeline.finish import record_event


def jobs_admit() -> list[str]:
    """Start queued jobs, oldest first, while there is room. Returns the ids of those started."""
    started = []
    if not BatchJob.objects.filter(status=JobStatus.QUEUED).exists():
        # Nothing to start: no lock taken. The reaper asks every few seconds, and an idle admitter
        # holding the queue lock across tables is what a concurrent TRUNCATE (tests) deadlocked on.
        return started
    with transaction.atomic():
        QueueLock.objects.get_or_create(pk=1)
        QueueLock.objects.select_for_update().get(pk=1)  # one admitter at a time
        running = BatchJob.objects.filter(status__in=[JobStatus.RUNNING, JobStatus.CANCELLING]).count()
        free = settings.MAX_CONCURRENT_JOBS - running
        if free <= 0:
            return started
        candidates = BatchJob.objects.filter(status=JobStatus.QUEUED).order_by("created_at", "id")[:free]
        for job in candidates.select_related("model", "batch_config"):
            # A retried job keeps its input: it goes straight back to predicting its failed batches.
            phase = JobPhase.PREDICTING if job.extracted_at else JobPhase.EXTRACTING
            if not transitions.job_start(job.pk, phase=phase):
                continue
            job.refresh_from_db(fields=["status", "phase", "started_at"])
            record_event(job, EventId.START)
            if phase == JobPhase.EXTRACTING:
                dispatch.send_extract(job.pk)
            else:
                transaction.on_commit(lambda job_id=job.pk: feed.feed(job_id))
            started.append(str(job.pk))
    return started
