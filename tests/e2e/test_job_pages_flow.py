"""In a browser, with a real worker: the Batch Jobs board and the job page as a user follows a job
(live progress without a reload, timeline, failure panel, logs, cancel confirmation, copy, Re-run)."""

import re

import pytest
from playwright.sync_api import expect

from batchjobs import services
from batchjobs.choices import BatchStatus, JobStatus
from batchjobs.models import Batch, BatchJob
from builds.choices import BuildStatus
from builds.models import Build, InstanceType
from builds.services import batch_config_set, build_register
from builds.verification import build_verify
from tables import selectors as table_selectors
from tests.artifacts import GOOD_PREDICT, model_zip, upload
from tests.batchjobs.jobkit import make_input
from tests.conftest import wait_for
from tests.e2e.conftest import login, shoot
from tests.factories import GroupFactory, MLModelFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

MODEL_ID = "ds-premium-fraud-detection"
PASSWORD = "pw-for-tests"
EVIL = "<img src=x onerror=alert(1)>"
# Models misbehave only on real batches, which carry the input's id column; build verification
# runs id-less sample rows, so it stays quick and succeeds.
IN_BATCHES = 'if "id" not in df.columns: return pd.DataFrame({"score": df["amount"] * 2}, index=df.index)'


def predict_body(*lines: str) -> str:
    return "\n        ".join(lines)


SLOW = predict_body(IN_BATCHES, "import time", "time.sleep(1)", GOOD_PREDICT)
# Batch 0 fails after batch 1 (beside it) has succeeded: a failed batch stops the job, and a batch
# still running then would be stopped with it.
FAILS_ON_BATCH_0 = predict_body(
    IN_BATCHES,
    "import time",
    'print("scoring", len(df), "rows from id", df["id"].min())',
    f'if df["id"].min() == 0: time.sleep(3); raise ValueError("{EVIL}")',
    GOOD_PREDICT,
)


@pytest.fixture(autouse=True)
def worker_lake(settings, job_worker):
    """The live server runs in this process: it reads and writes tables where the worker does."""
    assert job_worker.poll() is None, f"the job worker exited:\n{job_worker.log()[-4000:]}"
    settings.WAREHOUSE_CATALOGS, settings.WAREHOUSE_DEFAULT_CATALOG = job_worker.catalogs, "prod"


@pytest.fixture
def user():
    return UserFactory(username="dana", password=PASSWORD, teams=[GroupFactory(name="fraud-team")])


def model_running(user, body: str):
    """A model whose active batch config runs a verified build of `body` (2 processes)."""
    model = MLModelFactory(model_id=MODEL_ID, team=user.groups.first())
    build = build_register(
        model=model, upload=upload(model_zip(body)), filename="m.zip", entrypoint="scorer:Scorer", created_by=user
    )
    build_verify(build_id=build.id)  # the worker was sent it too: whichever claims it first verifies it
    build = wait_for(
        lambda: Build.objects.filter(pk=build.pk, status__in=BuildStatus.TERMINAL).first(),
        message="the build to be verified",
    )
    assert build.status == BuildStatus.SUCCEEDED, build.log
    batch_config_set(
        build=build,
        deployment_name="fraud-batch",
        set_by=user,
        processes="ALL",
        instance_type=InstanceType.objects.get(name="ml.m5.large"),
        env={},
    )
    return model


def failed_job(user, name: str) -> BatchJob:
    """A job of 2 batches whose batch 0 fails; tables are named after `name` (the lake outlives a test)."""
    model = model_running(user, FAILS_ON_BATCH_0)
    make_input(f"prod.e2e.{name}_in", 2_000)
    job = services.job_trigger(
        model=model, input_table=f"prod.e2e.{name}_in", output_table=f"prod.e2e.{name}_out", requested_by=user
    )
    job = wait_for(
        lambda: BatchJob.objects.filter(pk=job.pk, status__in=JobStatus.TERMINAL).first(), message="the job to end"
    )
    assert job.status == JobStatus.FAILED, job.message
    return job


