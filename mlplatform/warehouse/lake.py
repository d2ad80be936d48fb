"""The lake catalog: tables are folders of Parquet files on a local disk or in S3.

Layout: `<root>/<schema>/<table>/part-NNNNN-<write id>.parquet` plus `_manifest.json`, written
last. A table exists only when its manifest does, and readers read only the files the manifest
lists, so half-written tables, stray files and hidden folders are never seen.

Paths are built only from validated names (see names.py): user text never becomes a path, and
no SQL engine ever sees it (an unknown quoted name in DuckDB would read the file of that name).

Creating a table is atomic:
- on a local disk, the parts and the manifest go to a hidden `<schema>/.tmp-<table>-<id>/`
  folder that is then renamed into place; rename(2) never replaces a non-empty folder, so an
  existing table is never overwritten;
- on S3 (no atomic rename), the parts go under the final prefix and the manifest is written
  last, after checking that no manifest is there. Two writers racing for the same new name in
  the same instant could both pass that check; the platform prevents that upstream (no two
  unfinished jobs target one output table).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import uuid
from collections.abc import Generator, Iterable, Iterator
from functools import cached_property
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mlplatform.warehouse.base import (
    DEFAULT_BATCH_SIZE,
    Catalog,
    check_columns,
    check_schema,
    conform,
    rebatch,
)
from mlplatform.warehouse.errors import (
    TableExistsError,
    TableNameError,
    TableNotFoundError,
    WarehouseError,
)
from mlplatform.warehouse.names import NAME_RULE, TableName, is_valid_name

MANIFEST = "_manifest.json"
ROW_GROUP_ROWS = 131_072  # large enough for fast scans, small enough to keep memory low
ROW_GROUPS_PER_PART = 8  # a new part file every ~1M rows
COMPRESSION = "snappy"
_PART_RE = re.compile(r"part-[0-9]{5}-[0-9a-f]{32}\.parquet", re.ASCII)


class LakeCatalog(Catalog):
    """Parquet tables under a `file:///abs/path` or `s3://bucket/prefix` URL.

    `filesystem` may be passed ready-made (tests, custom S3 endpoints); otherwise it is made
    from the URL on first use, so constructing a catalog never touches the network.
    `atomic_rename` picks the create strategy; by default it is used on local disks only.
    """

    kind = "lake"

    def __init__(
        self,
        name: str,
        url: str,
        filesystem: pafs.FileSystem | None = None,
        *,
        atomic_rename: bool | None = None,
    ) -> None:
        super().__init__(name, url)
        parts = urlsplit(url)
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
                raise WarehouseError(f"a lake URL must be file:///absolute/path, not {url}")
            root = unquote(parts.path)
        elif parts.scheme == "s3":
            if not parts.netloc:
                raise WarehouseError(f"a lake URL must be s3://bucket/prefix, not {url}")
            root = parts.netloc + unquote(parts.path)
        else:
            raise WarehouseError(f"a lake URL starts with file:// or s3://, not {url}")
        self.root = root.rstrip("/") or "/"
        if filesystem is not None:
            self.__dict__["fs"] = filesystem  # fills the cached_property
        self._atomic_rename = atomic_rename

    @cached_property
    def fs(self) -> pafs.FileSystem:
        """The filesystem, made from the URL on first use (S3 may resolve the bucket region)."""
        filesystem, _ = pafs.FileSystem.from_uri(self.url)
        return filesystem

    @property
    def atomic_rename(self) -> bool:
        if self._atomic_rename is None:
            return isinstance(self.fs, pafs.LocalFileSystem)
        return self._atomic_rename

    # --- paths: only ever from validated names --------------------------------------------------

    def _schema_dir(self, schema: str) -> str:
        if not is_valid_name(schema):
            raise TableNameError(f'the schema "{str(schema)[:100]}" {NAME_RULE}')
        return f"{self.root.rstrip('/')}/{schema}"

    def _table_dir(self, name: TableName) -> str:
        return f"{self._schema_dir(name.schema)}/{name.table}"

    def _manifest_files(self, name: TableName) -> list[str]:
        """The paths of the table's Parquet files; TableNotFoundError if it has no manifest."""
        folder = self._table_dir(name)
        try:
            with self.fs.open_input_stream(f"{folder}/{MANIFEST}") as f:
                manifest = json.loads(f.read())
        except (FileNotFoundError, NotADirectoryError):
            raise TableNotFoundError(f'the table "{name}" does not exist') from None
        files = [entry["name"] for entry in manifest["files"]]
        # A manifest is data on disk: never let it point outside the table's folder.
        if not files or not all(_PART_RE.fullmatch(f) for f in files):
            raise WarehouseError(f'the table "{name}" has a damaged manifest')
        return [f"{folder}/{f}" for f in files]

    def _open(self, path: str) -> pq.ParquetFile:
        # Coalesced reads matter on S3, where each column chunk would otherwise be a request.
        return pq.ParquetFile(path, filesystem=self.fs, pre_buffer=not self.atomic_rename)

    # --- reading ----------------------------------------------------------------------------------

    def exists(self, name: TableName | str) -> bool:
        name = self.table_name(name)
        info = self.fs.get_file_info(f"{self._table_dir(name)}/{MANIFEST}")
        return info.type == pafs.FileType.File

    def arrow_schema(self, name: TableName | str) -> pa.Schema:
        files = self._manifest_files(self.table_name(name))
        with self._open(files[0]) as pf:
            return pf.schema_arrow

    def row_count(self, name: TableName | str) -> int:
        total = 0
        for path in self._manifest_files(self.table_name(name)):
            with self._open(path) as pf:
                total += pf.metadata.num_rows  # the footer only, no data is read
        return total

    def read_batches(
        self,
        name: TableName | str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        columns: list[str] | None = None,
    ) -> Generator[pa.RecordBatch]:
        name = self.table_name(name)
        files = self._manifest_files(name)
        if columns is not None:
            check_columns(name, columns, self.arrow_schema(name).names)
        return rebatch(self._scan(files, batch_size, columns), batch_size)

    def _scan(self, files: list[str], batch_size: int, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
        for path in files:
            with self._open(path) as pf:
                yield from pf.iter_batches(batch_size=batch_size, columns=columns)

    def list_schemas(self) -> list[str]:
        infos = self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory and is_valid_name(i.base_name))

    def list_tables(self, schema: str) -> list[str]:
        folder = self._schema_dir(schema)
        infos = self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        names = [i.base_name for i in infos if i.type == pafs.FileType.Directory and is_valid_name(i.base_name)]
        manifests = self.fs.get_file_info([f"{folder}/{n}/{MANIFEST}" for n in names])
        return sorted(n for n, m in zip(names, manifests, strict=True) if m.type == pafs.FileType.File)

    # --- writing ----------------------------------------------------------------------------------

    def create(
        self,
        name: TableName | str,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch | pa.Table],
    ) -> int:
        name = self.table_name(name)
        schema = check_schema(schema).remove_metadata()
        if self.exists(name):
            raise TableExistsError(f'the table "{name}" already exists')
        if self.atomic_rename:
            return self._create_by_rename(name, schema, batches)
        return self._create_with_manifest(name, schema, batches)

    def _create_by_rename(
        self, name: TableName, schema: pa.Schema, batches: Iterable[pa.RecordBatch | pa.Table]
    ) -> int:
        write_id = uuid.uuid4().hex
        tmp = f"{self._schema_dir(name.schema)}/.tmp-{name.table}-{write_id}"
        final = self._table_dir(name)
        self.fs.create_dir(tmp, recursive=True)
        try:
            rows = self._write_table(tmp, write_id, schema, batches)
            try:
                # rename(2) replaces only a missing or empty folder, never a table.
                os.rename(tmp, final)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    raise TableExistsError(f'the table "{name}" already exists') from None
                raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return rows

    def _create_with_manifest(
        self, name: TableName, schema: pa.Schema, batches: Iterable[pa.RecordBatch | pa.Table]
    ) -> int:
        write_id = uuid.uuid4().hex
        final = self._table_dir(name)
        written: list[str] = []
        try:
            rows = self._write_table(final, write_id, schema, batches, written, manifest=False)
            if self.exists(name):  # S3 has no rename: the manifest's absence is the lock
                raise TableExistsError(f'the table "{name}" already exists')
            self._write_manifest(final, written, rows)
        except BaseException:
            self._delete_quietly(written)  # only our own parts: another writer's stay
            try:
                if not self.fs.get_file_info(pafs.FileSelector(final, allow_not_found=True)):
                    self.fs.delete_dir(final)  # the empty folder marker S3 clients leave
            except OSError:
                pass
            raise
        return rows

    def _write_table(
        self,
        folder: str,
        write_id: str,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch | pa.Table],
        written: list[str] | None = None,
        *,
        manifest: bool = True,
    ) -> int:
        """Write the parts into `folder` (names appended to `written`) and return the rows."""
        written = [] if written is None else written
        writer: pq.ParquetWriter | None = None
        groups = rows = 0
        try:
            for batch in rebatch(conform(batches, schema), ROW_GROUP_ROWS):
                if writer is None or groups == ROW_GROUPS_PER_PART:
                    if writer is not None:
                        writer.close()
                    writer, groups = self._part_writer(folder, write_id, written, schema), 0
                writer.write_batch(batch, row_group_size=ROW_GROUP_ROWS)
                groups += 1
                rows += batch.num_rows
            if writer is None:  # an empty table still has one file, which holds its schema
                writer = self._part_writer(folder, write_id, written, schema)
            writer.close()
        except BaseException:
            if writer is not None:
                writer.close()
            raise
        if manifest:
            self._write_manifest(folder, written, rows)
        return rows

    def _part_writer(self, folder: str, write_id: str, written: list[str], schema: pa.Schema) -> pq.ParquetWriter:
        path = f"{folder}/part-{len(written):05d}-{write_id}.parquet"
        written.append(path)
        return pq.ParquetWriter(path, schema, filesystem=self.fs, compression=COMPRESSION)

    def _write_manifest(self, folder: str, files: list[str], rows: int) -> None:
        entries = [{"name": path.rsplit("/", 1)[1]} for path in files]
        body = json.dumps({"version": 1, "rows": rows, "files": entries}).encode()
        with self.fs.open_output_stream(f"{folder}/{MANIFEST}") as f:
            f.write(body)

    def _delete_quietly(self, paths: list[str]) -> None:
        for path in paths:
            try:
                self.fs.delete_file(path)
            except OSError:
                pass

    def drop(self, name: TableName | str) -> None:
        name = self.table_name(name)
        if not self.exists(name):
            raise TableNotFoundError(f'the table "{name}" does not exist')
        final = self._table_dir(name)
        if self.atomic_rename:
            # Move it out of sight in one step, then delete at leisure.
            trash = f"{self._schema_dir(name.schema)}/.drop-{name.table}-{uuid.uuid4().hex}"
            try:
                os.rename(final, trash)
            except FileNotFoundError:
                raise TableNotFoundError(f'the table "{name}" does not exist') from None
            shutil.rmtree(trash, ignore_errors=True)
        else:
            self.fs.delete_file(f"{final}/{MANIFEST}")  # invisible from here on
            self.fs.delete_dir(final)
