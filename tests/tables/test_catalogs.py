"""Catalogs behind the tables API and pages: an unknown one, PostgreSQL when configured, and one
that cannot be reached."""

import os

import pytest

from tests.tables.tablekit import upload


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


def test_an_unreachable_postgresql_catalog_is_a_sentence_not_a_500(api, web, settings):
    settings.WAREHOUSE_CATALOGS = {**settings.WAREHOUSE_CATALOGS, "pg": "postgresql://nobody@127.0.0.1:1/x"}
    response = api.get("/api/v1/tables/pg.s.t/")
    assert response.status_code == 503
    assert 'the catalog "pg" cannot be reached' in response.json()["errors"]["catalog"][0]
    assert api.get("/api/v1/tables/?catalog=pg").status_code == 503
    page = web.get("/tables/?catalog=pg")
    assert page.status_code == 200 and "cannot be read right now" in page.content.decode()
    assert web.get("/tables/pg.s.t/").status_code == 503
