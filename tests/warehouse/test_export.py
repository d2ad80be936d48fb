"""Tables as files to download (mlplatform.warehouse.export): one chunk per batch, the source closed
when the file ends early, and an empty table still a valid file."""

import io

import pyarrow as pa
import pyarrow.parquet as pq

from mlplatform.warehouse.export import csv_chunks, first_rows, parquet_chunks

SCHEMA = pa.schema([("n", pa.int64()), ("label", pa.string())])


def batches(count: int, rows: int = 4):
    for i in range(count):
        yield pa.record_batch([pa.array(range(i * rows, (i + 1) * rows)), pa.array(["x"] * rows)], schema=SCHEMA)


def test_each_batch_is_sent_as_soon_as_it_is_written():
    csv = list(csv_chunks(SCHEMA, batches(3)))
    assert len(csv) == 3 and csv[0].startswith(b'"n","label"\n0,"x"\n')
    assert b"".join(csv).count(b"\n") == 1 + 12
    parquet = list(parquet_chunks(SCHEMA, batches(3)))
    assert len(parquet) == 4  # three row groups, then the footer
    assert parquet[0].startswith(b"PAR1") and parquet[-1].endswith(b"PAR1")
    assert pq.read_table(io.BytesIO(b"".join(parquet))).column("n").to_pylist() == list(range(12))


def test_first_rows_stops_reading_and_closes_the_source():
    source = batches(100)
    taken = list(first_rows(source, 6))
    assert [b.num_rows for b in taken] == [4, 2]
    assert next(source, None) is None  # closed: a PostgreSQL read stops its COPY then
    assert sum(b.num_rows for b in first_rows(batches(2), None)) == 8


def test_a_table_without_rows_is_a_header_or_an_empty_parquet_file():
    assert list(csv_chunks(SCHEMA, [])) == [b'"n","label"\n']
    empty = pq.read_table(io.BytesIO(b"".join(parquet_chunks(SCHEMA, []))))
    assert empty.num_rows == 0 and empty.schema.equals(SCHEMA)
