"""Before a job runs: the checks a trigger makes (every failure at once, nothing saved), what a
trigger saves, and Try on 100 rows."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from batchjobs import services
from batchjobs.choices import JobPhase, JobStatus
from batchjobs.models import Batch, BatchJob
from tables import selectors as table_selectors
from tests.batchjobs.jobkit import DOUBLE, make_input, model_with_config, trigger
from tests.factories import BatchJobFactory

pytestmark = pytest.mark.usefixtures("job_storage")


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
    assert reserved.value.message_dict == {
        "output_table": ["An unfinished batch job already writes to the output table prod.t.out; choose another name."]
    }
    assert BatchJob.objects.count() == 1


def test_an_output_table_another_teams_unfinished_job_writes_to_is_taken_not_said_to_be_a_job(
    config, ml_model, user, outsider
):
    make_input("prod.t.input", 100)
    theirs = BatchJobFactory(
        batch_config__build__model__team=outsider.groups.get(), status=JobStatus.RUNNING, output_table="prod.t.out"
    )
    for status in (JobStatus.QUEUED, JobStatus.RUNNING):
        BatchJob.objects.filter(pk=theirs.pk).update(status=status)
        with pytest.raises(ValidationError) as refused:
            trigger(ml_model, user, "prod.t.input", "prod.t.out")
        assert refused.value.message_dict == {"output_table": ["The name prod.t.out is taken; choose another name."]}
        assert "unfinished" not in str(refused.value) and "job" not in str(refused.value)
    assert list(BatchJob.objects.values_list("pk", flat=True)) == [theirs.pk]
    BatchJob.objects.filter(pk=theirs.pk).update(status=JobStatus.SUCCEEDED)  # finished: the name is free
    assert services.job_preflight(model=ml_model, input_table="prod.t.input", output_table="prod.t.out").ok


def test_a_trigger_that_loses_the_race_to_another_teams_job_is_told_the_name_is_taken(
    config, ml_model, user, outsider, monkeypatch
):
    make_input("prod.t.input", 100)
    BatchJobFactory(
        batch_config__build__model__team=outsider.groups.get(), status=JobStatus.QUEUED, output_table="prod.t.out"
    )
    # As if the check ran before their trigger committed: the database's constraint refuses ours.
    monkeypatch.setattr(services, "_check_output", lambda result, ref, *, team: None)
    with pytest.raises(ValidationError) as refused:
        trigger(ml_model, user, "prod.t.input", "prod.t.out")
    assert refused.value.message_dict == {"output_table": ["The name prod.t.out is taken; choose another name."]}
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


def test_try_on_100_rows_shows_predictions_speed_and_memory(config, ml_model):
    make_input("prod.t.input", 500)
    trial = services.job_try(model=ml_model, input_table="prod.t.input")
    # Shown as a preview is: the predictions first, floats rounded for reading (as text).
    assert trial.input_rows == 100 and trial.columns == ["score", "id", "amount", "country"] and trial.leading == 1
    assert trial.rows[0] == ["1", 0, "0.5", "us"] and trial.rows[1] == ["3", 1, "1.5", "gb"]
    assert all(float(row[0]) == float(row[2]) * 2 for row in trial.rows)
    assert trial.ms_per_row >= 0 and trial.peak_memory_mib > 10 and trial.start_seconds > 0
    # The whole input's projected time: its 500 rows at the pace measured on larger calls (the 100
    # rows drawn again), plus a call's fixed cost and starting the model.
    projection = trial.projection
    assert (projection.rows, projection.batches) == (500, 1) and projection.measured_rows in (1_000, 10_000)
    assert projection.seconds == pytest.approx(
        trial.start_seconds + (projection.ms_per_call + 500 * projection.ms_per_row) / 1000
    )
    with pytest.raises(ValidationError) as refused:
        services.job_try(model=ml_model, input_table="prod.t.missing")
    assert "does not exist" in refused.value.message_dict["input_table"][0]


# 40 ms per call plus 0.2 ms per row: 100 rows take 60 ms, most of it the call's fixed cost.
PACED = "import time\n        time.sleep(0.04 + 0.0002 * len(df))\n        " + DOUBLE


def test_the_projection_separates_a_calls_fixed_cost_from_the_cost_per_row(ml_model, user):
    model_with_config(ml_model, user, PACED)
    make_input("prod.t.input", 1_000_000)
    projection = services.job_try(model=ml_model, input_table="prod.t.input").projection
    # 100 rows (60 ms) then 1,000 (240 ms); 10,000 would pass the one-second budget.
    assert projection.measured_rows == 1_000
    assert projection.ms_per_row == pytest.approx(0.2, rel=0.35)
    assert projection.ms_per_call == pytest.approx(40, abs=25)
    # At 100 rows' own pace (0.6 ms per row) the million rows would have looked three times slower.
    waves = -(-projection.batches // projection.parallelism)
    expected = (1_000_000 * 0.0002 + projection.batches * 0.04) / projection.parallelism
    assert (projection.seconds - projection.start_seconds) == pytest.approx(expected, rel=0.35)
    assert waves * projection.parallelism >= projection.batches
