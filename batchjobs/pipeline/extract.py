"""Plan or extract a job's input into batches.

A lake (Delta Lake) input is planned, not copied: the job reads the table's current version, and
each batch is a range of that version's row groups (a large row group is split into slices). A
row's ordinal is its offset in that version. Planning reads the log and the files' footers only.

Any other input (a PostgreSQL table can change under a job) is exported once into Parquet shards in
staging, one per batch; batches are sent as soon as their shard is written, so prediction overlaps
the export.
"""

from __future__ import annotations

import logging
import math

import pyarrow as pa
from django.db import transaction

from batchjobs import selectors, transitions
from batchjobs.choices import JobPhase, JobStatus
from batchjobs.models import Batch, BatchJob
from batchjobs.pipeline import feed, finish, staging
from mlplatform.warehouse import Slice
from tables import selectors as table_selectors

logger = logging.getLogger(__name__)

TARGET_BATCH_BYTES = 48 * 1024 * 1024  # in Arrow memory; the model's DataFrame is a few times that
MIN_BATCH_ROWS = 1_000
MAX_BATCH_ROWS = 250_000
BATCHES_PER_PROCESS = 3  # enough that one slow batch does not leave a process idle at the end


def choose_batch_rows(*, rows: int, bytes_per_row: float, parallelism: int) -> int:
    """The platform picks the batch size from the row count and the bytes per row; users never do."""
    by_bytes = TARGET_BATCH_BYTES / max(bytes_per_row, 1.0)
    by_parallelism = math.ceil(rows / max(parallelism * BATCHES_PER_PROCESS, 1))
    size = min(by_bytes, by_parallelism, MAX_BATCH_ROWS)
    return int(max(size, min(MIN_BATCH_ROWS, rows), 1))


def plan_batches(row_groups: list[Slice], batch_rows: int) -> list[list[Slice]]:
    """Group a snapshot's row groups, in order, into batches of about `batch_rows` rows: whole row
    groups where they are small, a large one cut into equal slices (each batch then reads only its
    own row groups, once)."""
    batches: list[list[Slice]] = []
    current: list[Slice] = []
    current_rows = 0
    for group in row_groups:
        pieces = max(1, round(group.rows / batch_rows))
        size = math.ceil(group.rows / pieces)
        for offset in range(0, group.rows, size):
            piece = Slice(group.file, group.row_group, group.offset + offset, min(size, group.rows - offset))
            if current and current_rows + piece.rows > batch_rows * 1.25:
                batches.append(current)
                current, current_rows = [], 0
            current.append(piece)
            current_rows += piece.rows
    if current:
        batches.append(current)
    return batches


def job_extract(job_id) -> bool:
    """Write the shards and create the batches. A redelivered task finds the step claimed."""
    if not transitions.job_step_claim(job_id, phase=JobPhase.EXTRACTING):  # free, or its worker died
        return False
    job = BatchJob.objects.select_related("batch_config__instance_type").get(pk=job_id)
    Batch.objects.filter(job=job).delete()
    staging.remove_job(job.pk)
    try:
        rows = _extract(job)
    except Exception as exc:  # the input changed or vanished since the checks, or staging failed
        logger.exception("extracting job %s failed", job_id)
        finish.finish(
            job_id,
            JobStatus.FAILED,
            message=f"Extracting the input table {job.input_table} failed: {type(exc).__name__}: {exc}",
        )
        return True
    if rows is None:  # cancelled meanwhile
        finish.finish_cancelled_if_idle(job_id)
        return True
    feed.after_batch(job_id)  # covers every batch having finished before extraction did
    return True


def _extract(job: BatchJob) -> int | None:
    catalog, name = table_selectors.resolve(job.input_table, field="input_table")
    if catalog.supports_snapshots:
        return _plan(job, catalog, name)
    total = catalog.row_count(name)
    sample = catalog.head(name, n=1000)
    bytes_per_row = sample.nbytes / max(sample.num_rows, 1)
    batch_rows = choose_batch_rows(rows=total, bytes_per_row=bytes_per_row, parallelism=job.parallelism)
    BatchJob.objects.filter(pk=job.pk).update(input_schema=sample.schema.remove_metadata().serialize().to_pybytes())
    index = ordinal = 0
    batches = catalog.read_batches(name, batch_size=batch_rows)
    try:
        for batch in batches:
            if not selectors.job_is_live(job.pk):
                return None
            staging.write(staging.input_path(job.pk, index), pa.Table.from_batches([batch]))
            with transaction.atomic():
                Batch.objects.create(job=job, index=index, rows=batch.num_rows, first_ordinal=ordinal)
                transitions.job_step_renew(job.pk)
            feed.feed(job.pk)
            index += 1
            ordinal += batch.num_rows
    finally:
        batches.close()
    transitions.job_extracted(job.pk, input_rows=ordinal, batches_total=index)
    return ordinal


def _plan(job: BatchJob, catalog, name) -> int | None:
    """Batches as row groups of the table's current version: nothing is copied."""
    snapshot = catalog.snapshot(name)
    total = snapshot.rows
    sample = catalog.head(name, n=1000)
    bytes_per_row = sample.nbytes / max(sample.num_rows, 1)
    batch_rows = choose_batch_rows(rows=total, bytes_per_row=bytes_per_row, parallelism=job.parallelism)
    batches, ordinal = [], 0
    for index, slices in enumerate(plan_batches(snapshot.row_groups, batch_rows)):
        rows = sum(s.rows for s in slices)
        source = [[s.file, s.row_group, s.offset, s.rows] for s in slices]
        batches.append(Batch(job=job, index=index, rows=rows, first_ordinal=ordinal, source=source))
        ordinal += rows
    if not selectors.job_is_live(job.pk):
        return None
    with transaction.atomic():
        Batch.objects.bulk_create(batches)
        BatchJob.objects.filter(pk=job.pk).update(
            input_version=snapshot.version, input_schema=snapshot.schema.serialize().to_pybytes()
        )
        transitions.job_extracted(job.pk, input_rows=total, batches_total=len(batches))
    feed.feed(job.pk)
    return total
