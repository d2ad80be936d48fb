"""The PostgreSQL catalog: schemas and tables of one database, moved in bulk with COPY.

- Identifiers only ever reach SQL through psycopg2.sql.Identifier(schema, table), and only after
  the names passed the naming rule; values (names in catalog queries) are query parameters.
- Reads stream `COPY (SELECT ...) TO STDOUT (FORMAT csv)` through an OS pipe into pyarrow's
  streaming CSV reader, with the column types taken from the catalog, so memory stays bounded.
- Writes go through ADBC's PostgreSQL driver (Arrow in, binary COPY out: no text round trip and
  no COPY code of ours) into a table with a temporary name, then, in the same transaction and
  under an advisory lock on the final name, check that the name is free and rename. Any failure
  rolls everything back. The batches are cast first to the Arrow types that match the columns
  created for them (see arrow_to_pg), so the binary COPY and the table always agree.
- CSV (reads) keeps NULL and the empty string apart: a NULL is an unquoted empty field, an empty
  string is `""`, and the reader is told so. (ADBC's reader measured slower than this one.)
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc
import psycopg2
import psycopg2.errors
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg2 import sql

from mlplatform.warehouse.base import (
    DEFAULT_BATCH_SIZE,
    Catalog,
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

# PostgreSQL type (as format_type() spells it) -> Arrow type; any other type is read as text.
PG_TO_ARROW: dict[str, pa.DataType] = {
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "real": pa.float32(),
    "double precision": pa.float64(),
    "numeric": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp without time zone": pa.timestamp("us"),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
}
SUPPORTED_ARROW_TYPES = (
    "int8, int16, int32, int64, uint8, uint16, uint32, float32, float64, string, large_string, "
    "bool, date32, date64, timestamp"
)
# Settings that make COPY's text exact and parseable: UTC offsets, ISO dates, shortest
# round-trip floats, and rows in their physical order (no scan joining another one midway).
SESSION_SETTINGS = (
    "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3; SET synchronize_seqscans = off"
)
COPY_CHUNK = 1 << 20
CSV_BLOCK = 8 << 20
_READABLE_KINDS = ("r", "p", "v", "m", "f")  # tables, partitioned, views, materialized, foreign

Connect = Callable[[str], "psycopg2.extensions.connection"]


def arrow_to_pg(field: pa.Field) -> str:
    """The PostgreSQL type for an Arrow field; WarehouseError naming the column otherwise."""
    t = field.type
    if pa.types.is_dictionary(t) and pa.types.is_string(t.value_type):
        return "text"
    checks: list[tuple[Callable[[pa.DataType], bool], str]] = [
        (pa.types.is_int8, "smallint"),
        (pa.types.is_uint8, "smallint"),
        (pa.types.is_int16, "smallint"),
        (pa.types.is_uint16, "integer"),
        (pa.types.is_int32, "integer"),
        (pa.types.is_uint32, "bigint"),
        (pa.types.is_int64, "bigint"),
        (pa.types.is_float32, "real"),
        (pa.types.is_float64, "double precision"),
        (pa.types.is_string, "text"),
        (pa.types.is_large_string, "text"),
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_date, "date"),
    ]
    for check, pg_type in checks:
        if check(t):
            return pg_type
    if pa.types.is_timestamp(t):
        return "timestamp with time zone" if t.tz else "timestamp without time zone"
    raise WarehouseError(
        f'the column "{field.name}" has type {t}, which a PostgreSQL table cannot hold here '
        f"(supported: {SUPPORTED_ARROW_TYPES})"
    )


def ingest_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type whose binary COPY matches the column arrow_to_pg creates for `t`."""
    if pa.types.is_dictionary(t):
        return ingest_type(t.value_type)
    if pa.types.is_int8(t) or pa.types.is_uint8(t):
        return pa.int16()
    if pa.types.is_uint16(t):
        return pa.int32()
    if pa.types.is_uint32(t):
        return pa.int64()
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz=t.tz)
    return t


def _quote(identifier: str) -> str:
    """A quoted SQL identifier (names reach here only after the naming rule)."""
    return '"' + identifier.replace('"', '""') + '"'


def _qualified(name: TableName) -> str:
    return f"{_quote(name.schema)}.{_quote(name.table)}"


