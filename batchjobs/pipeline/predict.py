"""Predict one batch in a model process of this worker, holding a lease while it runs.

The model process is kept for the next batches of the same build and config (loaded once); a
crash, hang, memory error or sys.exit fails only this batch, and this worker goes on.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db.models import F, Max
from django.utils import timezone

from batchjobs import cloudwatch
from batchjobs.choices import BatchStatus, JobStatus
from batchjobs.models import Batch, BatchAttempt, BatchJob
from batchjobs.pipeline import lifecycle, staging
from builds.models import BatchConfig, Build
from builds.runtime import artifacts
from builds.runtime.process import ModelProcess, ModelProcessError
from mlplatform.sdk import TYPES

logger = logging.getLogger(__name__)


class Stop(Exception):
    """The job was cancelled or ended while this batch ran."""


@dataclass
class _Loaded:
    key: tuple
    process: ModelProcess


_loaded: _Loaded | None = None  # one model process per worker process, reused across batches


def _close_loaded() -> None:
    global _loaded
    if _loaded is not None:
        _loaded.process.close()
        _loaded = None


atexit.register(_close_loaded)


def model_threads(config: BatchConfig, parallelism: int) -> int:
    """Threads for numerical libraries in one model process: its share of the instance's vCPUs."""
    return max(1, config.instance_type.vcpus // max(parallelism, 1))


def memory_limit_mb(config: BatchConfig, parallelism: int) -> int:
    """Each model process's share of the instance type's memory."""
    return max(256, config.instance_type.memory_mib // max(parallelism, 1))


def model_process(job: BatchJob) -> ModelProcess:
    """The loaded model for this job's build and config: reused, or started and loaded now."""
    global _loaded
    config = job.batch_config
    key = (
        str(job.build_id),
        config.pk,
        memory_limit_mb(config, job.parallelism),
        model_threads(config, job.parallelism),
    )
    if _loaded is not None and _loaded.key == key and _loaded.process.alive:
        return _loaded.process
    _close_loaded()
    build = job.build
    local = artifacts.materialize(build_id=str(build.id), kind=build.artifact_kind, relative=build.artifact_path)
    workdir = settings.DATA_DIR / "work" / f"model-{os.getpid()}"
    threads = str(model_threads(config, job.parallelism))
    env = {"OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, **config.env}
    process = ModelProcess(
        env=env, workdir=workdir, memory_mb=memory_limit_mb(config, job.parallelism), log_cap=settings.LOG_CAP_BYTES
    ).start()
    try:
        process.call(
            {"op": "load", "kind": build.artifact_kind, "path": str(local.path), "entrypoint": build.entrypoint},
            timeout=settings.PREDICT_TIMEOUT_S,
        )
    except ModelProcessError:
        process.close()
        raise
    _loaded = _Loaded(key=key, process=process)
    return process


def prediction_types(build: Build) -> dict[str, str]:
    return {p["name"]: TYPES[p["type"]] for p in build.schema["predictions"]}


def batch_predict(batch_id: int) -> bool:
    """Run one batch. Returns False when it was not ours to run (claimed by someone else)."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    claimed = Batch.objects.filter(pk=batch_id, status=BatchStatus.QUEUED, job__status=JobStatus.RUNNING).update(
        status=BatchStatus.RUNNING,
        attempts=F("attempts") + 1,
        lease_expires_at=lifecycle.lease(),
        worker=worker,
        worker_pid=os.getpid(),
        started_at=timezone.now(),
        finished_at=None,
        error="",
        traceback="",
    )
    if not claimed:
        return False
    batch = Batch.objects.select_related("job__build", "job__batch_config__instance_type").get(pk=batch_id)
    job = batch.job
    # Numbered over the batch's whole life: a retried job's batches keep their earlier attempts.
    number = (batch.attempt_log.aggregate(n=Max("number"))["n"] or 0) + 1
    attempt = BatchAttempt.objects.create(batch=batch, number=number, worker=worker)
    log, status, error, detail, result = "", BatchStatus.SUCCEEDED, "", "", {}
    try:
        process = model_process(job)
        with staging.local_files(
            staging.input_path(job.pk, batch.index), staging.output_path(job.pk, batch.index), Path(process.workdir)
        ) as (local_in, local_out):
            reply = process.call(
                {
                    "op": "predict",
                    "input": local_in,
                    "output": local_out,
                    "max_row_bytes": settings.MAX_ROW_BYTES,
                    "types": prediction_types(job.build),
                },
                timeout=settings.PREDICT_TIMEOUT_S,
                on_wait=lambda: _heartbeat(batch),
                wait_interval=max(1.0, settings.BATCH_LEASE_S / 4),
            )
        log, result = reply.log, reply.result
        notes = "".join(f"[platform] {note}\n" for note in result.get("notes", []))
        log = notes + log
    except Stop:
        _close_loaded()  # the model process was killed mid-batch
        status, error = BatchStatus.CANCELLED, "Cancelled while running."
    except ModelProcessError as exc:
        if not _loaded or not _loaded.process.alive:
            _close_loaded()
        status, error, detail, log = BatchStatus.FAILED, str(exc), exc.traceback, exc.log
    except Exception as exc:  # a platform fault (staging, artifact): still end the batch with the cause
        logger.exception("batch %s failed", batch_id)
        status, error = BatchStatus.FAILED, f"the platform failed to run the batch: {type(exc).__name__}: {exc}"
    ended = Batch.objects.filter(pk=batch_id, status=BatchStatus.RUNNING, attempts=batch.attempts).update(
        status=status,
        error=error[: lifecycle.MESSAGE_CAP],
        traceback=detail[: lifecycle.MESSAGE_CAP],
        finished_at=timezone.now(),
        lease_expires_at=None,
        predict_seconds=result.get("predict_seconds"),
        peak_rss_mib=(result["peak_rss_kib"] / 1024) if "peak_rss_kib" in result else None,
    )
    BatchAttempt.objects.filter(pk=attempt.pk).update(
        status=status if ended else BatchStatus.CANCELLED,
        error=error[: lifecycle.MESSAGE_CAP],
        log=log,
        finished_at=timezone.now(),
    )
    finished = timezone.now()
    if ended:  # else the reaper took the batch back meanwhile (our lease ran out): its new try decides
        lifecycle.after_batch(job.pk)
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


def _heartbeat(batch: Batch) -> None:
    """Extend the lease; stop when the job was cancelled or ended."""
    Batch.objects.filter(pk=batch.pk, status=BatchStatus.RUNNING, attempts=batch.attempts).update(
        lease_expires_at=lifecycle.lease()
    )
    if not lifecycle.job_is_live(batch.job_id):
        raise Stop
