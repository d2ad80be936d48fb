"""The PostgreSQL catalog against a real server: every interface operation, and what is left.

Each test works in a schema of its own (see the pg_schema fixture), dropped afterwards.
"""

from __future__ import annotations

import datetime
import time
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from mlplatform.warehouse import (
    Column,
    ColumnNameError,
    PostgresCatalog,
    TableExistsError,
    TableName,
    TableNameError,
    TableNotFoundError,
    WarehouseError,
)
from mlplatform.warehouse import postgres as postgres_module

from .conftest import SAMPLE_SCHEMA, Boom, Untouchable, failing_batches, ints_table, sample_table

PARIS = ZoneInfo("Europe/Paris")
NOWHERE = "postgresql://nobody@127.0.0.1:1/none"  # for tests that must never connect
INTS = pa.schema([("n", pa.int64())])


@pytest.fixture
def name(pg_schema):
    def make(table: str) -> TableName:
        return TableName("pg", pg_schema, table)

    return make


def relations_in(pg_sql, schema: str) -> list[str]:
    """Every relation (tables, temporary ones included) in the schema."""
    rows = pg_sql(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s ORDER BY 1",
        [schema],
    )
    return [r for (r,) in rows]


def read_all(pg: PostgresCatalog, table: TableName, **kwargs) -> pa.Table:
    batches = list(pg.read_batches(table, **kwargs))
    return pa.Table.from_batches(batches, schema=None if batches else pg.arrow_schema(table))


# --- the interface -----------------------------------------------------------------------------


def test_it_round_trips_every_type_with_nulls_and_empty_strings(pg, name):
    table = sample_table(1000)
    assert pg.create(name("sample"), SAMPLE_SCHEMA, table.to_batches(max_chunksize=300)) == 1000

    back = read_all(pg, name("sample"))
    assert back.schema == SAMPLE_SCHEMA
    assert back.equals(table)
    countries = back.column("country").to_pylist()
    assert None in countries and "" in countries and "\\N" in countries


def test_it_stores_each_arrow_type_as_the_matching_postgresql_type(pg, name, pg_sql, pg_schema):
    pg.create(name("sample"), SAMPLE_SCHEMA, [sample_table(3)])

    rows = pg_sql(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = 'sample' ORDER BY ordinal_position",
        [pg_schema],
    )
    assert rows == [
        ("id", "bigint"),
        ("small", "smallint"),
        ("medium", "integer"),
        ("ratio", "real"),
        ("amount", "double precision"),
        ("country", "text"),
        ("is_foreign", "boolean"),
        ("day", "date"),
        ("seen_at", "timestamp without time zone"),
        ("paid_at", "timestamp with time zone"),
    ]
    assert pg_sql("SELECT count(*) FROM sample WHERE country IS NULL") == [(1,)]
    assert pg_sql("SELECT count(*) FROM sample WHERE country = ''") == [(0,)]


def test_it_keeps_special_floats_and_awkward_text(pg, name):
    table = pa.table(
        {
            "x": [float("nan"), float("inf"), float("-inf"), 0.1, -0.0, 1e-300, None],
            "s": ["", None, "a,b", 'say "hi"', "line\nbreak\r\n", "\\N", "caf\u00e9 \u2603"],
        }
    )
    pg.create(name("odd"), table.schema, [table])

    back = read_all(pg, name("odd"))
    assert back.column("s").to_pylist() == table.column("s").to_pylist()
    xs = back.column("x").to_pylist()
    assert xs[0] != xs[0] and xs[1:] == table.column("x").to_pylist()[1:]