def _lock_key(name: TableName) -> int:
    """A stable 64-bit key for pg_advisory_xact_lock (Python's hash() differs per process)."""
    digest = hashlib.blake2b(f"mlplatform.warehouse:{name.schema}.{name.table}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


class PostgresCatalog(Catalog):
    """Tables of the PostgreSQL database at `url` (postgresql://user@host:port/db).

    Every operation opens its own connection, so one catalog serves many threads; `connect`
    replaces psycopg2.connect (tests use it to prove that refused names never connect).
    """

    kind = "postgresql"

    def __init__(self, name: str, url: str, connect: Connect | None = None) -> None:
        super().__init__(name, url)
        if not url.startswith(("postgresql://", "postgres://")):
            raise WarehouseError("a PostgreSQL catalog URL starts with postgresql://")
        self._connect = connect or psycopg2.connect

    @contextmanager
    def _connection(self) -> Iterator[psycopg2.extensions.connection]:
        """A connection with the session settings; closed (rolled back unless committed) after.

        Database errors leave as WarehouseError, so callers show a sentence, never a 500.
        """
        try:
            conn = self._connect(self.url)
        except psycopg2.Error as exc:
            raise WarehouseError(f'the catalog "{self.name}" cannot be reached: {_first_line(exc)}') from None
        try:
            with conn.cursor() as cur:
                cur.execute(SESSION_SETTINGS)
            yield conn
        except psycopg2.Error as exc:
            raise WarehouseError(f'the catalog "{self.name}" reported an error: {_first_line(exc)}') from exc
        finally:
            conn.close()

    # --- catalog queries (names are parameters, never SQL) ---------------------------------------

    @staticmethod
    def _relation_exists(cur: psycopg2.extensions.cursor, name: TableName, kinds: tuple) -> bool:
        cur.execute(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND c.relkind = ANY(%s)",
            [name.schema, name.table, list(kinds)],
        )
        return cur.fetchone() is not None

    def _fetch_schema(self, cur: psycopg2.extensions.cursor, name: TableName) -> pa.Schema:
        if not self._relation_exists(cur, name, _READABLE_KINDS):
            raise TableNotFoundError(f'the table "{name}" does not exist')
        cur.execute(
            "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a"
            " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY a.attnum",
            [name.schema, name.table],
        )
        return pa.schema([(col, PG_TO_ARROW.get(pg_type, pa.string())) for col, pg_type in cur])

    # --- reading -----------------------------------------------------------------------------------

    def exists(self, name: TableName | str) -> bool:
        name = self.table_name(name)
        with self._connection() as conn, conn.cursor() as cur:
            return self._relation_exists(cur, name, _READABLE_KINDS)

    def arrow_schema(self, name: TableName | str) -> pa.Schema:
        name = self.table_name(name)
        with self._connection() as conn, conn.cursor() as cur:
            return self._fetch_schema(cur, name)

    def row_count(self, name: TableName | str) -> int:
        name = self.table_name(name)
        with self._connection() as conn, conn.cursor() as cur:
            if not self._relation_exists(cur, name, _READABLE_KINDS):
                raise TableNotFoundError(f'the table "{name}" does not exist')
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(_ident(name)))
            return cur.fetchone()[0]

    def read_batches(
        self,
        name: TableName | str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        columns: list[str] | None = None,
    ) -> Generator[pa.RecordBatch]:
        name = self.table_name(name)
        schema = self.arrow_schema(name)  # checked now, so a bad name fails at the call
        if columns is not None:
            check_columns(name, columns, schema.names)
            schema = pa.schema([schema.field(c) for c in columns])
        return rebatch(self._copy_out(name, schema, limit=None), batch_size)

    def head(self, name: TableName | str, n: int = 50) -> pa.Table:
        name = self.table_name(name)
        schema = self.arrow_schema(name)
        if n <= 0:
            return schema.empty_table()
        return pa.Table.from_batches(list(self._copy_out(name, schema, limit=n)), schema=schema)

    def _copy_out(self, name: TableName, schema: pa.Schema, limit: int | None) -> Iterator[pa.RecordBatch]:
        """Stream the table: a thread runs COPY TO into a pipe, pyarrow parses the other end."""
        select = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in schema.names), _ident(name)
        )
        if limit is not None:
            select = sql.SQL("{} LIMIT {}").format(select, sql.Literal(int(limit)))
        query = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv)").format(select)
        with self._connection() as conn:
            read_fd, write_fd = os.pipe()
            source = os.fdopen(read_fd, "rb")
            sink = os.fdopen(write_fd, "wb", buffering=COPY_CHUNK)
            failure: list[BaseException] = []

            def pump() -> None:
                try:
                    with conn.cursor() as cur:
                        cur.copy_expert(query, sink, size=COPY_CHUNK)
                except BaseException as exc:  # handed to the reading side
                    failure.append(exc)
                finally:
                    try:
                        sink.close()  # the reader sees the end of the stream
                    except OSError:
                        pass

            thread = threading.Thread(target=pump, name=f"copy-out {name}", daemon=True)
            thread.start()

            def stop() -> bool:
                """End the COPY if it still runs (True then): cancel it, and break the pipe."""
                running = thread.is_alive()
                if running:
                    conn.cancel()
                source.close()
                thread.join()
                return running

            completed = False
            try:
                yield from _read_csv(source, schema)
                completed = True
            except Exception:
                # If the COPY had already failed, its error explains the broken stream best.
                if not stop() and failure:
                    raise WarehouseError(f'reading "{name}" failed: {failure[0]}') from failure[0]
                raise
            finally:
                if not completed:  # an error, or the consumer stopped early
                    stop()
            thread.join()
            source.close()
            if failure:
                raise WarehouseError(f'reading "{name}" failed: {failure[0]}') from failure[0]

    def list_schemas(self) -> list[str]:
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT nspname FROM pg_namespace WHERE left(nspname, 3) <> 'pg_' AND nspname <> 'information_schema'"
            )
            return sorted(s for (s,) in cur if is_valid_name(s))

    def list_tables(self, schema: str) -> list[str]:
        if not is_valid_name(schema):
            raise TableNameError(f'the schema "{str(schema)[:100]}" {NAME_RULE}')
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind = ANY(%s)",
                [schema, list(_READABLE_KINDS)],
            )
            return sorted(t for (t,) in cur if is_valid_name(t))

    # --- writing -----------------------------------------------------------------------------------

    def create(
        self,
        name: TableName | str,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch | pa.Table],
    ) -> int:
        name = self.table_name(name)
        schema = check_schema(schema)
        pg_types = [arrow_to_pg(f) for f in schema]  # refuse unsupported types before any SQL
        target = pa.schema([f.with_type(ingest_type(f.type)) for f in schema])
        tmp = TableName(name.catalog, name.schema, f"_tmp_{uuid.uuid4().hex}")
        source = _Batches(conform(batches, schema), target)
        columns = ", ".join(f"{_quote(f.name)} {t}" for f, t in zip(schema, pg_types, strict=True))
        with self._adbc() as conn:
            cur = conn.cursor()
            if self._name_taken(cur, name):
                raise TableExistsError(f'the table "{name}" already exists')
            _adbc_create_schema(cur, name.schema)
            cur.execute(f"CREATE TABLE {_qualified(tmp)} ({columns})")
            try:
                cur.adbc_ingest(tmp.table, source.reader(), mode="append", db_schema_name=tmp.schema)
            except adbc_driver_manager.Error:
                if source.error is not None:  # the batches failed: raise their own error
                    raise source.error from None
                raise
            # The advisory lock serialises creators of this name until commit.
            cur.execute("SELECT pg_advisory_xact_lock($1)", parameters=(_lock_key(name),))
            cur.fetchall()
            if self._name_taken(cur, name):
                raise TableExistsError(f'the table "{name}" already exists')
            try:
                cur.execute(f"ALTER TABLE {_qualified(tmp)} RENAME TO {_quote(name.table)}")
            except adbc_driver_manager.Error as exc:
                if getattr(exc, "sqlstate", None) in ("42P07", "42710"):  # duplicate table / object
                    raise TableExistsError(f'the table "{name}" already exists') from None
                raise
            conn.commit()
        return source.rows

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
        schema = check_schema(schema)
        if not is_valid_name(key_column) or key_column not in schema.names:
            raise WarehouseError(f'the rows to append to "{name}" have no column "{key_column}" to key them by')
        with self._adbc() as conn:
            cur = conn.cursor()
            # One appender of this table at a time, until commit: the check below sees the other's rows.
            cur.execute("SELECT pg_advisory_xact_lock($1)", parameters=(_lock_key(name),))
            cur.fetchall()
            existing = self._adbc_columns(cur, name)
            if existing is not None:
                check_same_columns(name, [c for c, _ in existing], schema.names)
                cur.execute(  # names checked by the naming rule, then quoted; the value is a parameter
                    f"SELECT 1 FROM {_qualified(name)} WHERE {_quote(key_column)}::text = $1 LIMIT 1",  # noqa: S608
                    parameters=(key_value,),
                )
                if cur.fetchall():
                    return None
                order = [c for c, _ in existing]
                target = pa.schema([(c, ingest_type(PG_TO_ARROW.get(t, pa.string()))) for c, t in existing])
                batches = in_order(batches, order)
            else:
                pg_types = [arrow_to_pg(f) for f in schema]
                target = pa.schema([f.with_type(ingest_type(f.type)) for f in schema])
                columns = ", ".join(f"{_quote(f.name)} {t}" for f, t in zip(schema, pg_types, strict=True))
                _adbc_create_schema(cur, name.schema)
                cur.execute(f"CREATE TABLE {_qualified(name)} ({columns})")
                # The check above is an index lookup, however long the table grows.
                cur.execute(f"CREATE INDEX ON {_qualified(name)} ({_quote(key_column)})")
            source = _Batches(conform(batches, target, cast=cast_batch), target)
            try:
                cur.adbc_ingest(name.table, source.reader(), mode="append", db_schema_name=name.schema)
            except adbc_driver_manager.Error:
                if source.error is not None:
                    raise source.error from None
                raise
            conn.commit()
        return source.rows

    @staticmethod
    def _adbc_columns(cur, name: TableName) -> list[tuple[str, str]] | None:
        """The table's columns and their types in order; None when there is no such relation."""
        cur.execute(
            "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relname = $2",
            parameters=(name.schema, name.table),
        )
        kind = cur.fetchall()
        if not kind:
            return None
        if kind[0][0] not in ("r", "p"):
            raise WarehouseError(f'"{name}" is not a table, so rows cannot be appended to it')
        cur.execute(
            "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a"
            " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY a.attnum",
            parameters=(name.schema, name.table),
        )
        return [(column, pg_type) for column, pg_type in cur.fetchall()]

    @contextmanager
    def _adbc(self) -> Iterator[adbc.Connection]:
        """An ADBC connection in a transaction (rolled back unless committed), closed after;
        database errors leave as WarehouseError."""
        try:
            conn = adbc.connect(self.url)
        except adbc_driver_manager.Error as exc:
            raise WarehouseError(f'the catalog "{self.name}" cannot be reached: {_first_line(exc)}') from None
        try:
            yield conn
        except adbc_driver_manager.Error as exc:
            raise WarehouseError(f'the catalog "{self.name}" reported an error: {_first_line(exc)}') from exc
        finally:
            try:
                conn.rollback()
            except adbc_driver_manager.Error:
                pass
            conn.close()

    @staticmethod
    def _name_taken(cur, name: TableName) -> bool:
        """Any relation (table, view, index, sequence) or type holding the name blocks a rename."""
        cur.execute(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relname = $2"
            " UNION ALL SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
            " WHERE n.nspname = $1 AND t.typname = $2",
            parameters=(name.schema, name.table),
        )
        return bool(cur.fetchall())

    def drop(self, name: TableName | str) -> None:
        name = self.table_name(name)
        with self._connection() as conn, conn.cursor() as cur:
            try:
                cur.execute(sql.SQL("DROP TABLE {}").format(_ident(name)))
            except (psycopg2.errors.UndefinedTable, psycopg2.errors.InvalidSchemaName):
                raise TableNotFoundError(f'the table "{name}" does not exist') from None
            except psycopg2.errors.WrongObjectType:
                raise WarehouseError(f'"{name}" is not a table, so it cannot be dropped') from None
            conn.commit()


