"""Cancelling a queued or running job, and retrying a failed one's failed batches."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from batchjobs import services, transitions
from batchjobs.choices import BatchStatus, JobStatus
from batchjobs.models import Batch, BatchAttempt, BatchJob
from batchjobs.pipeline import admit, extract, feed, predict
from tests.batchjobs.jobkit import IN_BATCHES, make_input, model_with_config, output_rows, run_job, trigger

pytestmark = pytest.mark.usefixtures("job_storage")


def test_cancelling_a_queued_job_ends_it_at_once(config, ml_model, user):
    make_input("prod.t.input", 1_000)
    job = services.job_cancel(job=trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.CANCELLED
    assert admit.jobs_admit() == []
    with pytest.raises(ValidationError):
        services.job_cancel(
            job=BatchJob.objects.create(
                model=job.model,
                build=job.build,
                batch_config=job.batch_config,
                input_table="a",
                output_table="b",
                status=JobStatus.SUCCEEDED,
            )
        )


def test_cancelling_a_running_job_stops_its_batches_and_writes_no_output(config, ml_model, user):
    make_input("prod.t.input", 6_000)
    job = trigger(ml_model, user, "prod.t.input")
    admit.jobs_admit()
    extract.job_extract(job.pk)
    first = job.batches.filter(status=BatchStatus.QUEUED).first()
    Batch.objects.filter(pk=first.pk).update(status=BatchStatus.RUNNING, lease_expires_at=transitions.lease())
    job = services.job_cancel(job=job)
    assert job.status == JobStatus.CANCELLING  # a batch is still running
    assert not job.batches.filter(status__in=[BatchStatus.PENDING, BatchStatus.QUEUED]).exists()
    Batch.objects.filter(pk=first.pk).update(status=BatchStatus.CANCELLED)  # its worker saw the cancel
    feed.after_batch(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert output_rows("prod.out.scores") is None
    assert not job.events.filter(evid__in=[400, 401]).exists()


def test_a_running_batch_is_stopped_when_its_job_is_cancelled(ml_model, user, settings):
    settings.BATCH_LEASE_S = 4  # heartbeats every second
    model_with_config(ml_model, user, IN_BATCHES + "import time; time.sleep(30)", processes="ONE")
    make_input("prod.t.input", 1_000)
    job = trigger(ml_model, user, "prod.t.input")
    admit.jobs_admit()
    extract.job_extract(job.pk)
    batch = job.batches.get()
    BatchJob.objects.filter(pk=job.pk).update(cancel_requested=True)  # what job_cancel sets
    started = timezone.now()
    predict.batch_predict(batch.pk)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED
    assert (timezone.now() - started).total_seconds() < 15  # not the 30 s the model wanted


def test_retry_runs_only_the_failed_batches_and_commits(ml_model, user, switch):
    switch.failing = True
    model_with_config(
        ml_model,
        user,
        switch.model_check('"id" in df and df["id"].min() >= 1000')
        + 'return pd.DataFrame({"score": df["amount"] * 2})',
        allow_network=True,
    )
    make_input("prod.t.input", 3_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.FAILED
    switch.failing = False
    failed_at = job.finished_at
    job = services.job_retry(job=job, requested_by=user)
    assert job.status == JobStatus.QUEUED
    assert job.queued_at > failed_at and job.started_at is None  # its timeline's wait starts at the retry
    admit.jobs_admit()
    feed.feed(job.pk)  # what the admit's on-commit does
    job = run_job(job)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert dict(job.batches.values_list("index", "attempts")) == {0: 1, 1: 1, 2: 1}
    assert BatchAttempt.objects.filter(batch__job=job, batch__index=0).count() == 1
    assert BatchAttempt.objects.filter(batch__job=job, batch__index=1).count() == 2
    assert len(output_rows("prod.out.scores")) == 3_000
    assert list(job.events.order_by("id").values_list("evid", flat=True)) == [402, 401, 402, 400]
    with pytest.raises(ValidationError, match="only a failed job can be retried"):
        services.job_retry(job=job, requested_by=user)
