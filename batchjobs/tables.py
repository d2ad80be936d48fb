"""Tables as users see them: list, look at, upload, drop. Pages and the API call these.

Every name a user types goes through the warehouse's one parser before anything else happens, so
a bad name is refused with the part and the rule named, before any file is read or SQL is made.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError

from batchjobs.models import TableRecord
from mlplatform.warehouse import (
    Catalog,
    Catalogs,
    Column,
    TableExistsError,
    TableName,
    TableNameError,
    TableNotFoundError,
    WarehouseError,
    catalogs_from_config,
    is_valid_name,
)

PREVIEW_ROWS = 50
UPLOAD_FORMATS = {".csv": "CSV", ".parquet": "Parquet", ".pq": "Parquet"}
CSV_BLOCK_BYTES = 16 * 1024 * 1024  # types are inferred from the first block


@lru_cache(maxsize=8)
def _catalogs(config: tuple[tuple[str, str], ...], default: str) -> Catalogs:
    return catalogs_from_config(dict(config), default)


def catalogs() -> Catalogs:
    """The configured catalogs (built once per process and settings)."""
    return _catalogs(tuple(settings.WAREHOUSE_CATALOGS.items()), settings.WAREHOUSE_DEFAULT_CATALOG)


def resolve(text: str, *, field: str = "name") -> tuple[Catalog, TableName]:
    """The catalog and parsed name of a table a user typed; ValidationError on ``field`` if bad."""
    try:
        return catalogs().resolve(str(text).strip())
    except (TableNameError, WarehouseError) as exc:
        raise ValidationError({field: [_sentence(exc)]}) from None


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


# --- reads ------------------------------------------------------------------------------------


@dataclass
class TableSummary:
    name: TableName
    rows: int | None


@dataclass
class SchemaListing:
    catalog: str
    schema: str
    tables: list[TableSummary]


def table_listing(*, catalog_name: str | None = None, schema: str | None = None) -> list[SchemaListing]:
    """Schemas and their tables with row counts, for one catalog (the default one if None)."""
    registry = catalogs()
    catalog = registry.get(catalog_name) if catalog_name else registry.default
    schemas = [schema] if schema else catalog.list_schemas()
    listing = []
    for name in schemas:
        if not is_valid_name(name):
            raise ValidationError({"schema": [f"There is no schema {name[:64]!r} in the catalog {catalog.name}."]})
        tables = [
            TableSummary(TableName(catalog.name, name, t), _rows(catalog, TableName(catalog.name, name, t)))
            for t in catalog.list_tables(name)
        ]
        if tables or schema:  # a lake schema whose last table was dropped is just an empty folder
            listing.append(SchemaListing(catalog=catalog.name, schema=name, tables=tables))
    return listing


def _rows(catalog: Catalog, name: TableName) -> int | None:
    try:
        return catalog.row_count(name)
    except WarehouseError:  # dropped meanwhile, or unreadable: the listing still shows the rest
        return None


@dataclass
class TableDetail:
    name: TableName
    columns: list[Column]
    rows: int


def table_get(text: str) -> TableDetail:
    catalog, name = resolve(text)
    try:
        return TableDetail(name=name, columns=catalog.columns(name), rows=catalog.row_count(name))
    except TableNotFoundError as exc:
        raise TableMissing(_sentence(exc)) from None


def table_preview(text: str, *, limit: int = PREVIEW_ROWS) -> tuple[list[str], list[list]]:
    """The first ``limit`` rows as JSON-safe values: column names and rows."""
    catalog, name = resolve(text)
    try:
        head = catalog.head(name, n=max(0, min(limit, 1000)))
    except TableNotFoundError as exc:
        raise TableMissing(_sentence(exc)) from None
    columns = head.column_names
    return columns, [[json_safe(row[c]) for c in columns] for row in head.to_pylist()]


def json_safe(value):
    """A value from Arrow as something JSON can carry (nested lists and structs too)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class TableMissing(Exception):
    """The table does not exist (a 404 for pages and the API)."""


# --- writes -----------------------------------------------------------------------------------


class TableConflict(Exception):
    """The table already exists (a 409 for the API)."""