def test_it_maps_other_arrow_types_to_the_nearest_postgresql_type(pg, name):
    table = pa.table(
        {
            "tiny": pa.array([1, None], pa.int8()),
            "big_text": pa.array(["a", ""], pa.large_string()),
            "category": pa.array(["x", None]).dictionary_encode(),
            "stamp": pa.array(
                [datetime.datetime(2024, 1, 1, 12, tzinfo=PARIS), None], pa.timestamp("ns", tz="Europe/Paris")
            ),
        }
    )
    pg.create(name("mapped"), table.schema, [table])

    back = read_all(pg, name("mapped"))
    assert pg.columns(name("mapped")) == [
        Column("tiny", "int16"),
        Column("big_text", "string"),
        Column("category", "string"),
        Column("stamp", "timestamp[us, tz=UTC]"),
    ]
    assert back.column("big_text").to_pylist() == ["a", ""]
    assert back.column("category").to_pylist() == ["x", None]
    assert back.column("stamp").to_pylist()[0] == datetime.datetime(2024, 1, 1, 11, tzinfo=datetime.UTC)


def test_it_refuses_an_arrow_type_it_cannot_store_naming_the_column():
    pg = PostgresCatalog("pg", NOWHERE, connect=Untouchable())
    schema = pa.schema([("id", pa.int64()), ("tags", pa.list_(pa.string()))])

    with pytest.raises(WarehouseError, match=r'the column "tags" has type list<item: string>'):
        pg.create("pg.s.tagged", schema, [])


def test_it_describes_the_columns_and_counts_the_rows(pg, name):
    pg.create(name("sample"), SAMPLE_SCHEMA, [sample_table(25)])

    assert pg.columns(name("sample"))[:3] == [
        Column("id", "int64"),
        Column("small", "int16"),
        Column("medium", "int32"),
    ]
    assert pg.row_count(name("sample")) == 25
    assert pg.exists(name("sample"))
    assert pg.exists(f"{name('sample').schema}.sample")


def test_it_reads_batches_of_exactly_the_batch_size_in_order(pg, name, monkeypatch):
    monkeypatch.setattr(postgres_module, "CSV_BLOCK", 4096)  # many small CSV blocks to regroup
    pg.create(name("numbers"), INTS, ints_table(20_001).to_batches(777))

    batches = list(pg.read_batches(name("numbers"), batch_size=1000))

    assert [b.num_rows for b in batches] == [1000] * 20 + [1]
    assert pa.Table.from_batches(batches).column("n").to_pylist() == list(range(20_001))


def test_it_reads_only_the_requested_columns(pg, name):
    pg.create(name("sample"), SAMPLE_SCHEMA, [sample_table(10)])

    back = read_all(pg, name("sample"), columns=["country", "id"])

    assert back.column_names == ["country", "id"]
    assert back.column("id").to_pylist() == list(range(10))
    with pytest.raises(WarehouseError, match='has no column "nope"'):
        pg.read_batches(name("sample"), columns=["id", "nope"])


def test_head_returns_the_first_rows(pg, name):
    pg.create(name("numbers"), INTS, ints_table(500).to_batches(100))

    assert pg.head(name("numbers"), 3).column("n").to_pylist() == [0, 1, 2]
    assert pg.head(name("numbers")).num_rows == 50
    assert pg.head(name("numbers"), 0).schema == INTS
    assert pg.head(name("numbers"), 10_000).num_rows == 500


def test_it_creates_an_empty_table_that_keeps_its_schema(pg, name):
    assert pg.create(name("empty"), SAMPLE_SCHEMA, iter([])) == 0

    assert pg.exists(name("empty"))
    assert pg.row_count(name("empty")) == 0
    assert pg.arrow_schema(name("empty")) == SAMPLE_SCHEMA
    assert pg.head(name("empty")).num_rows == 0
    assert list(pg.read_batches(name("empty"))) == []


def test_it_refuses_an_output_table_that_exists(pg, name, pg_sql, pg_schema):
    pg.create(name("scores"), INTS, [ints_table(3)])

    with pytest.raises(TableExistsError, match=f'"pg.{pg_schema}.scores" already exists'):
        pg.create(name("scores"), INTS, [ints_table(10, start=100)])

    assert read_all(pg, name("scores")).column("n").to_pylist() == [0, 1, 2]
    assert relations_in(pg_sql, pg_schema) == ["scores"]


