"""Every API endpoint renders in the browsable API (a browser asks for text/html), with real objects
in the lists, for a team member and for staff; the schema and the interactive docs (Swagger UI) open in a browser.

The URLs come from the URL resolver, so an endpoint added later is opened here too: its path
parameters must name an object below (OBJECTS), or test_every_endpoint_has_an_object_for_its_path
fails and says which parameter to add.
"""

import io
import re
from html.parser import HTMLParser

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.urls import URLResolver
from drf_spectacular.validation import validate_schema

from batchjobs.models import BatchAttempt, Schedule, ScheduleRun
from batchjobs.pipeline.finish import record_event
from tables.services import table_upload
from tests.factories import BatchConfigFactory, BatchFactory, BatchJobFactory, BuildFactory, UserFactory

PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>")
# path parameter -> the object (made by the `objects` fixture) whose id fills it
OBJECTS = {"model_id": "model", "build_id": "build", "job_id": "job", "name": "table", "schedule_id": "schedule"}


def api_routes() -> list[str]:
    """Every route under /api/v1/, as written in the URLconf (`batch-jobs/<str:job_id>/`)."""
    from mlplatform import api_urls

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern)

    return list(walk(api_urls.urlpatterns, "/api/v1/"))


ROUTES = api_routes()


@pytest.fixture
def objects(ml_model, user, settings, tmp_path):
    """One of everything, as a team's use leaves it: a model, a build with its active batch config, a
    failed job with a batch, its attempt and events, and an uploaded table."""
    settings.WAREHOUSE_CATALOGS = {"prod": (tmp_path / "lake").as_uri()}
    settings.WAREHOUSE_DEFAULT_CATALOG = "prod"
    build = BuildFactory(model=ml_model)
    config = BatchConfigFactory(build=build, model=ml_model, is_active=True, env={"API_KEY": "s3cret"})
    job = BatchJobFactory(
        batch_config=config, status="failed", message="batch 0 failed: <b>boom</b>", requested_by=user
    )
    batch = BatchFactory(job=job, index=0, status="failed", error="ValueError: <b>boom</b>")
    BatchAttempt.objects.create(batch=batch, number=1, status="failed", error="ValueError", log="scoring 1000 rows")
    record_event(job, 402)
    record_event(job, 401, "batch 0 failed")
    csv = io.BytesIO(b"id,amount\n1,2.5\n")
    table_upload(name="prod.t.scores_input", source=csv, filename="in.csv", created_by=user)
    schedule = Schedule.objects.create(
        model=ml_model,
        team=ml_model.team,
        name="nightly",
        input_table="prod.t.scores_input",
        output_table_template="prod.t.scores_{run}",
        cron="0 2 * * *",
        notify_urls=["json://hooks.example.com/s3cret"],
        created_by=user,
    )
    ScheduleRun.objects.create(schedule=schedule, due_at=schedule.created_at, status="missed", message="<b>x</b>")
    return {
        "model": ml_model.model_id,
        "build": str(build.pk),
        "job": str(job.pk),
        "table": "prod.t.scores_input",
        "schedule": str(schedule.pk),
    }


def filled(route: str, objects: dict) -> str:
    return PARAMETER.sub(lambda m: objects[OBJECTS[m.group(2)]], route)


def test_every_endpoint_has_an_object_for_its_path():
    unknown = {name for route in ROUTES for _, name in PARAMETER.findall(route)} - set(OBJECTS)
    assert unknown == set(), f"add an object for the path parameters {sorted(unknown)} to OBJECTS"
    assert len(ROUTES) >= 15  # the resolver was walked (models, builds, tables, jobs, events, ...)


