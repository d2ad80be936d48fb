"""The client as users of the managed platform call it, against a live server (real HTTP, token auth)
and a real Celery worker that runs the jobs: invoke_batch_predict_model, prepare, invoke, the row
count check, and the table round trip (upload_table, read_table, drop_table), README example included."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable, write_deltalake
from rest_framework.authtoken.models import Token

from batchjobs.choices import JobStatus
from batchjobs.models import BatchJob
from builds.choices import BuildStatus
from builds.models import Build, InstanceType
from builds.services import batch_config_set, build_register
from builds.verification import build_verify
from mlplatform.sdk import (
    ApiError,
    BatchPredictionError,
    BatchPredictor,
    OutputRowCountMismatch,
    OutputTableNotDropped,
    PredictorConfig,
    invoke_batch_predict_model,
)
from tables import selectors as table_selectors
from tables.models import TableRecord
from tables.services import table_record
from tests.artifacts import model_zip, upload
from tests.batchjobs.jobkit import make_input
from tests.conftest import REPO, wait_for
from tests.factories import GroupFactory, UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SEED_INPUT = "prod.fraud_in_premium_model.input"
SEED_OUTPUT = "prod.fraud_in_premium_model.output"


@pytest.fixture(autouse=True)
def worker_lake(settings, job_worker):
    """The live server runs in this process: it reads and writes tables where the worker does."""
    assert job_worker.poll() is None, f"the job worker exited:\n{job_worker.log()[-4000:]}"
    settings.WAREHOUSE_CATALOGS, settings.WAREHOUSE_DEFAULT_CATALOG = job_worker.catalogs, "prod"


def exists(name: str) -> bool:
    catalog, table = table_selectors.resolve(name)
    return catalog.exists(table)


def drop_if_there(*names: str) -> None:
    """The lake outlives a test (the database does not): leave no table for the next one."""
    for name in names:
        catalog, table = table_selectors.resolve(name)
        if catalog.exists(table):
            catalog.drop(table)


@pytest.fixture
def config(ml_model, user):
    """ds-premium-fraud-detection's active batch config, on a build the worker (or this process) verified."""
    build = build_register(
        model=ml_model, upload=upload(model_zip()), filename="m.zip", entrypoint="scorer:Scorer", created_by=user
    )
    build_verify(build_id=build.id)  # the worker was sent it too: whichever claims it first verifies it
    build = wait_for(
        lambda: Build.objects.filter(pk=build.pk, status__in=BuildStatus.TERMINAL).first(),
        message="the build to be verified",
    )
    assert build.status == BuildStatus.SUCCEEDED, build.log
    return batch_config_set(
        build=build,
        deployment_name="client-batch",
        set_by=user,
        processes="ALL",
        instance_type=InstanceType.objects.get(name="ml.m5.large"),
        env={"THRESHOLD": "0.5", "API_KEY": "hunter2"},
    )


@pytest.fixture
def token(user):
    return Token.objects.create(user=user).key


@pytest.fixture
def platform(live_server, token):
    return BatchPredictor(live_server.url, token=token, timeout=30)


@pytest.fixture
def seed(config, live_server, token, monkeypatch):
    """The managed platform's names, its users' environment (no URL or token in the call), 1,000 rows."""
    monkeypatch.setenv("MLPLATFORM_URL", live_server.url)
    monkeypatch.setenv("MLPLATFORM_TOKEN", token)
    drop_if_there(SEED_INPUT, SEED_OUTPUT)
    make_input(SEED_INPUT, 1_000)
    yield config
    drop_if_there(SEED_INPUT, SEED_OUTPUT)


