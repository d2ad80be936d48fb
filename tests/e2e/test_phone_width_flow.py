"""In a browser 390 px wide (a phone): every main page fits the screen (no sideways page scroll; wide
tables scroll inside their card) and Log out stays on screen. With E2E_SCREENSHOTS set, the job page,
the board and the table page are saved at 1440 px and 390 px to be looked at."""

from datetime import timedelta

import pyarrow as pa
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from batchjobs.models import BatchAttempt
from batchjobs.pipeline.finish import record_event
from tables import selectors as table_selectors
from tables import services as table_services
from tests.e2e.conftest import login, shoot
from tests.factories import (
    BatchConfigFactory,
    BatchFactory,
    BatchJobFactory,
    BuildFactory,
    GroupFactory,
    MLModelFactory,
    UserFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
PASSWORD = "pw-for-tests"
LONG_MODEL = "ds-premium-fraud-detection-card-transactions-europe-v2"
LONG_INPUT = "prod.fraud_in_premium_model.card_transactions_europe_2026_week_48_input"
LONG_OUTPUT = "prod.fraud_in_premium_model.card_transactions_europe_2026_week_48_scores"
FAILURE = (
    "1 of 4 batches failed (25,000 of 100,000 rows), so no output table was written: batch 2 (25,000 rows): "
    "KeyError: 'merchant_category_code_description_normalized' is not a column of the input table\n"
    'Traceback (most recent call last):\n  File "fraud_model/model.py", line 88, in predict'
)
SCHEMA = {
    "features": [{"name": f"feature_with_a_long_descriptive_name_{i}", "type": "float"} for i in range(6)],
    "predictions": [{"name": "fraud_probability_calibrated", "type": "float"}],
}


@pytest.fixture(autouse=True)
def _lake(e2e_lake):
    """Tables in a lake of this test's own."""


@pytest.fixture
def demo():
    """A team's platform after a busy week: a long model id, long table names, a failed job with its
    message, a succeeded one, a running one, events, and a wide table."""
    team = GroupFactory(name="fraud-detection")
    user = UserFactory(username="dana", password=PASSWORD, teams=[team])
    model = MLModelFactory(model_id=LONG_MODEL, team=team, description="Scores card transactions " * 6)
    build = BuildFactory(model=model, number=1, schema=SCHEMA, entrypoint="fraud_model.model:FraudModel")
    config = BatchConfigFactory(
        build=build, model=model, is_active=True, deployment_name=f"{LONG_MODEL}-batch", env={"API_TOKEN": "x"}
    )
    now = timezone.now()
    failed = BatchJobFactory(
        batch_config=config,
        status="failed",
        phase="predicting",
        message=FAILURE,
        error_detail=FAILURE,
        input_table=LONG_INPUT,
        output_table=LONG_OUTPUT,
        input_rows=100_000,
        batches_total=4,
        requested_by=user,
        started_at=now - timedelta(minutes=3),
        finished_at=now - timedelta(minutes=1),
    )
    for index in range(4):
        batch = BatchFactory(job=failed, index=index, rows=25_000, status="failed" if index == 2 else "succeeded")
        BatchAttempt.objects.create(
            batch=batch, number=1, status=batch.status, error=FAILURE if index == 2 else "", log="scoring " * 200
        )
    record_event(failed, 402)
    record_event(failed, 401, FAILURE)
    BatchJobFactory(
        batch_config=config,
        input_table=LONG_INPUT,
        output_table=LONG_OUTPUT + "_2",
        output_rows=2_000,
        requested_by=user,
        started_at=now - timedelta(minutes=9),
        finished_at=now - timedelta(minutes=8),
    )
    table = pa.table({f"a_rather_long_column_name_{i}": pa.array([i * 1.5] * 20) for i in range(12)})
    catalog, name = table_selectors.resolve(LONG_INPUT)
    catalog.create(name, table.schema, table.to_batches())
    table_services.table_record(name=str(name), created_by=user, team=team)
    return {"model": model, "build": build, "failed": failed, "table": str(name)}


def pages(demo) -> dict[str, str]:
    model, build, job = demo["model"].model_id, demo["build"].pk, demo["failed"].pk
    return {
        "models": "/models/",
        "model-overview": f"/models/{model}/",
        "model-builds": f"/models/{model}/builds/",
        "model-jobs": f"/models/{model}/jobs/",
        "model-predict": f"/models/{model}/predict/",
        "build": f"/builds/{build}/",
        "batch-config": f"/builds/{build}/batch-config/",
        "board": "/batch/",
        "job": f"/batch/{job}/",
        "job-logs": f"/batch/{job}/logs/",
        "events": "/events/",
        "tables": "/tables/",
        "table": f"/tables/{demo['table']}/",
        "upload": "/tables/upload/",
    }


def fits(page) -> dict:
    """How wide the page is against the window, and where Log out is."""
    return page.evaluate(
        """() => {
            const out = document.querySelector('.userbox button');
            const box = out.getBoundingClientRect();
            return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
                    logoutLeft: box.left, logoutRight: box.right, logoutTop: box.top, logoutBottom: box.bottom};
        }"""
    )


def test_every_main_page_fits_a_phone_and_keeps_log_out_on_screen(page, demo):
    page.set_viewport_size(PHONE)
    login(page, "dana", PASSWORD)
    too_wide = {}
    for name, url in pages(demo).items():
        response = page.goto(url)
        assert response.status == 200, (name, response.status)
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)  # parts loaded by htmx after the page (the job's logs)
        logout = page.locator(".userbox button", has_text="Log out")
        expect(logout).to_be_in_viewport()
        size = fits(page)
        assert 0 <= size["logoutLeft"] and size["logoutRight"] <= size["innerWidth"], (name, size)
        if size["scrollWidth"] > size["innerWidth"]:
            too_wide[name] = size["scrollWidth"]
    assert too_wide == {}, f"pages wider than {PHONE['width']} px: {too_wide}"

    # On the board a job's status and why it failed are on screen, no sideways scrolling needed.
    page.goto("/batch/")
    row = page.locator("#job-table tbody tr", has_text="Failed")
    for part in (row.locator(".badge-failed"), row.locator(".fail-reason")):
        box = part.bounding_box()  # across: the page does not scroll sideways, so this is on screen
        assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], box
    expect(row.locator(".fail-reason")).to_contain_text("1 of 4 batches failed")
    expect(row.locator(".fail-reason")).to_have_attribute("title", FAILURE)

    # A wide table scrolls inside its card, and its last column can be scrolled to.
    page.goto(pages(demo)["table"])
    preview = page.locator("section.scroll-x", has=page.locator("table.data"))
    assert preview.evaluate("e => e.scrollWidth > e.clientWidth")
    last = preview.locator("th").last
    last.scroll_into_view_if_needed()
    expect(last).to_be_in_viewport(ratio=1)
    assert fits(page)["scrollWidth"] <= PHONE["width"]

    # The top bar wraps: brand and Log out on one line, every nav link on screen below them.
    page.goto("/models/")
    page.click("text=+ New model")  # the form opens within the screen
    submit = page.locator("button", has_text="Register model")
    expect(submit).to_be_visible()
    box = page.locator(".inline-create form").bounding_box()
    assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], box
    assert fits(page)["scrollWidth"] <= PHONE["width"]
    shoot(page, "390-new-model")
    page.goto("/models/")
    for link in page.locator("nav.mainnav a").all():
        expect(link).to_be_in_viewport(ratio=1)
    page.locator("nav.mainnav >> text=Tables").click()
    page.wait_for_url("**/tables/")
    expect(page.locator("h1")).to_have_text("Tables")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1440", "390"])
def test_screenshots_of_the_job_page_the_board_and_the_table_page(page, demo, viewport):
    page.set_viewport_size(viewport)
    login(page, "dana", PASSWORD)
    width = viewport["width"]
    for name in ("job", "board", "table"):
        page.goto(pages(demo)[name])
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)
        assert fits(page)["scrollWidth"] <= width, name
        shoot(page, f"{width}-{name}")
    page.goto(pages(demo)["board"])
    row = page.locator("#job-table tbody tr", has_text="Succeeded")
    expect(row.locator(f"a[href='/tables/{demo['table']}/']")).to_be_visible()
