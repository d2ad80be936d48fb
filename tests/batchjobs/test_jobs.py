"""Batch jobs in this process: pre-flight checks, the queue, the pipeline's steps, faults, cancel,
retry, the reaper. (tests/batchjobs/test_worker_jobs.py runs the same through a real worker.)"""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from batchjobs import selectors, services, transitions
from batchjobs.choices import BatchStatus, JobPhase, JobStatus
from batchjobs.models import Batch, BatchAttempt, BatchJob
from batchjobs.pipeline import admit, commit, extract, feed, predict, reaper, staging
from builds.models import InstanceType
from tables import selectors as table_selectors
from tables.models import TableRecord
from tests.batchjobs.jobkit import make_input, model_with_config, output_rows, run_job

pytestmark = pytest.mark.usefixtures("job_storage")
# Models that misbehave only on real batches (which carry the input's id column), so that their
# build passes verification on sample rows first.
IN_BATCHES = 'if "id" not in df: return pd.DataFrame({"score": df["amount"] * 2})\n        '


@pytest.fixture
def config(ml_model, user):
    return model_with_config(ml_model, user)


def trigger(ml_model, user, input_table, output_table="prod.out.scores"):
    return services.job_trigger(model=ml_model, input_table=input_table, output_table=output_table, requested_by=user)


# --- pre-flight ---------------------------------------------------------------------------------


def test_every_failed_check_is_reported_at_once_and_nothing_is_saved(ml_model, user):
    with pytest.raises(ValidationError) as refused:
        trigger(ml_model, user, "prod.x.Bad", "prod.x.y;drop")
    errors = refused.value.message_dict
    assert "has no active batch config" in errors["model_id"][0]
    assert 'the table part "Bad" must match' in errors["input_table"][0]
    assert 'the table part "y;drop" must match' in errors["output_table"][0]
    assert not BatchJob.objects.exists()


def test_the_input_table_is_checked_for_features_prediction_names_and_size(config, ml_model, user, settings):
    make_input("prod.t.no_country", 10, extra={})
    catalog, name = table_selectors.resolve("prod.t.no_country")
    catalog.drop(name)
    import pyarrow as pa

    data = pa.table({"amount": [1.0], "score": [0.5]})
    catalog.create(name, data.schema, [data])
    settings.MAX_INPUT_ROWS = 0
    check = services.job_preflight(model=ml_model, input_table="prod.t.no_country", output_table="prod.t.out")
    messages = " ".join(check.errors["input_table"])
    assert "lacks the feature column country that build 1 needs" in messages
    assert "already has a column named like a prediction: score" in messages
    assert "has 1 rows; the limit (MAX_INPUT_ROWS) is 0" in messages
    missing = services.job_preflight(model=ml_model, input_table="prod.t.none", output_table="prod.t.none")
    assert missing.errors["input_table"] == ["The input table prod.t.none does not exist."]
    assert "must differ from the input table" in missing.errors["output_table"][0]


def test_an_output_table_that_exists_or_is_reserved_by_an_unfinished_job_is_refused(config, ml_model, user):
    make_input("prod.t.input", 100)
    make_input("prod.t.taken", 1)
    with pytest.raises(ValidationError) as exists:
        trigger(ml_model, user, "prod.t.input", "prod.t.taken")
    assert "The output table prod.t.taken already exists" in exists.value.message_dict["output_table"][0]
    trigger(ml_model, user, "prod.t.input", "prod.t.out")
    with pytest.raises(ValidationError) as reserved:
        trigger(ml_model, user, "prod.t.input", "t.out")  # the same table, named shorter
    assert "An unfinished batch job already writes to the output table prod.t.out" in str(reserved.value)
    assert BatchJob.objects.count() == 1


