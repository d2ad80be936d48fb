"""The one interface every catalog implements, and helpers they share."""

from __future__ import annotations

import abc
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.compute as pc

from mlplatform.warehouse.errors import TableNameError, WarehouseError
from mlplatform.warehouse.names import (
    DEFAULT_SCHEMA,
    NAME_RULE,
    TableName,
    check_column_names,
    is_valid_name,
    parse_table_name,
)

DEFAULT_BATCH_SIZE = 131_072


@dataclass(frozen=True)
class Part:
    """A data file written for a table that does not exist yet, invisible until it is committed:
    its file name in the table's folder, its rows and its bytes."""

    name: str
    rows: int
    size: int


@dataclass(frozen=True)
class Slice:
    """Rows of one row group of a table's data file (`file` relative to the table's folder): a
    batch's input is a list of them, read where they lie instead of copied."""

    file: str
    row_group: int
    offset: int
    rows: int


@dataclass(frozen=True)
class Snapshot:
    """A version of a table as a job reads it: its columns, and every row group of its data files
    in order (a row's ordinal is its offset in this order)."""

    version: int
    schema: pa.Schema
    row_groups: list[Slice]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.row_groups)


@dataclass(frozen=True)
class Column:
    """A column as users see it; `type` is the Arrow type as text (e.g. "int64", "string")."""

    name: str
    type: str


class Catalog(abc.ABC):
    """A named place where tables live. Tables are named by TableName (or text to parse).

    Text names are parsed with this catalog as the default catalog and DEFAULT_SCHEMA as the
    default schema; a name in another catalog is refused.
    """

    kind: str = ""

    def __init__(self, name: str, url: str) -> None:
        if not is_valid_name(name):
            raise WarehouseError(f'the catalog name "{name}" {NAME_RULE}')
        self.name = name
        self.url = url

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.display_url}>"

    @property
    def display_url(self) -> str:
        """The URL without credentials (user info and query), safe to show on a page or in a log."""
        parts = urlsplit(self.url)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def table_name(self, name: TableName | str) -> TableName:
        """Return `name` as a TableName of this catalog, parsing text; refuse other catalogs."""
        if isinstance(name, str):
            name = parse_table_name(name, self.name, DEFAULT_SCHEMA)
        elif not isinstance(name, TableName):
            raise TableNameError(f"a table name must be text, not {type(name).__name__}")
        if name.catalog != self.name:
            raise WarehouseError(f'the table "{name}" is in catalog "{name.catalog}", not in "{self.name}"')
        return name

    # --- reading -----------------------------------------------------------------------------

    @abc.abstractmethod
    def exists(self, name: TableName | str) -> bool:
        """True when the table exists and is complete."""

    @abc.abstractmethod
    def arrow_schema(self, name: TableName | str) -> pa.Schema:
        """The table's columns as an Arrow schema; TableNotFoundError if it does not exist."""

    def columns(self, name: TableName | str) -> list[Column]:
        """The table's columns, in order."""
        return [Column(f.name, str(f.type)) for f in self.arrow_schema(name)]

    @abc.abstractmethod
    def row_count(self, name: TableName | str) -> int:
        """The number of rows, without reading the data where the engine allows it."""

    @abc.abstractmethod
    def read_batches(
        self,
        name: TableName | str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        columns: list[str] | None = None,
    ) -> Generator[pa.RecordBatch]:
        """Stream the rows as batches of exactly `batch_size` rows (the last may be shorter).

        Memory stays bounded by a few batches whatever the table size. Close the iterator (or
        exhaust it) to release the connection or files.
        """

    def head(self, name: TableName | str, n: int = 50) -> pa.Table:
        """The first `n` rows."""
        name = self.table_name(name)
        schema = self.arrow_schema(name)
        if n <= 0:
            return schema.empty_table()
        batches = self.read_batches(name, batch_size=n)
        try:
            first = next(batches, None)
        finally:
            batches.close()
        return pa.Table.from_batches([first] if first is not None else [], schema=schema)

    @abc.abstractmethod
    def list_schemas(self) -> list[str]:
        """The schemas, sorted; only names that a TableName can address."""

    @abc.abstractmethod
    def list_tables(self, schema: str) -> list[str]:
        """The complete tables of `schema`, sorted; [] for a schema that does not exist."""

    # --- writing -----------------------------------------------------------------------------

    @abc.abstractmethod
    def create(
        self,
        name: TableName | str,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch | pa.Table],
    ) -> int:
        """Create the table atomically from `batches` and return its row count.

        TableExistsError if the table exists (nothing is changed then); if `batches` raises
        midway, the error propagates and no table or temporary leftover remains.
        """

    @abc.abstractmethod
    def drop(self, name: TableName | str) -> None:
        """Remove the table; TableNotFoundError if it does not exist."""

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
        """Append `batches` to the table in one commit, at most once per `txn_id`; the table is
        created from `schema` when it does not exist. Returns the rows appended, or None when this
        append already happened (nothing is written then).

        A lake commit carries `txn_id` as a Delta Lake application transaction (a second commit
        with it is refused, even racing); PostgreSQL appends in one transaction, under a lock on
        the table, unless a row whose `key_column` holds `key_value` is already there. The rows'
        columns must be the table's (in any order); WarehouseError names the difference."""
        raise NotImplementedError(f"the {self.kind} catalog does not append")

    # --- a table read where it lies (batch jobs), by row groups of a fixed version --------------

    supports_snapshots = False

    def snapshot(self, name: TableName | str) -> Snapshot:
        """The table's current version and its row groups, from the log and the files' footers."""
        raise NotImplementedError(f"the {self.kind} catalog does not plan reads by row groups")

    def read_slices(self, name: TableName | str, slices: list[Slice], schema: pa.Schema) -> pa.Table:
        """The rows of `slices`, in order, as `schema` (the snapshot's). WarehouseError when a
        file is gone (the table was replaced since it was planned)."""
        raise NotImplementedError(f"the {self.kind} catalog does not plan reads by row groups")

    # --- a table written in parts (batch jobs), committed without reading its data -------------

    supports_parts = False

    def write_part(self, name: TableName | str, part_id: str, schema: pa.Schema, table: pa.Table) -> Part:
        """Write one final data file of a table that will exist once its parts are committed.
        Writing the same `part_id` again replaces that part."""
        raise NotImplementedError(f"the {self.kind} catalog does not write tables in parts")

    def commit_parts(self, name: TableName | str, schema: pa.Schema, parts: list[Part]) -> int:
        """Make the table, with these parts in this order, visible at once; its row count.
        TableExistsError if it exists. The parts are left as they are when this fails."""
        raise NotImplementedError(f"the {self.kind} catalog does not write tables in parts")

    def discard_parts(self, name: TableName | str, suffix: str, keep: frozenset[str] = frozenset()) -> int:
        """Delete the uncommitted parts whose id ends with `suffix` (one writer's), but those in
        `keep`; how many were deleted."""
        raise NotImplementedError(f"the {self.kind} catalog does not write tables in parts")


