"""Post-steps of scheduled runs, in this process (the functions the io worker's task calls): the
history table, synthetic events, keep-last, a failure's red panel and Retry post-steps, and what a
retry after a crash between an append and its bookkeeping leaves. test_post_steps_worker.py runs
them through a real worker."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest
from django.urls import reverse
from django.utils import timezone

from batchjobs import signals
from batchjobs.choices import JobStatus, PostStepStatus
from batchjobs.models import BatchJob, PostStep, Schedule
from batchjobs.poststeps import receivers, runner, steps, transitions
from tables import selectors as table_selectors
from tables import services as table_services
from tables.models import TableRecord
from tests.batchjobs.jobkit import make_input, output_rows, run_job, trigger

pytestmark = pytest.mark.usefixtures("job_storage")
HX = {"HTTP_HX_REQUEST": "true"}


def make_schedule(ml_model, user, **settings) -> Schedule:
    values = {
        "name": "nightly",
        "input_table": "prod.t.input",
        "output_table_template": "prod.out.scores_{run}",
        "cron": "0 2 * * *",
        **settings,
    }
    return Schedule.objects.create(model=ml_model, team=ml_model.team, created_by=user, **values)


def scheduled_run(ml_model, user, schedule: Schedule, output: str, *, post_steps: bool = True) -> BatchJob:
    """A run of the schedule: its job, run to the end, then its post-steps as the worker runs them."""
    job = trigger(ml_model, user, schedule.input_table, output)
    job.schedule = schedule
    job.save(update_fields=["schedule"])
    job = run_job(job)
    assert job.status == JobStatus.SUCCEEDED, job.message
    if post_steps:
        runner.steps_create(job.pk)
        runner.steps_run(job.pk)
    return job


def table(name: str) -> list[dict]:
    return output_rows(name) or []


@pytest.fixture
def scheduled(ml_model, user, config):
    make_input("prod.t.input", 300)
    return ml_model


# --- history ---------------------------------------------------------------------------------------


def test_each_run_appends_exactly_its_output_with_its_job_id_and_run_at(scheduled, user, web):
    schedule = make_schedule(scheduled, user, history_table="prod.hist.scores")
    first = scheduled_run(scheduled, user, schedule, "prod.out.scores_1")
    history = table("prod.hist.scores")
    assert len(history) == 300
    assert {r["job_id"] for r in history} == {str(first.pk)}
    assert sorted(r["id"] for r in history) == list(range(300))
    assert all(r["score"] == r["amount"] * 2 for r in history)
    assert {r["run_at"] for r in history} == {first.finished_at}
    step = PostStep.objects.get(job=first)
    assert (step.status, step.rows, step.attempts) == (PostStepStatus.SUCCEEDED, 300, 1)
    assert step.detail == f"Appended 300 rows to prod.hist.scores with job_id {first.pk}."
    assert step.started_at <= step.finished_at
    # made through the platform: the schedule's team owns it
    assert TableRecord.objects.get(name="prod.hist.scores").team == scheduled.team

    second = scheduled_run(scheduled, user, schedule, "prod.out.scores_2")
    history = table("prod.hist.scores")
    assert len(history) == 600
    assert sorted(r["job_id"] for r in history).count(str(second.pk)) == 300
    page = web.get(reverse("batchjobs:job-detail", args=[second.pk])).content.decode()
    assert 'id="post-steps"' in page and "Append to the history table" in page
    assert f"Appended 300 rows to prod.hist.scores with job_id {second.pk}." in page
    assert 'id="post-steps-failed"' not in page and "every 2s" not in page


def test_a_retry_after_a_crash_between_the_append_and_its_bookkeeping_adds_no_rows(scheduled, user):
    schedule = make_schedule(scheduled, user, history_table="prod.hist.scores")
    job = scheduled_run(scheduled, user, schedule, "prod.out.scores_1", post_steps=False)
    runner.steps_create(job.pk)
    step = PostStep.objects.get(job=job)
    # The worker claims the step and appends, then dies before it records anything.
    assert transitions.step_claim(step.pk) == 1
    step.refresh_from_db()
    steps.append_history(step, job, lambda: None)
    assert len(table("prod.hist.scores")) == 300
    assert runner.steps_run(job.pk) == 0  # its lease still runs: nobody else takes the step
    PostStep.objects.filter(pk=step.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    assert runner.reap(timezone.now())["post_steps_resent"] == 1
    assert runner.steps_run(job.pk) == 1  # what the resent task does: takes the step over
    step.refresh_from_db()
    assert (step.status, step.attempts, step.rows) == (PostStepStatus.SUCCEEDED, 2, 300)
    assert step.detail == "The 300 rows were already in prod.hist.scores."
    history = table("prod.hist.scores")
    assert len(history) == 300 and sorted(r["id"] for r in history) == list(range(300))


def test_a_redelivered_signal_creates_no_second_set_of_steps(scheduled, user):
    schedule = make_schedule(scheduled, user, history_table="prod.hist.h", events_table="prod.ev.e", keep_last=2)
    schedule.event_key_column = "id"
    schedule.save()
    job = scheduled_run(scheduled, user, schedule, "prod.out.scores_1", post_steps=False)
    for _ in range(2):
        signals.job_ended.send(sender=BatchJob, job_id=job.pk, status=JobStatus.SUCCEEDED)
    made = list(PostStep.objects.filter(job=job).values_list("position", "kind", "target", "status"))
    assert made == [
        (1, "history", "prod.hist.h", "pending"),
        (2, "events", "prod.ev.e", "pending"),
        (3, "keep_last", "2", "pending"),
    ]
    assert runner.steps_create(job.pk) == 0
    unscheduled = run_job(trigger(scheduled, user, "prod.t.input", "prod.out.adhoc"))
    signals.job_ended.send(sender=BatchJob, job_id=unscheduled.pk, status=JobStatus.SUCCEEDED)
    assert not PostStep.objects.filter(job=unscheduled).exists()


def test_an_append_is_keyed_on_the_job_not_on_the_steps_database_id(scheduled, user):
    schedule = make_schedule(scheduled, user, history_table="prod.hist.scores")
    first = scheduled_run(scheduled, user, schedule, "prod.out.scores_1")
    used = PostStep.objects.get(job=first).pk
    second = scheduled_run(scheduled, user, schedule, "prod.out.scores_2", post_steps=False)
    # A restored metadata database (or a second platform on the lake) hands out that id again.
    runner.steps_create(second.pk)
    PostStep.objects.filter(pk=used).delete()
    PostStep.objects.filter(job=second).update(id=used)
    assert runner.steps_run(second.pk) == 1
    step = PostStep.objects.get(job=second)
    assert step.pk == used and step.detail == f"Appended 300 rows to prod.hist.scores with job_id {second.pk}."
    history = table("prod.hist.scores")
    assert len(history) == 600 and sorted(r["job_id"] for r in history).count(str(second.pk)) == 300
    assert steps.txn_id(second, "history") == f"mlplatform-{second.pk}-history"


def test_a_job_whose_end_signal_was_lost_gets_its_post_steps_from_the_reaper_once(scheduled, user):
    schedule = make_schedule(scheduled, user, history_table="prod.hist.scores", keep_last=2)
    signals.job_ended.disconnect(dispatch_uid="batchjobs.poststeps.create")
    try:  # the one job_ended signal is lost (a locked database, a process killed after the commit)
        old = scheduled_run(scheduled, user, schedule, "prod.out.scores_0", post_steps=False)
        job = scheduled_run(scheduled, user, schedule, "prod.out.scores_1", post_steps=False)
    finally:
        signals.job_ended.connect(receivers.create_post_steps, dispatch_uid="batchjobs.poststeps.create")
    BatchJob.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=1, minutes=1))
    assert not PostStep.objects.exists()
    # A job that ended before its schedule was last changed gets none: the settings it ran under are gone.
    Schedule.objects.filter(pk=schedule.pk).update(updated_at=job.finished_at + timedelta(seconds=1))
    assert runner.reap(timezone.now())["post_steps_created"] == 0
    Schedule.objects.filter(pk=schedule.pk).update(updated_at=job.finished_at - timedelta(seconds=1))

    assert runner.reap(timezone.now())["post_steps_created"] == 1
    made = PostStep.objects.filter(job=job).order_by("position")
    assert [(s.kind, s.target, s.status) for s in made] == [
        ("history", "prod.hist.scores", "pending"),
        ("keep_last", "2", "pending"),
    ]
    assert all(s.lease_expires_at is not None for s in made)  # sent to a worker, which must claim them
    assert not PostStep.objects.filter(job=old).exists()  # ended over a day ago: left alone
    assert runner.reap(timezone.now())["post_steps_created"] == 0
    assert PostStep.objects.count() == 2

    assert runner.steps_run(job.pk) == 2  # what the task sent does
    history = table("prod.hist.scores")
    assert len(history) == 300 and {r["job_id"] for r in history} == {str(job.pk)}


# --- whose tables ----------------------------------------------------------------------------------


def test_a_history_table_not_the_teams_fails_the_step_and_gets_no_rows(scheduled, user, outsider):
    schedule = make_schedule(scheduled, user, history_table="prod.hist.scores")
    scheduled_run(scheduled, user, schedule, "prod.out.scores_1")
    assert len(table("prod.hist.scores")) == 300
    # Since saved, the table became one the platform did not make (readable by everyone).
    TableRecord.objects.filter(name="prod.hist.scores").delete()
    job = scheduled_run(scheduled, user, schedule, "prod.out.scores_2")
    step = PostStep.objects.get(job=job)
    assert (step.status, step.rows) == (PostStepStatus.FAILED, None)
    assert step.error == (
        "prod.hist.scores exists and was not made by your team's platform jobs or uploads: "
        "a history table must be new or your team's."
    )
    assert len(table("prod.hist.scores")) == 300
    assert not TableRecord.objects.filter(name="prod.hist.scores").exists()

    # Then another team's: taken, as an output name would be; it is not said to exist.
    theirs = outsider.groups.get()
    TableRecord.objects.create(name="prod.hist.scores", created_by=outsider, team=theirs)
    job = scheduled_run(scheduled, user, schedule, "prod.out.scores_4")
    step = PostStep.objects.get(job=job)
    assert (step.status, step.rows) == (PostStepStatus.FAILED, None)
    assert step.error == "The name prod.hist.scores is taken; choose another name."
    assert "exists" not in step.error
    assert len(table("prod.hist.scores")) == 300
    assert TableRecord.objects.get(name="prod.hist.scores").team == theirs

    # Another team's steps are making a new events table of that name: recorded for them first.
    assert table_services.table_claim(name="prod.ev.new", created_by=outsider, team=theirs)
    assert not table_services.table_claim(name="prod.ev.new", created_by=user, team=scheduled.team)
    Schedule.objects.filter(pk=schedule.pk).update(history_table="", events_table="prod.ev.new", event_key_column="id")
    schedule.refresh_from_db()
    job = scheduled_run(scheduled, user, schedule, "prod.out.scores_3")
    step = PostStep.objects.get(job=job)
    assert (step.status, step.error) == (PostStepStatus.FAILED, "The name prod.ev.new is taken; choose another name.")
    assert TableRecord.objects.get(name="prod.ev.new").team == theirs
    assert output_rows("prod.ev.new") is None


# --- events ----------------------------------------------------------------------------------------


def test_each_output_row_becomes_one_synthetic_event_once(scheduled, user):
    schedule = make_schedule(scheduled, user, events_table="prod.ev.fraud_events", event_key_column="id")
    before = timezone.now()
    job = scheduled_run(scheduled, user, schedule, "prod.out.scores_1")
    events = table("prod.ev.fraud_events")
    assert len(events) == 300
    assert list(events[0]) == ["src", "id", "score", "job_id", "date_created"]
    assert {e["src"] for e in events} == {70} and {e["job_id"] for e in events} == {str(job.pk)}
    assert sorted(e["id"] for e in events) == list(range(300))
    assert all(e["score"] == (e["id"] % 97 + 0.5) * 2 for e in events)
    assert all(before <= e["date_created"] <= timezone.now() for e in events)
    step = PostStep.objects.get(job=job)
    assert step.detail == "Published 300 events (src 70, key id) into prod.ev.fraud_events."
    PostStep.objects.filter(pk=step.pk).update(status=PostStepStatus.PENDING)  # run again, as a redelivery
    runner.steps_run(job.pk)
    assert len(table("prod.ev.fraud_events")) == 300


def test_an_event_key_column_the_output_lacks_fails_the_step_naming_it(scheduled, user):
    schedule = make_schedule(scheduled, user, events_table="prod.ev.e", event_key_column="customer_id")
    job = scheduled_run(scheduled, user, schedule, "prod.out.scores_1")
    step = PostStep.objects.get(job=job)
    assert step.status == PostStepStatus.FAILED
    assert step.error == (
        "The output table prod.out.scores_1 has no column customer_id (its columns: id, amount, country, score)."
    )


# --- keep last ---------------------------------------------------------------------------------------


def test_keep_last_drops_only_the_older_outputs_this_schedule_made(scheduled, user):
    schedule = make_schedule(scheduled, user, keep_last=2)
    jobs = [scheduled_run(scheduled, user, schedule, f"prod.out.scores_{i}") for i in (1, 2)]
    make_input("prod.t.mine", 5)  # a table of the team's, never the schedule's to drop
    assert PostStep.objects.get(job=jobs[1]).detail == (
        "Nothing to drop: the schedule has 2 output(s), within the newest 2 kept."
    )
    jobs.append(scheduled_run(scheduled, user, schedule, "prod.out.scores_3"))
    step = PostStep.objects.get(job=jobs[2])
    assert step.status == PostStepStatus.SUCCEEDED
    assert step.detail == "Dropped 1 older output table(s), keeping the newest 2: prod.out.scores_1."
    assert output_rows("prod.out.scores_1") is None
    assert not TableRecord.objects.filter(name="prod.out.scores_1").exists()
    assert len(table("prod.out.scores_2")) == len(table("prod.out.scores_3")) == 300
    assert len(table("prod.t.mine")) == 5 and len(table("prod.t.input")) == 300
    jobs[0].refresh_from_db()
    assert jobs[0].status == JobStatus.SUCCEEDED  # its record stays; only its table went


def test_keep_last_spares_runs_whose_post_steps_wait_and_tables_a_schedule_names(scheduled, user):
    schedule = make_schedule(scheduled, user, history_table="prod.hist.scores", keep_last=1)
    first = scheduled_run(scheduled, user, schedule, "prod.out.scores_1")
    make_schedule(  # another schedule reads the first run's output
        scheduled,
        user,
        name="downstream",
        input_table="prod.out.scores_1",
        output_table_template="prod.down.scores_{run}",
        cron="0 3 * * *",
    )
    second = scheduled_run(scheduled, user, schedule, "prod.out.scores_2", post_steps=False)
    assert runner.steps_create(second.pk) == 2  # its steps wait for a worker
    third = scheduled_run(scheduled, user, schedule, "prod.out.scores_3")
    keep = PostStep.objects.get(job=third, kind="keep_last")
    assert keep.status == PostStepStatus.SUCCEEDED
    assert keep.detail == (
        "Nothing dropped beyond the newest 1. Spared 2 older one(s): "
        "prod.out.scores_2 (its run's post-steps have not all succeeded), prod.out.scores_1 (a schedule's input table)."
    )
    assert len(table("prod.out.scores_1")) == len(table("prod.out.scores_2")) == 300

    assert runner.steps_run(second.pk) == 2  # its history append, then its own keep-last
    history = table("prod.hist.scores")
    assert len(history) == 900 and [r["job_id"] for r in history].count(str(second.pk)) == 300
    assert PostStep.objects.get(job=second, kind="keep_last").detail == (
        "Dropped 1 older output table(s), keeping the newest 1: prod.out.scores_2. "
        "Spared 1 older one(s): prod.out.scores_1 (a schedule's input table)."
    )
    assert output_rows("prod.out.scores_2") is None and len(table("prod.out.scores_1")) == 300
    assert {first.pk, second.pk, third.pk} == set(
        BatchJob.objects.filter(schedule=schedule).values_list("pk", flat=True)
    )


# --- a failure ----------------------------------------------------------------------------------------


def test_a_failed_step_shows_a_red_panel_keeps_the_job_and_is_retried_after_the_fix(scheduled, user, web, api):
    catalog, name = table_selectors.resolve("prod.hist.scores")
    catalog.create(name, pa.schema([("id", pa.int64()), ("probability", pa.float64())]), [])
    TableRecord.objects.create(name=str(name), created_by=user, team=scheduled.team)  # the team's upload
    schedule = make_schedule(
        scheduled, user, history_table="prod.hist.scores", events_table="prod.ev.e", event_key_column="id"
    )
    heard = []
    receiver = lambda sender, **kwargs: heard.append(kwargs)  # noqa: E731
    signals.post_step_failed.connect(receiver)
    try:
        job = scheduled_run(scheduled, user, schedule, "prod.out.scores_1")
    finally:
        signals.post_step_failed.disconnect(receiver)
    history, events = PostStep.objects.filter(job=job).order_by("position")
    assert history.status == PostStepStatus.FAILED and events.status == PostStepStatus.PENDING
    assert "missing probability" in history.error and "not in the table: amount, country, score, job_id, run_at" in (
        history.error
    )
    (failure,) = job.events.filter(evid=403)  # its uuid tells this failure from one after a retry
    assert heard == [
        {
            "job_id": job.pk,
            "step_id": history.pk,
            "error": history.error,
            "occurrence": str(failure.uuid),
            "signal": signals.post_step_failed,
        }
    ]
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and len(table("prod.out.scores_1")) == 300
    assert table("prod.ev.e") == []  # the later step did not run
    # An event records it (403), after the job's own 402 and 400: the job stays succeeded.
    assert list(job.events.order_by("date_created", "id").values_list("evid", "error")) == [
        (402, ""),
        (400, ""),
        (403, history.error),
    ]
    listed = api.get("/api/v1/events/", {"evid": 403}).json()["results"]
    assert [(e["job_id"], e["evid_name"]) for e in listed] == [(str(job.pk), "post-step failed")]

    url = reverse("batchjobs:job-detail", args=[job.pk])
    page = web.get(url).content.decode()
    assert 'id="post-steps-failed"' in page and "Retry post-steps" in page
    assert "1. Append to the history table (prod.hist.scores): The table" in page
    assert "csrfmiddlewaretoken" in page and "every 2s" not in page  # nothing moves: no polling
    detail = api.get(f"/api/v1/batch-jobs/{job.pk}/").json()
    assert [(s["kind"], s["status"]) for s in detail["post_steps"]] == [("history", "failed"), ("events", "pending")]
    assert detail["status"] == "succeeded"

    catalog.drop(name)  # the fix: the history table goes, and is made anew with the output's columns
    response = web.post(reverse("batchjobs:job-retry-post-steps", args=[job.pk]))
    assert response.status_code == 302
    assert [s.status for s in PostStep.objects.filter(job=job)] == ["pending", "pending"]
    runner.steps_run(job.pk)  # the task the retry sent
    assert [s.status for s in PostStep.objects.filter(job=job)] == ["succeeded", "succeeded"]
    assert len(table("prod.hist.scores")) == 300 and len(table("prod.ev.e")) == 300
    page = web.get(url).content.decode()
    assert 'id="post-steps-failed"' not in page
    assert api.post(f"/api/v1/batch-jobs/{job.pk}/retry-post-steps/").status_code == 409


def test_retry_post_steps_through_the_api_and_for_another_team(scheduled, user, api, outsider, client):
    schedule = make_schedule(scheduled, user, events_table="prod.ev.e", event_key_column="nope")
    job = scheduled_run(scheduled, user, schedule, "prod.out.scores_1")
    client.force_login(outsider)
    assert client.post(reverse("batchjobs:job-retry-post-steps", args=[job.pk])).status_code == 404
    assert client.get(f"/api/v1/batch-jobs/{job.pk}/").status_code == 404
    assert PostStep.objects.get(job=job).status == PostStepStatus.FAILED
    response = api.post(f"/api/v1/batch-jobs/{job.pk}/retry-post-steps/")
    assert response.status_code == 200
    assert response.json()["post_steps"][0]["status"] == "pending"
    conflict = api.post(f"/api/v1/batch-jobs/{job.pk}/retry-post-steps/")
    assert conflict.status_code == 409  # pending, not failed: nothing to retry yet
    assert conflict.json() == {"errors": {"post_steps": ["No post-step failed, so there is nothing to retry."]}}


def test_the_live_part_follows_the_steps_until_they_end(scheduled, user, web):
    schedule = make_schedule(scheduled, user, history_table="prod.hist.scores")
    job = scheduled_run(scheduled, user, schedule, "prod.out.scores_1", post_steps=False)
    runner.steps_create(job.pk)
    url = reverse("batchjobs:job-detail", args=[job.pk])
    page = web.get(url).content.decode()
    assert 'hx-trigger="every 2s"' in page and "Pending" in page
    live = web.get(url, HTTP_HX_TARGET="job-live", **HX)
    assert live.status_code == 200 and 'id="post-steps"' in live.content.decode()
    etag = live.headers["ETag"]
    assert web.get(url, HTTP_HX_TARGET="job-live", HTTP_IF_NONE_MATCH=etag, **HX).status_code == 304
    runner.steps_run(job.pk)
    ended = web.get(url, HTTP_HX_TARGET="job-live", HTTP_IF_NONE_MATCH=etag, **HX)
    assert ended.headers["HX-Redirect"] == url  # one reload, then no more polling
    assert "every 2s" not in web.get(url).content.decode()


# --- a PostgreSQL catalog ------------------------------------------------------------------------------


@pytest.fixture
def pg_catalog(settings):
    """A PostgreSQL catalog "pg" next to the lake, in a schema of the test's own (dropped after)."""
    import os
    import uuid

    import psycopg2

    url = os.environ.get("DATABASE_URL", "")
    url = url if url.startswith("postgres") else os.environ.get("WAREHOUSE_TEST_POSTGRES_URL", "")
    if not url:
        pytest.skip("needs PostgreSQL: DATABASE_URL=postgresql://... or WAREHOUSE_TEST_POSTGRES_URL")
    settings.WAREHOUSE_CATALOGS = {**settings.WAREHOUSE_CATALOGS, "pg": url}
    schema = f"post_{uuid.uuid4().hex[:10]}"
    yield schema
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


