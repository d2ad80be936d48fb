"""Tables: pages and API over a lake catalog in a temporary folder (and PostgreSQL when configured)."""

import io
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tables import selectors as table_selectors
from tables import services as table_services

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
CSV = b"transaction_id,Amount,country\n1,10.5,us\n2,,gb\n3,7.25,de\n"


@pytest.fixture(autouse=True)
def lake(settings, tmp_path):
    """A fresh lake per test; a PostgreSQL catalog too when the tests run on PostgreSQL."""
    catalogs = {"prod": (tmp_path / "lake").as_uri()}
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        catalogs["pg"] = url
    settings.WAREHOUSE_CATALOGS = catalogs
    settings.WAREHOUSE_DEFAULT_CATALOG = "prod"
    return tmp_path / "lake"


def csv_file(content: bytes = CSV, name: str = "data.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def parquet_file(table: pa.Table) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return SimpleUploadedFile("data.parquet", buffer.getvalue())


def upload(api, name, file=None):
    return api.post("/api/v1/tables/", {"name": name, "file": file or csv_file()}, format="multipart")


def test_upload_list_detail_preview_and_drop_through_the_api(api):
    response = upload(api, "prod.sandbox.tx")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["rows"]) == ("prod.sandbox.tx", 3)
    assert body["columns"] == [
        {"name": "transaction_id", "type": "int64"},
        {"name": "amount", "type": "double"},
        {"name": "country", "type": "string"},
    ]
    assert body["renamed_columns"] == {"Amount": "amount"}
    assert api.get("/api/v1/tables/?catalog=prod").json() == [
        {"name": "prod.sandbox.tx", "catalog": "prod", "schema": "sandbox", "table": "tx", "rows": 3}
    ]
    rows = api.get("/api/v1/tables/prod.sandbox.tx/rows/?limit=2").json()
    assert rows["columns"] == ["transaction_id", "amount", "country"]
    assert rows["rows"] == [[1, 10.5, "us"], [2, None, "gb"]]
    assert api.delete("/api/v1/tables/prod.sandbox.tx/").status_code == 204
    assert api.get("/api/v1/tables/prod.sandbox.tx/").status_code == 404
    assert api.get("/api/v1/tables/").json() == []


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


def test_a_file_named_like_a_table_is_never_read(api, lake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")
    lake.mkdir(parents=True, exist_ok=True)
    (lake / "secret.csv").write_text("password\nhunter2\n")
    for name in ['"secret.csv"', "secret.csv", "prod.default.secret.csv"]:
        for url in [f"/api/v1/tables/{name}/", f"/api/v1/tables/{name}/rows/"]:
            response = api.get(url)
            assert response.status_code in (400, 404), url
            assert "hunter2" not in response.content.decode()
    assert "hunter2" not in str(api.get("/api/v1/tables/").json())


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


def test_rows_limit_is_validated(api):
    upload(api, "prod.s.t")
    response = api.get("/api/v1/tables/prod.s.t/rows/?limit=5000")
    assert response.status_code == 400 and "limit" in response.json()["errors"]


def test_an_unknown_catalog_is_a_404(api):
    assert api.get("/api/v1/tables/?catalog=nope").status_code == 404


@pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL")
def test_the_postgresql_catalog_works_through_the_api(api):
    import uuid

    schema = f"t_{uuid.uuid4().hex[:10]}"
    name = f"pg.{schema}.tx"
    response = upload(api, name)
    assert response.status_code == 201, response.json()
    try:
        assert api.get(f"/api/v1/tables/{name}/rows/").json()["rows"][1] == [2, None, "gb"]
        assert upload(api, name).status_code == 409
        assert any(t["name"] == name for t in api.get(f"/api/v1/tables/?catalog=pg&schema={schema}").json())
    finally:
        assert api.delete(f"/api/v1/tables/{name}/").status_code == 204


# --- pages ------------------------------------------------------------------------------------


def test_the_tables_pages_list_show_and_preview(web):
    table_services.table_upload(name="prod.sales.orders", source=io.BytesIO(CSV), filename="o.csv")
    listing = web.get(reverse("tables:list")).content.decode()
    assert "prod.sales.orders" in listing and ">3<" in listing
    page = web.get(reverse("tables:detail", args=["prod.sales.orders"])).content.decode()
    assert "transaction_id" in page and "int64" in page and "10.5" in page
    assert 'class="null">null' in page
    assert web.get(reverse("tables:detail", args=["prod.sales.nothing"])).status_code == 404
    assert web.get(reverse("tables:detail", args=["Bad.Name"])).status_code == 404


def test_uploading_from_the_page(web):
    response = web.post(reverse("tables:upload"), {"name": "prod.s.up", "file": csv_file()})
    assert response.status_code == 302
    assert response.url == reverse("tables:detail", args=["prod.s.up"])
    assert table_selectors.table_get("prod.s.up").rows == 3
    bad = web.post(reverse("tables:upload"), {"name": "prod.S.up", "file": csv_file()})
    assert bad.status_code == 400
    assert "the schema part &quot;S&quot; must match" in bad.content.decode()


def test_the_name_is_checked_while_typing(web):
    html = web.get(reverse("tables:check-name"), {"name": "prod.X.y"}, HTTP_HX_REQUEST="true")
    assert "<html" not in html.content.decode() and "the schema part" in html.content.decode()
    ok = web.get(reverse("tables:check-name"), {"name": "prod.x.y"}).content.decode()
    assert "Will create prod.x.y" in ok


def test_dropping_from_the_page_needs_the_typed_name(web, user):
    table_services.table_upload(name="prod.s.keep", source=io.BytesIO(CSV), filename="k.csv", created_by=user)
    url = reverse("tables:drop", args=["prod.s.keep"])
    assert "Type" in web.get(url).content.decode()
    wrong = web.post(url, {"confirm": "prod.s.other"})
    assert wrong.status_code == 400 and "Type the table name prod.s.keep to confirm" in wrong.content.decode()
    assert table_selectors.table_get("prod.s.keep").rows == 3
    assert web.post(url, {"confirm": "prod.s.keep"}).status_code == 302
    with pytest.raises(table_selectors.TableMissing):
        table_selectors.table_get("prod.s.keep")


def test_model_output_in_tables_is_escaped(web):
    table_services.table_upload(
        name="prod.s.evil", source=io.BytesIO(b"note\n<script>alert(1)</script>\n"), filename="e.csv"
    )
    html = web.get(reverse("tables:detail", args=["prod.s.evil"])).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
