"""Files to upload as tables, and an upload through the API."""

import io

import pyarrow as pa
import pyarrow.parquet as pq
from django.core.files.uploadedfile import SimpleUploadedFile

CSV = b"transaction_id,Amount,country\n1,10.5,us\n2,,gb\n3,7.25,de\n"


def csv_file(content: bytes = CSV, name: str = "data.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def parquet_file(table: pa.Table) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return SimpleUploadedFile("data.parquet", buffer.getvalue())


def upload(api, name, file=None):
    return api.post("/api/v1/tables/", {"name": name, "file": file or csv_file()}, format="multipart")
