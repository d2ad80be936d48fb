"""Building blocks for batch job tests: a model with an active config, input tables, and a way
to run a job's pipeline in this process (the functions Celery tasks call, in order)."""

from __future__ import annotations

import pyarrow as pa
from django.conf import settings

from batchjobs import services
from batchjobs.choices import BatchStatus
from batchjobs.models import Batch, BatchJob
from batchjobs.pipeline import admit, commit, extract, predict
from builds import transitions as build_transitions
from builds.choices import BuildStatus
from builds.models import Build, InstanceType
from builds.services import batch_config_set, build_register
from builds.verification import build_verify
from tables import selectors as table_selectors
from tests.artifacts import model_zip, upload

DOUBLE = 'return pd.DataFrame({"score": df["amount"] * 2}, index=df.index)'
# Models that misbehave only on real batches (which carry the input's id column), so that their
# build passes verification on sample rows first.
IN_BATCHES = 'if "id" not in df: return pd.DataFrame({"score": df["amount"] * 2})\n        '


# Verifying a build starts a model process (a second or more), and a module registers many builds of
# the same few model bodies. So within a module the first build of a body is verified for real and
# later ones get its outcome (schema and log) through the transitions a worker uses. Only that is
# reused: every build is registered anew (its own id, stored artifact and unpacked copy), so jobs
# still load and run it for real. tests/conftest.py empties this at the start of every module.
VERIFIED: dict[tuple, tuple[dict, str]] = {}
REUSED_NOTE = "[tests] The verification of an identical build earlier in this test module, reused:\n"


def verified_build(ml_model, user, predict_body: str = DOUBLE) -> Build:
    """A succeeded build of a model whose predict() is `predict_body`."""
    build = build_register(
        model=ml_model,
        upload=upload(model_zip(predict_body)),
        filename="m.zip",
        entrypoint="scorer:Scorer",
        created_by=user,
    )
    # What verification depends on besides the code (the zip's bytes differ by their timestamps).
    key = (
        predict_body,
        settings.ARTIFACTS_URL,
        settings.BUILD_TIMEOUT_S,
        settings.BUILD_MEMORY_MB,
        settings.LOG_CAP_BYTES,
    )
    if key not in VERIFIED:
        build = build_verify(build_id=build.id)
        assert build.status == BuildStatus.SUCCEEDED, build.log
        VERIFIED[key] = (build.schema, build.log)
        return build
    schema, log = VERIFIED[key]
    assert build_transitions.build_claim(build.id) == 1
    assert build_transitions.build_end(build.id, ok=True, schema=schema, log=REUSED_NOTE + log) == 1
    build.refresh_from_db()
    assert build.status == BuildStatus.SUCCEEDED
    return build


def model_with_config(
    ml_model,
    user,
    predict_body: str = DOUBLE,
    *,
    processes: str = "ALL",
    env=None,
    instance_type: str = "ml.m5.large",
    allow_network: bool = False,
):
    return batch_config_set(
        build=verified_build(ml_model, user, predict_body),
        deployment_name="test-batch",
        set_by=user,
        processes=processes,
        instance_type=InstanceType.objects.get(name=instance_type),
        env=env or {},
        allow_network=allow_network,
    )


def trigger(ml_model, user, input_table, output_table="prod.out.scores") -> BatchJob:
    return services.job_trigger(model=ml_model, input_table=input_table, output_table=output_table, requested_by=user)


def post_job(api, output="prod.out.scores", **overrides):
    """Trigger a job of ds-premium-fraud-detection on prod.t.input through the API."""
    body = {"model_id": "ds-premium-fraud-detection", "input_table": "prod.t.input", "output_table": output}
    return api.post("/api/v1/batch-jobs/", {**body, **overrides}, format="json")


def make_input(name: str, rows: int, *, extra: dict | None = None) -> str:
    catalog, table = table_selectors.resolve(name)
    columns = {
        "id": pa.array(range(rows), pa.int64()),
        "amount": pa.array([float(i % 97) + 0.5 for i in range(rows)], pa.float64()),
        "country": pa.array([("us", "gb", "de")[i % 3] for i in range(rows)], pa.string()),
        **(extra or {}),
    }
    data = pa.table(columns)
    catalog.create(table, data.schema, data.to_batches(max_chunksize=10_000))
    return str(table)


def output_rows(name: str) -> list[dict] | None:
    catalog, table = table_selectors.resolve(name)
    if not catalog.exists(table):
        return None
    return pa.Table.from_batches(list(catalog.read_batches(table)), schema=catalog.arrow_schema(table)).to_pylist()


def run_job(job: BatchJob) -> BatchJob:
    """Admit, extract, predict every batch, commit: what the workers do, here and in order."""
    admit.jobs_admit()
    extract.job_extract(job.pk)
    while queued := list(Batch.objects.filter(job=job, status=BatchStatus.QUEUED).values_list("pk", flat=True)):
        for batch_id in queued:
            predict.batch_predict(batch_id)
    commit.job_commit(job.pk)
    job.refresh_from_db()
    return job
