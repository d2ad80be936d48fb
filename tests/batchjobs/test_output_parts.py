"""The output is written once: each batch writes its final part where the output table will live
(invisible until the commit), and the commit adds the parts without reading any data. Failed and
cancelled jobs leave no table and, once their retention is over, no parts."""

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from batchjobs import services, transitions
from batchjobs.choices import BatchStatus, JobStatus
from batchjobs.models import Batch, BatchJob
from batchjobs.pipeline import admit, commit, extract, output, predict, reaper
from mlplatform.warehouse import WarehouseError
from tests.batchjobs.jobkit import make_input, model_with_config, output_rows, run_job, trigger

pytestmark = pytest.mark.usefixtures("job_storage")


def parts_in(job_storage: Path, table: str) -> list[str]:
    folder = job_storage / "lake" / Path(*table.split(".")[1:])
    return sorted(p.name for p in folder.glob("*.parquet")) if folder.exists() else []


def predict_all(job: BatchJob) -> None:
    admit.jobs_admit()
    extract.job_extract(job.pk)
    while queued := list(Batch.objects.filter(job=job, status=BatchStatus.QUEUED).values_list("pk", flat=True)):
        for batch_id in queued:
            predict.batch_predict(batch_id)


def test_each_batch_writes_its_part_and_the_commit_reads_no_data(config, ml_model, user, job_storage, monkeypatch):
    make_input("prod.t.input", 3_000)
    job = trigger(ml_model, user, "prod.t.input")
    predict_all(job)
    assert len(parts_in(job_storage, "prod.out.scores")) == 3  # written, not yet a table
    assert output_rows("prod.out.scores") is None
    assert [(b.output_rows, b.part_name.startswith(f"part-{b.index:05d}-1-")) for b in job.batches.all()] == [
        (1_000, True)
    ] * 3

    def no_data(*args, **kwargs):
        raise AssertionError("the commit read data")

    with monkeypatch.context() as patch:
        for name in ("read_table", "read_pandas"):
            patch.setattr(pq, name, no_data)
        for name in ("read", "iter_batches", "read_row_group", "read_row_groups"):
            patch.setattr(pq.ParquetFile, name, no_data)
        assert commit.job_commit(job.pk) is True

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    rows = output_rows("prod.out.scores")
    assert [r["id"] for r in rows] == list(range(3_000))
    assert all(r["score"] == r["amount"] * 2 for r in rows)


def test_an_output_table_is_read_exactly_in_input_order_by_delta_lake_alone(config, ml_model, user, job_storage):
    make_input("prod.t.input", 2_500)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.SUCCEEDED, job.message
    folder = job_storage / "lake" / "out" / "scores"
    script = (
        "import os, sys, deltalake\n"
        "t = deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table()\n"
        "ids, scores, amounts = (t.column(c).to_pylist() for c in ('id', 'score', 'amount'))\n"
        "assert ids == list(range(2500)), ids[:5]\n"
        "assert all(s == a * 2 for s, a in zip(scores, amounts))\n"
        "print(t.num_rows, t.column_names, flush=True)\n"
        # Arrow's scan threads can abort the interpreter's teardown (apache/arrow#34314): the read is done.
        "os._exit(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2500 ['id', 'amount', 'country', 'score']"


def test_a_cancelled_job_leaves_no_parts(config, ml_model, user, job_storage):
    make_input("prod.t.input", 3_000)
    job = trigger(ml_model, user, "prod.t.input")
    admit.jobs_admit()
    extract.job_extract(job.pk)
    first = Batch.objects.filter(job=job, status=BatchStatus.QUEUED).order_by("index").first()
    predict.batch_predict(first.pk)
    assert len(parts_in(job_storage, "prod.out.scores")) == 1

    job = services.job_cancel(job=job)

    assert job.status == JobStatus.CANCELLED
    assert parts_in(job_storage, "prod.out.scores") == []
    assert not (job_storage / "lake" / "out" / "scores").exists()


def test_a_failed_job_keeps_its_parts_for_a_retry_then_they_go_with_its_retention(
    ml_model, user, job_storage, settings
):
    model_with_config(
        ml_model,
        user,
        'if "id" in df and df["id"].min() >= 1000: raise ValueError("bad")\n'
        '        return pd.DataFrame({"score": df["amount"]})',
    )
    make_input("prod.t.input", 2_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.FAILED
    assert len(parts_in(job_storage, "prod.out.scores")) == 1  # batch 0's, kept for Retry failed batches

    settings.STAGING_RETENTION_H = 1
    BatchJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(hours=2))
    assert reaper.reap()["staging_removed"] == 1
    assert parts_in(job_storage, "prod.out.scores") == []


def test_the_part_of_a_try_that_was_taken_back_is_not_in_the_table(config, ml_model, user, job_storage):
    make_input("prod.t.input", 2_000)
    job = trigger(ml_model, user, "prod.t.input")
    admit.jobs_admit()
    extract.job_extract(job.pk)
    batch = Batch.objects.filter(job=job).order_by("index").first()
    predict.batch_predict(batch.pk)
    batch.refresh_from_db()
    first_part = batch.part_name
    # Its worker is thought dead (the lease ran out) and the batch runs again: a second part.
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.RUNNING, lease_expires_at=timezone.now())
    batch.refresh_from_db()
    assert transitions.batch_requeue_lost(batch) == 1
    while queued := list(Batch.objects.filter(job=job, status=BatchStatus.QUEUED).values_list("pk", flat=True)):
        for batch_id in queued:
            predict.batch_predict(batch_id)
    commit.job_commit(job.pk)

    job.refresh_from_db()
    batch.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert batch.part_name != first_part
    assert first_part not in parts_in(job_storage, "prod.out.scores")  # removed after the commit
    assert [r["id"] for r in output_rows("prod.out.scores")] == list(range(2_000))


