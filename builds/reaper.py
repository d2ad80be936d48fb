"""The builds' reaper (Celery beat, every REAPER_INTERVAL_S): a verification whose message was lost
is sent again; one whose worker died fails with the reason."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from builds import dispatch, transitions
from builds.choices import BuildStatus
from builds.models import Build

ROUND = 200  # builds each step handles in one round
STUCK = "The worker verifying this build stopped before it finished; upload the build again."


def resend_lost_verifications(now) -> int:
    """A build still pending long after its upload: its verification message was lost. Claiming
    the build makes a duplicate harmless."""
    lost = now - timedelta(seconds=max(60, settings.REAPER_INTERVAL_S * 4))
    pending = Build.objects.filter(status=BuildStatus.PENDING, created_at__lt=lost).values_list("pk", flat=True)
    ids = [str(pk) for pk in pending[:ROUND]]
    for build_id in ids:
        dispatch.send_verify(build_id)
    return len(ids)


def fail_stuck_builds(now) -> int:
    return transitions.builds_fail_stuck(
        started_before=now - timedelta(seconds=3 * settings.BUILD_TIMEOUT_S), log=STUCK
    )


def reap() -> dict[str, int]:
    now = timezone.now()
    return {"resent": resend_lost_verifications(now), "failed": fail_stuck_builds(now)}
