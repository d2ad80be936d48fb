"""Commit: every batch succeeded and the row counts the batches recorded add up to the input's
rows, then the output table appears at once from the batches' parts (no data is read).

Otherwise the job fails with a message naming the failed batches, and no output table is left.
"""

from __future__ import annotations

import logging

from batchjobs import transitions
from batchjobs.choices import BatchStatus, JobStatus
from batchjobs.models import BatchJob
from batchjobs.pipeline import output
from batchjobs.pipeline.finish import failure_message, finish
from mlplatform.warehouse import TableExistsError
from tables import selectors as table_selectors
from tables import services as table_services

logger = logging.getLogger(__name__)


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
    batches = list(job.batches.order_by("index"))
    counted = sum(b.output_rows or 0 for b in batches)
    if len(batches) != job.batches_total or counted != job.input_rows or any(not b.part_name for b in batches):
        output.discard(job)
        finish(
            job_id,
            JobStatus.FAILED,
            message=f"The batches' outputs had {counted:,} rows for {job.input_rows:,} input rows, so no output "
            "table was written.",
        )
        return True
    try:
        rows = output.commit(job, batches)
    except TableExistsError:
        output.discard(job)
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
        output.discard(job)
        finish(
            job_id,
            JobStatus.FAILED,
            message=f"Writing the output table {job.output_table} failed: "
            f"{type(exc).__name__}: {exc}. No output table was left.",
        )
        return True
    # Recorded before the job says succeeded, so whoever sees the success may also drop the table.
    table_services.table_record(name=job.output_table, created_by=job.requested_by, team=job.model.team, job=job)
    if not finish(
        job_id, JobStatus.SUCCEEDED, output_rows=rows, message=f"{rows:,} rows predicted into {job.output_table}."
    ):
        _drop_quietly(job.output_table)  # cancelled or timed out while writing: no output
        return True
    output.discard(job, keep=frozenset(b.part_name for b in batches))  # parts of tries that were taken back
    return True


def _drop_quietly(output_table: str) -> None:
    table_services.table_forget(name=output_table)
    try:
        catalog, name = table_selectors.resolve(output_table)
        catalog.drop(name)
    except Exception:  # noqa: BLE001 - best effort: the job's message already says what happened
        logger.exception("could not drop %s", output_table)
