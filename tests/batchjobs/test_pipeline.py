"""A job's pipeline in this process (admit, extract, predict every batch, commit) and the faults
of a model that end it. (tests/batchjobs/test_worker_faults.py runs jobs through a real worker.)"""

import pytest

from batchjobs.choices import BatchStatus, JobStatus
from batchjobs.models import BatchAttempt, BatchJob
from batchjobs.pipeline import admit, commit, extract, finish, predict
from builds.choices import BuildStatus
from builds.models import InstanceType
from builds.services import batch_config_set, build_register
from builds.verification import build_verify
from tables import selectors as table_selectors
from tables.models import TableRecord
from tests.artifacts import model_zip, upload
from tests.batchjobs.jobkit import IN_BATCHES, make_input, model_with_config, output_rows, run_job, trigger

pytestmark = pytest.mark.usefixtures("job_storage")


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


def test_the_end_of_a_job_is_announced_once_after_it_is_recorded(
    config, ml_model, user, django_capture_on_commit_callbacks
):
    from batchjobs import signals

    heard = []

    def receiver(sender, job_id, status, **kwargs):
        heard.append((job_id, status, BatchJob.objects.get(pk=job_id).status))  # the final state is saved

    signals.job_ended.connect(receiver)
    try:
        make_input("prod.t.input", 1_000)
        with django_capture_on_commit_callbacks(execute=True):
            job = run_job(trigger(ml_model, user, "prod.t.input"))
            assert not finish.finish(job.pk, JobStatus.FAILED, message="again")  # an ended job ends once
    finally:
        signals.job_ended.disconnect(receiver)
    assert heard == [(job.pk, JobStatus.SUCCEEDED, JobStatus.SUCCEEDED)]


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


def test_a_batch_that_raises_fails_the_job_at_once_naming_it_and_leaves_no_output(ml_model, user):
    model_with_config(
        ml_model,
        user,
        'if "id" in df and df["id"].min() >= 1000: raise ValueError("bad batch")\n'
        '        return pd.DataFrame({"score": df["amount"]})',
    )
    make_input("prod.t.input", 3_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.FAILED
    # Batches 0 and 1 are sent (2 vCPUs); batch 1 fails, so batch 2 is never run.
    assert job.message == (
        "1 of 3 batches failed (1,000 of 3,000 rows), so no output table was written: "
        "batch 1 (1,000 rows): ValueError: bad batch. The job stopped there: 1 batch not run; "
        "1 succeeded batch kept for Retry failed batches."
    )
    never = job.batches.get(index=2)
    assert (never.status, never.attempts, never.attempt_log.count()) == (BatchStatus.CANCELLED, 0, 0)
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


SHUFFLED = (
    "shuffled = df.sample(frac=1, random_state=3).reset_index(drop=True)\n"
    '        return pd.DataFrame({"score": shuffled["amount"] * 2})'
)


def test_predict_gets_each_rows_position_in_the_input_as_its_index(ml_model, user):
    model_with_config(
        ml_model, user, IN_BATCHES + 'return pd.DataFrame({"score": df.index.astype(float)}, index=df.index)'
    )
    make_input("prod.t.input", 3_000)  # three batches: positions 0.., 1000.., 2000..
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert all(r["score"] == r["id"] for r in output_rows("prod.out.scores"))


def test_rows_shuffled_and_given_a_fresh_index_fail_the_batch_saying_so(ml_model, user):
    model_with_config(ml_model, user, IN_BATCHES + SHUFFLED)
    make_input("prod.t.input", 2_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.FAILED
    assert "batch 0 (1,000 rows): ContractError: predict() gave other predictions" in job.message
    assert "came back in another order than its input rows" in job.message
    assert output_rows("prod.out.scores") is None


def test_a_model_declared_not_deterministic_skips_the_row_order_check_and_the_pages_say_so(ml_model, user, web):
    schema = (
        'ModelSchema([Feature("amount", "float"), Feature("country", "str")], [Prediction("score", "float")], '
        "deterministic=False)"
    )
    build = build_register(
        model=ml_model,
        upload=upload(model_zip(SHUFFLED, schema=schema)),
        filename="m.zip",
        entrypoint="scorer:Scorer",
        created_by=user,
    )
    build = build_verify(build_id=build.id)
    assert build.status == BuildStatus.SUCCEEDED and build.schema["deterministic"] is False
    assert "the row-order check was skipped" in build.log
    batch_config_set(
        build=build,
        deployment_name="noisy",
        instance_type=InstanceType.objects.get(name="ml.m5.large"),
        processes="ALL",
        env={},
        set_by=user,
    )
    make_input("prod.t.input", 2_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.SUCCEEDED, job.message  # its rows are wrong, as it declared they may be
    assert "[platform] the row-order check was skipped" in BatchAttempt.objects.filter(batch__job=job).first().log
    page = web.get(f"/batch/{job.pk}/").content.decode()
    assert "Row-order check" in page and "skipped" in page.split("Row-order check")[1][:200]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('return pd.DataFrame({"score": df["amount"]}).iloc[:-1]', "predict() returned 999 rows for a batch of 1000"),
        ('return pd.DataFrame({"other": df["amount"]})', "lacks the prediction column 'score'"),
        ('return pd.DataFrame({"score": ["text"] * len(df)})', "'score' cannot be stored as its declared type 'float'"),
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