def test_the_database_itself_refuses_two_unfinished_jobs_for_one_output_table(config, ml_model, user):
    make_input("prod.t.input", 10)
    job = trigger(ml_model, user, "prod.t.input")
    clone = BatchJob(
        model=job.model,
        build=job.build,
        batch_config=job.batch_config,
        input_table=job.input_table,
        output_table=job.output_table,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        clone.save()
    BatchJob.objects.filter(pk=job.pk).update(status=JobStatus.FAILED)
    clone.save()  # a finished job releases its output table


def test_a_trigger_saves_a_queued_job_and_starts_nothing(config, ml_model, user, job_storage):
    make_input("prod.t.input", 100)
    job = trigger(ml_model, user, "prod.t.input")
    assert (job.status, job.phase, job.input_rows, job.parallelism) == (JobStatus.QUEUED, JobPhase.WAITING, 100, 2)
    assert not Batch.objects.exists() and not (job_storage / "staging").exists()
    assert not job.events.exists()


# --- the pipeline -------------------------------------------------------------------------------


def test_a_succeeded_job_has_every_input_row_with_its_prediction(config, ml_model, user, job_storage):
    make_input("prod.t.input", 5_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert (job.input_rows, job.output_rows, job.batches_total) == (5_000, 5_000, 5)
    assert job.message == "5,000 rows predicted into prod.out.scores."
    rows = output_rows("prod.out.scores")
    assert [r["id"] for r in rows] == list(range(5_000))  # every row once, in the input's order
    assert all(r["score"] == r["amount"] * 2 for r in rows)
    assert list(rows[0]) == ["id", "amount", "country", "score"]
    assert list(job.events.order_by("date_created", "id").values_list("evid", flat=True)) == [402, 400]
    event = job.events.get(evid=400)
    assert (event.model_id, event.build_id, event.endpoint_name) == (ml_model.model_id, job.build_id, "test-batch")
    assert not (job_storage / "staging" / "jobs" / str(job.pk)).exists()  # staging removed
    assert TableRecord.objects.get(name="prod.out.scores").created_by == user


def test_redelivered_steps_do_nothing(config, ml_model, user):
    make_input("prod.t.input", 2_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.SUCCEEDED
    batch = job.batches.first()
    assert admit.jobs_admit() == []
    assert extract.job_extract(job.pk) is False
    assert predict.batch_predict(batch.pk) is False
    assert commit.job_commit(job.pk) is False
    batch.refresh_from_db()
    assert batch.attempts == 1 and job.events.count() == 2


def test_a_batch_that_raises_fails_the_job_naming_it_and_leaves_no_output(ml_model, user):
    model_with_config(
        ml_model,
        user,
        'if "id" in df and df["id"].min() >= 1000: raise ValueError("bad batch")\n'
        '        return pd.DataFrame({"score": df["amount"]})',
    )
    make_input("prod.t.input", 3_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.FAILED
    assert job.message.startswith(
        "2 of 3 batches failed (2,000 of 3,000 rows), so no output table was written: "
        "batch 1 (1,000 rows): ValueError: bad batch; batch 2 (1,000 rows)"
    )
    assert "Traceback" in job.error_detail and 'raise ValueError("bad batch")' in job.error_detail
    assert "runtime/child.py" not in job.error_detail  # the traceback starts in the model's code
    assert output_rows("prod.out.scores") is None
    assert job.events.get(evid=401).error == job.message
    assert job.batches.get(index=0).status == BatchStatus.SUCCEEDED


def test_rows_returned_shuffled_with_their_index_are_realigned(ml_model, user):
    model_with_config(
        ml_model,
        user,
        'out = pd.DataFrame({"score": df["amount"] * 2}, index=df.index)\n'
        "        return out.sample(frac=1, random_state=3)",
    )
    make_input("prod.t.input", 2_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert all(r["score"] == r["amount"] * 2 for r in output_rows("prod.out.scores"))
    assert "realigned" in BatchAttempt.objects.filter(batch__job=job).first().log


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('return pd.DataFrame({"score": df["amount"]}).iloc[:-1]', "predict() returned 999 rows for a batch of 1000"),
        ('return pd.DataFrame({"other": df["amount"]})', "lacks the prediction column 'score'"),
        ('return pd.DataFrame({"score": ["text"] * len(df)})', "'score' cannot be stored as double"),
        ("import sys; sys.exit(4)", "the model called sys.exit(4)"),
    ],
)
def test_output_that_breaks_the_contract_fails_the_job_with_the_rule(ml_model, user, body, message):
    model_with_config(ml_model, user, IN_BATCHES + body)
    make_input("prod.t.input", 2_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.FAILED
    assert message in job.message
    assert output_rows("prod.out.scores") is None


def test_a_hanging_predict_is_stopped_at_the_timeout(ml_model, user, settings):
    settings.PREDICT_TIMEOUT_S = 2
    model_with_config(ml_model, user, IN_BATCHES + "import time; time.sleep(60)", processes="ONE")
    make_input("prod.t.input", 1_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.FAILED
    assert "did not answer within 2 s" in job.message


def test_memory_past_the_instance_types_limit_fails_the_batch(ml_model, user):
    InstanceType.objects.create(name="ml.t3.tiny", vcpus=1, memory_mib=700, queue="ml.m5.large")
    model_with_config(
        ml_model, user, IN_BATCHES + "hog = bytearray(3 * 1024**3)\n        return df", instance_type="ml.t3.tiny"
    )
    make_input("prod.t.input", 1_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.FAILED
    assert "MemoryError" in job.message


def test_a_model_printing_50_mb_succeeds_with_its_log_capped(ml_model, user, settings):
    settings.LOG_CAP_BYTES = 100_000
    model_with_config(
        ml_model,
        user,
        'import sys; sys.stdout.write("x" * 50_000_000)\n        return pd.DataFrame({"score": df["amount"] * 2})',
        processes="ONE",
    )
    make_input("prod.t.input", 1_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.SUCCEEDED, job.message
    log = BatchAttempt.objects.get(batch__job=job).log
    assert len(log) < 101_000 and "[truncated: 49,900,000 more bytes" in log


def test_the_model_gets_its_config_variables(ml_model, user):
    model_with_config(
        ml_model,
        user,
        'import os; return pd.DataFrame({"score": df["amount"] * float(os.environ.get("FACTOR", "1"))})',
        env={"FACTOR": "3"},
    )
    make_input("prod.t.input", 1_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.SUCCEEDED
    assert all(r["score"] == r["amount"] * 3 for r in output_rows("prod.out.scores"))


def test_an_output_table_that_appears_meanwhile_is_left_untouched(config, ml_model, user):
    make_input("prod.t.input", 1_000)
    job = trigger(ml_model, user, "prod.t.input")
    make_input("prod.out.scores", 3)  # someone else made it after the checks
    job = run_job(job)
    assert job.status == JobStatus.FAILED
    assert "appeared while the job ran; it was left untouched" in job.message
    assert len(output_rows("prod.out.scores")) == 3


def test_an_empty_input_gives_an_empty_output_table(config, ml_model, user):
    make_input("prod.t.empty", 0)
    job = run_job(trigger(ml_model, user, "prod.t.empty"))
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert output_rows("prod.out.scores") == []
    catalog, name = table_selectors.resolve("prod.out.scores")
    assert [c.name for c in catalog.columns(name)] == ["id", "amount", "country", "score"]


def test_the_platform_picks_the_batch_size():
    assert extract.choose_batch_rows(rows=1_000, bytes_per_row=50, parallelism=2) == 1_000
    assert extract.choose_batch_rows(rows=6_000, bytes_per_row=50, parallelism=2) == 1_000
    assert extract.choose_batch_rows(rows=5_000_000, bytes_per_row=80, parallelism=2) == 250_000
    assert extract.choose_batch_rows(rows=1_000_000, bytes_per_row=1_000_000, parallelism=2) == 1_000
    assert extract.choose_batch_rows(rows=0, bytes_per_row=1, parallelism=2) == 1


# --- the queue ----------------------------------------------------------------------------------


def test_jobs_start_oldest_first_while_fewer_than_the_limit_run(config, ml_model, user, settings):
    settings.MAX_CONCURRENT_JOBS = 1
    make_input("prod.t.input", 1_000)
    first = trigger(ml_model, user, "prod.t.input", "prod.out.a")
    second = trigger(ml_model, user, "prod.t.input", "prod.out.b")
    third = trigger(ml_model, user, "prod.t.input", "prod.out.c")
    assert admit.jobs_admit() == [str(first.pk)]
    assert selectors.queue_positions([second.pk, third.pk]) == {second.pk: 1, third.pk: 2}
    assert admit.jobs_admit() == []  # full
    run_job(first)
    assert admit.jobs_admit() == [str(second.pk)]
    first.refresh_from_db()
    assert first.status == JobStatus.SUCCEEDED


# --- cancel, retry, the reaper ------------------------------------------------------------------


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


def test_retry_runs_only_the_failed_batches_and_commits(ml_model, user, tmp_path):
    marker = tmp_path / "fail"
    marker.write_text("1")
    model_with_config(
        ml_model,
        user,
        f'import os\n        if "id" in df and df["id"].min() >= 1000 and os.path.exists("{marker}"): '
        'raise RuntimeError("flaky")\n'
        '        return pd.DataFrame({"score": df["amount"] * 2})',
    )
    make_input("prod.t.input", 3_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.FAILED
    marker.unlink()
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


def test_a_failed_jobs_shards_are_removed_after_the_retention(ml_model, user, settings, job_storage):
    model_with_config(ml_model, user, IN_BATCHES + 'raise ValueError("no")')
    make_input("prod.t.input", 1_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    shards = job_storage / "staging" / staging.job_dir(job.pk)
    assert job.status == JobStatus.FAILED and shards.exists()  # kept for a retry
    BatchJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(hours=25))
    reaper.reap()
    assert not shards.exists()
    with pytest.raises(ValidationError, match="cannot be retried"):
        services.job_retry(job=BatchJob.objects.get(pk=job.pk), requested_by=user)


def test_try_on_100_rows_shows_predictions_speed_and_memory(config, ml_model):
    make_input("prod.t.input", 500)
    trial = services.job_try(model=ml_model, input_table="prod.t.input")
    assert trial.input_rows == 100 and trial.columns == ["id", "amount", "country", "score"]
    assert all(row[3] == row[1] * 2 for row in trial.rows)
    assert trial.ms_per_row >= 0 and trial.peak_memory_mib > 10
    with pytest.raises(ValidationError) as refused:
        services.job_try(model=ml_model, input_table="prod.t.missing")
    assert "does not exist" in refused.value.message_dict["input_table"][0]


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
