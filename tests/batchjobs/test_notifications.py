"""Notifications of scheduled jobs (batchjobs/notify.py), in this process: the signals' receivers
write the rows, then the task's function sends them to a real HTTP receiver on 127.0.0.1 (allowed
by NOTIFY_ALLOWED_HOSTS here; test_notifications_guard.py checks what is refused without it).
(test_notifications_worker.py sends them through a real Celery worker, for jobs that really ran.)"""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.urls import reverse

from batchjobs import notify, signals
from batchjobs.choices import EventId, JobStatus, NotificationStatus, NotifyOn, PostStepKind, PostStepStatus
from batchjobs.models import BatchJob, PostStep, Schedule
from batchjobs.pipeline import finish
from batchjobs.poststeps import runner
from tests.batchjobs.hooks import Hook, closed_port
from tests.factories import BatchConfigFactory, BatchJobFactory, BuildFactory

FAILURE = "3 of 4 batches failed (3,000 of 4,000 rows), so no output table was written: batch 1: ValueError\nmore"


@pytest.fixture(autouse=True)
def local_receivers_allowed(settings):
    settings.NOTIFY_ALLOWED_HOSTS = [("127.0.0.1", None)]


@pytest.fixture
def hook():
    made = Hook()
    yield made
    made.close()


def make_schedule(ml_model, *, urls, notify_on=NotifyOn.FAILURE, name="nightly") -> Schedule:
    return Schedule.objects.create(
        model=ml_model,
        team=ml_model.team,
        name=name,
        input_table="prod.t.input",
        output_table_template="prod.out.scores_{date}",
        cron="0 2 * * *",
        notify_urls=urls,
        notify_on=notify_on,
    )


def make_job(ml_model, schedule=None, *, status=JobStatus.FAILED, message=FAILURE) -> BatchJob:
    config = ml_model.batch_configs.first() or BatchConfigFactory(build=BuildFactory(model=ml_model))
    return BatchJobFactory(batch_config=config, schedule=schedule, status=status, message=message)


def test_a_failed_scheduled_job_is_sent_once_to_every_url_with_the_model_job_reason_and_link(
    ml_model, django_capture_on_commit_callbacks
):
    first, second = Hook(), Hook()
    try:
        job = make_job(ml_model, make_schedule(ml_model, urls=[first.url(), second.url("/other")]))
        with django_capture_on_commit_callbacks() as callbacks:
            signals.job_ended.send(sender=BatchJob, job_id=job.pk, status=JobStatus.FAILED)
            signals.job_ended.send(sender=BatchJob, job_id=job.pk, status=JobStatus.FAILED)  # redelivered
        assert len(callbacks) == 1  # one task, for the rows the first signal made
        rows = list(job.notifications.order_by("url_index"))
        assert [(n.reason, n.url_index, n.status) for n in rows] == [("failed", 0, "pending"), ("failed", 1, "pending")]

        assert notify.notifications_send([n.pk for n in rows]) == []
        assert notify.notifications_send([n.pk for n in rows]) == []  # a redelivered task sends nothing again
        for hook, path in ((first, "/hooks/s3cr3t-t0ken"), (second, "/other")):
            assert [p for p, _ in hook.received] == [path]
            message = hook.messages()[0]
            assert message["type"] == "failure"
            assert message["title"] == "ds-premium-fraud-detection: scheduled run nightly failed"
            body = message["message"]
            assert f"Job: {job.pk}" in body
            assert "Model: ds-premium-fraud-detection" in body and "Schedule: nightly" in body
            assert "Reason: 3 of 4 batches failed (3,000 of 4,000 rows), so no output table" in body
            assert "more" not in body  # the message's first line only
            assert f"Job page: {settings.PUBLIC_URL}/batch/{job.pk}/" in body
        for row in rows:
            row.refresh_from_db()
            assert (row.status, row.error) == (NotificationStatus.SENT, "")
            assert row.sent_at is not None
    finally:
        first.close()
        second.close()


def test_the_link_is_made_from_the_public_url_setting(ml_model, hook, settings):
    settings.PUBLIC_URL = "https://ml.example.com"
    job = make_job(ml_model, make_schedule(ml_model, urls=[hook.url()]))
    signals.job_ended.send(sender=BatchJob, job_id=job.pk, status=JobStatus.FAILED)
    notify.notifications_send(list(job.notifications.values_list("pk", flat=True)))
    assert f"Job page: https://ml.example.com/batch/{job.pk}/" in hook.messages()[0]["message"]


