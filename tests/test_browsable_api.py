"""Every list endpoint renders in the browsable API (a browser asks for text/html)."""

import pytest


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/",
        "/api/v1/models/",
        "/api/v1/instance-types/",
        "/api/v1/tables/",
        "/api/v1/batch-jobs/",
        "/api/v1/events/",
    ],
)
def test_a_list_endpoint_renders_as_a_page(web, url, settings, tmp_path):
    settings.WAREHOUSE_CATALOGS = {"prod": (tmp_path / "lake").as_uri()}
    settings.WAREHOUSE_DEFAULT_CATALOG = "prod"
    response = web.get(url, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html") and b"<html" in response.content
