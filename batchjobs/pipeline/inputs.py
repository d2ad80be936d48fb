"""A batch's input rows, read by the worker: its slices of the input table's planned version (read
where they lie: a local disk, or ranged reads from S3), or its staged shard (an exported PostgreSQL
input); handed to the model process as one local Arrow file."""

from __future__ import annotations

from contextlib import contextmanager

import pyarrow as pa

from batchjobs.models import Batch, BatchJob
from batchjobs.pipeline import staging
from builds.runtime.process import ModelProcess
from mlplatform.warehouse import Slice
from tables import selectors as table_selectors


def input_schema(job: BatchJob) -> pa.Schema:
    """The input's columns as the job read them (recorded when it was planned or exported)."""
    if job.input_schema is not None:
        return pa.ipc.read_schema(pa.py_buffer(bytes(job.input_schema)))
    return staging.read_schema(staging.input_path(job.pk, 0))  # a job extracted before schemas were kept


@contextmanager
def batch_files(job: BatchJob, batch: Batch, process: ModelProcess):
    """(rows, input, output): the batch's rows, read by the worker (its slices of the planned
    version, or its staged shard; local or S3), and the model process's paths: an Arrow file of
    the rows in its input folder (it maps the file, no copy) and its output file, emptied. The
    worker keeps the rows: the output part is joined from them, never from what the model wrote."""
    if batch.source:
        catalog, name = table_selectors.resolve(job.input_table, field="input_table")
        table = catalog.read_slices(name, [Slice(*piece) for piece in batch.source], input_schema(job))
    else:
        table = staging.read(staging.input_path(job.pk, batch.index))
    local_in = process.input_dir / f"batch-{batch.index}.arrow"
    try:
        with pa.OSFile(str(local_in), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        yield table, process.hand_over(local_in), process.new_output()
    finally:
        local_in.unlink(missing_ok=True)
