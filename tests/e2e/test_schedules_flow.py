"""In a browser, with a real worker: create a schedule from the model's SCHEDULES tab (its cron in
words as it is typed), see its next run times in words and numbers, press Run now and watch the
run's job succeed on the schedule's page without a reload."""

import uuid
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from batchjobs.choices import JobStatus
from batchjobs.models import BatchJob, Schedule
from tests.artifacts import GOOD_PREDICT
from tests.batchjobs.jobkit import make_input, output_rows
from tests.e2e.conftest import login, shoot
from tests.e2e.test_job_pages_flow import MODEL_ID, PASSWORD, model_running, user, worker_lake  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_create_a_schedule_see_its_next_runs_and_run_it_now(page, user):  # noqa: F811
    model_running(user, GOOD_PREDICT)
    suffix = uuid.uuid4().hex[:6]  # the worker's lake outlives a test
    make_input(f"prod.e2e.sched_in_{suffix}", 3_000)
    login(page, "dana", PASSWORD)
    page.goto(f"/models/{MODEL_ID}/")
    page.click("nav.tabs >> text=Schedules")
    expect(page.locator("#schedules")).to_contain_text("No schedules yet")
    page.fill("#id_name", "nightly")
    page.fill("#id_input_table", f"prod.e2e.sched_in_{suffix}")
    page.fill("#id_output_table_template", f"prod.e2e.sched_{suffix}_{{date}}_{{run}}")
    page.fill("#id_timezone", "Europe/Paris")
    page.fill("#id_cron", "0 2 * * *")
    expect(page.locator("#cron-words")).to_have_text("At 02:00")
    expect(page.locator("#cron-next")).to_contain_text("02:00 CET")
    expect(page.locator("#cron-output")).to_contain_text(f"prod.e2e.sched_{suffix}_")
    page.fill("#id_cron", "0 2 * *")
    expect(page.locator("#cron-preview .error")).to_contain_text("five fields")
    page.click("text=After each run, and notifications")
    page.fill("#id_history_table", f"prod.e2e.sched_history_{suffix}")
    page.fill("#id_cron", "30 6 * * 1-5")
    expect(page.locator("#cron-words")).to_have_text("At 06:30, Monday through Friday")
    shoot(page, "90-schedules-new")
    page.click("button:has-text('Create schedule')")
    page.wait_for_url("**/schedules/*/")
    schedule = Schedule.objects.get()

    expect(page.locator("#schedule-words")).to_have_text("At 06:30, Monday through Friday")
    rows = page.locator("#next-runs tbody tr")
    expect(rows).to_have_count(5)
    expect(rows.first.locator("td").first).to_contain_text("06:30")  # Paris time, then UTC beside it
    expect(rows.first.locator("td").nth(1)).to_contain_text("05:30")
    expect(page.locator("#schedule-runs")).to_contain_text("No runs yet")
    shoot(page, "91-schedule-page")

    page.click("button:has-text('Run now')")
    expect(page.locator(".flash-success")).to_contain_text("Run now started job")
    job = BatchJob.objects.get()
    paris = job.created_at.astimezone(ZoneInfo("Europe/Paris"))  # the name is rendered in the schedule's zone
    assert job.schedule_id == schedule.pk and job.output_table == f"prod.e2e.sched_{suffix}_{paris:%Y_%m_%d}_1"
    run_row = page.locator("#schedule-runs tbody tr").first
    expect(run_row).to_contain_text("(Run now)")
    expect(run_row.locator(".badge")).to_have_text("Succeeded", timeout=90_000)
    expect(page.locator("#schedule-runs[hx-trigger]")).to_have_count(0)  # all ended: reloaded once, no polling
    expect(page.locator("#run-now-note")).to_have_count(0)
    expect(page.locator("button:has-text('Run now')")).to_be_enabled()
    job.refresh_from_db()
    assert (job.status, job.output_rows) == (JobStatus.SUCCEEDED, 3_000)
    shoot(page, "92-schedule-ran")

    page.click(f"#schedule-runs a[href='/batch/{job.pk}/']")
    expect(page.locator("#schedule-line")).to_have_text("Run of schedule nightly")
    # Its post-step appended the output to the history table (made on first use), on the job's page.
    step = page.locator("#post-step-1")
    expect(step).to_contain_text("Append to the history table")
    expect(step.locator(".badge")).to_have_text("Succeeded", timeout=60_000)
    expect(step).to_contain_text("3,000")
    history = output_rows(f"prod.e2e.sched_history_{suffix}")
    assert len(history) == 3_000 and {row["job_id"] for row in history} == {str(job.pk)}
    shoot(page, "97-scheduled-job-post-steps")
    page.click("#schedule-line a")
    page.wait_for_url(f"**/schedules/{schedule.pk}/")
    page.click("text=1 started — on the board")
    expect(page.locator("#schedule-chip")).to_contain_text("Schedule: nightly")
    expect(page.locator("#job-table tbody tr")).to_have_count(1)
    shoot(page, "93-board-by-schedule")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/schedules/{schedule.pk}/")
    shoot(page, "94-schedule-page-390")
    page.goto(f"/models/{MODEL_ID}/schedules/")
    shoot(page, "95-schedules-tab-390")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"/models/{MODEL_ID}/schedules/")
    expect(page.locator("#schedules tbody tr")).to_have_count(1)
    expect(page.locator("#schedules tbody tr")).to_contain_text("Succeeded")
    shoot(page, "96-schedules-tab-1440")
