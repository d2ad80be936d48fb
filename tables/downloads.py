"""A table as a file to download (CSV or Parquet), streamed batch by batch: the table page's buttons
and the API answer with the same response. Memory stays bounded by a batch whatever the table's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

from mlplatform.warehouse import TableName, TableNotFoundError
from mlplatform.warehouse.export import csv_chunks, first_rows, parquet_chunks
from tables.selectors import TableMissing, may_read, missing, resolve, sentence

BATCH_ROWS = 65_536  # rows read, then sent, at a time: a few MB of CSV
FORMATS = {
    "csv": ("text/csv; charset=utf-8", csv_chunks),
    "parquet": ("application/vnd.apache.parquet", parquet_chunks),
}


@dataclass(frozen=True)
class DownloadRequest:
    format: str
    limit: int | None


def download_request(params) -> DownloadRequest:
    """`format` (csv or parquet, csv when absent) and `limit` (the first rows only) from a query;
    ValidationError naming the parameter and its rule."""
    fmt = (params.get("format") or "csv").strip().lower()
    errors = {}
    if fmt not in FORMATS:
        errors["format"] = [f"format must be csv or parquet, not {fmt[:50]!r}."]
    limit = params.get("limit")
    if limit in (None, ""):
        limit = None
    else:
        try:
            limit = int(limit)
            if limit < 1:
                raise ValueError
        except ValueError:
            errors["limit"] = ["limit must be a whole number of at least 1 (leave it out for every row)."]
    if errors:
        raise ValidationError(errors)
    return DownloadRequest(format=fmt, limit=limit)


@dataclass
class Download:
    name: TableName
    format: str
    chunks: Iterator[bytes]

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.format}"


def table_download(text: str, *, user, request: DownloadRequest) -> Download:
    """The table's rows as file chunks, made as they are sent. A table the user may not read is
    TableMissing (a 404), raised here, before any byte is sent."""
    catalog, name = resolve(text)
    if not may_read(user, name):
        raise TableMissing(missing(name))
    try:
        schema = catalog.arrow_schema(name)
        batch_rows = min(BATCH_ROWS, request.limit or BATCH_ROWS)
        batches = first_rows(catalog.read_batches(name, batch_size=batch_rows), request.limit)
    except TableNotFoundError as exc:
        raise TableMissing(sentence(exc)) from None
    _, encode = FORMATS[request.format]
    return Download(name=name, format=request.format, chunks=encode(schema, batches))


def streaming_response(download: Download) -> StreamingHttpResponse:
    """The download as an attachment; the chunks are made while the response is sent (closing the
    response, as a client that goes away does, stops the read)."""
    content_type, _ = FORMATS[download.format]
    response = StreamingHttpResponse(download.chunks, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=download.filename)
    response["Cache-Control"] = "private, no-store"
    return response
