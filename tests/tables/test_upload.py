"""Creating a table by uploading a CSV or Parquet file through the API: names, formats, types, and
nothing left behind when an upload is refused."""

import pyarrow as pa
import pytest

from tables import services as table_services
from tests.tables.tablekit import csv_file, parquet_file, upload

BAD_NAMES = [
    ("prod.x;drop table y", "table part"),
    ('prod."a""b".c', "schema part"),
    ("a.b.c.d", "at most three parts"),
    ("Prod.X.Y", "catalog part"),
    ("prod.s." + "t" * 64, "table part"),
    ("pr\u043ed.s.t", "catalog part"),  # a Cyrillic о
    ('"secret.csv"', "part"),
    ("read_csv('/etc/passwd')", "part"),
]


def test_a_short_name_lands_in_the_default_catalog_and_schema(api):
    assert upload(api, "tx").json()["name"] == "prod.default.tx"
    assert upload(api, "sales.tx").json()["name"] == "prod.sales.tx"


@pytest.mark.parametrize(("name", "part"), BAD_NAMES)
def test_bad_names_are_refused_naming_the_part_and_the_rule_and_nothing_is_created(api, lake, name, part):
    response = upload(api, name)
    assert response.status_code == 400
    message = " ".join(response.json()["errors"]["name"])
    assert part in message
    assert "lowercase letters" in message or "at most three parts" in message
    assert not lake.exists() or not any(lake.rglob("*.parquet"))


def test_creating_a_table_that_exists_fails_and_leaves_its_rows_unchanged(api):
    assert upload(api, "prod.s.t").status_code == 201
    response = upload(api, "prod.s.t", csv_file(b"other\n99\n"))
    assert response.status_code == 409
    assert "already exists" in response.json()["errors"]["name"][0]
    assert api.get("/api/v1/tables/prod.s.t/rows/").json()["rows"] == [
        [1, 10.5, "us"],
        [2, None, "gb"],
        [3, 7.25, "de"],
    ]


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (b"a,b\n1,2\n3\n", "bad.csv", "The CSV file could not be read"),
        (b"\x00\x01garbage" * 10, "bad.parquet", "The Parquet file could not be read"),
        (b"a,b\n1,2\n", "data.xlsx", "Upload a .csv or .parquet file"),
        (b"Name,name\n1,2\n", "dup.csv", "Several columns become name"),
        (b"a,,c\n1,2,3\n", "blank.csv", "Column 2 of the file has no name in its header row"),
        (b"a,b\n1,x\n2,y\x00z\n", "nul.csv", "Row 2 of the data, column 'b', holds a NUL character"),
    ],
)
def test_a_malformed_upload_gives_a_clear_error_and_leaves_no_table(api, lake, content, filename, message):
    response = upload(api, "prod.s.broken", csv_file(content, filename))
    assert response.status_code == 400
    assert message in response.json()["errors"]["file"][0]
    assert api.get("/api/v1/tables/prod.s.broken/").status_code == 404
    assert not lake.exists() or not [p for p in lake.rglob("*") if p.is_file()]


def test_a_csv_whose_later_rows_break_the_inferred_types_leaves_no_table(api, lake, monkeypatch):
    monkeypatch.setattr(table_services, "CSV_BLOCK_BYTES", 64)  # so the bad row is in a later block
    content = b"n\n" + b"".join(f"{i}\n".encode() for i in range(200)) + b"not a number\n"
    response = upload(api, "prod.s.late", csv_file(content))
    assert response.status_code == 400
    assert "could not be read" in response.json()["errors"]["file"][0]
    assert not [p for p in lake.rglob("*") if p.is_file()]


def test_a_parquet_upload_keeps_its_types(api):
    table = pa.table({"id": pa.array([1, 2], pa.int64()), "ok": [True, False], "score": [0.5, None]})
    response = upload(api, "prod.s.pq", parquet_file(table))
    assert response.status_code == 201, response.json()
    assert [c["type"] for c in response.json()["columns"]] == ["int64", "bool", "double"]


def test_a_nul_in_a_later_block_of_a_csv_is_named_by_its_row_and_leaves_no_table(api, lake, monkeypatch):
    monkeypatch.setattr(table_services, "CSV_BLOCK_BYTES", 64)  # so the NUL is in a later block
    content = b"n,s\n" + b"".join(f"{i},ok\n".encode() for i in range(300)) + b"300,bad\x00\n"
    response = upload(api, "prod.s.nul", csv_file(content))
    assert response.status_code == 400
    assert response.json()["errors"]["file"] == [
        "Row 301 of the data, column 's', holds a NUL character (\\x00), which a table cannot store in text; "
        "remove it from the file."
    ]
    assert not [p for p in lake.rglob("*") if p.is_file()]


def test_the_preview_caps_each_cell_and_says_how_much_was_left_out(api):
    assert upload(api, "prod.s.long", csv_file(b"id,text\n1," + b"x" * 25_000 + b"\n")).status_code == 201
    cell = api.get("/api/v1/tables/prod.s.long/rows/").json()["rows"][0][1]
    assert cell == "x" * 10_000 + "… [15,000 more characters]"