@pytest.mark.parametrize("staff", [False, True], ids=["member", "staff"])
@pytest.mark.parametrize("route", ROUTES)
def test_every_endpoint_renders_as_a_page(client, user, objects, route, staff):
    user.is_staff = staff
    user.save()
    client.force_login(user)
    url = filled(route, objects)
    response = client.get(url, HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert response.status_code in (200, 405), (url, response.status_code)  # 405: an endpoint that only takes POST
    if "attachment" in response.get("Content-Disposition", ""):
        return  # a download (a table as a file) is a file in a browser too
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "<html" in page and "ML Platform · REST API v1" in page
    assert "<b>boom</b>" not in page  # model errors stay text
    assert "s3cret" not in page  # secret env values stay masked
    if response.status_code == 405:  # the page offers the POST it takes
        assert re.search(r'<form[^>]+method="POST"', page), url


def test_the_lists_show_the_objects_and_the_post_forms_ask_for_what_the_endpoint_takes(web, objects):
    jobs = web.get("/api/v1/batch-jobs/", HTTP_ACCEPT="text/html").content.decode()
    assert objects["job"] in jobs and "batch 0 failed: &lt;b&gt;boom&lt;/b&gt;" in jobs
    assert 'name="input_table"' in jobs and 'name="output_table"' in jobs  # the trigger form
    assert 'name="batches_total"' not in jobs  # not the job's own fields
    assert 'name="status"' in jobs  # the filter form (django-filter), with the status choices
    builds = web.get(f"/api/v1/models/{objects['model']}/builds/", HTTP_ACCEPT="text/html").content.decode()
    assert objects["build"] in builds and 'name="artifact"' in builds
    events = web.get("/api/v1/events/", HTTP_ACCEPT="text/html").content.decode()
    assert events.count(objects["job"]) >= 2 and 'name="evid"' in events
    tables = web.get("/api/v1/tables/", HTTP_ACCEPT="text/html").content.decode()
    assert objects["table"] in tables
    assert 'name="name"' in tables and 'name="file"' in tables and 'name="rows"' not in tables  # the upload form
    config = web.get(f"/api/v1/builds/{objects['build']}/batch-config/", HTTP_ACCEPT="text/html").content.decode()
    assert 'name="deployment_name"' in config and "test-deployment" in config
    cancel = web.get(f"/api/v1/batch-jobs/{objects['job']}/cancel/", HTTP_ACCEPT="text/html").content.decode()
    assert 'name="input_table"' not in cancel and 'name="status"' not in cancel  # a bare POST button


def test_another_teams_objects_are_a_404_page_in_the_browsable_api(client, objects):
    client.force_login(UserFactory(username="mallory"))
    for route in ROUTES:
        if PARAMETER.search(route):
            response = client.get(filled(route, objects), HTTP_ACCEPT="text/html")
            assert response.status_code in (404, 405), route


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def local_urls_only(page: str) -> list[str]:
    """The page's src and href URLs, after asserting each is a path on this server."""
    links = _Links()
    links.feed(page)
    assert links.urls
    for url in links.urls:
        assert url.startswith("/") and not url.startswith("//"), url
    return links.urls


def test_the_interactive_docs_load_only_our_own_static_files(web):
    response = web.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "http://" not in page and "https://" not in page  # no CDN, no web fonts
    static = [url for url in local_urls_only(page) if url.startswith("/static/")]
    assert any(url.endswith((".js", ".css")) for url in static)
    for url in static:
        assert finders.find(url.removeprefix("/static/")), f"{url} is not one of our static files"
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts and all(src.startswith("/static/drf_spectacular_sidecar/") for src in scripts)
    assert "/api/schema/" in page  # the schema the docs read


def test_the_docs_send_a_visitor_who_is_not_logged_in_to_the_login_page(client, db):
    response = client.get("/api/docs/")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=/api/docs/")


def test_the_nav_links_to_the_browsable_api_and_the_docs(web):
    page = web.get("/models/").content.decode()
    assert '<a href="/api/v1/">API</a>' in page and '<a href="/api/docs/">API docs</a>' in page


def test_the_schema_opens_in_a_browser_as_a_page_and_downloads_with_a_readable_name(web):
    browser = web.get("/api/schema/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert browser.status_code == 200 and browser["Content-Type"].startswith("text/html")
    assert "Content-Disposition" not in browser
    assert "/api/v1/batch-jobs/" in browser.content.decode() and "openapi: 3" in browser.content.decode()
    client = web.get("/api/schema/", HTTP_ACCEPT="*/*")  # a script gets YAML, named for saving
    assert client["Content-Type"].startswith("application/vnd.oai.openapi")
    assert client["Content-Disposition"] == 'inline; filename="mlplatform-api.yaml"'
    as_json = web.get("/api/schema/?format=json", HTTP_ACCEPT="text/html,*/*;q=0.8")  # opens in the browser
    assert as_json["Content-Type"] == "application/json"
    assert as_json["Content-Disposition"] == 'inline; filename="mlplatform-api.json"'
    assert as_json.json()["info"]["title"].startswith("ML Platform")


def test_the_schema_is_valid_openapi_and_names_every_endpoint(web):
    schema = yaml.safe_load(web.get("/api/schema/", HTTP_ACCEPT="application/yaml").content)
    validate_schema(schema)
    documented = set(schema["paths"])
    for route in ROUTES:
        path = PARAMETER.sub(lambda m: "{" + m.group(2) + "}", route)
        assert route == "/api/v1/" or path in documented, path
    # cancel and retry take no body (the schema used to ask for a whole job)
    assert "requestBody" not in schema["paths"]["/api/v1/batch-jobs/{job_id}/cancel/"]["post"]
