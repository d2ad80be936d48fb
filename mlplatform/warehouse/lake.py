"""The lake catalog: tables are Delta Lake tables on a local disk or in S3.

A table is `<root>/<schema>/<table>/`: Parquet files plus its `_delta_log`, readable as it is by
Spark, Trino, DuckDB, Polars and pandas. A table exists from its first commit, and readers read
only the files its log adds, so parts being written, stray files and hidden folders are never seen.

Paths are built only from validated names (see names.py): user text never becomes a path, and
no SQL engine ever sees it.

Creating a table writes its Parquet parts into the table's folder, then commits them as the
table's version 0 with delta-rs (the `deltalake` package). That commit is put-if-absent: on a
local disk by an atomic rename that never replaces a file, on S3 by a conditional PUT
(`If-None-Match`, the `conditional_put: etag` mechanism delta-rs documents), so of two writers
racing for one new name exactly one wins; the other removes its own parts and is told the table
exists. Parts are read back with pyarrow (footers for the schema and the row groups, ranged reads
on S3); the log is read with delta-rs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from urllib.parse import parse_qs, unquote, urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable, Transaction, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound
from deltalake.transaction import AddAction, CommitProperties, create_table_with_add_actions

from mlplatform.parquet import dictionary_columns
from mlplatform.warehouse.base import (
    DEFAULT_BATCH_SIZE,
    Catalog,
    Part,
    Slice,
    Snapshot,
    cast_batch,
    check_columns,
    check_same_columns,
    check_schema,
    conform,
    in_order,
    rebatch,
)
from mlplatform.warehouse.errors import (
    TableExistsError,
    TableNameError,
    TableNotFoundError,
    WarehouseError,
)
from mlplatform.warehouse.names import NAME_RULE, TableName, is_valid_name

DELTA_LOG = "_delta_log"
ROW_GROUP_ROWS = 131_072  # large enough for fast scans, small enough to keep memory low
ROW_GROUPS_PER_PART = 8  # a new part file every ~1M rows
COMPRESSION = "snappy"
# A data file the log names: a plain relative path inside the table's folder, never ".." or a URL.
_DATA_PATH_RE = re.compile(r"(?:[A-Za-z0-9_.=%+-]+/)*[A-Za-z0-9_.=%+-]+\.parquet", re.ASCII)
_PART_ID_RE = re.compile(r"[0-9a-z][0-9a-z-]{0,99}", re.ASCII)
_TXN_ID_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.:-]{0,199}", re.ASCII)
# Reader features whose data a plain Parquet read would get wrong: refused with a sentence.
UNSUPPORTED_READER_FEATURES = {"deletionVectors", "columnMapping", "v2Checkpoint"}


class LakeCatalog(Catalog):
    """Delta Lake tables under a `file:///abs/path` or `s3://bucket/prefix` URL.

    An S3 URL may carry pyarrow's query options (`?endpoint_override=host:port&scheme=http&region=…`,
    for an S3-compatible server); delta-rs gets the same endpoint. Credentials come from the
    environment (boto3's and object_store's usual variables), never from the URL.
    `filesystem` may be passed ready-made (tests); otherwise it is made from the URL on first use,
    so constructing a catalog never touches the network. `storage_options` add to or override what
    delta-rs is given.
    """

    kind = "lake"

    def __init__(
        self,
        name: str,
        url: str,
        filesystem: pafs.FileSystem | None = None,
        *,
        storage_options: dict[str, str] | None = None,
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
        self.on_s3 = parts.scheme == "s3"
        self._query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        self._extra_options = dict(storage_options or {})
        if filesystem is not None:
            self.__dict__["fs"] = filesystem  # fills the cached_property

    @cached_property
    def fs(self) -> pafs.FileSystem:
        """The filesystem, made from the URL on first use (S3 may resolve the bucket region)."""
        filesystem, _ = pafs.FileSystem.from_uri(self.url)
        return filesystem

    @cached_property
    def storage_options(self) -> dict[str, str]:
        """What delta-rs needs to reach the tables: for S3 the endpoint the URL names, and the
        conditional PUT that makes a commit put-if-absent."""
        if not self.on_s3:
            return dict(self._extra_options)
        options = {"conditional_put": "etag"}
        endpoint = self._query.get("endpoint_override")
        if endpoint:
            scheme = self._query.get("scheme", "https")
            options["AWS_ENDPOINT_URL"] = endpoint if "://" in endpoint else f"{scheme}://{endpoint}"
            if options["AWS_ENDPOINT_URL"].startswith("http://"):
                options["AWS_ALLOW_HTTP"] = "true"
        if self._query.get("region"):
            options["AWS_REGION"] = self._query["region"]
        return {**options, **self._extra_options}

    # --- paths: only ever from validated names --------------------------------------------------

    def _schema_dir(self, schema: str) -> str:
        if not is_valid_name(schema):
            raise TableNameError(f'the schema "{str(schema)[:100]}" {NAME_RULE}')
        return f"{self.root.rstrip('/')}/{schema}"

    def _table_dir(self, name: TableName) -> str:
        return f"{self._schema_dir(name.schema)}/{name.table}"

    def table_uri(self, name: TableName | str) -> str:
        """The table's location as Delta Lake readers take it (a path, or an s3:// URL)."""
        folder = self._table_dir(self.table_name(name))
        return f"s3://{folder}" if self.on_s3 else folder

    def _open(self, path: str) -> pq.ParquetFile:
        # Coalesced reads matter on S3, where each column chunk would otherwise be a request.
        return pq.ParquetFile(path, filesystem=self.fs, pre_buffer=self.on_s3)

    # --- the log ----------------------------------------------------------------------------------

    def _has_log(self, name: TableName) -> bool:
        """Whether the table's folder has a `_delta_log` (cheap; a file or a stray folder has none)."""
        return self.fs.get_file_info(f"{self._table_dir(name)}/{DELTA_LOG}").type == pafs.FileType.Directory

    def _table(self, name: TableName) -> DeltaTable:
        """The table's current snapshot; TableNotFoundError when it has no commit."""
        if not self._has_log(name):
            raise TableNotFoundError(f'the table "{name}" does not exist')
        try:
            table = DeltaTable(self.table_uri(name), storage_options=self.storage_options)
        except DeltaTableNotFound:
            raise TableNotFoundError(f'the table "{name}" does not exist') from None
        except (DeltaError, OSError) as exc:
            raise WarehouseError(f'the table "{name}" cannot be read: {_first_line(exc)}') from None
        unsupported = UNSUPPORTED_READER_FEATURES & set(table.protocol().reader_features or [])
        if unsupported or table.metadata().partition_columns:
            what = ", ".join(sorted(unsupported)) or "partition columns"
            raise WarehouseError(f'the table "{name}" uses a Delta Lake feature the platform does not read yet: {what}')
        return table

    def _files(self, name: TableName, table: DeltaTable | None = None) -> list[tuple[str, int | None]]:
        """The snapshot's data files in the order they were added, with their row counts when the log
        has them. A Delta table has no row order of its own; this is the platform's: older files first
        (by the time the log records for each file; delta-rs lists the newest commit first), and the
        files of one commit in the commit's order. So rows appended later come after earlier ones."""
        adds = pa.table((table or self._table(name)).get_add_actions(flatten=True))
        if adds.num_rows > 1:  # a stable sort: one commit's files keep the commit's order
            adds = adds.take(sorted(range(adds.num_rows), key=adds.column("modification_time").to_pylist().__getitem__))
        paths = adds.column("path").to_pylist()
        counts = adds.column("num_records").to_pylist() if "num_records" in adds.column_names else [None] * len(paths)
        folder = self._table_dir(name)
        files = []
        for path, rows in zip(paths, counts, strict=True):
            # The log is data on disk: never let it point outside the table's folder.
            if not _DATA_PATH_RE.fullmatch(path) or ".." in path.split("/"):
                raise WarehouseError(f'the table "{name}" has a damaged log (a data file outside its folder)')
            files.append((f"{folder}/{unquote(path)}", rows))
        return files

    def _data_path(self, name: TableName, file: str) -> str:
        """A data file's full path from its path relative to the table's folder (a plan's)."""
        if not _DATA_PATH_RE.fullmatch(file) or ".." in file.split("/"):
            raise WarehouseError(f"a data file of a table is a relative .parquet path, not {file[:100]!r}")
        return f"{self._table_dir(name)}/{file}"

    # --- reading ----------------------------------------------------------------------------------

    def exists(self, name: TableName | str) -> bool:
        name = self.table_name(name)
        if not self._has_log(name):
            return False
        try:
            return DeltaTable.is_deltatable(self.table_uri(name), storage_options=self.storage_options)
        except (DeltaError, OSError) as exc:
            raise WarehouseError(f'the table "{name}" cannot be read: {_first_line(exc)}') from None

    def arrow_schema(self, name: TableName | str) -> pa.Schema:
        return pa.schema(self._table(self.table_name(name)).schema().to_arrow())

    def row_count(self, name: TableName | str) -> int:
        total = 0
        for path, rows in self._files(self.table_name(name)):
            if rows is None:  # a writer that kept no statistics: the footer only, no data is read
                with self._open(path) as pf:
                    rows = pf.metadata.num_rows
            total += rows
        return total

    def read_batches(
        self,
        name: TableName | str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        columns: list[str] | None = None,
    ) -> Generator[pa.RecordBatch]:
        name = self.table_name(name)
        files = [path for path, _ in self._files(name)]
        schema = self.arrow_schema(name)
        if columns is not None:
            check_columns(name, columns, schema.names)
            schema = pa.schema([schema.field(c) for c in columns])
        return rebatch(self._scan(files, batch_size, schema), batch_size)

    def _scan(self, files: list[str], batch_size: int, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        for path in files:
            with self._open(path) as pf:
                for batch in pf.iter_batches(batch_size=batch_size, columns=schema.names):
                    yield batch if batch.schema.equals(schema) else cast_batch(batch, schema)

    supports_snapshots = True

    def snapshot(self, name: TableName | str) -> Snapshot:
        name = self.table_name(name)
        table = self._table(name)
        folder = self._table_dir(name)
        paths = [path for path, _ in self._files(name, table)]

        def row_groups(path: str) -> list[Slice]:
            with self._open(path) as pf:
                metadata = pf.metadata
            file = path[len(folder) + 1 :]
            groups = (metadata.row_group(i).num_rows for i in range(metadata.num_row_groups))
            return [Slice(file, i, 0, rows) for i, rows in enumerate(groups) if rows]

        with ThreadPoolExecutor(max_workers=min(8, max(len(paths), 1))) as pool:  # footers: one read each
            found = list(pool.map(row_groups, paths))
        return Snapshot(
            version=table.version(),
            schema=pa.schema(table.schema().to_arrow()),
            row_groups=[s for slices in found for s in slices],
        )

    def read_slices(self, name: TableName | str, slices: list[Slice], schema: pa.Schema) -> pa.Table:
        name = self.table_name(name)
        pieces = []
        for piece in slices:
            path = self._data_path(name, piece.file)
            try:
                with self._open(path) as pf:
                    group = pf.read_row_group(piece.row_group, columns=schema.names)
            except FileNotFoundError:
                raise WarehouseError(
                    f'the table "{name}" changed since the job planned its batches: its file {piece.file} is gone'
                ) from None
            except (OSError, IndexError, pa.ArrowException) as exc:
                raise WarehouseError(f'the table "{name}" cannot be read ({piece.file}): {_first_line(exc)}') from None
            group = group.slice(piece.offset, piece.rows)
            if group.num_rows != piece.rows:
                raise WarehouseError(
                    f'the table "{name}" changed since the job planned its batches: {piece.file} has other rows'
                )
            pieces.extend(b if b.schema.equals(schema) else cast_batch(b, schema) for b in group.to_batches())
        return pa.Table.from_batches(pieces, schema=schema)

    def list_schemas(self) -> list[str]:
        infos = self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory and is_valid_name(i.base_name))

    def list_tables(self, schema: str) -> list[str]:
        folder = self._schema_dir(schema)
        infos = self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        names = [i.base_name for i in infos if i.type == pafs.FileType.Directory and is_valid_name(i.base_name)]
        return sorted(n for n in names if self.exists(TableName(self.name, schema, n)))

    # --- writing ----------------------------------------------------------------------------------

    def create(
        self,
        name: TableName | str,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch | pa.Table],
    ) -> int:
        name = self.table_name(name)
        target = delta_arrow_schema(check_schema(schema).remove_metadata())
        if self.exists(name):
            raise TableExistsError(f'the table "{name}" already exists')
        folder = self._table_dir(name)
        write_id = uuid.uuid4().hex
        written: list[str] = []
        try:
            parts = self._write_parts(folder, write_id, target, batches, written)
            return self.commit_parts(name, target, parts)
        except BaseException:
            self._delete_quietly(written)  # only our own parts: another writer's stay
            self._remove_if_empty(folder)
            raise

    def _write_parts(
        self,
        folder: str,
        write_id: str,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch | pa.Table],
        written: list[str],
    ) -> list[Part]:
        """Write the Parquet parts into `folder` (paths appended to `written`), a new one every
        ROW_GROUPS_PER_PART row groups."""
        if not self.on_s3:  # S3 has no folders: a part's key makes its own
            self.fs.create_dir(folder, recursive=True)
        parts: list[Part] = []
        part: _Part | None = None
        try:
            for batch in rebatch(conform(batches, schema, cast=cast_batch), ROW_GROUP_ROWS):
                if part is None or part.groups == ROW_GROUPS_PER_PART:
                    if part is not None:
                        parts.append(part.close())
                    part = _Part(self.fs, folder, f"part-{len(written):05d}-{write_id}.parquet", schema)
                    written.append(part.path)
                part.write(batch)
            if part is not None:
                parts.append(part.close())
        except BaseException:
            if part is not None:
                part.abort()
            raise
        return parts

    # --- a table written in parts -----------------------------------------------------------------

    supports_parts = True

    def write_part(self, name: TableName | str, part_id: str, schema: pa.Schema, table: pa.Table) -> Part:
        name = self.table_name(name)
        if not _PART_ID_RE.fullmatch(part_id):
            raise WarehouseError(f"a part id is lowercase letters, digits and dashes, not {part_id[:100]!r}")
        target = delta_arrow_schema(check_schema(schema).remove_metadata())
        folder = self._table_dir(name)
        if not self.on_s3:
            self.fs.create_dir(folder, recursive=True)
        part = _Part(self.fs, folder, f"part-{part_id}.parquet", target)
        try:
            for batch in rebatch(conform([table], target, cast=cast_batch), ROW_GROUP_ROWS):
                part.write(batch)
            return part.close()
        except BaseException:
            part.abort()
            self._delete_quietly([part.path])
            raise

    def commit_parts(self, name: TableName | str, schema: pa.Schema, parts: list[Part]) -> int:
        name = self.table_name(name)
        target = delta_arrow_schema(check_schema(schema).remove_metadata())
        if self.exists(name):
            raise TableExistsError(f'the table "{name}" already exists')
        now = int(time.time() * 1000)
        adds = [AddAction(p.name, p.size, {}, now, True, json.dumps({"numRecords": p.rows})) for p in parts]
        try:
            create_table_with_add_actions(
                self.table_uri(name),
                DeltaSchema.from_arrow(target),
                adds,
                mode="error",
                storage_options=self.storage_options,
                # Version 0 or nothing: delta-rs would retry a lost race as version 1, an append.
                commit_properties=CommitProperties(max_commit_retries=0),
            )
        except DeltaError as exc:
            if self.exists(name):  # another writer committed first
                raise TableExistsError(f'the table "{name}" already exists') from None
            raise WarehouseError(f'the table "{name}" could not be committed: {_first_line(exc)}') from None
        return sum(p.rows for p in parts)

    def discard_parts(self, name: TableName | str, suffix: str, keep: frozenset[str] = frozenset()) -> int:
        name = self.table_name(name)
        if not _PART_ID_RE.fullmatch(suffix):
            raise WarehouseError(f"a part id is lowercase letters, digits and dashes, not {suffix[:100]!r}")
        folder = self._table_dir(name)
        infos = self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        mine = [
            i.path
            for i in infos
            if i.type == pafs.FileType.File
            and i.base_name.startswith("part-")
            and i.base_name.endswith(f"-{suffix}.parquet")
            and i.base_name not in keep
        ]
        self._delete_quietly(mine)
        self._remove_if_empty(folder)
        return len(mine)

    # --- appends, each at most once ----------------------------------------------------------------

    def append_once(
        self,
        name: TableName | str,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch | pa.Table],
        *,
        txn_id: str,
        key_column: str,
        key_value: str,
    ) -> int | None:
        name = self.table_name(name)
        if not _TXN_ID_RE.fullmatch(txn_id):
            raise WarehouseError(f"a transaction id is letters, digits and _.:- , not {txn_id[:100]!r}")
        schema = check_schema(schema).remove_metadata()
        if self.exists(name):
            table = self._table(name)
            if table.transaction_version(txn_id) is not None:
                return None
            target = pa.schema(table.schema().to_arrow())
            check_same_columns(name, target.names, schema.names)
            batches = in_order(batches, target.names)
        else:  # made by this commit (version 0); a writer racing to make it too appends after it
            table, target = self.table_uri(name), delta_arrow_schema(schema)
            if not self.on_s3:
                self.fs.create_dir(self._schema_dir(name.schema), recursive=True)
        counted = _Counted(conform(batches, target, cast=cast_batch))
        try:
            write_deltalake(
                table,
                pa.RecordBatchReader.from_batches(target, counted),
                mode="append",
                storage_options=self.storage_options,
                # A concurrent commit carrying the same transaction is refused, not retried.
                commit_properties=CommitProperties(app_transactions=[Transaction(txn_id, 1)]),
            )
        except CommitFailedError as exc:
            if self._table(name).transaction_version(txn_id) is not None:
                return None  # a racing writer made this very append
            raise WarehouseError(f'appending to the table "{name}" failed: {_first_line(exc)}') from None
        except (DeltaError, OSError) as exc:
            if counted.error is not None:  # the batches failed: their own error explains it
                raise counted.error from None
            raise WarehouseError(f'appending to the table "{name}" failed: {_first_line(exc)}') from None
        except Exception:
            if counted.error is not None:
                raise counted.error from None
            raise
        return counted.rows

    def _delete_quietly(self, paths: list[str]) -> None:
        for path in paths:
            try:
                self.fs.delete_file(path)
            except OSError:
                pass

    def _remove_if_empty(self, folder: str) -> None:
        try:
            if not self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True, recursive=True)):
                self.fs.delete_dir(folder)
        except OSError:
            pass

    def drop(self, name: TableName | str) -> None:
        name = self.table_name(name)
        if not self.exists(name):
            raise TableNotFoundError(f'the table "{name}" does not exist')
        final = self._table_dir(name)
        if not self.on_s3:
            # Move it out of sight in one step, then delete at leisure.
            trash = f"{self._schema_dir(name.schema)}/.drop-{name.table}-{uuid.uuid4().hex}"
            try:
                os.rename(final, trash)
            except FileNotFoundError:
                raise TableNotFoundError(f'the table "{name}" does not exist') from None
            shutil.rmtree(trash, ignore_errors=True)
        else:
            self.fs.delete_dir(f"{final}/{DELTA_LOG}")  # invisible from here on
            self.fs.delete_dir(final)