def check_schema(schema: pa.Schema) -> pa.Schema:
    """Validate the column names of a schema to create a table with."""
    if not isinstance(schema, pa.Schema):
        raise WarehouseError(f"a table's schema must be a pyarrow.Schema, not {type(schema)}")
    check_column_names(schema.names)
    return schema


def check_same_columns(name: TableName, table_columns: list[str], new_columns: list[str]) -> None:
    """Refuse rows to append whose columns are not the table's, naming the difference."""
    if set(table_columns) == set(new_columns) and len(table_columns) == len(new_columns):
        return
    missing = [c for c in table_columns if c not in new_columns]
    extra = [c for c in new_columns if c not in table_columns]
    what = "; ".join(
        part
        for part in (
            f"missing {', '.join(missing)}" if missing else "",
            f"not in the table: {', '.join(extra)}" if extra else "",
        )
        if part
    )
    raise WarehouseError(
        f'the table "{name}" has the columns {", ".join(table_columns)}, but the rows to append have '
        f"{', '.join(new_columns)} ({what})"
    )


def in_order(batches: Iterable[pa.RecordBatch | pa.Table], names: list[str]) -> Iterator[pa.RecordBatch | pa.Table]:
    """The batches with their columns in the order `names` gives (the same set, checked before)."""
    for batch in batches:
        yield batch if batch.schema.names == names else batch.select(names)


def check_columns(name: TableName, wanted: list[str], present: list[str]) -> None:
    """Refuse a column selection that names a column the table does not have."""
    missing = [c for c in wanted if c not in present]
    if missing:
        shown = ", ".join(f'"{str(c)[:100]}"' for c in missing[:10])
        raise WarehouseError(f'the table "{name}" has no column {shown}')


def conform(
    batches: Iterable[pa.RecordBatch | pa.Table], schema: pa.Schema, cast: Callable | None = None
) -> Iterator[pa.RecordBatch]:
    """Yield the batches as RecordBatches of exactly `schema`, casting when the types differ (with
    `cast(batch, schema)` when given: an engine's own rules)."""
    for item in batches:
        parts = item.to_batches() if isinstance(item, pa.Table) else [item]
        for batch in parts:
            if not isinstance(batch, pa.RecordBatch):
                raise WarehouseError(f"expected pyarrow RecordBatches, got {type(batch)}")
            if batch.schema.names != schema.names:
                raise WarehouseError(f"a batch has columns {batch.schema.names}, the table has {schema.names}")
            if not batch.schema.equals(schema):
                if cast is not None:
                    yield cast(batch, schema)
                    continue
                try:
                    batch = batch.cast(schema)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise WarehouseError(f"a batch does not fit the table's schema: {exc}") from exc
            yield batch


def rebatch(batches: Iterable[pa.RecordBatch], batch_size: int) -> Generator[pa.RecordBatch]:
    """Regroup a stream into batches of exactly `batch_size` rows (the last may be shorter).

    Batches that already have the right size pass through without a copy. Closing the result
    closes the source at once (a PostgreSQL read then stops its COPY).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise WarehouseError(f"batch_size must be a whole number of at least 1, not {batch_size!r}")
    return _rebatch(iter(batches), batch_size)


def _rebatch(source: Iterator[pa.RecordBatch], batch_size: int) -> Generator[pa.RecordBatch]:
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    try:
        for batch in source:
            offset = 0
            while offset < batch.num_rows:
                take = min(batch_size - pending_rows, batch.num_rows - offset)
                piece = batch.slice(offset, take)
                offset += take
                if not pending and take == batch_size:
                    yield piece
                    continue
                pending.append(piece)
                pending_rows += take
                if pending_rows == batch_size:
                    yield pa.concat_batches(pending)
                    pending, pending_rows = [], 0
        if pending:
            yield pa.concat_batches(pending)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def cast_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Cast column by column, as the catalogs store data: sub-microsecond time is dropped (neither
    Delta Lake nor PostgreSQL keeps it), any other loss is an error."""
    columns = []
    for column, field in zip(batch.columns, schema, strict=True):
        if column.type.equals(field.type):
            columns.append(column)
            continue
        options = pc.CastOptions(target_type=field.type, allow_time_truncate=True)
        try:
            columns.append(pc.cast(column, options=options))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise WarehouseError(f'a batch does not fit the table\'s column "{field.name}": {exc}') from exc
    return pa.RecordBatch.from_arrays(columns, schema=schema)
