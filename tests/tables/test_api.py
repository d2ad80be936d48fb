"""The tables API: list, detail, preview and drop, and who may drop a table."""

import io

import pyarrow as pa
import pyarrow.parquet as pq
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from tables import selectors as table_selectors
from tables import services as table_services
from tests.tables.tablekit import upload


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


def test_rows_limit_is_validated(api):
    upload(api, "prod.s.t")
    response = api.get("/api/v1/tables/prod.s.t/rows/?limit=5000")
    assert response.status_code == 400 and "limit" in response.json()["errors"]


def test_nested_values_with_nan_preview_as_json(api, user):
    table = pa.table({"values": pa.array([[1.0, float("nan")], None], pa.list_(pa.float64()))})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    table_services.table_upload(
        name="prod.s.nested", source=io.BytesIO(buffer.getvalue()), filename="n.parquet", created_by=user
    )
    response = api.get("/api/v1/tables/prod.s.nested/rows/")
    assert response.status_code == 200
    assert response.json()["rows"] == [[[1.0, None]], [None]]


def test_only_the_tables_creator_its_team_or_an_admin_may_drop_it(api, user, outsider):
    api.post(
        "/api/v1/tables/", {"name": "prod.s.mine", "file": SimpleUploadedFile("a.csv", b"a\n1\n")}, format="multipart"
    )
    other = APIClient()
    other.force_authenticate(outsider)
    response = other.delete("/api/v1/tables/prod.s.mine/")
    assert response.status_code == 404  # another team's table does not exist for them
    assert response.json() == {"errors": {"name": ['The table "prod.s.mine" does not exist.']}}
    assert table_selectors.table_get("prod.s.mine", user=user).rows == 1
    assert api.delete("/api/v1/tables/prod.s.mine/").status_code == 204
