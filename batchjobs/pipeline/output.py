"""The output table, written once: the model process joins a batch's rows and predictions in Arrow
and writes them as one Parquet file, which the worker checks (its footer: columns and rows) and
moves where the output table will live (invisible until the commit); the commit adds the parts
without reading them.

A catalog that cannot hold parts (PostgreSQL) gets each batch's joined rows in staging instead, and
the commit loads them into the new table in one transaction.
"""

from __future__ import annotations

import logging
import os
import stat

import pyarrow as pa
import pyarrow.parquet as pq

from batchjobs.models import Batch, BatchJob
from batchjobs.pipeline import inputs, staging
from mlplatform.sdk import TYPES
from mlplatform.warehouse import Part, WarehouseError
from mlplatform.warehouse.lake import ROW_GROUP_ROWS as ROW_GROUP_ROWS  # the parts' row groups
from tables import selectors as table_selectors

logger = logging.getLogger(__name__)


def output_schema(input_schema: pa.Schema, job: BatchJob) -> pa.Schema:
    """The input's columns (without the ordinal), then the build's predictions."""
    predictions = [pa.field(p["name"], pa.type_for_alias(TYPES[p["type"]])) for p in job.build.schema["predictions"]]
    return pa.schema([f for f in input_schema if f.name != staging.ORDINAL] + predictions)


def part_id(job: BatchJob, index: int, attempt: int) -> str:
    """Unique per try, so a worker thought dead that finishes late never overwrites a part in use."""
    return f"{index:05d}-{attempt}-{job.pk.hex}"


def adopt_batch(job: BatchJob, index: int, attempt: int, joined_file: str, rows: int) -> Part:
    """Take the model process's output (a local Parquet file of the batch's rows with their
    predictions, joined in Arrow there) as a final part of the output table."""
    if not stat.S_ISREG(os.lstat(joined_file).st_mode):  # model code wrote it: a link could point anywhere
        raise WarehouseError(f"the output of batch {index} is not a plain file")
    schema = output_schema(inputs.input_schema(job), job)
    found = pq.read_schema(joined_file).remove_metadata()
    if found.names != schema.names:
        raise WarehouseError(f"the output of batch {index} has the columns {found.names}, not {schema.names}")
    if pq.read_metadata(joined_file).num_rows != rows:
        raise WarehouseError(f"the output of batch {index} does not have its {rows:,} rows")
    catalog, name = table_selectors.resolve(job.output_table, field="output_table")
    if catalog.supports_parts:
        return catalog.adopt_part(name, part_id(job, index, attempt), schema, joined_file)
    table = pq.read_table(joined_file).cast(schema)
    staging.write(staging.joined_path(job.pk, index), table)
    return Part(name=staging.joined_path(job.pk, index), rows=table.num_rows, size=0)


def commit(job: BatchJob, batches: list[Batch]) -> int:
    """Make the output table from the batches' parts, in batch order; its rows. TableExistsError
    when the name was taken meanwhile (the parts stay for the caller to discard)."""
    catalog, name = table_selectors.resolve(job.output_table, field="output_table")
    if job.batches_total:
        input_schema = inputs.input_schema(job)
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
