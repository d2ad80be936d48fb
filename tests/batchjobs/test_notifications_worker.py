"""Notifications of scheduled jobs that really ran, sent by a real Celery worker (every queue, beat)
to a webhook receiver on 127.0.0.1 started by the test (allowed by NOTIFY_ALLOWED_HOSTS: the worker
sends to public addresses only otherwise); a receiver that cannot be reached changes nothing of
the job and its failure shows on the job page."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest
from django.db import transaction
from django.urls import reverse

from batchjobs import services
from batchjobs.choices import JobStatus, NotificationStatus, NotifyOn
from batchjobs.models import BatchJob, Notification, Schedule
from builds.choices import BuildStatus
from builds.models import Build, InstanceType
from builds.services import batch_config_set, build_register
from builds.verification import build_verify
from tables import selectors as table_selectors
from tests.artifacts import GOOD_PREDICT, model_zip, upload
from tests.batchjobs.hooks import Hook, closed_port
from tests.conftest import running_worker, wait_for, worker_settings
from tests.factories import GroupFactory, MLModelFactory, UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PUBLIC_URL = "http://ml.example.test:8000"
# Fails on real batches (they carry the input's id column); verification's sample rows pass.
FAILING = 'if "id" in df.columns: raise ValueError("the scorer lost its weights")\n        ' + GOOD_PREDICT


@pytest.fixture(scope="module")
def notify_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A worker whose failed notifications are tried again after 1 s and 2 s (not 30 s and 60 s)."""
    with django_db_blocker.unblock():
        with running_worker(
            tmp_path_factory.mktemp("notify-worker"),
            NOTIFY_RETRY_S="1",
            PUBLIC_URL=PUBLIC_URL,
            NOTIFY_ALLOWED_HOSTS="127.0.0.1",
        ) as w:
            yield w


@pytest.fixture(autouse=True)
def same_settings_as_the_worker(settings, notify_worker):
    with worker_settings(settings, notify_worker):
        yield


@pytest.fixture
def owner():
    return UserFactory(username="scheduler", teams=[GroupFactory(name="notify-team")])


@pytest.fixture
def hook():
    made = Hook()
    yield made
    made.close()


def make_config(owner, body: str):
    model = MLModelFactory(model_id=f"notify-{uuid.uuid4().hex[:8]}", team=owner.groups.first())
    build = build_register(
        model=model, upload=upload(model_zip(body)), filename="scorer.zip", entrypoint="scorer:Scorer", created_by=owner
    )
    build_verify(build_id=build.id)  # the worker got it too; whichever claims it first verifies it
    build = wait_for(
        lambda: Build.objects.filter(pk=build.pk, status__in=BuildStatus.TERMINAL).first(),
        timeout=60,
        message="the build to be verified",
    )
    assert build.status == BuildStatus.SUCCEEDED, build.log
    return batch_config_set(
        build=build,
        deployment_name="notify-e2e",
        instance_type=InstanceType.objects.get(name="ml.m5.large"),
        processes="ALL",
        env={},
        set_by=owner,
    )


def make_input(rows: int) -> str:
    name = f"prod.notify.in_{uuid.uuid4().hex[:10]}"
    catalog, table = table_selectors.resolve(name)
    data = pa.table({"id": list(range(rows)), "amount": [i * 0.5 for i in range(rows)], "country": ["us"] * rows})
    catalog.create(table, data.schema, data.to_batches())
    return name


def run_scheduled(config, owner, *, urls: list[str], notify_on: str) -> BatchJob:
    """A job of a schedule (made here directly) on a new input, as a schedule's run starts one."""
    schedule = Schedule.objects.create(
        model=config.model,
        team=owner.groups.first(),
        name="nightly",
        input_table="prod.notify.input",
        output_table_template="prod.notify.out_{run}",
        cron="0 2 * * *",
        notify_urls=urls,
        notify_on=notify_on,
    )
    with transaction.atomic():  # linked before the worker hears of it
        job = services.job_trigger(
            model=config.model,
            input_table=make_input(3_000),
            output_table=f"prod.notify.out_{uuid.uuid4().hex[:10]}",
            requested_by=owner,
        )
        BatchJob.objects.filter(pk=job.pk).update(schedule=schedule)
    return wait_for(
        lambda: BatchJob.objects.filter(pk=job.pk, status__in=JobStatus.TERMINAL).first(),
        timeout=120,
        message="the job to end",
    )


