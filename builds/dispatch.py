"""Sending build work to Celery, by task name with the build id only, after the transaction that
made it commits (the queue comes from the routes in settings)."""

from __future__ import annotations

from django.db import transaction

from mlplatform.celery import app


def send_verify(build_id) -> None:
    # robust: a broker hiccup is logged, not raised; the reaper sends a lost verification again.
    transaction.on_commit(lambda: app.send_task("builds.verify_build", args=[str(build_id)]), robust=True)