def test_history_and_events_in_a_postgresql_catalog_are_appended_once_per_run(scheduled, user, pg_catalog):
    history, events = f"pg.{pg_catalog}.history", f"pg.{pg_catalog}.events"
    schedule = make_schedule(scheduled, user, history_table=history, events_table=events, event_key_column="id")
    first = scheduled_run(scheduled, user, schedule, "prod.out.scores_1")
    assert [s.status for s in PostStep.objects.filter(job=first)] == ["succeeded", "succeeded"]
    # a crash after the appends, before their bookkeeping: both steps run again
    PostStep.objects.filter(job=first).update(
        status=PostStepStatus.RUNNING, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert runner.steps_run(first.pk) == 2
    assert [s.detail for s in PostStep.objects.filter(job=first)] == [
        f"The 300 rows were already in {history}.",
        f"The 300 events were already in {events}.",
    ]
    second = scheduled_run(scheduled, user, schedule, "prod.out.scores_2")
    rows = table(history)
    assert len(rows) == 600
    assert sorted(r["id"] for r in rows if r["job_id"] == str(second.pk)) == list(range(300))
    assert {r["run_at"] for r in rows} == {first.finished_at, second.finished_at}
    published = table(events)
    assert len(published) == 600 and {e["src"] for e in published} == {70}
    assert list(published[0]) == ["src", "id", "score", "job_id", "date_created"]