def _ident(name: TableName) -> sql.Identifier:
    return sql.Identifier(name.schema, name.table)


def _adbc_create_schema(cur, schema: str) -> None:
    """CREATE SCHEMA IF NOT EXISTS, tolerating a concurrent creator of the same schema."""
    cur.execute("SAVEPOINT create_schema")
    try:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
    except adbc_driver_manager.Error as exc:
        if getattr(exc, "sqlstate", None) != "23505":  # unique violation: created meanwhile
            raise
        cur.execute("ROLLBACK TO SAVEPOINT create_schema")
    else:
        cur.execute("RELEASE SAVEPOINT create_schema")


class _Batches:
    """The batches as an Arrow stream for ADBC, cast to the ingest types; keeps the batches' own
    error (ADBC would report it as a stream failure) and counts the rows."""

    def __init__(self, batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> None:
        self._batches, self.schema = batches, schema
        self.rows = 0
        self.error: BaseException | None = None

    def _iterate(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self._batches:
                if not batch.schema.equals(self.schema):
                    batch = cast_batch(batch, self.schema)
                self.rows += batch.num_rows
                yield batch
        except BaseException as exc:
            self.error = exc
            raise

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self._iterate())


def _read_csv(source: io.BufferedReader, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Parse PostgreSQL's CSV: unquoted empty = NULL, `""` = empty string, t/f booleans."""
    has_text = any(pa.types.is_string(t) for t in schema.types)
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=schema.names, block_size=CSV_BLOCK),
            parse_options=pacsv.ParseOptions(newlines_in_values=has_text),
            convert_options=pacsv.ConvertOptions(
                column_types=dict(zip(schema.names, schema.types, strict=True)),
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                true_values=["t"],
                false_values=["f"],
            ),
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):  # a table without rows
            return
        raise
    for batch in reader:
        if batch.num_rows:
            yield batch
