"""The job's scratch space under STAGING_URL: input shards by batch (an exported PostgreSQL input)
and joined rows (for an output catalog that cannot hold parts)."""

from __future__ import annotations

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


def remove_job(job_id) -> None:
    filesystem, root = _root()
    try:
        filesystem.delete_dir(f"{root}/{job_dir(job_id)}")
    except (FileNotFoundError, OSError):
        pass
