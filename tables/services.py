"""Writes of tables: upload a CSV or Parquet file as a new table, record who made a table, drop one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from mlplatform.warehouse import TableExistsError, TableName, TableNotFoundError, WarehouseError
from tables.models import TableRecord
from tables.selectors import TableMissing, may_drop, may_read, missing, resolve, sentence, taken

UPLOAD_FORMATS = {".csv": "CSV", ".parquet": "Parquet", ".pq": "Parquet"}
CSV_BLOCK_BYTES = 16 * 1024 * 1024  # types are inferred from the first block


class NulInCell(ValueError):
    """A text cell holds a NUL character, which no database stores in text."""


def _without_nul(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The batches, refused at the first text cell holding a NUL character (naming its row and column)."""
    seen = 0
    for batch in batches:
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                found = pc.index(pc.fill_null(pc.match_substring(column, "\x00"), False), True).as_py()
                if found >= 0:
                    raise NulInCell(
                        f"Row {seen + found + 1:,} of the data, column {name!r}, holds a NUL character (\\x00), "
                        "which a table cannot store in text; remove it from the file."
                    )
        seen += batch.num_rows
        yield batch


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
    blank = [i + 1 for i, f in enumerate(schema) if not str(f.name).strip()]
    if blank:
        which = ", ".join(map(str, blank))
        raise ValidationError(
            {"file": [f"Column {which} of the file has no name in its header row; give every column a name."]}
        )
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
        if created_by is not None and not may_read(created_by, table):
            raise TableConflict(taken(table))
        raise TableConflict(f"The table {table} already exists; drop it first or choose another name.")
    try:
        schema, batches = _batches(source, fmt)
        target, renamed = _normalized(schema)
        batches = _without_nul(batches) if fmt == "CSV" else batches
        rows = catalog.create(table, target, (b.rename_columns(target.names).cast(target) for b in batches))
    except NulInCell as exc:
        raise ValidationError({"file": [str(exc)]}) from None
    except TableExistsError:
        raise TableConflict(f"The table {table} already exists; drop it first or choose another name.") from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as exc:
        raise ValidationError({"file": [f"The {fmt} file could not be read: {_arrow_message(exc)}"]}) from None
    except WarehouseError as exc:
        raise ValidationError({"file": [sentence(exc)]}) from None
    # The uploader's team owns it (the first, by name, of a user in several).
    team = created_by.groups.order_by("name").first() if created_by is not None else None
    table_record(name=str(table), created_by=created_by, team=team)
    return UploadResult(name=table, rows=rows, renamed=renamed)


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
    if not may_read(user, table):
        raise TableMissing(missing(table))
    if not may_drop(user, table):
        raise PermissionDenied(f"Only whoever created {table} here, its model's team or an admin can drop it.")
    if confirmation.strip() not in {str(table), name.strip()}:
        raise ValidationError({"confirm": [f"Type the table name {table} to confirm."]})
    try:
        catalog.drop(table)
    except TableNotFoundError as exc:
        raise TableMissing(sentence(exc)) from None
    table_forget(name=str(table))
    return table


def table_record(*, name: str, created_by=None, team=None, job=None) -> TableRecord:
    """Record who made a table here and the team it belongs to; a job's output: the job that made it,
    and its model's team."""
    record, _ = TableRecord.objects.update_or_create(
        name=name, defaults={"created_by": created_by, "team": team, "job": job}
    )
    return record


def table_claim(*, name: str, created_by=None, team=None) -> bool:
    """Record a table about to be made for `team`, only if no one recorded it yet (insert-only: of two
    teams naming one new table, exactly one gets it); False when the name was recorded already."""
    try:
        with transaction.atomic():
            TableRecord.objects.create(name=name, created_by=created_by, team=team)
    except IntegrityError:
        return False
    return True


def table_forget(*, name: str) -> None:
    """The table is gone (dropped, or removed by the job that was writing it)."""
    TableRecord.objects.filter(name=name).delete()
