"""The output table, written once: the worker joins a batch's rows (as it read them) with the
model's predictions (checked: a plain file, the build's columns, one per row) in Arrow and writes
the part where the output table will live (invisible until the commit); the commit adds the parts
without reading them. The model process never writes table data, so it cannot alter input columns.

A catalog that cannot hold parts (PostgreSQL) gets each batch's joined rows in staging instead, and
the commit loads them into the new table in one transaction.
"""

from __future__ import annotations

import logging
import os
import stat

import pyarrow as pa

from batchjobs.models import Batch, BatchJob
from batchjobs.pipeline import inputs, staging
from mlplatform.sdk.schema import arrow_type, arrow_type_name
from mlplatform.warehouse import Part, WarehouseError
from tables import selectors as table_selectors

logger = logging.getLogger(__name__)


def output_schema(input_schema: pa.Schema, job: BatchJob) -> pa.Schema:
    """The input's columns (without the ordinal), then the build's predictions."""
    predictions = [pa.field(p["name"], arrow_type(arrow_type_name(p["type"]))) for p in job.build.schema["predictions"]]
    return pa.schema([f for f in input_schema if f.name != staging.ORDINAL] + predictions)


def part_id(job: BatchJob, index: int, attempt: int) -> str:
    """Unique per try, so a worker thought dead that finishes late never overwrites a part in use."""
    return f"{index:05d}-{attempt}-{job.pk.hex}"


def read_predictions(job: BatchJob, index: int, path: str, rows: int) -> pa.Table:
    """The model process's predictions for batch `index` (an Arrow file it wrote), checked: a plain
    file, the build's prediction columns in order, one row per input row."""
    if not stat.S_ISREG(os.lstat(path).st_mode):  # model code wrote it: a link could point anywhere
        raise WarehouseError(f"the predictions of batch {index} are not a plain file")
    with pa.memory_map(path) as source:
        try:
            predictions = pa.ipc.open_file(source).read_all()
        except (pa.ArrowInvalid, OSError) as exc:
            raise WarehouseError(f"the predictions of batch {index} cannot be read: {exc}") from None
    names = [p["name"] for p in job.build.schema["predictions"]]
    if predictions.column_names != names:
        found = predictions.column_names
        raise WarehouseError(f"the predictions of batch {index} have the columns {found}, not {names}")
    if predictions.num_rows != rows:
        raise WarehouseError(f"the predictions of batch {index} have {predictions.num_rows:,} rows, not {rows:,}")
    return predictions


def write_batch(job: BatchJob, index: int, attempt: int, rows: pa.Table, predictions: pa.Table) -> Part:
    """Write batch `index`'s output part: its input rows (as the worker read them) joined with the
    predictions in Arrow, written once where the output table will live (invisible until the
    commit), or into staging for a catalog that cannot hold parts."""
    schema = output_schema(inputs.input_schema(job), job)
    joined = rows
    for column in predictions.column_names:
        joined = joined.append_column(predictions.schema.field(column), predictions.column(column))
    catalog, name = table_selectors.resolve(job.output_table, field="output_table")
    if catalog.supports_parts:
        return catalog.write_part(name, part_id(job, index, attempt), schema, joined)
    try:
        joined = joined.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise WarehouseError(f"the output of batch {index} does not fit the output table: {exc}") from None
    staging.write(staging.joined_path(job.pk, index), joined)
    return Part(name=staging.joined_path(job.pk, index), rows=joined.num_rows, size=0)


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
