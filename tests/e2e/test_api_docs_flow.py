"""In a browser with no way out of the platform: the nav's API docs open Swagger UI from our
own static files, and a request made from the docs runs as the logged-in user."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login, shoot
from tests.factories import GroupFactory, MLModelFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def outside(page, live_server):
    """Every request for a URL outside the live server is refused and listed (a user's browser may
    have no internet either)."""
    refused = []

    def route(route):
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    return refused


def test_the_api_docs_work_offline_and_call_the_api_as_the_user(page, outside):
    team = GroupFactory(name="fraud-team")
    UserFactory(username="erin", password="pw-for-tests", teams=[team])
    MLModelFactory(model_id="ds-premium-fraud-detection", team=team)
    login(page, "erin", "pw-for-tests")
    page.click("nav.mainnav >> text=API docs")
    page.wait_for_url("**/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("ML Platform")
    operation = page.locator(".opblock-summary", has_text="/api/v1/models/").first
    expect(operation).to_be_visible()
    shoot(page, "80-api-docs")

    page.locator("#operations-v1-v1_models_list").click()  # GET /api/v1/models/, as the logged-in user
    page.locator("#operations-v1-v1_models_list .try-out__btn").click()
    page.locator("#operations-v1-v1_models_list .execute").click()
    live = page.locator("#operations-v1-v1_models_list .live-responses-table tbody .response")
    expect(live.locator(".response-col_status")).to_have_text("200")
    expect(live).to_contain_text("ds-premium-fraud-detection")

    page.goto("/api/schema/")  # a page, not a download called "download"
    expect(page.locator(".response-info pre")).to_contain_text("openapi: 3")
    shoot(page, "82-schema-page")
    page.goto("/api/v1/batch-jobs/")
    expect(page.locator(".navbar")).to_contain_text("ML Platform · REST API v1")
    shoot(page, "81-browsable-api-jobs")
    assert outside == []