@pytest.mark.parametrize(
    ("notify_on", "status", "reasons"),
    [
        (NotifyOn.FAILURE, JobStatus.SUCCEEDED, []),
        (NotifyOn.FAILURE, JobStatus.CANCELLED, []),
        (NotifyOn.FAILURE, JobStatus.FAILED, ["failed"]),
        (NotifyOn.ALWAYS, JobStatus.SUCCEEDED, ["succeeded"]),
        (NotifyOn.ALWAYS, JobStatus.CANCELLED, ["cancelled"]),
        (NotifyOn.ALWAYS, JobStatus.FAILED, ["failed"]),
    ],
)
def test_a_success_or_a_cancellation_is_sent_only_by_schedules_that_notify_always(
    ml_model, hook, notify_on, status, reasons
):
    job = make_job(ml_model, make_schedule(ml_model, urls=[hook.url()], notify_on=notify_on), status=status)
    signals.job_ended.send(sender=BatchJob, job_id=job.pk, status=status)
    assert list(job.notifications.values_list("reason", flat=True)) == reasons
    notify.notifications_send(list(job.notifications.values_list("pk", flat=True)))
    assert [m["title"].rsplit("nightly ", 1)[1] for m in hook.messages()] == [
        {"failed": "failed", "succeeded": "succeeded", "cancelled": "was cancelled"}[r] for r in reasons
    ]


def test_a_job_without_a_schedule_or_without_urls_sends_nothing(ml_model):
    for job in (make_job(ml_model), make_job(ml_model, make_schedule(ml_model, urls=[]))):
        signals.job_ended.send(sender=BatchJob, job_id=job.pk, status=JobStatus.FAILED)
        assert not job.notifications.exists()


def test_a_failed_post_step_is_sent_once_with_its_error(ml_model, hook, django_capture_on_commit_callbacks):
    job = make_job(ml_model, make_schedule(ml_model, urls=[hook.url()]), status=JobStatus.SUCCEEDED, message="ok")
    step = PostStep.objects.create(
        job=job, position=0, kind=PostStepKind.HISTORY, target="prod.hist.scores", status=PostStepStatus.FAILED
    )
    with django_capture_on_commit_callbacks() as callbacks:
        for _ in range(2):  # the second is a redelivery
            signals.post_step_failed.send(sender=PostStep, job_id=job.pk, step_id=step.pk, error="disk full\ntrace")
    assert len(callbacks) == 1
    (row,) = job.notifications.all()
    assert row.reason == "post_step_failed"
    notify.notifications_send([row.pk])
    (message,) = hook.messages()
    assert message["title"] == "ds-premium-fraud-detection: scheduled run nightly succeeded, but a post-step failed"
    assert "Reason: Append to the history table (prod.hist.scores) failed: disk full" in message["message"]
    assert f"Job: {job.pk}" in message["message"] and "trace" not in message["message"]
    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT


def test_a_job_that_fails_again_after_a_retry_is_notified_again_and_a_redelivery_still_sends_nothing(
    ml_model, hook, django_capture_on_commit_callbacks
):
    job = make_job(ml_model, make_schedule(ml_model, urls=[hook.url()]), status=JobStatus.RUNNING)

    def end(message: str) -> None:
        """finish() as the pipeline calls it, then its job_ended signal (queued tasks are not sent)."""
        with django_capture_on_commit_callbacks() as callbacks:
            assert finish.finish(job.pk, JobStatus.FAILED, message=message)
        (signal,) = [c for c in callbacks if c.__qualname__.startswith("finish.")]
        with django_capture_on_commit_callbacks():
            signal()

    end("batch 1: ValueError")
    BatchJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)  # "Retry failed batches" ran it again
    end("batch 2: KeyError")
    first, second = job.events.filter(evid=EventId.FAILURE).order_by("date_created", "id")
    with django_capture_on_commit_callbacks() as redelivered:  # the second end's signal, once more
        signals.job_ended.send(sender=BatchJob, job_id=job.pk, status=JobStatus.FAILED, occurrence=str(second.uuid))
    assert redelivered == []

    rows = list(job.notifications.order_by("id"))
    assert [(n.reason, n.occurrence) for n in rows] == [("failed", str(first.uuid)), ("failed", str(second.uuid))]
    notify.notifications_send([n.pk for n in rows])
    assert [m["message"].split("Reason: ")[1].splitlines()[0] for m in hook.messages()] == [
        "batch 1: ValueError",
        "batch 2: KeyError",
    ]


