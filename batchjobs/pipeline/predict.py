"""Predict one batch in a model process of this worker, holding a lease while it runs.

The model process is kept for the next batches of the same build and config (loaded once); a
crash, hang, memory error or sys.exit fails only this batch, and this worker goes on.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from batchjobs import cloudwatch, dispatch, selectors, transitions
from batchjobs.choices import BatchStatus, JobStatus
from batchjobs.models import Batch, BatchAttempt, BatchJob
from batchjobs.pipeline import feed, inputs, output
from builds.runtime import starter
from builds.runtime.process import ModelProcess, ModelProcessError
from mlplatform.warehouse import WarehouseError

logger = logging.getLogger(__name__)


class Stop(Exception):
    """The job was cancelled or ended while this batch ran."""


@dataclass
class _Loaded:
    key: tuple
    process: ModelProcess


_loaded: _Loaded | None = None  # one model process per worker process, reused across batches
_spare: ModelProcess | None = None  # a pre-imported process waiting for the next build (see starter.start_spare)


def _workdir() -> Path:
    return settings.DATA_DIR / "work" / f"model-{os.getpid()}"


def _close_loaded() -> None:
    global _loaded
    if _loaded is not None:
        _loaded.process.close()
        _loaded = None


def _close_spare() -> None:
    global _spare
    if _spare is not None:
        _spare.close()
        _spare = None


atexit.register(_close_loaded)
atexit.register(_close_spare)


def spare_start() -> None:
    """Have a spare model process ready (a predict worker's process does this when it starts, and
    again once the batches of the job that took its spare are all sent)."""
    global _spare
    if not settings.MODEL_SPARE_PROCESS:
        return
    if starter.spare_current(_spare, workdir=_workdir(), log_cap=settings.LOG_CAP_BYTES):
        return
    _close_spare()
    try:
        _spare = starter.start_spare(workdir=_workdir(), log_cap=settings.LOG_CAP_BYTES)
    except Exception:  # noqa: BLE001 - no spare only means the next model starts cold
        logger.exception("could not start a spare model process")


def model_process(job: BatchJob, on_wait=None) -> ModelProcess:
    """The loaded model for this job's build and config: reused, or loaded now (into the spare when
    it fits, else into a new process)."""
    global _loaded, _spare
    config = job.batch_config
    resources = starter.resources_for(config, job.parallelism)
    key = (str(job.build_id), config.pk, resources)
    if _loaded is not None and _loaded.key == key and _loaded.process.alive and not starter.worn_out(_loaded.process):
        return _loaded.process
    _close_loaded()
    spare, _spare = _spare, None
    if spare is not None and not starter.spare_fits(
        spare,
        workdir=_workdir(),
        log_cap=settings.LOG_CAP_BYTES,
        env=config.env,
        memory_mb=resources.memory_mb,
        allow_network=config.allow_network,
    ):
        spare.close()
        spare = None
    process, _ = starter.start_model(
        job.build,
        workdir=_workdir(),
        resources=resources,
        env=config.env,
        log_cap=settings.LOG_CAP_BYTES,
        timeout=settings.PREDICT_TIMEOUT_S,
        spare=spare,
        allow_network=config.allow_network,
        on_wait=on_wait,  # loading a large model can take longer than a batch's lease
        wait_interval=max(1.0, settings.BATCH_LEASE_S / 4),
    )
    _loaded = _Loaded(key=key, process=process)
    return process


def batch_predict(batch_id: int) -> bool:
    """Run one batch. Returns False when it was not ours to run (claimed by someone else)."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if not transitions.batch_claim(batch_id, worker=worker):
        return False
    batch = Batch.objects.select_related("job__build", "job__batch_config__instance_type").get(pk=batch_id)
    job = batch.job
    # Numbered over the batch's whole life: a retried job's batches keep their earlier attempts.
    number = (batch.attempt_log.aggregate(n=Max("number"))["n"] or 0) + 1
    attempt = BatchAttempt.objects.create(batch=batch, number=number, worker=worker)
    if not Batch.objects.filter(pk=batch_id, status=BatchStatus.RUNNING).exists():
        # Stopped between the claim and now (the job failed or was cancelled): no attempt runs on.
        transitions.attempt_end(attempt.pk, BatchStatus.CANCELLED, error=_stop_reason(job.pk), log="")
        return True
    log, status, error, detail, result, part = "", BatchStatus.SUCCEEDED, "", "", {}, None
    try:
        process = model_process(job, on_wait=lambda: _heartbeat(batch))
        with inputs.batch_files(job, batch, process) as (rows, local_in, local_out):
            reply = process.call(
                {
                    "op": "predict",
                    "input": local_in,
                    "output": local_out,
                    "first_ordinal": batch.first_ordinal,
                    "max_row_bytes": settings.MAX_ROW_BYTES,
                    "types": starter.prediction_types(job.build),
                },
                timeout=settings.PREDICT_TIMEOUT_S,
                on_wait=lambda: _heartbeat(batch),
                wait_interval=max(1.0, settings.BATCH_LEASE_S / 4),
            )
            log, result = reply.log, reply.result
            log = "".join(f"[platform] {note}\n" for note in result.get("notes", [])) + log
            predictions = output.read_predictions(job, batch.index, local_out, batch.rows)
            part = output.write_batch(job, batch.index, number, rows, predictions)
    except Stop:
        _close_loaded()  # the model process was killed mid-batch
        status, error = BatchStatus.CANCELLED, _stop_reason(job.pk)
    except ModelProcessError as exc:
        if not _loaded or not _loaded.process.alive:
            _close_loaded()
        status, error, detail, log = BatchStatus.FAILED, str(exc), exc.traceback, exc.log
        if exc.exit_signal == signal.SIGKILL:  # not our limits (they never kill so): a fault of the worker's
            if batch.attempts < settings.MAX_BATCH_ATTEMPTS:
                return _send_again(batch, attempt.pk, error=f"{exc}; sent again", log=log)
            error = f"{exc}, on attempt {batch.attempts} of {settings.MAX_BATCH_ATTEMPTS}"
    except WarehouseError as exc:  # the input or the output part: a sentence that names the cause
        status, error = BatchStatus.FAILED, str(exc)
    except Exception as exc:  # a platform fault (staging, artifact): still end the batch with the cause
        logger.exception("batch %s failed", batch_id)
        status, error = BatchStatus.FAILED, f"the platform failed to run the batch: {type(exc).__name__}: {exc}"
    ended = transitions.batch_end(batch, status, error=error, traceback=detail, result=result, part=part)
    transitions.attempt_end(attempt.pk, status if ended else BatchStatus.CANCELLED, error=error, log=log)
    finished = timezone.now()
    if ended:  # else the reaper took the batch back meanwhile (our lease ran out): its new try decides
        feed.after_batch(job.pk)
    waiting = Batch.objects.filter(job_id=job.pk, status__in=[BatchStatus.PENDING, BatchStatus.QUEUED])
    if _spare is None and not waiting.exists():  # nothing more of this job for this process to take:
        spare_start()  # the spare's imports use a free core, not one the job's batches need
    if cloudwatch.enabled():  # after the next batch is sent: shipping never holds the job up
        cloudwatch.ship_batch_log(
            job_id=job.pk,
            index=batch.index,
            attempt=number,
            log=log,
            started_at=attempt.started_at,
            finished_at=finished,
        )
    return True


def _send_again(batch: Batch, attempt_id: int, *, error: str, log: str) -> bool:
    """A worker fault (its model process killed from outside): the batch goes back to the queue, as
    a dead worker's does, for another attempt (up to MAX_BATCH_ATTEMPTS)."""
    logger.warning("%s: %s", batch, error)
    with transaction.atomic():
        if transitions.batch_requeue_lost(batch):
            dispatch.send_predict(batch.pk, batch.job.batch_config.instance_type.queue)
    transitions.attempt_end(attempt_id, BatchStatus.FAILED, error=error, log=log)
    return True


def _stop_reason(job_id) -> str:
    failed = BatchJob.objects.filter(pk=job_id, status=JobStatus.FAILED).exists()
    return "Stopped: another batch of the job failed." if failed else "Cancelled while running."


def _heartbeat(batch: Batch) -> None:
    """Extend the lease; stop when the job was cancelled or ended."""
    transitions.batch_heartbeat(batch)
    if not selectors.job_is_live(batch.job_id):
        raise Stop
