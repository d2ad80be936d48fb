"""A scheduled job that succeeded gets its post-steps (connected in BatchJobsConfig.ready)."""

from __future__ import annotations

import logging

from django.dispatch import receiver

from batchjobs.choices import JobStatus
from batchjobs.poststeps import runner
from batchjobs.signals import job_ended

logger = logging.getLogger(__name__)


@receiver(job_ended, dispatch_uid="batchjobs.poststeps.create")
def create_post_steps(sender, job_id, status, **kwargs) -> None:
    if status != JobStatus.SUCCEEDED:
        return
    try:
        runner.steps_create(job_id)
    except Exception:  # a receiver never raises into the pipeline: the job's success stands
        logger.exception("creating the post-steps of job %s failed", job_id)
