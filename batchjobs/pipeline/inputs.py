"""A batch's input rows, as one local file the model process reads: its slices of the input
table's planned version (read where they lie: a local disk, or ranged reads from S3), or its
staged shard (an exported PostgreSQL input)."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from batchjobs.models import Batch, BatchJob
from batchjobs.pipeline import staging
from mlplatform.warehouse import Slice
from tables import selectors as table_selectors


def input_schema(job: BatchJob) -> pa.Schema:
    """The input's columns as the job read them (recorded when it was planned or exported)."""
    if job.input_schema is not None:
        return pa.ipc.read_schema(pa.py_buffer(bytes(job.input_schema)))
    return staging.read_schema(staging.input_path(job.pk, 0))  # a job extracted before schemas were kept


@contextmanager
def batch_files(job: BatchJob, batch: Batch, workdir: Path):
    """(input, output): local paths for the model process. The input is an Arrow file (the
    process maps it, no copy) or a Parquet shard; the output is where it writes the batch's part."""
    if not batch.source:
        with staging.local_files(
            staging.input_path(job.pk, batch.index), staging.output_path(job.pk, batch.index), workdir
        ) as paths:
            yield paths
        return
    catalog, name = table_selectors.resolve(job.input_table, field="input_table")
    table = catalog.read_slices(name, [Slice(*piece) for piece in batch.source], input_schema(job))
    folder = Path(tempfile.mkdtemp(dir=workdir))
    try:
        local_in = folder / "input.arrow"
        with pa.OSFile(str(local_in), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        del table  # the worker keeps no rows while the model runs
        yield str(local_in), str(folder / "output.parquet")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
