"""Fixtures for the warehouse tests: a local lake, an S3 lake, a PostgreSQL schema.

The S3 lake talks HTTP to a small in-process S3 endpoint (tests/s3server.py) backed by moto's
S3 implementation, so pyarrow's real S3 client code runs.
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Iterator

import psycopg2
import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from psycopg2 import sql

from mlplatform.warehouse import LakeCatalog, PostgresCatalog
from tests.s3server import s3_endpoint  # noqa: F401 - a fixture

# --- sample data -------------------------------------------------------------------------------

SAMPLE_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("small", pa.int16()),
        ("medium", pa.int32()),
        ("ratio", pa.float32()),
        ("amount", pa.float64()),
        ("country", pa.string()),
        ("is_foreign", pa.bool_()),
        ("day", pa.date32()),
        ("seen_at", pa.timestamp("us")),
        ("paid_at", pa.timestamp("us", tz="UTC")),
    ]
)


def sample_table(rows: int = 10, start: int = 0) -> pa.Table:
    """Rows of every supported type; every third value of each column (bar id) is NULL and
    country holds an empty string too, so NULL and "" must both survive a round trip."""

    def maybe(i: int, value: object) -> object:
        return None if i % 3 == 1 else value

    ids = range(start, start + rows)
    day0 = datetime.date(2024, 2, 29)
    t0 = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456)
    return pa.table(
        {
            "id": list(ids),
            "small": [maybe(i, i % 30_000 - 15_000) for i in ids],
            "medium": [maybe(i, i * 7 - 2**31 + 1) for i in ids],
            "ratio": [maybe(i, i / 8) for i in ids],
            "amount": [maybe(i, i * 1.1 + 1e-9) for i in ids],
            "country": [maybe(i, ["fr", "", 'a "quoted", line\nbreak', "\\N"][i % 4]) for i in ids],
            "is_foreign": [maybe(i, i % 2 == 0) for i in ids],
            "day": [maybe(i, day0 + datetime.timedelta(days=i)) for i in ids],
            "seen_at": [maybe(i, t0 + datetime.timedelta(seconds=i)) for i in ids],
            "paid_at": [maybe(i, (t0 + datetime.timedelta(minutes=i)).replace(tzinfo=datetime.UTC)) for i in ids],
        },
        schema=SAMPLE_SCHEMA,
    )


def ints_table(rows: int, start: int = 0) -> pa.Table:
    return pa.table({"n": pa.array(range(start, start + rows), pa.int64())})


class Boom(Exception):
    """What a failing input stream raises."""


def failing_batches(table: pa.Table, after: int = 2) -> Iterator[pa.RecordBatch]:
    """Yield `after` batches of `table`, then fail as a broken input would."""
    for i, batch in enumerate(table.to_batches(max_chunksize=max(1, table.num_rows // 4))):
        if i == after:
            raise Boom("the input broke midway")
        yield batch


class Untouchable:
    """Stands for a filesystem or connection that a test proves is never used."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"touched: .{name}")

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise AssertionError("touched: called")


# --- lakes ---------------------------------------------------------------------------------------


@pytest.fixture
def local_lake(tmp_path) -> LakeCatalog:
    return LakeCatalog("lake", (tmp_path / "lake").as_uri())


@pytest.fixture
def s3_filesystem(s3_endpoint) -> pafs.S3FileSystem:  # noqa: F811 - the fixture
    """pyarrow's S3 client, pointed at the local endpoint."""
    return pafs.S3FileSystem(
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        endpoint_override=s3_endpoint,
        scheme="http",
        allow_bucket_creation=True,
    )


@pytest.fixture
def s3_lake(s3_endpoint, s3_filesystem) -> LakeCatalog:  # noqa: F811 - the fixture
    """A lake on the local S3 endpoint: pyarrow reads and writes the parts, delta-rs the log (it
    finds the endpoint in the URL, as settings give it)."""
    s3_filesystem.create_dir("lake-bucket")
    url = f"s3://lake-bucket/warehouse?endpoint_override={s3_endpoint}&scheme=http&region=us-east-1"
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return LakeCatalog("lake", url, filesystem=s3_filesystem, storage_options=keys)


@pytest.fixture(params=["local", "s3"])
def lake(request) -> LakeCatalog:
    """The lake on a local disk and on S3 (commits put-if-absent by rename, or by conditional PUT)."""
    return request.getfixturevalue(f"{request.param}_lake")


# --- PostgreSQL ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        url = os.environ.get("WAREHOUSE_TEST_POSTGRES_URL", "")
    if not url:
        pytest.skip(
            "PostgreSQL tests need a server: set DATABASE_URL=postgresql://... or "
            "WAREHOUSE_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    return url


@pytest.fixture
def pg_schema(pg_url) -> Iterator[str]:
    """A schema of its own for each test, dropped with everything in it afterwards."""
    schema = f"wh_test_{uuid.uuid4().hex[:12]}"
    yield schema
    conn = psycopg2.connect(pg_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    finally:
        conn.close()


@pytest.fixture
def pg(pg_url, pg_schema) -> PostgresCatalog:
    return PostgresCatalog("pg", pg_url)


@pytest.fixture
def pg_sql(pg_url, pg_schema) -> Iterator[object]:
    """Run a statement on the test database and return its rows (for setup and checks).

    Unqualified names refer to the test's own schema (it is first on the search path).
    """
    conn = psycopg2.connect(pg_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(pg_schema)))

    def run(statement: str, params: object = None) -> list[tuple]:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []

    yield run
    conn.close()
