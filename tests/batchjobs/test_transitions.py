"""Every job and batch state change is a conditional UPDATE: the first call changes one row, the
second (a redelivered task, a racing worker) changes nothing and leaves the state as it was."""

import pytest

from batchjobs import services, transitions
from batchjobs.choices import BatchStatus, JobPhase, JobStatus
from batchjobs.models import Batch, BatchAttempt
from tests.batchjobs.jobkit import make_input, model_with_config

pytestmark = pytest.mark.usefixtures("job_storage")


@pytest.fixture
def job(ml_model, user):
    model_with_config(ml_model, user)
    make_input("prod.t.input", 10)
    return services.job_trigger(
        model=ml_model, input_table="prod.t.input", output_table="prod.out.scores", requested_by=user
    )


def twice(change, *args, **kwargs) -> tuple[int, int]:
    return change(*args, **kwargs), change(*args, **kwargs)


def test_a_job_moves_through_its_states_once(job):
    assert twice(transitions.job_start, job.pk, phase=JobPhase.EXTRACTING) == (1, 0)
    assert twice(transitions.job_step_claim, job.pk, phase=JobPhase.EXTRACTING) == (1, 0)  # the lease is held
    assert twice(transitions.job_extracted, job.pk, input_rows=10, batches_total=0) == (1, 1)  # same values
    assert twice(transitions.job_commit_claim, job.pk) == (1, 0)
    assert twice(transitions.job_end, job.pk, JobStatus.SUCCEEDED, message="done", output_rows=10) == (1, 0)
    assert twice(transitions.job_cancel_running, job.pk) == (0, 0)  # an ended job stays ended
    assert twice(transitions.job_requeue_for_retry, job.pk) == (0, 0)  # only a failed job goes back
    job.refresh_from_db()
    assert (job.status, job.phase, job.output_rows, job.message) == (JobStatus.SUCCEEDED, JobPhase.DONE, 10, "done")


def test_cancelling_a_queued_job_twice_cancels_it_once(job):
    assert twice(transitions.job_cancel_queued, job.pk) == (1, 0)
    assert transitions.job_start(job.pk, phase=JobPhase.EXTRACTING) == 0  # a cancelled job never starts
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED


def test_a_batch_moves_through_its_states_once(job):
    transitions.job_start(job.pk, phase=JobPhase.PREDICTING)
    batch = Batch.objects.create(job=job, index=0, rows=10)
    assert twice(transitions.batches_send, [batch.pk]) == (1, 0)
    assert twice(transitions.batch_claim, batch.pk, worker="host:1") == (1, 0)
    batch.refresh_from_db()
    assert (batch.status, batch.attempts) == (BatchStatus.RUNNING, 1)
    assert twice(transitions.batch_heartbeat, batch) == (1, 1)  # renewing a lease is meant to repeat
    assert twice(transitions.batch_end, batch, BatchStatus.FAILED, error="boom") == (1, 0)
    assert twice(transitions.batch_requeue_lost, batch) == (0, 0)  # the reaper cannot take an ended batch
    assert twice(transitions.batches_reset_for_retry, job.pk, [0]) == (1, 0)
    batch.refresh_from_db()
    assert (batch.status, batch.attempts, batch.error) == (BatchStatus.PENDING, 0, "")


def test_an_attempt_the_reaper_took_back_cannot_end_the_batch(job):
    transitions.job_start(job.pk, phase=JobPhase.PREDICTING)
    batch = Batch.objects.create(job=job, index=0, rows=10)
    transitions.batches_send([batch.pk])
    transitions.batch_claim(batch.pk, worker="host:1")
    batch.refresh_from_db()
    attempt = BatchAttempt.objects.create(batch=batch, number=1, worker="host:1")
    assert transitions.batch_requeue_lost(batch) == 1  # its lease ran out: sent again
    assert transitions.attempt_close_lost(batch) == 1
    assert transitions.batch_end(batch, BatchStatus.SUCCEEDED) == 0  # the late worker's end changes nothing
    batch.refresh_from_db()
    attempt.refresh_from_db()
    assert batch.status == BatchStatus.QUEUED
    assert attempt.status == BatchStatus.FAILED and "stopped responding" in attempt.error