def test_a_job_triggered_from_the_predict_tab_goes_to_succeeded_on_the_board_without_a_reload(page, user):
    model_running(user, SLOW)
    make_input("prod.e2e.slow_in", 20_000)
    login(page, "dana", PASSWORD)
    page.goto(f"/models/{MODEL_ID}/predict/")
    page.fill("#id_input_table", "prod.e2e.slow_in")
    page.fill("#id_output_table", "prod.e2e.slow_out")
    page.click("button[value=trigger]")
    page.wait_for_url("**/batch/*/")
    job = BatchJob.objects.get()

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("nav.mainnav >> text=Batch Jobs")
    page.evaluate("window.__marker = 1")  # gone if the page is reloaded
    row = page.locator("#job-table tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".badge")).to_have_text("Running", timeout=30_000)
    shoot(page, "60-board-running")
    expect(row.locator(".badge")).to_have_text("Succeeded", timeout=60_000)
    expect(row.locator(".rows-count")).to_have_text("20,000 / 20,000")
    expect(row.locator(".progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#job-table[hx-trigger]")).to_have_count(0)  # nothing active is shown: polling stopped
    assert page.evaluate("window.__marker") == 1
    shoot(page, "61-board-succeeded")
    copy = row.locator("button.copy")
    copy.click()
    expect(copy).to_have_attribute("data-flash", "Copied")
    assert page.evaluate("navigator.clipboard.readText()") == str(job.pk)

    row.locator(f"a[href='/batch/{job.pk}/']").click()
    expect(page.locator(".status-line")).to_contain_text("Succeeded")
    expect(page.locator("#job-live .rows-count")).to_have_text("20,000 / 20,000")
    expect(page.locator("#job-live")).to_contain_text("20,000 rows predicted into prod.e2e.slow_out.")
    duration = r"\d+(\.\d)? s|\d+ min \d+ s"
    expect(page.locator("#timeline li")).to_have_text(
        [re.compile(rf"^{step} ({duration})$") for step in ("Queued", "Extracting", "Predicting", "Committing")]
    )
    job.refresh_from_db()
    expect(page.locator("#batches tbody tr")).to_have_count(job.batches_total)
    expect(page.locator("#batches .badge-succeeded")).to_have_count(job.batches_total)
    expect(page.locator("#logs pre.log").first).to_be_visible()
    expect(page.locator("#logs")).not_to_contain_text("No batch has run yet")
    preview = page.locator("#output-preview")
    expect(preview.locator("h2")).to_have_text("Output: first 20 rows of 20,000")
    expect(preview.locator("thead th")).to_have_text(["score", "id", "amount", "country"])
    expect(preview.locator("tbody tr")).to_have_count(20)
    expect(preview.locator("tbody tr").nth(2).locator("td")).to_have_text(["5", "2", "2.5", "de"])
    shoot(page, "62-job-succeeded")
    assert (job.status, job.output_rows, job.batches_total > 1) == ("succeeded", 20_000, True)
    catalog, name = table_selectors.resolve("prod.e2e.slow_out")
    assert catalog.row_count(name) == 20_000
    assert page.dialogs == []


def test_a_failed_job_shows_its_message_the_traceback_on_show_more_its_logs_and_can_be_re_run(page, user):
    job = failed_job(user, "failing")
    login(page, "dana", PASSWORD)
    page.goto(f"/batch/{job.pk}/")

    panel = page.locator("#error-panel")
    expect(panel.locator("h2")).to_have_text("Batch Job Message")
    expect(panel.locator(".message")).to_have_text(
        "1 of 2 batches failed (1,000 of 2,000 rows), so no output table was written: "
        f"batch 0 (1,000 rows): ValueError: {EVIL}."
    )
    assert panel.locator(".message").evaluate("e => getComputedStyle(e).fontWeight") in ("600", "700")
    traceback = panel.locator("details pre.log")
    expect(traceback).to_be_hidden()
    summary = panel.locator("details.more > summary")
    expect(summary).to_have_text("Show More", use_inner_text=True)
    summary.click()
    expect(traceback).to_be_visible()
    expect(traceback).to_contain_text("Traceback")
    expect(traceback).to_contain_text(f"ValueError: {EVIL}")
    expect(summary).to_have_text("Show less", use_inner_text=True)
    shoot(page, "63-job-failed-show-more")
    summary.click()
    expect(traceback).to_be_hidden()
    expect(summary).to_have_text("Show More", use_inner_text=True)
    summary.click()

    # The logs load after the page, starting with the first failed batch.
    logs = page.locator("#logs")
    expect(logs.locator("article h3")).to_contain_text("Batch 0 · attempt 1 Failed")
    expect(logs.locator("pre.log")).to_contain_text("scoring 1000 rows from id 0")
    expect(logs.locator(".error-text")).to_contain_text(f"ValueError: {EVIL}")
    page.locator("#batches tbody tr", has_text="Succeeded").get_by_role("link", name="log").click()
    expect(logs.locator("article h3")).to_contain_text("Batch 1 · attempt 1 Succeeded")
    expect(logs.locator("pre.log")).to_contain_text("scoring 1000 rows from id 1000")
    expect(page).to_have_url(re.compile(rf"/batch/{job.pk}/$"))
    shoot(page, "64-job-failed-logs")

    page.click("text=Re-run…")
    page.wait_for_url(f"**/models/{MODEL_ID}/predict/?rerun={job.pk}")
    expect(page.locator("#rerun-note")).to_contain_text(f"Re-run of job {str(job.pk)[:8]}")
    expect(page.locator("#rerun-note")).to_contain_text("prod.e2e.failing_out is left as it is")
    expect(page.locator("#id_input_table")).to_have_value("prod.e2e.failing_in")
    expect(page.locator("#id_output_table")).to_have_value(
        re.compile(r"^prod\.e2e\.failing_in_predictions_\d{8}_\d{6}$")
    )
    shoot(page, "67-rerun-prefilled")
    assert page.dialogs == []


def test_an_error_text_that_looks_like_html_stays_text_on_every_page(page, user):
    job = failed_job(user, "evil")
    login(page, "dana", PASSWORD)

    page.goto(f"/batch/{job.pk}/")
    panel = page.locator("#error-panel")
    expect(panel.locator(".message")).to_contain_text(EVIL)
    panel.locator("summary").click()
    expect(panel.locator("details pre.log")).to_contain_text(EVIL)
    expect(page.locator("#logs .error-text")).to_contain_text(EVIL)  # loaded by htmx
    expect(page.locator("#batches tr.failed")).to_contain_text(EVIL)
    expect(page.locator("main img")).to_have_count(0)
    for url in ("/batch/", "/events/", f"/models/{MODEL_ID}/jobs/"):
        page.goto(url)
        expect(page.locator("main")).to_contain_text(str(job.pk)[:8])  # the job, or its events, listed
        expect(page.locator("main img")).to_have_count(0)
    expect(page.locator("#job-table .badge")).to_have_text("Failed")
    page.wait_for_timeout(500)  # an injected image would fail to load and run its onerror by now
    assert page.dialogs == []


def test_cancelling_a_running_job_says_what_will_happen_first(page, user):
    model = model_running(user, predict_body(IN_BATCHES, "import time", "time.sleep(3)", GOOD_PREDICT))
    make_input("prod.e2e.cancel_in", 20_000)
    job = services.job_trigger(
        model=model, input_table="prod.e2e.cancel_in", output_table="prod.e2e.cancel_out", requested_by=user
    )
    wait_for(lambda: Batch.objects.filter(job=job, status=BatchStatus.RUNNING).exists(), message="a batch to run")
    login(page, "dana", PASSWORD)
    page.goto(f"/batch/{job.pk}/")
    expect(page.locator(".status-line")).to_contain_text("Running")

    page.click("text=Cancel job…")
    modal = page.locator("dialog#modal")
    expect(modal).to_be_visible()
    expect(modal.locator("h2")).to_have_text(f"Cancel job {str(job.pk)[:8]}?")
    consequences = modal.locator("ul.consequences li")
    expect(consequences.first).to_have_text(
        re.compile(r"^Running batches: [12]\. They are stopped; their model processes are killed\.$")
    )
    sentences = consequences.all_inner_texts()
    assert "No output table is written: prod.e2e.cancel_out stays free." in sentences
    assert sentences[-1] == "The job ends as Cancelled and its slot goes to the next queued job. This cannot be undone."
    shoot(page, "65-cancel-modal")
    modal.get_by_role("button", name="Cancel the job").click()

    page.wait_for_url(f"**/batch/{job.pk}/")
    expect(page.locator(".status-line .badge")).to_have_text("Cancelled", timeout=30_000)
    expect(page.locator(".actions")).not_to_contain_text("Cancel job")
    shoot(page, "66-job-cancelled")
    job.refresh_from_db()
    assert (job.status, job.message) == ("cancelled", "Cancelled: no output table was written.")
    catalog, name = table_selectors.resolve("prod.e2e.cancel_out")
    assert not catalog.exists(name)
    assert page.dialogs == []


# Six batches, two at a time, 4 s each (under the test worker's 6 s predict timeout; the few rows
# re-predicted to check the order are quick): batch 0 ends while the job runs for 8 s more.
SIX_SLOW = predict_body(
    IN_BATCHES,
    "import time",
    'print("scoring", len(df), "rows from id", df["id"].min())',
    "time.sleep(4 if len(df) > 100 else 0)",
    GOOD_PREDICT,
)


def test_the_logs_card_follows_a_running_job_without_a_reload(page, user):
    model = model_running(user, SIX_SLOW)
    make_input("prod.e2e.logs_in", 20_000)
    login(page, "dana", PASSWORD)
    job = services.job_trigger(
        model=model, input_table="prod.e2e.logs_in", output_table="prod.e2e.logs_out", requested_by=user
    )
    wait_for(
        lambda: Batch.objects.filter(job=job, index=0, status=BatchStatus.RUNNING).exists(), message="batch 0 to run"
    )
    page.goto(f"/batch/{job.pk}/")
    page.evaluate("window.__marker = 1")  # gone if the page is reloaded
    logs = page.locator("#logs")
    page.select_option("#log-batch", "0")
    expect(logs.locator("article h3")).to_contain_text("Batch 0 · attempt 1 Running")
    expect(logs.locator("pre.log")).to_contain_text("appears here when the batch ends")
    shoot(page, "68-logs-running")
    # Batch 0 ends: its log shows up in the card, the job still running, the page not reloaded.
    expect(logs.locator("article h3")).to_contain_text("Batch 0 · attempt 1 Succeeded", timeout=30_000)
    expect(logs.locator("pre.log")).to_contain_text("scoring 3334 rows from id 0")
    expect(page.locator(".status-line")).to_contain_text("Running")
    assert page.evaluate("window.__marker") == 1
    expect(page.locator("#log-batch")).to_have_value("0")  # the batch picked stays picked
    shoot(page, "69-logs-refreshed")
    expect(page.locator(".status-line")).to_contain_text("Succeeded", timeout=60_000)
    expect(page.locator("#logs .logs-poll")).to_have_count(0)  # the job ended: the card stops asking
    assert page.dialogs == []


def test_retry_says_every_attempt_failed_the_same_way(page, user):
    job = failed_job(user, "again")
    job = services.job_retry(job=job, requested_by=user)
    job = wait_for(
        lambda: BatchJob.objects.filter(pk=job.pk, status__in=JobStatus.TERMINAL).first(), message="the retry to end"
    )
    assert job.status == JobStatus.FAILED
    login(page, "dana", PASSWORD)
    page.goto(f"/batch/{job.pk}/")
    warning = page.locator("#retry-warning")
    expect(warning).to_have_text(
        f"Every attempt so far failed with the same error: ValueError: {EVIL} — retrying will likely fail again "
        "unless the data or the build changed."
    )
    expect(page.get_by_role("link", name="Retry failed batches…")).to_be_visible()
    shoot(page, "70-retry-warning")
    page.click("text=Retry failed batches…")
    expect(page.locator("dialog#modal ul.consequences li").first).to_contain_text("Every attempt so far failed")
    expect(page.locator("main img")).to_have_count(0)
    assert page.dialogs == []