def settled_notifications(job: BatchJob, count: int) -> list[Notification]:
    def done():
        rows = list(job.notifications.order_by("url_index", "id"))
        return rows if len(rows) == count and all(n.status != NotificationStatus.PENDING for n in rows) else None

    return wait_for(done, timeout=60, message="the notifications to be sent or failed")


def test_a_failed_scheduled_run_reaches_a_webhook_with_the_job_the_reason_and_its_page(owner, hook):
    job = run_scheduled(make_config(owner, FAILING), owner, urls=[hook.url()], notify_on=NotifyOn.FAILURE)
    assert job.status == JobStatus.FAILED
    (row,) = settled_notifications(job, 1)
    assert (row.reason, row.status, row.error) == ("failed", NotificationStatus.SENT, "")
    ((path, message),) = hook.received
    assert path == "/hooks/s3cr3t-t0ken" and message["type"] == "failure"
    assert message["title"] == f"{job.model.model_id}: scheduled run nightly failed"
    assert f"Job: {job.pk}" in message["message"]
    assert f"Reason: {job.message.splitlines()[0]}" in message["message"]
    assert "the scorer lost its weights" in message["message"]
    assert f"Job page: {PUBLIC_URL}{reverse('batchjobs:job-detail', args=[job.pk])}" in message["message"]


def test_an_unreachable_receiver_leaves_the_job_as_it_was_and_the_page_shows_why(owner, hook, client, notify_worker):
    port = closed_port()
    dead = f"json://127.0.0.1:{port}/hooks/dead-t0ken"
    job = run_scheduled(make_config(owner, GOOD_PREDICT), owner, urls=[dead, hook.url()], notify_on=NotifyOn.ALWAYS)
    assert job.status == JobStatus.SUCCEEDED, job.message
    ended = (job.status, job.message, job.output_rows, job.finished_at)
    unreachable, reached = settled_notifications(job, 2)

    assert (reached.reason, reached.status) == ("succeeded", NotificationStatus.SENT)
    ((_, message),) = hook.received  # the success went to the receiver that listens
    assert message["type"] == "success" and f"Job: {job.pk}" in message["message"]
    assert f"Result: 3,000 rows predicted into {job.output_table}." in message["message"]

    assert unreachable.status == NotificationStatus.FAILED  # after three tries
    assert "Connection refused" in unreachable.error and "dead-t0ken" not in unreachable.error
    log = notify_worker.log()  # tried three times, logged with the masked URL only
    assert all(f"to json://127.0.0.1:{port}/… failed (try {n} of 3)" in log for n in (1, 2, 3)), log[-3000:]
    assert "dead-t0ken" not in log and "s3cr3t-t0ken" not in log
    job.refresh_from_db()
    assert (job.status, job.message, job.output_rows, job.finished_at) == ended
    catalog, table = table_selectors.resolve(job.output_table)
    assert sum(b.num_rows for b in catalog.read_batches(table)) == 3_000  # the output is there, whole

    client.force_login(owner)
    html = client.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
    card = html[html.index('id="notifications"') :]
    card = card[: card.index("</section>")]
    assert "Failed to send" in card and "Connection refused" in card and "Sent" in card
    assert "the run succeeded" in card and "dead-t0ken" not in html and "s3cr3t-t0ken" not in html


def test_a_run_that_fails_again_after_retry_failed_batches_is_notified_again(owner, hook):
    job = run_scheduled(make_config(owner, FAILING), owner, urls=[hook.url()], notify_on=NotifyOn.FAILURE)
    assert job.status == JobStatus.FAILED
    settled_notifications(job, 1)
    services.job_retry(job=job, requested_by=owner)
    wait_for(
        lambda: job.events.filter(evid=401).count() == 2 and BatchJob.objects.get(pk=job.pk).status == JobStatus.FAILED,
        timeout=120,
        message="the retried job to fail again",
    )
    first, second = settled_notifications(job, 2)
    events = [str(u) for u in job.events.filter(evid=401).order_by("date_created", "id").values_list("uuid", flat=True)]
    assert [first.occurrence, second.occurrence] == events
    assert (first.status, second.status) == (NotificationStatus.SENT, NotificationStatus.SENT)
    assert [m["type"] for m in hook.messages()] == ["failure", "failure"]
    assert all(f"Job: {job.pk}" in m["message"] for m in hook.messages())
