"""The output table, written once: each batch joins its input rows and predictions in Arrow and
writes its final part where the output table will live (invisible until the commit), and the
commit adds the parts without reading them.

A catalog that cannot hold parts (PostgreSQL) gets each batch's joined rows in staging instead, and
the commit loads them into the new table in one transaction.
"""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.parquet as pq

from batchjobs.models import Batch, BatchJob
from batchjobs.pipeline import staging
from mlplatform.sdk import TYPES
from mlplatform.warehouse import Part, WarehouseError
from tables import selectors as table_selectors

logger = logging.getLogger(__name__)


def output_schema(input_schema: pa.Schema, job: BatchJob) -> pa.Schema:
    """The input's columns (without the ordinal), then the build's predictions."""
    predictions = [pa.field(p["name"], pa.type_for_alias(TYPES[p["type"]])) for p in job.build.schema["predictions"]]
    return pa.schema([f for f in input_schema if f.name != staging.ORDINAL] + predictions)


def joined(rows: pa.Table, predictions: pa.Table, job: BatchJob, index: int) -> pa.Table:
    """A batch's input rows with their predictions, checked ordinal by ordinal, in the output's schema."""
    if not rows.column(staging.ORDINAL).equals(predictions.column(staging.ORDINAL)):
        raise WarehouseError(f"the predictions of batch {index} do not line up with its input rows")
    table = rows.drop_columns([staging.ORDINAL])
    for prediction in job.build.schema["predictions"]:
        table = table.append_column(prediction["name"], predictions.column(prediction["name"]))
    return table.cast(output_schema(rows.schema, job))


def part_id(job: BatchJob, index: int, attempt: int) -> str:
    """Unique per try, so a worker thought dead that finishes late never overwrites a part in use."""
    return f"{index:05d}-{attempt}-{job.pk.hex}"


def write_batch(job: BatchJob, index: int, attempt: int, input_file: str, predictions_file: str) -> Part:
    """Join a predicted batch (local Parquet files) and write it as a final part of the output."""
    rows, predictions = pq.read_table(input_file), pq.read_table(predictions_file)
    table = joined(rows, predictions, job, index)
    catalog, name = table_selectors.resolve(job.output_table, field="output_table")
    if catalog.supports_parts:
        return catalog.write_part(name, part_id(job, index, attempt), table.schema, table)
    staging.write(staging.joined_path(job.pk, index), table)
    return Part(name=staging.joined_path(job.pk, index), rows=table.num_rows, size=0)


def commit(job: BatchJob, batches: list[Batch]) -> int:
    """Make the output table from the batches' parts, in batch order; its rows. TableExistsError
    when the name was taken meanwhile (the parts stay for the caller to discard)."""
    catalog, name = table_selectors.resolve(job.output_table, field="output_table")
    if job.batches_total:
        input_schema = staging.read_schema(staging.input_path(job.pk, 0))  # a footer, not data
    else:  # an empty input still gives a table, with the input's columns and the predictions
        in_catalog, in_name = table_selectors.resolve(job.input_table, field="input_table")
        input_schema = in_catalog.arrow_schema(in_name)
    schema = output_schema(input_schema, job)
    if catalog.supports_parts:
        parts = [Part(name=b.part_name, rows=b.output_rows, size=b.part_bytes) for b in batches]
        return catalog.commit_parts(name, schema, parts)
    return catalog.create(name, schema, (staging.read(b.part_name) for b in batches))


def discard(job: BatchJob, keep: frozenset[str] = frozenset()) -> None:
    """Remove the job's uncommitted parts from the output table's folder (best effort)."""
    try:
        catalog, name = table_selectors.resolve(job.output_table, field="output_table")
        if catalog.supports_parts:
            catalog.discard_parts(name, job.pk.hex, keep=keep)
    except Exception:  # noqa: BLE001 - never fail a job's ending over leftovers
        logger.exception("could not remove the parts of job %s", job.pk)