def test_a_post_step_that_fails_again_after_retry_post_steps_is_notified_again(ml_model, hook):
    job = make_job(ml_model, make_schedule(ml_model, urls=[hook.url()]), status=JobStatus.SUCCEEDED, message="ok")
    step = PostStep.objects.create(
        job=job, position=0, kind=PostStepKind.HISTORY, target="prod.hist.scores", status=PostStepStatus.FAILED
    )
    runner.announce_failure(job.pk, step.pk, "disk full")
    runner.announce_failure(job.pk, step.pk, "disk still full")  # after Retry post-steps
    events = list(job.events.filter(evid=EventId.POST_STEP_FAILURE).order_by("date_created", "id"))
    rows = list(job.notifications.order_by("id"))
    assert [n.occurrence for n in rows] == [str(e.uuid) for e in events] and len(rows) == 2
    again = {"job_id": job.pk, "step_id": step.pk, "error": "x", "occurrence": str(events[1].uuid)}
    signals.post_step_failed.send(sender=PostStep, **again)
    assert job.notifications.count() == 2  # a redelivered signal makes nothing
    notify.notifications_send([n.pk for n in rows])
    assert ["disk full" in m["message"] for m in hook.messages()] == [True, False]
    assert "disk still full" in hook.messages()[1]["message"]


def test_the_job_ended_receiver_never_raises(ml_model, caplog):
    signals.job_ended.send(sender=BatchJob, job_id="not-a-uuid", status=JobStatus.FAILED)
    logged = [r.getMessage() for r in caplog.records if r.name == "batchjobs.notify"]
    assert logged == ["could not record the notifications of job not-a-uuid"]


def test_the_post_step_failed_receiver_never_raises(ml_model, caplog):
    job = make_job(ml_model, make_schedule(ml_model, urls=["json://127.0.0.1:1/x"]))
    signals.post_step_failed.send(sender=PostStep, job_id=job.pk, step_id="nope", error="x")
    logged = [r.getMessage() for r in caplog.records if r.name == "batchjobs.notify"]
    assert logged == [f"could not record the post-step notifications of job {job.pk}"]
    assert not job.notifications.exists()


@pytest.mark.parametrize(
    ("url", "shown", "secrets"),
    [
        ("slack://TokenA/TokenB/TokenC/#channel", "slack://…", ["TokenA", "TokenB", "TokenC", "channel"]),
        (
            "json://user:pa55word@hooks.example.com:8080/t0ken?key=v4lue",
            "json://hooks.example.com:8080/…",
            ["user", "pa55word", "t0ken", "v4lue"],
        ),
        (
            "mailtos://me:app-password@gmail.com?to=ops@example.com",
            "mailtos://gmail.com/…",
            ["me", "app-password", "ops@"],
        ),
        ("msteams://TeamName/tokenA/tokenB/tokenC/", "msteams://…", ["TeamName", "tokenA"]),
        ("nonsense://secret-host/secret-path", "nonsense://…", ["secret"]),
        ("json://host:notaport/x", "(an unreadable URL)", ["host"]),
    ],
)
def test_the_url_shown_keeps_no_secret(url, shown, secrets):
    assert notify.mask_url(url) == shown
    assert not any(secret in notify.mask_url(url) for secret in secrets)


@pytest.mark.parametrize("scheme", sorted(notify.SERVER_SCHEMES))
def test_a_scheme_shown_with_its_host_is_one_whose_host_apprise_calls_a_server_not_a_secret(scheme):
    from apprise.manager_plugins import NotificationManager

    host = NotificationManager()[scheme].template_tokens.get("host")
    assert host and not host.get("private")


