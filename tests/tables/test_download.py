"""Downloading a table as CSV or Parquet, from the table page and the API: every row exact, streamed
batch by batch, for whoever may read the table (another team's is a 404); bad parameters are a 400."""

import io
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tables import downloads
from tables import selectors as table_selectors
from tables import services as table_services
from tests.tables.tablekit import CSV

ROWS = 2 * downloads.BATCH_ROWS + 1_234  # three batches
CATALOGS = ["prod"] + (["pg"] if os.environ.get("DATABASE_URL", "").startswith("postgres") else [])
TRICKY = ["plain", 'say "hi"', "a,b", "two\nlines", "ünïcode €", None]


def table(rows: int = ROWS) -> pa.Table:
    """Ids, floats that need all 17 digits, text that needs quoting, booleans; nulls in all but id."""
    ids = range(rows)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "amount": pa.array([None if i % 11 == 5 else i / 7 + 1e-9 for i in ids], pa.float64()),
            "note": pa.array([TRICKY[i % len(TRICKY)] for i in ids], pa.string()),
            "flag": pa.array([None if i % 13 == 0 else i % 2 == 0 for i in ids], pa.bool_()),
        }
    )


@pytest.fixture
def saved(user, request):
    """The table above, made by the user (so their team's), in the catalog of the test's parameter."""
    catalog_name = getattr(request, "param", "prod")
    schema = f"dl_{os.getpid()}" if catalog_name == "pg" else "dl"
    name = f"{catalog_name}.{schema}.scores"
    catalog, parsed = table_selectors.resolve(name)
    data = table()
    catalog.create(parsed, data.schema, data.to_batches(max_chunksize=10_000))
    table_services.table_record(name=name, created_by=user, team=user.groups.get())
    yield name, data
    if catalog.exists(parsed):
        catalog.drop(parsed)


def body(response) -> tuple[bytes, int]:
    """The streamed body and how many chunks it came in."""
    assert response.streaming, "a download is streamed"
    chunks = list(response.streaming_content)
    return b"".join(chunks), len(chunks)


def as_python(frame: pd.DataFrame) -> dict[str, list]:
    """Columns as plain Python values, NaN as None (as the table has them)."""
    return {c: [None if pd.isna(v) else v for v in frame[c].tolist()] for c in frame.columns}


@pytest.mark.parametrize("saved", CATALOGS, indirect=True)
def test_the_api_streams_every_row_exactly_as_csv_and_as_parquet(api, saved):
    name, data = saved
    response = api.get(f"/api/v1/tables/{name}/download/")  # csv by default
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{name}.csv"'
    content, chunks = body(response)
    assert chunks >= 3  # one per batch read: the response did not wait for the whole table
    assert content.startswith(b'"id","amount","note","flag"\n')
    got = pd.read_csv(io.BytesIO(content), dtype={"note": object})
    assert as_python(got) == data.to_pydict()  # floats to the last bit, quoted text, nulls

    response = api.get(f"/api/v1/tables/{name}/download/?format=parquet")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    assert response["Content-Disposition"] == f'attachment; filename="{name}.parquet"'
    content, chunks = body(response)
    assert chunks >= 3
    parquet = pq.ParquetFile(io.BytesIO(content))
    assert parquet.metadata.num_row_groups == 3
    assert parquet.read().equals(data)


def test_a_token_client_downloads_the_first_rows(user, saved):
    name, data = saved
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    response = client.get(f"/api/v1/tables/{name}/download/", {"format": "parquet", "limit": "70000"})
    assert response.status_code == 200
    content, _ = body(response)
    assert pq.read_table(io.BytesIO(content)).equals(data.slice(0, 70_000))
    csv = client.get(f"/api/v1/tables/{name}/download/?limit=3", HTTP_ACCEPT="text/csv")
    assert csv.status_code == 200
    assert body(csv)[0].decode().splitlines()[1:] == [
        '0,1e-9,"plain",',
        '1,0.14285714385714285,"say ""hi""",false',
        '2,0.2857142867142857,"a,b",true',
    ]


def test_the_table_page_offers_both_downloads(web, saved):
    name, data = saved
    page = web.get(reverse("tables:detail", args=[name])).content.decode()
    csv_url = reverse("tables:download", args=[name]) + "?format=csv"
    parquet_url = reverse("tables:download", args=[name]) + "?format=parquet"
    assert f'href="{csv_url}"' in page and "Download CSV" in page
    assert f'href="{parquet_url}"' in page and "Download Parquet" in page
    response = web.get(parquet_url)
    assert response.status_code == 200 and response["Content-Disposition"] == f'attachment; filename="{name}.parquet"'
    assert pq.read_table(io.BytesIO(body(response)[0])).equals(data)
    response = web.get(csv_url)
    assert len(pd.read_csv(io.BytesIO(body(response)[0]))) == ROWS


