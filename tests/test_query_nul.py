"""A NUL byte in any query parameter is a 400 naming the parameter, on every page and endpoint
(PostgreSQL answers a NUL in a filter with an error: a 500 before)."""

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

DUMMY = {"slug": "some-model", "uuid": str(uuid.uuid4()), "int": "1", "str": "prod.s.t", "path": "x"}


def every_path(patterns=None, prefix="") -> list[str]:
    """Every URL of the site (the admin's aside), its parameters filled with made-up values."""
    found = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if route.startswith("admin/"):
            continue
        if isinstance(entry, URLResolver):
            found += every_path(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            found.append("/" + re.sub(r"<(?:(\w+):)?\w+>", lambda m: DUMMY[m.group(1) or "str"], route))
    return sorted(set(found))


PATHS = every_path()


def test_the_list_covers_the_pages_and_the_api():
    assert {"/models/", "/batch/", "/events/", "/tables/", "/api/v1/batch-jobs/", "/api/v1/events/"} <= set(PATHS)


LISTS = ["/models/", "/batch/", "/events/", "/api/v1/models/", "/api/v1/batch-jobs/", "/api/v1/events/"]
CASES = [(path, "search=%00") for path in PATHS] + [
    (path, query) for path in LISTS for query in ("model_id=a%00b", "requested_by=%00", "x%00=1")
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "query"), CASES)
def test_a_nul_in_a_query_parameter_is_a_400_naming_it(web, path, query):
    response = web.get(f"{path}?{query}")
    assert response.status_code == 400, (path, response.status_code)
    name = query.split("=")[0].replace("%00", "\\x00")
    if path.startswith("/api/"):
        assert response.json() == {
            "errors": {name: ["contains a NUL character (%00), which a query parameter may not hold."]}
        }
    else:
        page = response.content.decode()
        assert "Bad request" in page and f"The query parameter &#x27;{name}&#x27; contains a NUL character" in page, (
            page
        )


@pytest.mark.django_db
def test_an_anonymous_request_with_a_nul_is_a_400_too(client):
    assert client.get("/api/v1/batch-jobs/?search=%00").status_code == 400