def _column_name(header: str) -> str:
    """A CSV header as a column name: lowercase, other characters as underscores."""
    name = re.sub(r"[^a-z0-9_]+", "_", str(header).strip().lower()).strip("_") or "column"
    return (f"_{name}" if name[0].isdigit() else name)[:63]


def _normalized(schema: pa.Schema) -> tuple[pa.Schema, dict[str, str]]:
    """Column names a table can have, and types it can store (an all-empty column is text)."""
    undecodable = [f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
    if undecodable:
        raise ValidationError({"file": [f"The column {undecodable[0]!r} is not UTF-8 text; save the file as UTF-8."]})
    schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in schema])
    renamed = {f.name: _column_name(f.name) for f in schema}
    names = list(renamed.values())
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationError(
            {
                "file": [
                    f"Several columns become {', '.join(duplicates)} once their names are "
                    "made lowercase with underscores; rename them in the file."
                ]
            }
        )
    return (
        pa.schema([f.with_name(renamed[f.name]) for f in schema]),
        {old: new for old, new in renamed.items() if old != new},
    )


def _batches(source: Path | IO[bytes], fmt: str) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Stream the uploaded file's rows: never the whole file in memory."""
    if fmt == "CSV":
        reader = pacsv.open_csv(source, read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES))
        return reader.schema, iter(reader)
    parquet = pq.ParquetFile(source)
    return parquet.schema_arrow, parquet.iter_batches(batch_size=65_536)


@dataclass
class UploadResult:
    name: TableName
    rows: int
    renamed: dict[str, str]


def table_upload(*, name: str, source: Path | IO[bytes], filename: str, created_by=None) -> UploadResult:
    """Create a table from an uploaded CSV or Parquet file; nothing is left behind on failure.

    ``source`` is a path (large uploads, which Django streamed to a temporary file) or a file.
    """
    catalog, table = resolve(name)  # before the file is read
    fmt = next((f for ext, f in UPLOAD_FORMATS.items() if filename.lower().endswith(ext)), None)
    if fmt is None:
        raise ValidationError({"file": ["Upload a .csv or .parquet file."]})
    if catalog.exists(table):
        raise TableConflict(f"The table {table} already exists; drop it first or choose another name.")
    try:
        schema, batches = _batches(source, fmt)
        target, renamed = _normalized(schema)
        rows = catalog.create(table, target, (b.rename_columns(target.names).cast(target) for b in batches))
    except TableExistsError:
        raise TableConflict(f"The table {table} already exists; drop it first or choose another name.") from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as exc:
        raise ValidationError({"file": [f"The {fmt} file could not be read: {_arrow_message(exc)}"]}) from None
    except WarehouseError as exc:
        raise ValidationError({"file": [_sentence(exc)]}) from None
    table_record(name=str(table), created_by=created_by)
    return UploadResult(name=table, rows=rows, renamed=renamed)


def table_record(*, name: str, created_by=None, job=None) -> None:
    TableRecord.objects.update_or_create(name=name, defaults={"created_by": created_by, "job": job})


def may_drop(user, name: TableName) -> bool:
    """Admins; whoever made the table here; for a job's output, the model's team."""
    if user is None or user.is_staff:
        return user is not None
    record = TableRecord.objects.filter(name=str(name)).select_related("job__model").first()
    if record is None:
        return False
    if record.created_by_id == user.pk:
        return True
    return bool(record.job and user.groups.filter(pk=record.job.model.team_id).exists())


def _arrow_message(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:500]


def upload_source(upload) -> Path | IO[bytes]:
    """Where an uploaded file's bytes are: its temporary file, or memory for small ones."""
    if hasattr(upload, "temporary_file_path"):
        return Path(upload.temporary_file_path())
    upload.seek(0)
    return upload.file


def table_drop(*, name: str, confirmation: str, user) -> TableName:
    """Drop a table; the user must have typed its full name (or the name as they gave it)."""
    catalog, table = resolve(name)
    if not may_drop(user, table):
        raise PermissionDenied(f"Only whoever created {table} here, its model's team or an admin can drop it.")
    if confirmation.strip() not in {str(table), name.strip()}:
        raise ValidationError({"confirm": [f"Type the table name {table} to confirm."]})
    try:
        catalog.drop(table)
    except TableNotFoundError as exc:
        raise TableMissing(_sentence(exc)) from None
    TableRecord.objects.filter(name=str(table)).delete()
    return table
