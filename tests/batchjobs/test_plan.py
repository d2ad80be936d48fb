"""A lake input is planned, not copied: batches are row groups (or slices of one) of the version
the job read, and the output holds every row of that version, in its order."""

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from django.urls import reverse

from batchjobs.choices import JobStatus
from batchjobs.pipeline import admit, extract
from batchjobs.pipeline.extract import plan_batches
from mlplatform.warehouse import Slice
from tables import selectors as table_selectors
from tests.batchjobs.jobkit import make_input, output_rows, run_job, trigger

pytestmark = pytest.mark.usefixtures("job_storage")


def rows_of(batches):
    return [sum(s.rows for s in batch) for batch in batches]


def test_small_row_groups_are_batched_whole_and_a_large_one_is_cut_into_equal_slices():
    groups = [Slice("a.parquet", i, 0, 131_072) for i in range(8)]
    assert plan_batches(groups, 166_000) == [[g] for g in groups]  # never a row group read twice
    assert rows_of(plan_batches(groups, 300_000)) == [262_144] * 4

    big = plan_batches([Slice("b.parquet", 0, 0, 1_000_000)], 250_000)
    assert big == [[Slice("b.parquet", 0, offset, 250_000)] for offset in range(0, 1_000_000, 250_000)]

    tiny = plan_batches([Slice(f"{i}.parquet", 0, 0, 10) for i in range(1000)], 1_000)
    assert rows_of(tiny) == [1_250] * 8  # up to a quarter over the aim rather than a short batch
    assert [s.file for batch in tiny for s in batch] == [f"{i}.parquet" for i in range(1000)]  # in order

    assert plan_batches([], 1_000) == []


def external_table(name: str, *chunks: range) -> str:
    """A Delta table written by another tool (one file per write, each a single row group)."""
    catalog, table = table_selectors.resolve(name)
    for chunk in chunks:
        data = pa.table(
            {
                "id": pa.array(chunk, pa.int64()),
                "amount": pa.array([i / 4 for i in chunk]),
                "country": pa.array(["us"] * len(chunk)),
            }
        )
        write_deltalake(catalog.table_uri(table), data, mode="append")
    return name


def test_a_lake_input_is_planned_from_its_footers_and_nothing_of_it_is_copied(
    config, ml_model, user, job_storage, web, api
):
    name = external_table("prod.t.ext", range(0, 2_500), range(2_500, 3_000), range(3_000, 7_000))
    job = trigger(ml_model, user, name)
    admit.jobs_admit()
    extract.job_extract(job.pk)
    job.refresh_from_db()
    assert (job.input_rows, job.input_version) == (7_000, 2)
    batches = list(job.batches.order_by("index"))
    assert sum(b.rows for b in batches) == 7_000
    assert [b.first_ordinal for b in batches] == [sum(b.rows for b in batches[:i]) for i in range(len(batches))]
    assert all(b.source for b in batches)
    staged = job_storage / "staging" / "jobs" / str(job.pk) / "input"
    assert not staged.exists()  # no input shard was written

    external_table(name, range(7_000, 9_000))  # an append after planning: not this job's rows
    job = run_job(job)
    assert job.status == JobStatus.SUCCEEDED, job.message
    rows = output_rows("prod.out.scores")
    assert [r["id"] for r in rows] == list(range(7_000))  # the planned version, in its order
    assert all(r["score"] == r["amount"] * 2 for r in rows)
    page = web.get(reverse("batchjobs:job-detail", args=[job.pk]))
    assert b"at version 2" in page.content  # the job page says which version it read, and the API
    assert api.get(f"/api/v1/batch-jobs/{job.pk}/").json()["input_version"] == 2


def test_a_batch_whose_input_was_replaced_after_planning_fails_saying_so(config, ml_model, user):
    make_input("prod.t.input", 3_000)
    job = trigger(ml_model, user, "prod.t.input")
    admit.jobs_admit()
    extract.job_extract(job.pk)
    catalog, table = table_selectors.resolve("prod.t.input")
    catalog.drop(table)
    make_input("prod.t.input", 3_000)  # the same name, other files
    job = run_job(job)
    assert job.status == JobStatus.FAILED
    assert 'batch 0 (1,000 rows): the table "prod.t.input" changed since the job planned its batches' in job.message
    assert output_rows("prod.out.scores") is None