def test_a_table_created_meanwhile_by_someone_else_is_never_replaced(pg, name, pg_sql, pg_schema, monkeypatch):
    """The early check passes, then another writer commits the name before the rename."""
    real_name_taken = PostgresCatalog._name_taken
    calls = []
    pg_sql(f'CREATE SCHEMA "{pg_schema}"')

    def taken_after_the_copy(cur, table):
        calls.append(table)
        if len(calls) == 2:  # the check under the advisory lock: someone got there first
            pg_sql("CREATE TABLE scores AS SELECT 7::bigint AS n")
        return real_name_taken(cur, table)

    monkeypatch.setattr(PostgresCatalog, "_name_taken", staticmethod(taken_after_the_copy))
    with pytest.raises(TableExistsError):
        pg.create(name("scores"), INTS, [ints_table(10, start=100)])

    assert len(calls) == 2
    assert pg_sql("SELECT n FROM scores") == [(7,)]
    assert relations_in(pg_sql, pg_schema) == ["scores"]


def test_a_failing_stream_leaves_no_table_and_no_temporary_table(pg, name, pg_sql, pg_schema):
    pg.create(name("other"), INTS, [ints_table(3)])

    with pytest.raises(Boom, match="the input broke midway"):
        pg.create(name("scores"), SAMPLE_SCHEMA, failing_batches(sample_table(400)))

    assert not pg.exists(name("scores"))
    assert relations_in(pg_sql, pg_schema) == ["other"]


def test_a_failing_stream_into_a_new_schema_leaves_no_schema(pg, pg_sql, pg_schema):
    table = TableName("pg", f"{pg_schema}_new", "scores")

    with pytest.raises(Boom):
        pg.create(table, SAMPLE_SCHEMA, failing_batches(sample_table(400)))

    assert pg_sql("SELECT 1 FROM pg_namespace WHERE nspname = %s", [table.schema]) == []


def test_it_refuses_bad_column_names_before_connecting():
    pg = PostgresCatalog("pg", NOWHERE, connect=Untouchable())

    with pytest.raises(ColumnNameError, match='"Amount" must match'):
        pg.create("pg.s.scores", pa.schema([("id", pa.int64()), ("Amount", pa.float64())]), [])


def test_reserved_words_are_quoted_as_names(pg, pg_sql, pg_schema):
    table = TableName("pg", pg_schema, "user")
    schema = pa.schema([("order", pa.int64()), ("select", pa.string())])

    pg.create(table, schema, [pa.table({"order": [1], "select": ["x"]}, schema=schema)])

    assert pg.head(table).to_pylist() == [{"order": 1, "select": "x"}]
    assert pg.list_tables(pg_schema) == ["user"]
    pg.drop(table)
    assert relations_in(pg_sql, pg_schema) == []


def test_it_reads_tables_made_outside_the_platform(pg, name, pg_sql, pg_schema):
    pg_sql(f'CREATE SCHEMA "{pg_schema}"')
    pg_sql('CREATE TABLE legacy ("Amount" numeric(10, 2), id uuid, doc jsonb, at timestamptz)')
    pg_sql(
        "INSERT INTO legacy VALUES (12.5, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',"
        " '{\"k\": [1, 2]}', '2024-06-01 12:00:00+02')"
    )

    assert pg.columns(name("legacy")) == [
        Column("Amount", "double"),
        Column("id", "string"),
        Column("doc", "string"),
        Column("at", "timestamp[us, tz=UTC]"),
    ]
    [row] = pg.head(name("legacy")).to_pylist()
    assert row["Amount"] == 12.5 and row["doc"] == '{"k": [1, 2]}'
    assert row["at"] == datetime.datetime(2024, 6, 1, 10, tzinfo=datetime.UTC)
    assert read_all(pg, name("legacy"), columns=["Amount"]).column("Amount").to_pylist() == [12.5]