def test_another_teams_table_is_a_404_everywhere(saved, outsider):
    name, _ = saved
    api = APIClient()
    api.force_authenticate(outsider)
    for fmt in ("csv", "parquet"):
        response = api.get(f"/api/v1/tables/{name}/download/?format={fmt}")
        assert response.status_code == 404
        assert response.json() == {"errors": {"name": [f'The table "{name}" does not exist.']}}
    from django.test import Client

    web = Client()
    web.force_login(outsider)
    assert web.get(reverse("tables:download", args=[name]) + "?format=csv").status_code == 404
    # A table that is nobody's is readable by every logged-in user.
    table_services.table_upload(name="prod.shared.rates", source=io.BytesIO(CSV), filename="r.csv")
    response = api.get("/api/v1/tables/prod.shared.rates/download/")
    assert response.status_code == 200 and body(response)[0].decode().count("\n") == 4


def test_bad_parameters_are_a_400_that_names_them(api, web, saved):
    name, _ = saved
    url = f"/api/v1/tables/{name}/download/"
    response = api.get(url, {"format": "xlsx"})
    assert (response.status_code, response.json()) == (
        400,
        {"errors": {"format": ["format must be csv or parquet, not 'xlsx'."]}},
    )
    for limit in ("0", "-5", "ten", "1.5"):
        response = api.get(url, {"limit": limit})
        assert response.status_code == 400
        assert response.json() == {
            "errors": {"limit": ["limit must be a whole number of at least 1 (leave it out for every row)."]}
        }
    page = web.get(reverse("tables:download", args=[name]), {"format": "xlsx"})
    assert page.status_code == 400 and "format must be csv or parquet, not &#x27;xlsx&#x27;." in page.content.decode()
    assert api.get("/api/v1/tables/Bad.Name/download/").status_code == 400
    assert api.get("/api/v1/tables/prod.dl.nothing/download/").status_code == 404
    assert web.get(reverse("tables:download", args=["prod.dl.nothing"])).status_code == 404


def test_an_anonymous_download_is_refused(saved):
    name, _ = saved
    assert APIClient().get(f"/api/v1/tables/{name}/download/").status_code == 401


def test_nested_and_binary_values_download_as_text_in_csv(api):
    # As another tool may have written it: the platform's uploads take no bytes.
    data = pa.table(
        {
            "values": pa.array([[1.5, None], None], pa.list_(pa.float64())),
            "point": pa.array([{"x": 1, "label": "a,b"}, None], pa.struct([("x", pa.int64()), ("label", pa.string())])),
            "blob": pa.array([b"\x00\xff", None], pa.binary()),
        }
    )
    catalog, name = table_selectors.resolve("prod.s.nested")
    catalog.create(name, data.schema, data.to_batches())
    csv = body(api.get("/api/v1/tables/prod.s.nested/download/"))[0].decode()
    assert csv.splitlines() == ['"values","point","blob"', '"[1.5,null]","{""x"":1,""label"":""a,b""}","00ff"', ",,"]
    parquet = body(api.get("/api/v1/tables/prod.s.nested/download/?format=parquet"))[0]
    assert pq.read_table(io.BytesIO(parquet)).to_pydict() == data.to_pydict()


def test_stopping_a_download_midway_closes_the_read(api, saved):
    name, _ = saved
    response = api.get(f"/api/v1/tables/{name}/download/?format=csv")
    first = next(iter(response.streaming_content))
    assert first.startswith(b'"id"')
    response.close()  # what the server does when the client goes away
    with pytest.raises(StopIteration):
        next(iter(response.streaming_content))


def test_a_long_cell_is_capped_in_the_preview_and_comes_whole_in_the_downloads(api, web, user):
    long = "x" * 24_990 + "the end"  # 24,997 characters: the cap, then 14,997 more
    data = pa.table({"id": pa.array([1], pa.int64()), "text": pa.array([long], pa.string())})
    catalog, name = table_selectors.resolve("prod.dl.long")
    catalog.create(name, data.schema, data.to_batches())
    table_services.table_record(name=str(name), created_by=user, team=user.groups.get())
    capped = "x" * 10_000 + "… [14,997 more characters]"

    assert api.get(f"/api/v1/tables/{name}/rows/").json()["rows"] == [[1, capped]]
    page = web.get(reverse("tables:detail", args=[str(name)])).content.decode()
    assert capped in page and "the end" not in page

    csv = body(api.get(f"/api/v1/tables/{name}/download/?format=csv"))[0].decode()
    assert csv.splitlines() == ['"id","text"', f'1,"{long}"']
    parquet = body(api.get(f"/api/v1/tables/{name}/download/?format=parquet"))[0]
    assert pq.read_table(io.BytesIO(parquet)).to_pydict() == {"id": [1], "text": [long]}
    assert body(web.get(reverse("tables:download", args=[str(name)]) + "?format=csv"))[0].decode() == csv