def test_an_unreachable_url_is_tried_three_times_then_failed_and_the_job_page_and_api_show_why(
    ml_model, web, api, caplog
):
    caplog.set_level(logging.DEBUG)
    url = f"json://robot:hunter22@127.0.0.1:{closed_port()}/hooks/s3cr3t-t0ken"
    job = make_job(ml_model, make_schedule(ml_model, urls=[url]))
    before = (job.status, job.message, job.output_rows)
    signals.job_ended.send(sender=BatchJob, job_id=job.pk, status=JobStatus.FAILED)
    (row,) = job.notifications.all()

    assert notify.notifications_send([row.pk], attempt=1) == [row.pk]  # to be tried again
    row.refresh_from_db()
    assert row.status == NotificationStatus.PENDING
    assert row.error.startswith("Try 1 of 3 failed, trying again: ") and "Connection refused" in row.error
    assert notify.notifications_send([row.pk], attempt=2) == [row.pk]
    assert notify.notifications_send([row.pk], attempt=3) == []  # the last try: failed for good
    row.refresh_from_db()
    assert row.status == NotificationStatus.FAILED and row.sent_at is None
    assert "A Connection error occurred sending JSON notification to 127.0.0.1" in row.error
    assert "Connection refused" in row.error and not row.error.startswith("Try")

    job.refresh_from_db()
    assert (job.status, job.message, job.output_rows) == before  # the job is as it was
    html = web.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
    card = html[html.index('id="notifications"') :]
    card = card[: card.index("</section>")]
    assert "Notifications" in html and "the run failed" in card and "Failed to send" in card
    assert f"json://127.0.0.1:{url.split(':')[3].split('/')[0]}/…" in card
    assert "Connection refused" in card
    notifications = api.get(f"/api/v1/batch-jobs/{job.pk}/").json()["notifications"]
    assert [(n["reason"], n["status"], n["sent_at"]) for n in notifications] == [("failed", "failed", None)]
    assert "Connection refused" in notifications[0]["error"]
    # The URL's secrets are nowhere: not on the page, in the API, the row or the log.
    for secret in ("hunter22", "s3cr3t-t0ken", "robot"):
        assert secret not in html and secret not in str(notifications) and secret not in row.error
        assert secret not in caplog.text


def test_an_error_answer_keeps_its_status_line_but_never_its_body(ml_model, web):
    # The body is what a server next to the workers would answer (Redis, Elasticsearch, metadata).
    hook = Hook(status=500, answer=b"<script>alert('x')</script> redis_version:7.2.4 AKIAEXAMPLESECRET")
    try:
        job = make_job(ml_model, make_schedule(ml_model, urls=[hook.url()]))
        signals.job_ended.send(sender=BatchJob, job_id=job.pk, status=JobStatus.FAILED)
        (row,) = job.notifications.all()
        notify.notifications_send([row.pk], attempt=3)
    finally:
        hook.close()
    row.refresh_from_db()
    assert row.status == NotificationStatus.FAILED
    assert "Internal server error" in row.error and "error=500" in row.error
    for piece in ("<script>", "alert", "redis_version", "AKIAEXAMPLESECRET", "Response Details"):
        assert piece not in row.error
    html = web.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
    assert "Internal server error" in html and "redis_version" not in html and "AKIAEXAMPLESECRET" not in html


def test_an_error_with_markup_is_escaped_on_the_page(ml_model, web):
    job = make_job(ml_model, make_schedule(ml_model, urls=["json://127.0.0.1:1/x"]))
    signals.job_ended.send(sender=BatchJob, job_id=job.pk, status=JobStatus.FAILED)
    job.notifications.update(status=NotificationStatus.FAILED, error="HTTP 500 <script>alert('x')</script>")
    html = web.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html


def test_a_url_removed_from_the_schedule_before_sending_is_failed_without_sending(ml_model, hook):
    schedule = make_schedule(ml_model, urls=[hook.url()])
    job = make_job(ml_model, schedule)
    signals.job_ended.send(sender=BatchJob, job_id=job.pk, status=JobStatus.FAILED)
    Schedule.objects.filter(pk=schedule.pk).update(notify_urls=[])
    (row,) = job.notifications.all()
    assert notify.notifications_send([row.pk]) == []
    row.refresh_from_db()
    assert row.status == NotificationStatus.FAILED and "changed before it was sent" in row.error
    assert hook.received == []


def test_the_page_of_a_scheduled_job_without_notifications_says_why(ml_model, web):
    job = make_job(ml_model, make_schedule(ml_model, urls=["json://127.0.0.1:1/x"]), status=JobStatus.SUCCEEDED)
    html = web.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
    assert "notifies when a run or a post-step fails, and this run succeeded" in html
    plain = make_job(ml_model)
    assert 'id="notifications"' not in web.get(reverse("batchjobs:job-detail", args=[plain.pk])).content.decode()
