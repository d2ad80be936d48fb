"""append_once on every catalog: the table made on first use, each transaction appended once (even
when two writers race), and rows whose columns are not the table's refused with the difference named."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from mlplatform.warehouse import TableName, WarehouseError

from .conftest import Boom

SCHEMA = pa.schema([("id", pa.int64()), ("score", pa.float64()), ("job_id", pa.string())])


def rows(job: str, n: int, start: int = 0) -> pa.Table:
    return pa.table(
        {"id": list(range(start, start + n)), "score": [i / 2 for i in range(n)], "job_id": [job] * n}, schema=SCHEMA
    )


def read(catalog, name) -> list[dict]:
    return pa.Table.from_batches(list(catalog.read_batches(name)), schema=catalog.arrow_schema(name)).to_pylist()


@pytest.fixture(params=["local_lake", "s3_lake", "pg"])
def catalog_and_name(request):
    if request.param != "pg":
        return request.getfixturevalue(request.param), TableName("lake", "hist", "scores_history")
    pg = request.getfixturevalue("pg")
    return pg, TableName("pg", request.getfixturevalue("pg_schema"), "scores_history")


def append(catalog, name, table: pa.Table, txn: str):
    job = table.column("job_id")[0].as_py() if table.num_rows else "none"
    return catalog.append_once(
        name, table.schema, table.to_batches(max_chunksize=3), txn_id=txn, key_column="job_id", key_value=job
    )


def test_it_makes_the_table_on_first_use_and_appends_each_transaction_once(catalog_and_name):
    catalog, name = catalog_and_name
    assert append(catalog, name, rows("job-1", 10), "txn-1") == 10
    assert append(catalog, name, rows("job-1", 10), "txn-1") is None  # a retry: nothing written
    assert append(catalog, name, rows("job-2", 7, start=100), "txn-2") == 7
    assert append(catalog, name, rows("job-2", 7, start=100), "txn-2") is None
    stored = read(catalog, name)
    assert len(stored) == 17
    assert sorted(r["id"] for r in stored if r["job_id"] == "job-1") == list(range(10))
    assert sorted(r["id"] for r in stored if r["job_id"] == "job-2") == list(range(100, 107))


def test_columns_in_another_order_are_appended_in_the_tables_order(catalog_and_name):
    catalog, name = catalog_and_name
    append(catalog, name, rows("job-1", 2), "txn-1")
    swapped = rows("job-2", 2, start=5).select(["job_id", "score", "id"])
    assert append(catalog, name, swapped, "txn-2") == 2
    assert [c.name for c in catalog.columns(name)] == ["id", "score", "job_id"]
    assert {r["id"]: r["job_id"] for r in read(catalog, name)} == {0: "job-1", 1: "job-1", 5: "job-2", 6: "job-2"}


def test_rows_with_other_columns_are_refused_naming_the_difference(catalog_and_name):
    catalog, name = catalog_and_name
    append(catalog, name, rows("job-1", 3), "txn-1")
    drifted = rows("job-2", 3).rename_columns(["id", "probability", "job_id"])
    with pytest.raises(WarehouseError) as error:
        append(catalog, name, drifted, "txn-2")
    assert "missing score" in str(error.value) and "not in the table: probability" in str(error.value)
    assert len(read(catalog, name)) == 3  # untouched


def test_a_stream_that_breaks_midway_appends_nothing_and_can_be_appended_after(catalog_and_name):
    catalog, name = catalog_and_name
    append(catalog, name, rows("job-1", 3), "txn-1")

    def broken():
        yield from rows("job-2", 4).to_batches(max_chunksize=2)[:1]
        raise Boom("the input broke midway")

    with pytest.raises(Boom):
        catalog.append_once(name, SCHEMA, broken(), txn_id="txn-2", key_column="job_id", key_value="job-2")
    assert len(read(catalog, name)) == 3
    assert append(catalog, name, rows("job-2", 4), "txn-2") == 4
    assert len(read(catalog, name)) == 7


def test_two_writers_racing_with_one_transaction_append_it_once(catalog_and_name):
    catalog, name = catalog_and_name
    append(catalog, name, rows("job-0", 1), "txn-0")  # the table exists: both race to append
    results, errors = [], []
    start = threading.Barrier(2)

    def write():
        start.wait()
        try:
            results.append(append(catalog, name, rows("job-1", 50), "txn-1"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results, key=lambda r: r is None) == [50, None]
    assert len(read(catalog, name)) == 51


def test_a_transaction_id_that_is_not_plain_text_is_refused(local_lake):
    with pytest.raises(WarehouseError, match="transaction id"):
        local_lake.append_once("hist.t", SCHEMA, [], txn_id="../../etc", key_column="job_id", key_value="x")
