"""The job's scratch space under STAGING_URL: input shards and prediction shards by batch (and
joined rows, for an output catalog that cannot hold parts)."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from pyarrow import fs as pafs

from builds.runtime.child import ORDINAL as ORDINAL  # the input row's position: keeps the order throughout

COMPRESSION = "snappy"


def _root() -> tuple[pafs.FileSystem, str]:
    filesystem, root = pafs.FileSystem.from_uri(settings.STAGING_URL)
    return filesystem, root.rstrip("/")


def job_dir(job_id) -> str:
    return f"jobs/{job_id}"


def input_path(job_id, index: int) -> str:
    return f"{job_dir(job_id)}/input/batch-{index:05d}.parquet"


def output_path(job_id, index: int) -> str:
    return f"{job_dir(job_id)}/output/batch-{index:05d}.parquet"


def joined_path(job_id, index: int) -> str:
    """A batch's rows with their predictions, for an output catalog that cannot hold parts."""
    return f"{job_dir(job_id)}/joined/batch-{index:05d}.parquet"


def is_local() -> bool:
    return isinstance(_root()[0], pafs.LocalFileSystem)


def write(relative: str, table: pa.Table) -> None:
    filesystem, root = _root()
    filesystem.create_dir(f"{root}/{relative.rsplit('/', 1)[0]}", recursive=True)
    pq.write_table(table, f"{root}/{relative}", filesystem=filesystem, compression=COMPRESSION)


def read(relative: str) -> pa.Table:
    filesystem, root = _root()
    return pq.read_table(f"{root}/{relative}", filesystem=filesystem)


def read_schema(relative: str) -> pa.Schema:
    filesystem, root = _root()
    return pq.read_schema(f"{root}/{relative}", filesystem=filesystem)


@contextmanager
def local_files(input_relative: str, output_relative: str, workdir: Path):
    """Local paths for the model process: the staging files themselves, or copies (S3).

    The model process never gets cloud credentials, so on S3 the worker moves the files.
    """
    filesystem, root = _root()
    if isinstance(filesystem, pafs.LocalFileSystem):
        Path(f"{root}/{output_relative}").parent.mkdir(parents=True, exist_ok=True)
        yield f"{root}/{input_relative}", f"{root}/{output_relative}"
        return
    tmp = Path(tempfile.mkdtemp(dir=workdir))
    try:
        local_in, local_out = tmp / "input.parquet", tmp / "output.parquet"
        pafs.copy_files(
            f"{root}/{input_relative}",
            str(local_in),
            source_filesystem=filesystem,
            destination_filesystem=pafs.LocalFileSystem(),
        )
        yield str(local_in), str(local_out)
        if not local_out.exists():  # the worker took it away (a batch's output part)
            return
        pafs.copy_files(
            str(local_out),
            f"{root}/{output_relative}",
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=filesystem,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_job(job_id) -> None:
    filesystem, root = _root()
    try:
        filesystem.delete_dir(f"{root}/{job_dir(job_id)}")
    except (FileNotFoundError, OSError):
        pass


def remove_outputs(job_id, indexes: list[int]) -> None:
    filesystem, root = _root()
    for index in indexes:
        try:
            filesystem.delete_file(f"{root}/{output_path(job_id, index)}")
        except (FileNotFoundError, OSError):
            pass
