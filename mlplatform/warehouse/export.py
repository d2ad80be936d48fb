"""A table as a file to download, CSV or Parquet, made batch by batch: each batch read becomes bytes
to send at once, so memory stays bounded by a batch whatever the table's size.

Values keep their full precision: Parquet stores them as they are; CSV writes the shortest text that
reads back as the same number. CSV has no nested or binary values: lists, structs and maps are
written as JSON text, bytes as hex (as the table page shows them).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Generator, Iterable, Iterator

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlplatform.parquet import dictionary_columns

COMPRESSION = "snappy"


class _Sink(io.RawIOBase):
    """A write-only file whose bytes are taken out as they come; it still counts every byte written
    (a Parquet footer records offsets from tell())."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        chunk = bytes(data)
        self._pending.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        """The bytes written since the last take."""
        data = b"".join(self._pending)
        self._pending.clear()
        return data


def first_rows(batches: Iterable[pa.RecordBatch], limit: int | None) -> Generator[pa.RecordBatch]:
    """The batches up to `limit` rows in all (every row when None); the source is closed after."""
    source = iter(batches)
    left = limit
    try:
        for batch in source:
            if left is not None:
                if left <= 0:
                    break
                if batch.num_rows > left:
                    batch = batch.slice(0, left)
                left -= batch.num_rows
            yield batch
    finally:
        _close(source)


def csv_chunks(schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Generator[bytes]:
    """A CSV file (a header row, then one row per table row) as one chunk of bytes per batch."""
    target = csv_schema(schema)
    sink = _Sink()
    source = iter(batches)
    try:
        with pacsv.CSVWriter(sink, target) as writer:
            for batch in source:
                writer.write_batch(_for_csv(batch, target))
                yield sink.take()
        if header := sink.take():  # a table without rows: its header alone
            yield header
    finally:
        _close(source)


def parquet_chunks(schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Generator[bytes]:
    """A Parquet file as bytes: each batch a row group, sent as soon as it is written, then the footer."""
    sink = _Sink()
    source = iter(batches)
    try:
        writer = pq.ParquetWriter(sink, schema, compression=COMPRESSION, use_dictionary=dictionary_columns(schema))
        try:
            for batch in source:
                writer.write_batch(batch, row_group_size=max(batch.num_rows, 1))
                yield sink.take()
        finally:
            writer.close()
        yield sink.take()
    finally:
        _close(source)


def _close(source: Iterator) -> None:
    close = getattr(source, "close", None)
    if close is not None:
        close()  # a PostgreSQL read stops its COPY; a lake read closes its file


# --- CSV: what a column becomes ---------------------------------------------------------------------


def _is_binary(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)


def csv_schema(schema: pa.Schema) -> pa.Schema:
    """The columns as CSV writes them: nested and binary columns become text."""
    return pa.schema(
        [f.with_type(pa.string()) if pa.types.is_nested(f.type) or _is_binary(f.type) else f for f in schema],
        metadata=None,
    )


def _for_csv(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    if batch.schema.equals(target):
        return batch
    columns = []
    for column, field in zip(batch.columns, batch.schema, strict=True):
        if pa.types.is_nested(field.type):
            column = pa.array([None if v is None else _json(v) for v in column.to_pylist()], pa.string())
        elif _is_binary(field.type):
            column = pa.array([None if v is None else v.hex() for v in column.to_pylist()], pa.string())
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=target)


def _json(value) -> str:
    return json.dumps(json_safe(value), ensure_ascii=False, separators=(",", ":"))


def json_safe(value):
    """A value from Arrow as JSON can carry it, nested ones too (NaN as null, infinities, times and
    other objects as text, bytes as hex): in CSV cells and the pages' previews."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        # A map arrives as a list of (key, value) pairs.
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