def test_the_managed_platforms_call_runs_the_job_and_returns_what_ran_and_the_client(seed, user):
    predictor_config, batch_predictor = invoke_batch_predict_model(
        model_id="ds-premium-fraud-detection",
        input_table_name="prod.fraud_in_premium_model.input",
        output_table_name="prod.fraud_in_premium_model.output",
    )

    job = BatchJob.objects.get()
    assert job.status == JobStatus.SUCCEEDED and job.output_rows == 1_000
    assert isinstance(predictor_config, PredictorConfig) and isinstance(batch_predictor, BatchPredictor)
    assert predictor_config.job_id == str(job.pk) and predictor_config.job["status"] == "succeeded"
    assert predictor_config.job["output_rows"] == predictor_config.job["input_rows"] == 1_000
    assert (predictor_config.model_id, predictor_config.build_id) == ("ds-premium-fraud-detection", str(seed.build_id))
    assert predictor_config.build_number == seed.build.number
    assert (predictor_config.deployment_name, predictor_config.instance_type, predictor_config.processes) == (
        "client-batch",
        "ml.m5.large",
        "ALL",
    )
    assert predictor_config.env["THRESHOLD"] == "0.5" and predictor_config.env["API_KEY"] != "hunter2"  # masked
    assert predictor_config.allow_network is False
    assert (predictor_config.input_table_name, predictor_config.output_table_name) == (SEED_INPUT, SEED_OUTPUT)
    assert predictor_config.url.endswith(f"/batch/{job.pk}/")
    with pytest.raises(dataclasses.FrozenInstanceError):
        predictor_config.job_id = "other"
    assert batch_predictor.table(SEED_OUTPUT)["rows"] == 1_000

    # Run it again into the same name: refused as it is, allowed once the earlier output is dropped.
    with pytest.raises(ApiError) as refused:
        batch_predictor.prepare("ds-premium-fraud-detection", SEED_INPUT, SEED_OUTPUT)
    assert refused.value.errors == {
        "output_table": [f"The output table {SEED_OUTPUT} already exists; choose a new name."]
    }
    assert exists(SEED_OUTPUT)
    prepared = batch_predictor.prepare("ds-premium-fraud-detection", SEED_INPUT, SEED_OUTPUT, drop_existing_output=True)
    assert prepared["ok"] and prepared["dropped_output"] and prepared["input_rows"] == 1_000
    assert not exists(SEED_OUTPUT) and not TableRecord.objects.filter(name=SEED_OUTPUT).exists()

    # Today's keyword names still work.
    again, _ = invoke_batch_predict_model(
        "ds-premium-fraud-detection", input_table=SEED_INPUT, output_table=SEED_OUTPUT, poll=0.5
    )
    assert again.job_id != predictor_config.job_id and again.job["status"] == "succeeded"
    assert BatchJob.objects.get(pk=again.job_id).output_rows == 1_000
    assert TableRecord.objects.get(name=SEED_OUTPUT).team == user.groups.get()


def test_the_managed_platforms_call_raises_when_the_output_does_not_have_a_row_per_input_row(seed, monkeypatch):
    """A writer appends rows to the output table after the job ended, before the client counts them."""
    real_wait = BatchPredictor.wait

    def wait_then_append(self, job_id, **kwargs):
        job = real_wait(self, job_id, **kwargs)
        catalog, table = table_selectors.resolve(job["output_table"])
        uri = catalog.table_uri(table)
        write_deltalake(uri, DeltaTable(uri).to_pyarrow_table().slice(0, 3), mode="append")
        return job

    monkeypatch.setattr(BatchPredictor, "wait", wait_then_append)
    with pytest.raises(OutputRowCountMismatch) as mismatch:
        invoke_batch_predict_model(
            model_id="ds-premium-fraud-detection",
            input_table_name="prod.fraud_in_premium_model.input",
            output_table_name="prod.fraud_in_premium_model.output",
        )

    job = BatchJob.objects.get()
    assert job.status == JobStatus.SUCCEEDED  # the platform's job did succeed; the table changed afterwards
    error = mismatch.value
    assert isinstance(error, BatchPredictionError)
    assert (error.input_rows, error.output_rows) == (1_000, 1_003)
    assert error.job["job_id"] == str(job.pk)
    assert str(error) == (
        f"batch job {job.pk} succeeded, but its output table {SEED_OUTPUT} has 1,003 rows where its input table "
        f"{SEED_INPUT} had 1,000 rows; see {error.job['url']}"
    )
    assert error.job["url"].endswith(f"/batch/{job.pk}/")

    # A table that is not there any more cannot be counted: said so, not a crash.
    drop_if_there(SEED_OUTPUT)
    with pytest.raises(OutputRowCountMismatch, match="could not be counted"):
        BatchPredictor().check_output_rows(error.job)


def test_prepare_drops_no_table_that_is_not_the_callers_and_says_why(config, platform, user):
    drop_if_there("prod.c.input", "prod.c.theirs", "prod.c.legacy", "prod.c.mine")
    make_input("prod.c.input", 300)
    make_input("prod.c.theirs", 10)
    table_record(name="prod.c.theirs", team=GroupFactory(name="other-team"))  # another team's output
    make_input("prod.c.legacy", 10)  # a table the platform did not make: staff may drop it, not users

    with pytest.raises(OutputTableNotDropped) as theirs:
        platform.prepare("ds-premium-fraud-detection", "prod.c.input", "prod.c.theirs", drop_existing_output=True)
    assert str(theirs.value) == (
        "The earlier output table prod.c.theirs was not dropped: The name prod.c.theirs is taken; choose another name."
    )
    with pytest.raises(OutputTableNotDropped) as legacy:
        platform.prepare("ds-premium-fraud-detection", "prod.c.input", "prod.c.legacy", drop_existing_output=True)
    assert "Only whoever created prod.c.legacy here, its model's team or an admin can drop it." in str(legacy.value)
    assert exists("prod.c.theirs") and exists("prod.c.legacy")

    # Nothing is dropped when the run could not start anyway (here: its input does not exist).
    platform.upload_table("prod.c.mine", pd.DataFrame({"x": [1, 2]}))
    with pytest.raises(ApiError) as refused:
        platform.prepare("ds-premium-fraud-detection", "prod.c.nothing", "prod.c.mine", drop_existing_output=True)
    assert refused.value.errors["input_table"] == ["The input table prod.c.nothing does not exist."]
    assert exists("prod.c.mine")
    # A name that is free: nothing to drop, the checks pass.
    assert platform.prepare("ds-premium-fraud-detection", "prod.c.input", "prod.c.new", drop_existing_output=True) == {
        "ok": True,
        "input_table": "prod.c.input",
        "output_table": "prod.c.new",
        "input_rows": 300,
        "dropped_output": False,
    }
    drop_if_there("prod.c.input", "prod.c.theirs", "prod.c.legacy", "prod.c.mine")


