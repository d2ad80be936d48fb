"""The jobs' reaper: batches whose worker died or whose message was lost, jobs past their timeout,
staging kept for a retry and removed after the retention."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from batchjobs import services
from batchjobs.choices import BatchStatus, JobStatus
from batchjobs.models import Batch, BatchJob
from batchjobs.pipeline import admit, commit, extract, predict, reaper, staging
from tests.batchjobs.jobkit import IN_BATCHES, make_input, model_with_config, run_job, trigger

pytestmark = pytest.mark.usefixtures("job_storage")


def test_the_reaper_requeues_a_batch_whose_worker_died_then_fails_it_naming_it(config, ml_model, user, settings):
    settings.MAX_BATCH_ATTEMPTS = 2
    make_input("prod.t.input", 1_000)
    job = trigger(ml_model, user, "prod.t.input")
    admit.jobs_admit()
    extract.job_extract(job.pk)
    batch = job.batches.get()
    expired = timezone.now() - timedelta(seconds=1)
    Batch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.RUNNING, attempts=1, lease_expires_at=expired, worker="host:123"
    )
    assert reaper.reap()["requeued"] == 1
    batch.refresh_from_db()
    assert (batch.status, batch.attempts) == (BatchStatus.QUEUED, 1)
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.RUNNING, attempts=2, lease_expires_at=expired)
    assert reaper.reap()["failed_batches"] == 1
    commit.job_commit(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "batch 0 (1,000 rows): the worker running it (host:123) stopped responding on attempt 2 of 2" in job.message


def test_a_job_past_its_timeout_fails(config, ml_model, user, settings):
    settings.JOB_TIMEOUT_S = 60
    make_input("prod.t.input", 1_000)
    job = trigger(ml_model, user, "prod.t.input")
    admit.jobs_admit()
    BatchJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(seconds=61))
    assert reaper.reap()["timed_out"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "ran longer than JOB_TIMEOUT_S (60 s" in job.message


def test_a_failed_jobs_kept_parts_are_removed_after_the_retention(ml_model, user, settings, job_storage):
    model_with_config(
        ml_model,
        user,
        IN_BATCHES + 'if df["id"].min() >= 1000: raise ValueError("no")\n'
        '        return pd.DataFrame({"score": df["amount"] * 2})',
    )
    make_input("prod.t.input", 2_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    output_folder = job_storage / "lake" / "out" / "scores"
    assert job.status == JobStatus.FAILED
    assert [p.name for p in output_folder.iterdir()] == [job.batches.get(index=0).part_name]  # kept for a retry
    BatchJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(hours=25))
    reaper.reap()
    assert not output_folder.exists()
    assert not (job_storage / "staging" / staging.job_dir(job.pk)).exists()
    with pytest.raises(ValidationError, match="cannot be retried"):
        services.job_retry(job=BatchJob.objects.get(pk=job.pk), requested_by=user)


def test_the_reaper_sends_again_a_batch_whose_message_was_lost(
    config, ml_model, user, django_capture_on_commit_callbacks
):
    make_input("prod.t.input", 1_000)
    job = trigger(ml_model, user, "prod.t.input")
    admit.jobs_admit()
    extract.job_extract(job.pk)
    batch = job.batches.get()
    assert batch.status == BatchStatus.QUEUED and batch.queued_at is not None
    assert reaper.reap()["resent"] == 0  # just sent: no reason to think it lost
    Batch.objects.filter(pk=batch.pk).update(queued_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks() as sent:
        assert reaper.reap()["resent"] == 1
    assert len(sent) >= 1
    batch.refresh_from_db()
    assert (timezone.now() - batch.queued_at).total_seconds() < 5  # not sent again every round
    assert reaper.reap()["resent"] == 0
    assert predict.batch_predict(batch.pk) is True  # the resent message runs it, once
    assert predict.batch_predict(batch.pk) is False
