"""Every state change of a build, and nothing else: each one conditional UPDATE naming the state it
leaves, safe to call twice (the return value says how many rows changed)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from builds.choices import BuildStatus
from builds.models import Build


def build_claim(build_id) -> int:
    """Pending → building: this worker verifies it (a redelivered task finds it taken)."""
    return Build.objects.filter(pk=build_id, status=BuildStatus.PENDING).update(
        status=BuildStatus.BUILDING, started_at=timezone.now()
    )


def build_end(build_id, *, ok: bool, schema: dict | None, log: str) -> int:
    """Building → succeeded or failed, with its schema and log."""
    return Build.objects.filter(pk=build_id, status=BuildStatus.BUILDING).update(
        status=BuildStatus.SUCCEEDED if ok else BuildStatus.FAILED,
        schema=schema if ok else None,
        log=log,
        finished_at=timezone.now(),
    )


def builds_fail_stuck(*, started_before: datetime, log: str) -> int:
    """Building since before ``started_before``: its worker died; the build fails, saying so."""
    return Build.objects.filter(status=BuildStatus.BUILDING, started_at__lt=started_before).update(
        status=BuildStatus.FAILED, finished_at=timezone.now(), log=log
    )
