"""The SCHEDULES tab, a schedule's page and its buttons, the cron preview as typed, the board
filtered by schedule and a scheduled job's "Run of schedule" line; other teams get 404s."""

import pytest

from batchjobs.choices import RunStatus
from batchjobs.models import BatchJob, Schedule, ScheduleRun
from batchjobs.schedules import tick
from tests.batchjobs.jobkit import run_job
from tests.batchjobs.schedulekit import at, make_schedule, since

pytestmark = pytest.mark.usefixtures("job_storage")

FORM = {
    "name": "nightly",
    "input_table": "prod.t.input",
    "output_table_template": "prod.out.scores_{date}",
    "cron": "0 2 * * *",
    "timezone": "Europe/Paris",
    "enabled": "on",
    "notify_on": "failure",
    "notify_urls": "json://hooks.example.com/s3cret\n",
}


def test_the_tab_lists_schedules_and_creates_one_from_its_form(web, ready):
    empty = web.get("/models/ds-premium-fraud-detection/schedules/").content.decode()
    assert 'aria-current="page">Schedules</a>' in empty and "No schedules yet" in empty
    assert "now build 1, test-batch" in empty
    response = web.post("/models/ds-premium-fraud-detection/schedules/", FORM)
    schedule = Schedule.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/schedules/{schedule.pk}/"
    listing = web.get("/models/ds-premium-fraud-detection/schedules/").content.decode()
    assert "nightly" in listing and "At 02:00" in listing and "<code>0 2 * * *</code>" in listing
    assert "Enabled" in listing and "never run" in listing and " 02:00 CET</td>" in listing


def test_a_bad_form_shows_each_error_next_to_its_field(web, ready):
    response = web.post(
        "/models/ds-premium-fraud-detection/schedules/",
        {**FORM, "cron": "0 2 * *", "output_table_template": "prod.out.x_{when}", "events_table": "prod.e.ev"},
    )
    page = response.content.decode()
    assert response.status_code == 400 and not Schedule.objects.exists()
    assert 'id="cron-error">A cron expression has five fields' in page
    assert 'id="output_table_template-error">The template has {when}' in page
    assert 'id="event_key_column-error">Name the input' in page


def test_the_preview_says_the_cron_in_words_and_the_next_output_name(web, ready):
    page = web.get(
        "/models/ds-premium-fraud-detection/schedules/preview/",
        {"cron": "30 6 * * 1-5", "timezone": "UTC", "output_table_template": "prod.out.s_{datetime}"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "<html" not in page and "At 06:30, Monday through Friday" in page
    assert 'id="cron-output">prod.out.s_' in page and "_0630</code>" in page
    bad = web.get("/models/ds-premium-fraud-detection/schedules/preview/", {"cron": "99 * * * *"}).content.decode()
    assert 'class="error"' in bad and "out of range" in bad


def test_the_schedule_page_shows_settings_next_runs_and_runs_and_its_buttons_work(web, ready, user):
    schedule = since(
        make_schedule(ready, user, cron="0 * * * *", notify_urls=["json://h.example.com/s3cret"]), "2026-12-01 00:00"
    )
    tick.schedules_tick(at("2026-12-01 03:05"))
    page = web.get(f"/schedules/{schedule.pk}/").content.decode()
    assert "At 0 minutes past the hour" in page or "Every hour" in page
    assert "the active batch config: " in page and "build 1</a> now" in page
    assert page.count('<tr><td class="nowrap">') == 5  # next five runs
    assert "json://h.example.com/…" in page and "s3cret" not in page
    assert "2 due times were missed while the platform was not running" in page
    assert "Skipped" not in page and "Missed" in page
    job = BatchJob.objects.get()
    assert f'href="/batch/{job.pk}/"' in page
    assert "is still queued: one run at a time" in page  # Run now is refused while it runs
    web.post(f"/schedules/{schedule.pk}/run/")
    assert BatchJob.objects.count() == 1
    run_job(job)
    response = web.post(f"/schedules/{schedule.pk}/run/", follow=True)
    assert "Run now started job" in response.content.decode() and BatchJob.objects.count() == 2
    web.post(f"/schedules/{schedule.pk}/pause/")
    paused = web.get(f"/schedules/{schedule.pk}/").content.decode()
    assert "Paused: no runs until it is resumed" in paused and ">Resume</button>" in paused
    web.post(f"/schedules/{schedule.pk}/resume/")
    assert Schedule.objects.get().enabled is True
    job_page = web.get(f"/batch/{job.pk}/").content.decode()
    assert f'Run of schedule <a href="/schedules/{schedule.pk}/">nightly</a>' in job_page
    board = web.get(f"/batch/?schedule={schedule.pk}").content.decode()
    assert 'id="schedule-chip"' in board and ">nightly</a>" in board and board.count('href="/batch/') >= 2
    web.post(f"/schedules/{schedule.pk}/delete/")
    assert not Schedule.objects.exists() and BatchJob.objects.count() == 2


def test_the_edit_form_shows_the_owning_team_its_urls_and_saves(web, ready, user):
    schedule = make_schedule(ready, user, notify_urls=["json://h.example.com/s3cret"])
    form = web.get(f"/schedules/{schedule.pk}/edit/").content.decode()
    assert "json://h.example.com/s3cret" in form and "At 02:00" in form
    response = web.post(
        f"/schedules/{schedule.pk}/edit/", {**FORM, "cron": "15 4 * * *", "notify_urls": "json://h.example.com/s3cret"}
    )
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.cron, schedule.notify_urls) == ("15 4 * * *", ["json://h.example.com/s3cret"])


def test_other_teams_get_404_for_every_schedule_page(client, ready, user, outsider):
    schedule = make_schedule(ready, user)
    ScheduleRun.objects.create(schedule=schedule, due_at=at("2026-12-01 02:00"), status=RunStatus.MISSED)
    client.force_login(outsider)
    for path in ["", "edit/"]:
        assert client.get(f"/schedules/{schedule.pk}/{path}").status_code == 404
    for path in ["run/", "pause/", "resume/", "delete/"]:
        assert client.post(f"/schedules/{schedule.pk}/{path}").status_code == 404
    assert client.get("/models/ds-premium-fraud-detection/schedules/").status_code == 404
    board = client.get(f"/batch/?schedule={schedule.pk}").content.decode()
    assert "nightly" not in board
    assert Schedule.objects.get().enabled is True


def test_a_cron_that_never_comes_is_a_form_error_and_a_preview_message_not_a_500(web, ready):
    preview = web.get("/models/ds-premium-fraud-detection/schedules/preview/", {"cron": "0 0 30 2 *"})
    assert preview.status_code == 200
    assert "0 0 30 2 * never comes: February has no 30th." in preview.content.decode()
    response = web.post("/models/ds-premium-fraud-detection/schedules/", {**FORM, "cron": "0 0 31 4 *"})
    assert response.status_code == 400
    assert "0 0 31 4 * never comes: April has no 31st." in response.content.decode()
    assert not Schedule.objects.exists()


def test_the_schedule_page_says_what_a_clock_change_does_in_a_zone_that_has_them(web, ready, user):
    london = make_schedule(ready, user, timezone="Europe/London")
    utc = make_schedule(ready, user, name="utc")
    page = web.get(f"/schedules/{london.pk}/").content.decode()
    assert "a time that occurs twice runs once, at its first occurrence" in page
    assert "a time that does not exist runs at the moment the clock jumps" in page
    assert 'id="clock-changes"' not in web.get(f"/schedules/{utc.pk}/").content.decode()