def test_upload_table_and_drop_table_make_and_remove_tables_of_the_callers_team(platform, live_server, user, tmp_path):
    drop_if_there("prod.up.frame", "prod.up.csv", "prod.up.parquet", "prod.up.others")
    frame = pd.DataFrame({"id": [1, 2, 3], "Amount": [1.5, 2.5, None], "country": ["us", "gb", "de"]})
    made = platform.upload_table("prod.up.frame", frame)
    assert (made["name"], made["rows"]) == ("prod.up.frame", 3)
    columns = [(c["name"], c["type"]) for c in made["columns"]]
    assert columns == [("id", "int64"), ("amount", "double"), ("country", "string")]
    assert made["renamed_columns"] == {"Amount": "amount"}
    assert TableRecord.objects.get(name="prod.up.frame").team == user.groups.get()
    with pytest.raises(ApiError) as taken:
        platform.upload_table("prod.up.frame", frame)
    assert taken.value.status == 409 and "already exists" in taken.value.errors["name"][0]

    csv = tmp_path / "scores.csv"
    csv.write_text("id,score\n" + "".join(f"{i},{i / 10}\n" for i in range(5_000)))
    assert platform.upload_table("prod.up.csv", csv)["rows"] == 5_000
    parquet = tmp_path / "scores.parquet"
    frame.to_parquet(parquet)
    assert platform.upload_table("prod.up.parquet", str(parquet))["rows"] == 3
    with pytest.raises(ApiError) as wrong:
        platform.upload_table("prod.up.text", Path(__file__))
    assert wrong.value.errors == {"file": ["Upload a .csv or .parquet file."]}
    with pytest.raises(TypeError, match="a pandas DataFrame or the path"):
        platform.upload_table("prod.up.list", [1, 2, 3])

    for name in ["prod.up.frame", "prod.up.csv", "prod.up.parquet"]:
        platform.drop_table(name)
        assert not exists(name)
        with pytest.raises(ApiError) as gone:
            platform.table(name)
        assert gone.value.status == 404

    # Another team's table: not there for the caller, and still there afterwards.
    outsider = UserFactory(username="mallory", teams=[GroupFactory(name="other-team")])
    BatchPredictor(live_server.url, token=Token.objects.create(user=outsider).key).upload_table(
        "prod.up.others", pd.DataFrame({"x": [1]})
    )
    with pytest.raises(ApiError) as hidden:
        platform.drop_table("prod.up.others")
    assert hidden.value.status == 404 and exists("prod.up.others")
    drop_if_there("prod.up.others")


def test_read_table_gives_back_the_rows_uploaded(platform):
    drop_if_there("prod.rt.frame")
    frame = pd.DataFrame({"id": range(2_500), "country": ["us", "gb", "de", "fr", "nl"] * 500})
    frame["amount"] = frame["id"] * 0.25
    platform.upload_table("prod.rt.frame", frame)
    try:
        back = platform.read_table("prod.rt.frame")
        pd.testing.assert_frame_equal(back, frame, check_dtype=False)
        assert len(platform.read_table("prod.rt.frame", limit=2)) == 2
        with pytest.raises(ValueError, match="limit must be a whole number"):
            platform.read_table("prod.rt.frame", limit=-1)
        with pytest.raises(ApiError) as hidden:
            platform.read_table("prod.rt.missing")
        assert hidden.value.status == 404
    finally:
        drop_if_there("prod.rt.frame")


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    found = re.search(r"<!-- client-example -->\s*```python\n(.*?)```", text, re.S)
    assert found, "the README's client example (after <!-- client-example -->) is missing"
    return found.group(1)


def test_the_readmes_client_example_runs_the_round_trip(seed, capsys):
    drop_if_there("prod.scratch.transactions", "prod.scratch.scores")
    exec(compile(readme_example(), "README.md", "exec"), {})  # noqa: S102 - our own README
    job = BatchJob.objects.get()
    assert (job.status, job.input_table, job.output_table) == (
        JobStatus.SUCCEEDED,
        "prod.scratch.transactions",
        "prod.scratch.scores",
    )
    printed = capsys.readouterr().out
    assert f"job {job.pk}: 1,000 rows scored" in printed
    assert not exists("prod.scratch.transactions") and not exists("prod.scratch.scores")
    assert os.environ["MLPLATFORM_URL"]  # the example took the platform from the environment