def test_it_lists_schemas_and_tables_it_can_name(pg, name, pg_sql, pg_schema):
    pg.create(name("b_table"), INTS, [ints_table(1)])
    pg.create(name("a_table"), INTS, [ints_table(1)])
    pg_sql('CREATE TABLE "Bad Name" (n int)')
    pg_sql("CREATE VIEW a_view AS SELECT 1 AS n")
    pg_sql("CREATE SEQUENCE a_sequence")

    assert pg_schema in pg.list_schemas()
    assert not any(s.startswith("pg_") or s == "information_schema" for s in pg.list_schemas())
    assert pg.list_tables(pg_schema) == ["a_table", "a_view", "b_table"]
    assert pg.list_tables("no_such_schema") == []
    with pytest.raises(TableNameError):
        pg.list_tables("x; drop table y")


def test_drop_removes_the_table(pg, name, pg_sql, pg_schema):
    pg.create(name("scores"), INTS, [ints_table(3)])
    pg.create(name("kept"), INTS, [ints_table(3)])

    pg.drop(name("scores"))

    assert not pg.exists(name("scores"))
    assert relations_in(pg_sql, pg_schema) == ["kept"]
    with pytest.raises(TableNotFoundError, match=f'"pg.{pg_schema}.scores" does not exist'):
        pg.drop(name("scores"))
    with pytest.raises(TableNotFoundError):
        pg.drop(TableName("pg", "no_such_schema_here", "scores"))


def test_reading_a_missing_table_says_it_does_not_exist(pg, name):
    for call in (pg.arrow_schema, pg.columns, pg.row_count, pg.read_batches, pg.head):
        with pytest.raises(TableNotFoundError, match="does not exist"):
            call(name("missing"))
    assert not pg.exists(name("missing"))


def test_stopping_a_read_early_ends_the_copy_and_frees_the_connection(pg, name, pg_sql, pg_schema):
    pg.create(name("numbers"), INTS, ints_table(300_000).to_batches(100_000))

    batches = pg.read_batches(name("numbers"), batch_size=10)
    assert next(batches).num_rows == 10
    batches.close()

    deadline = time.monotonic() + 10
    running = "SELECT 1 FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()"
    while pg_sql(running, [f"COPY (SELECT%{pg_schema}%"]):
        assert time.monotonic() < deadline, "the COPY kept running"
        time.sleep(0.05)
    assert pg.row_count(name("numbers")) == 300_000


# --- names never become SQL ----------------------------------------------------------------------

BAD_NAMES = ["prod.x;drop table y", 'pg."a""b".c', '"secret.csv"', "read_csv('/etc/passwd')", "a.b.c.d", ""]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_names_are_refused_before_connecting(bad):
    pg = PostgresCatalog("pg", NOWHERE, connect=Untouchable())

    for call in (pg.exists, pg.arrow_schema, pg.row_count, pg.read_batches, pg.head, pg.drop):
        with pytest.raises(TableNameError):
            call(bad)
    with pytest.raises(TableNameError):
        pg.create(bad, INTS, [])
    with pytest.raises(TableNameError):
        pg.list_tables(bad)


def test_a_value_arrow_cannot_parse_fails_the_read_without_hanging(pg, name, pg_sql, pg_schema, monkeypatch):
    monkeypatch.setattr(postgres_module, "CSV_BLOCK", 4096)  # the server has much more to send
    pg_sql(f'CREATE SCHEMA "{pg_schema}"')
    pg_sql("CREATE TABLE days AS SELECT 'infinity'::date AS d, 0 AS n")
    pg_sql("INSERT INTO days SELECT current_date, n FROM generate_series(1, 300000) AS n")

    with pytest.raises(pa.ArrowInvalid, match="date32"):
        list(pg.read_batches(name("days")))

    assert pg.row_count(name("days")) == 300_001


def test_a_server_error_during_the_read_is_reported(pg, name, pg_sql, pg_schema):
    pg_sql(f'CREATE SCHEMA "{pg_schema}"')
    pg_sql("CREATE TABLE numbers AS SELECT n FROM generate_series(1, 300000) AS n")
    pg_sql("CREATE VIEW broken AS SELECT n, 1 / (200000 - n) AS r FROM numbers")  # fails midway

    with pytest.raises(WarehouseError, match="division by zero"):
        list(pg.read_batches(name("broken")))
