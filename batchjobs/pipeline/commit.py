"""Commit: join input and prediction shards on the ordinal into the output table, atomically.

A job succeeds only when every batch succeeded and the output table has exactly the input's rows;
otherwise it fails with a message naming the failed batches, and no output table is left behind.
"""

from __future__ import annotations

import logging

import pyarrow as pa

from batchjobs import transitions
from batchjobs.choices import BatchStatus, JobStatus
from batchjobs.models import Batch, BatchJob
from batchjobs.pipeline import staging
from batchjobs.pipeline.finish import finish
from mlplatform.sdk import TYPES
from mlplatform.warehouse import TableExistsError, WarehouseError
from tables import selectors as table_selectors
from tables import services as table_services

logger = logging.getLogger(__name__)
SHOWN_FAILURES = 10


def job_commit(job_id) -> bool:
    """Claimed once: only when extraction is done and every batch has ended."""
    if not transitions.job_commit_claim(job_id):
        return False
    job = BatchJob.objects.select_related("build", "model").get(pk=job_id)
    failed = list(job.batches.filter(status=BatchStatus.FAILED).order_by("index"))
    if failed:
        message, detail = failure_message(job, failed)
        finish(job_id, JobStatus.FAILED, message=message, detail=detail)
        return True
    try:
        rows = _write_output(job)
    except TableExistsError:
        finish(
            job_id,
            JobStatus.FAILED,
            message=(
                f"The output table {job.output_table} appeared while the job ran; it was left untouched and the "
                "predictions were not written. Trigger the job again with another output table."
            ),
        )
        return True
    except Exception as exc:
        logger.exception("committing job %s failed", job_id)
        finish(
            job_id,
            JobStatus.FAILED,
            message=f"Writing the output table {job.output_table} failed: "
            f"{type(exc).__name__}: {exc}. No output table was left.",
        )
        return True
    if rows != job.input_rows:
        _drop_quietly(job.output_table)
        finish(
            job_id,
            JobStatus.FAILED,
            message=(f"The output table had {rows:,} rows for {job.input_rows:,} input rows, so it was removed."),
        )
        return True
    # Recorded before the job says succeeded, so whoever sees the success may also drop the table.
    table_services.table_record(name=job.output_table, created_by=job.requested_by, team=job.model.team)
    if not finish(
        job_id, JobStatus.SUCCEEDED, output_rows=rows, message=f"{rows:,} rows predicted into {job.output_table}."
    ):
        _drop_quietly(job.output_table)  # cancelled or timed out while writing: no output
    return True


def failure_message(job: BatchJob, failed: list[Batch]) -> tuple[str, str]:
    total = job.batches_total
    shown = "; ".join(
        f"batch {b.index} ({b.rows:,} rows): {b.error.splitlines()[0] if b.error else 'failed'}"
        for b in failed[:SHOWN_FAILURES]
    )
    more = f"; and {len(failed) - SHOWN_FAILURES} more" if len(failed) > SHOWN_FAILURES else ""
    rows = sum(b.rows for b in failed)
    message = (
        f"{len(failed)} of {total} batches failed ({rows:,} of {job.input_rows:,} rows), so no output "
        f"table was written: {shown}{more}."
    )
    first = failed[0]
    detail = f"Batch {first.index} ({first.rows:,} rows), attempt {first.attempts}: {first.error}\n\n{first.traceback}"
    return message, detail.strip()


def output_schema(input_schema: pa.Schema, job: BatchJob) -> pa.Schema:
    predictions = [pa.field(p["name"], pa.type_for_alias(TYPES[p["type"]])) for p in job.build.schema["predictions"]]
    return pa.schema([f for f in input_schema if f.name != staging.ORDINAL] + predictions)


def _joined(job: BatchJob, schema: pa.Schema):
    """Each batch's input rows with its predictions, checked ordinal by ordinal, in order."""
    names = [p["name"] for p in job.build.schema["predictions"]]
    for index in range(job.batches_total):
        rows = staging.read(staging.input_path(job.pk, index))
        predictions = staging.read(staging.output_path(job.pk, index))
        if not rows.column(staging.ORDINAL).equals(predictions.column(staging.ORDINAL)):
            raise WarehouseError(f"the predictions of batch {index} do not line up with its input rows")
        joined = rows.drop_columns([staging.ORDINAL])
        for name in names:
            joined = joined.append_column(name, predictions.column(name))
        yield from joined.cast(schema).to_batches()


def _write_output(job: BatchJob) -> int:
    catalog, name = table_selectors.resolve(job.output_table, field="output_table")
    if job.batches_total:
        input_schema = staging.read_schema(staging.input_path(job.pk, 0))
    else:  # an empty input still gives a table, with the input's columns and the predictions
        in_catalog, in_name = table_selectors.resolve(job.input_table, field="input_table")
        input_schema = in_catalog.arrow_schema(in_name)
    schema = output_schema(input_schema, job)
    catalog.create(name, schema, _joined(job, schema))
    return catalog.row_count(name)


def _drop_quietly(output_table: str) -> None:
    table_services.table_forget(name=output_table)
    try:
        catalog, name = table_selectors.resolve(output_table)
        catalog.drop(name)
    except Exception:  # noqa: BLE001 - best effort: the job's message already says what happened
        logger.exception("could not drop %s", output_table)
