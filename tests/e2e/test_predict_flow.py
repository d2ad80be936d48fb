"""In a browser, with a real worker: the PREDICT tab's Check, then Trigger Batch Job; the job page
moves from queued/running to succeeded without a reload and shows the rows."""

import io
import re

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import expect

from batchjobs.models import BatchJob
from tables import selectors as table_selectors
from tests.e2e.conftest import login, shoot

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def demo(job_worker):
    # The live server runs in this process: it must see the worker's catalogs.
    original = settings.WAREHOUSE_CATALOGS, settings.WAREHOUSE_DEFAULT_CATALOG
    settings.WAREHOUSE_CATALOGS, settings.WAREHOUSE_DEFAULT_CATALOG = job_worker.catalogs, "prod"
    call_command("load_demo", stdout=io.StringIO())
    yield (settings.DATA_DIR / "demo_password").read_text()
    settings.WAREHOUSE_CATALOGS, settings.WAREHOUSE_DEFAULT_CATALOG = original


def test_trigger_the_demo_job_and_watch_it_succeed(page, demo):
    login(page, "demo", demo)
    page.goto("/models/ds-premium-fraud-detection/predict/")
    buttons = page.locator("#predict-panel .actions button")
    expect(buttons).to_have_text(["Check", "Try on 100 rows", "Trigger Batch Job"])
    # The input table suggests the team's tables as it is typed.
    page.locator("#id_input_table").press_sequentially("fraud_in_premium_model.in", delay=30)
    expect(page.locator("#table-names option")).to_have_count(1)
    expect(page.locator("#table-names option")).to_have_attribute("value", "prod.fraud_in_premium_model.input")
    page.fill("#id_input_table", "prod.fraud_in_premium_model.input")
    page.fill("#id_output_table", "prod.fraud_in_premium_model.scores_e2e")

    # Try on 100 rows shows its steps as they happen, each with its seconds, then the result.
    page.click("button[value=try]")
    steps = page.locator("#try-progress li")
    expect(steps.first).to_contain_text("Checking the input table…")
    expect(page.locator("#try-progress li[data-step=start]")).to_contain_text(re.compile(r"Starting the model… \d"))
    shoot(page, "52-try-progress")
    trial = page.locator("#trial")
    expect(trial.locator("h2")).to_have_text("First 100 rows through build 1", timeout=60_000)
    expect(page.locator("#try-progress li")).to_have_text(
        [
            re.compile(r"^Checking the input table… \d+(\.\d)? s$"),
            re.compile(r"^Reading the first 100 rows… \d+(\.\d)? s$"),
            re.compile(r"^Starting the model… \d+(\.\d)? s$"),
            re.compile(r"^Predicting 100 rows… \d+(\.\d)? s$"),
            re.compile(r"^Done in \d+(\.\d)? s$"),
        ]
    )
    expect(page.locator("#projection")).to_contain_text(
        re.compile(
            r"^Estimate: about \d+ (s|min) for 100,000 rows at 2 batches in parallel "
            r"\(\d+ batches; predict\(\) measured "
        )
    )
    expect(trial.locator("thead th").first).to_have_text("fraud_probability")
    expect(trial.locator("thead th").nth(1)).to_have_text("is_fraud")
    shoot(page, "53-try-result")
    assert not BatchJob.objects.exists()

    page.click("button[value=check]")
    expect(page.locator("#check-ok")).to_contain_text("prod.fraud_in_premium_model.input has 100,000 rows")
    shoot(page, "50-predict-checked")
    # Another try takes the last results away while it runs: they are not its results.
    page.click("button[value=try]")
    assert page.locator("#check-ok").count() == 0
    expect(trial.locator("h2")).to_have_text("First 100 rows through build 1", timeout=60_000)
    page.click("button[value=trigger]")
    page.wait_for_url("**/batch/*/")
    job = BatchJob.objects.get()
    expect(page.locator(".status-line")).to_contain_text("Succeeded", timeout=90_000)  # polled, no reload by us
    expect(page.locator("#job-live")).to_contain_text("100,000 / 100,000")
    expect(page.locator("#job-live")).to_contain_text("rows predicted into prod.fraud_in_premium_model.scores_e2e")
    shoot(page, "51-job-succeeded")
    job.refresh_from_db()
    assert (job.status, job.output_rows) == ("succeeded", 100_000)
    catalog, name = table_selectors.resolve("prod.fraud_in_premium_model.scores_e2e")
    assert catalog.row_count(name) == 100_000
    assert {"fraud_probability", "is_fraud"} <= {c.name for c in catalog.columns(name)}
    page.locator("#job-live a", has_text="scores_e2e").click()
    expect(page.locator("h1")).to_have_text("prod.fraud_in_premium_model.scores_e2e")
    assert page.dialogs == []