@pytest.fixture
def pg_catalog(settings, job_storage):
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgresql://...)")
    schema = f"jobs_{uuid.uuid4().hex[:10]}"
    settings.WAREHOUSE_CATALOGS = {**settings.WAREHOUSE_CATALOGS, "pg": url}
    yield schema
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


def test_an_output_in_postgresql_is_loaded_from_the_joined_batches(config, ml_model, user, pg_catalog):
    make_input("prod.t.input", 2_500)
    job = run_job(trigger(ml_model, user, "prod.t.input", f"pg.{pg_catalog}.scores"))
    assert job.status == JobStatus.SUCCEEDED, job.message
    rows = output_rows(f"pg.{pg_catalog}.scores")
    assert [r["id"] for r in rows] == list(range(2_500))
    assert all(r["score"] == r["amount"] * 2 for r in rows)


def write_arrow(path, table: pa.Table) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def test_predictions_that_are_a_link_or_have_other_columns_or_rows_are_refused(config, ml_model, user, tmp_path):
    make_input("prod.t.input", 1_000)
    job = trigger(ml_model, user, "prod.t.input")
    elsewhere = tmp_path / "someone_elses.arrow"
    write_arrow(elsewhere, pa.table({"score": [2.0]}))
    link = tmp_path / "link.arrow"
    link.symlink_to(elsewhere)
    wrong = tmp_path / "wrong.arrow"
    write_arrow(wrong, pa.table({"id": [1], "score": [2.0]}))

    with pytest.raises(WarehouseError, match="are not a plain file"):
        output.read_predictions(job, 0, str(link), 1)
    with pytest.raises(WarehouseError, match=r"have the columns \['id', 'score'\], not \['score'\]"):
        output.read_predictions(job, 0, str(wrong), 1)
    with pytest.raises(WarehouseError, match="have 1 rows, not 1,000"):
        output.read_predictions(job, 0, str(elsewhere), 1_000)
    assert output.read_predictions(job, 0, str(elsewhere), 1).column("score").to_pylist() == [2.0]


def test_a_model_that_patches_the_writers_cannot_change_the_input_columns_of_the_output(ml_model, user):
    # Model code runs in the model process's interpreter: it can replace any function there. The
    # output part is written by the worker from the rows it read, so only predictions come from it.
    model_with_config(
        ml_model,
        user,
        "\n        ".join(
            [
                "import pyarrow as pa, pyarrow.parquet as pq, pyarrow.ipc as ipc",
                "def zeroed(table):",
                '    if "amount" in table.column_names:',
                '        i = table.schema.get_field_index("amount")',
                '        table = table.set_column(i, "amount", pa.array([0.0] * table.num_rows))',
                "    return table",
                "real_write, real_new = pq.write_table, ipc.new_file",
                "pq.write_table = lambda table, *a, **k: real_write(zeroed(table), *a, **k)",
                "ipc.new_file = lambda sink, schema, *a, **k: real_new(sink, schema, *a, **k)",
                'return pd.DataFrame({"score": df["amount"] * 2}, index=df.index)',
            ]
        ),
    )
    make_input("prod.t.input", 2_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.SUCCEEDED, job.message
    rows = output_rows("prod.out.scores")
    assert [r["amount"] for r in rows] == [float(i % 97) + 0.5 for i in range(2_000)]  # as in the input
    assert all(r["score"] == r["amount"] * 2 for r in rows)
