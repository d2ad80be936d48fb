"""Every state change of a post-step, and nothing else: each one conditional UPDATE naming the state
it leaves, so a redelivered task or a second runner finds the step taken (0 rows) and returns.

A running step is its runner's by attempt number: when a step whose worker seemed dead was taken
over, the first runner's late writes match nothing.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import F, Q
from django.utils import timezone

from batchjobs.choices import PostStepStatus
from batchjobs.models import PostStep
from batchjobs.transitions import MESSAGE_CAP, lease


def step_claim(step_id: int) -> int:
    """Pending → running with a lease; or a running step whose worker died (lease expired) taken over."""
    now = timezone.now()
    free = Q(status=PostStepStatus.PENDING) | Q(status=PostStepStatus.RUNNING, lease_expires_at__lt=now)
    return PostStep.objects.filter(free, pk=step_id).update(
        status=PostStepStatus.RUNNING,
        attempts=F("attempts") + 1,
        lease_expires_at=lease(),
        started_at=now,
        finished_at=None,
        error="",
        traceback="",
        detail="",
        rows=None,
    )


def _mine(step_id: int, attempt: int):
    return PostStep.objects.filter(pk=step_id, status=PostStepStatus.RUNNING, attempts=attempt)


def step_renew(step_id: int, attempt: int) -> int:
    """The step's worker is alive: extend its lease (0: the step is no longer this runner's)."""
    return _mine(step_id, attempt).update(lease_expires_at=lease())


def step_succeed(step_id: int, attempt: int, *, rows: int | None, detail: str) -> int:
    return _mine(step_id, attempt).update(
        status=PostStepStatus.SUCCEEDED,
        rows=rows,
        detail=detail[:MESSAGE_CAP],
        lease_expires_at=None,
        finished_at=timezone.now(),
    )


def step_fail(step_id: int, attempt: int, *, error: str, traceback: str = "") -> int:
    return _mine(step_id, attempt).update(
        status=PostStepStatus.FAILED,
        error=error[:MESSAGE_CAP],
        traceback=traceback[:MESSAGE_CAP],
        lease_expires_at=None,
        finished_at=timezone.now(),
    )


def steps_sent(job_id, *, expect_by: datetime) -> int:
    """The job's pending steps were sent to a worker: one should claim them by `expect_by` (on
    pending steps the lease is that deadline; after it the reaper sends them again)."""
    return PostStep.objects.filter(job_id=job_id, status=PostStepStatus.PENDING).update(lease_expires_at=expect_by)


def steps_reset_for_retry(job_id) -> int:
    """A job's failed step goes back to pending (the later ones are pending already)."""
    return PostStep.objects.filter(job_id=job_id, status=PostStepStatus.FAILED).update(
        status=PostStepStatus.PENDING, error="", traceback="", lease_expires_at=None, finished_at=None
    )


def steps_unsent(job_id) -> int:
    """A step failed: the later ones stay pending, waiting for Retry, not for a worker."""
    return PostStep.objects.filter(job_id=job_id, status=PostStepStatus.PENDING).update(lease_expires_at=None)
