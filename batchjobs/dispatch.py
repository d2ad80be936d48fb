"""Sending work to Celery, always after the transaction that made it commits.

Tasks are sent by name, with ids only, so the pipeline never imports the task module (which
imports the pipeline). Their queues come from CELERY_TASK_ROUTES in settings, except a batch's:
it goes to its instance type's queue.
"""

from __future__ import annotations

from django.db import transaction

from mlplatform.celery import app


def _send(name: str, args: list, **options) -> None:
    # robust: a broker hiccup is logged, not raised; the reaper sends lost work again.
    transaction.on_commit(lambda: app.send_task(name, args=args, **options), robust=True)


def send_admit() -> None:
    _send("batchjobs.admit_jobs", [])


def send_extract(job_id) -> None:
    _send("batchjobs.extract_job", [str(job_id)])


def send_predict(batch_id: int, queue: str) -> None:
    _send("batchjobs.predict_batch", [batch_id], queue=queue)


def send_commit(job_id) -> None:
    _send("batchjobs.commit_job", [str(job_id)])


def send_notifications(notification_ids: list[int]) -> None:
    _send("batchjobs.send_notifications", [list(notification_ids)])