class _Part:
    """One Parquet data file being written, and the add action that commits it."""

    def __init__(self, fs: pafs.FileSystem, folder: str, filename: str, schema: pa.Schema) -> None:
        self.filename, self.path, self.groups, self.rows = filename, f"{folder}/{filename}", 0, 0
        self.sink = fs.open_output_stream(self.path)
        self.writer = pq.ParquetWriter(
            self.sink, schema, compression=COMPRESSION, use_dictionary=dictionary_columns(schema)
        )

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch, row_group_size=ROW_GROUP_ROWS)
        self.groups += 1
        self.rows += batch.num_rows

    def close(self) -> Part:
        self.writer.close()
        size = self.sink.tell()
        self.sink.close()
        return Part(name=self.filename, rows=self.rows, size=size)

    def abort(self) -> None:
        for close in (self.writer.close, self.sink.close):
            try:
                close()
            except Exception:  # noqa: BLE001, S110 - the write already failed; its error is what counts
                pass


class _Counted:
    """Batches passed on to a writer, counted, keeping their own error (the writer reports it as
    a broken stream)."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self._batches, self.rows, self.error = batches, 0, None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self._batches:
                self.rows += batch.num_rows
                yield batch
        except BaseException as exc:
            self.error = exc
            raise


def delta_arrow_schema(schema: pa.Schema) -> pa.Schema:
    """The Arrow schema a Delta Lake table stores for `schema`: the same columns, each in the
    nearest type Delta has (large and view strings as strings, unsigned integers widened, time
    units as microseconds, times of day as text). A column no Delta type can hold is refused."""
    return pa.schema([field.with_type(_delta_type(field.type, field.name)) for field in schema])


def _delta_type(t: pa.DataType, column: str) -> pa.DataType:
    if pa.types.is_dictionary(t):
        return _delta_type(t.value_type, column)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_null(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t) or pa.types.is_fixed_size_binary(t):
        return pa.binary()
    if pa.types.is_unsigned_integer(t):
        return {8: pa.int16(), 16: pa.int32(), 32: pa.int64(), 64: pa.int64()}[t.bit_width]
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz="UTC" if t.tz else None)
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_time(t):
        return pa.string()
    if pa.types.is_decimal(t) and t.precision > 38:
        raise WarehouseError(f'the column "{column}" has more than 38 decimal digits, which Delta Lake cannot store')
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_list_view(t):
        return pa.list_(t.value_field.with_type(_delta_type(t.value_type, column)))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_delta_type(f.type, column)) for f in t])
    if pa.types.is_map(t):
        return pa.map_(_delta_type(t.key_type, column), _delta_type(t.item_type, column))
    if pa.types.is_duration(t) or pa.types.is_interval(t) or pa.types.is_union(t):
        raise WarehouseError(f'the column "{column}" has the type {t}, which a Delta Lake table cannot store')
    return t


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
