"""Celery tasks: ids in, a plain function called, nothing else. Redelivery is harmless: each
function claims its work with a conditional UPDATE first."""

import logging

from celery.signals import worker_process_init, worker_ready

from batchjobs import notify
from batchjobs.pipeline import admit, commit, extract, predict, reaper
from batchjobs.poststeps import runner
from builds.runtime import starter
from mlplatform.celery import app
from mlplatform.queues import CONTROL_QUEUE, IO_QUEUE

logger = logging.getLogger(__name__)


@worker_ready.connect
def say_if_models_run_unsandboxed(**_) -> None:
    reason = starter.unsandboxed_reason()
    if reason:
        logger.warning("Model code runs without a sandbox on this worker: %s", reason)


@worker_process_init.connect
def start_spare_model_process(**_) -> None:
    """A worker process that takes predict batches gets its spare model process at start."""
    consumed = set(app.amqp.queues.consume_from or ())
    if consumed - {CONTROL_QUEUE, IO_QUEUE, app.conf.task_default_queue}:
        predict.spare_start()


@app.task(name="batchjobs.admit_jobs")
def admit_jobs() -> None:
    admit.jobs_admit()


@app.task(name="batchjobs.extract_job")
def extract_job(job_id: str) -> None:
    extract.job_extract(job_id)


@app.task(name="batchjobs.predict_batch")
def predict_batch(batch_id: int) -> None:
    predict.batch_predict(batch_id)


@app.task(name="batchjobs.commit_job")
def commit_job(job_id: str) -> None:
    commit.job_commit(job_id)


@app.task(name="batchjobs.reap")
def reap() -> None:
    reaper.reap()


@app.task(name="batchjobs.run_post_steps")
def run_post_steps(job_id: str) -> None:
    runner.steps_run(job_id)


@app.task(name="batchjobs.send_notifications", bind=True, max_retries=notify.TRIES - 1)
def send_notifications(self, notification_ids: list[int]) -> None:
    """Send a job's notifications; the ones that failed go again later, twice, then are failed."""
    attempt = self.request.retries + 1
    again = notify.notifications_send(notification_ids, attempt=attempt)
    if again:
        raise self.retry(args=[again], countdown=notify.retry_delay(attempt))


@app.task(name="batchjobs.schedules_tick")
def schedules_tick() -> None:
    from batchjobs.schedules import tick  # appended here; the schedule package imports services

    tick.schedules_tick()
