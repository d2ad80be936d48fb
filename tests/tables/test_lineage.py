"""Where a table came from: a job's output names the job, model and build that made it (table page
and API); an upload names its uploader; a table the platform did not make names nobody."""

import importlib
import io

import pyarrow as pa
import pytest
from django.apps import apps
from django.urls import reverse

from batchjobs.choices import JobStatus
from tables import selectors as table_selectors
from tables import services as table_services
from tables.models import TableRecord
from tests.batchjobs.jobkit import make_input, model_with_config, run_job, trigger
from tests.tables.tablekit import CSV, csv_file

pytestmark = pytest.mark.usefixtures("job_storage")


@pytest.fixture
def job(ml_model, user):
    """A real job's run (admit, extract, predict, commit) into prod.out.scores."""
    model_with_config(ml_model, user)
    make_input("prod.t.input", 500)
    done = run_job(trigger(ml_model, user, "prod.t.input", "prod.out.scores"))
    assert done.status == JobStatus.SUCCEEDED, done.message
    return done


def test_a_jobs_output_says_which_job_model_and_build_made_it(web, api, job):
    detail = api.get("/api/v1/tables/prod.out.scores/").json()
    assert detail["made_by"] == {
        "job_id": str(job.pk),
        "model_id": "ds-premium-fraud-detection",
        "build_id": str(job.build_id),
        "build_number": job.build.number,
    }
    assert detail["created_by"] == "alice"
    page = web.get(reverse("tables:detail", args=["prod.out.scores"])).content.decode()
    assert "Made by job" in page and "Uploaded by" not in page
    assert f'href="{reverse("batchjobs:job-detail", args=[job.pk])}"' in page
    assert f'href="{reverse("builds:model-overview", args=["ds-premium-fraud-detection"])}"' in page
    assert f'href="{reverse("builds:build-detail", args=[job.build_id])}"' in page
    assert f'title="{job.build_id}">{job.build.number}</a>' in page and "triggered by alice" in page


def test_an_upload_says_who_uploaded_it(web, api, user):
    response = api.post("/api/v1/tables/", {"name": "prod.s.mine", "file": csv_file()}, format="multipart")
    assert response.status_code == 201, response.json()
    assert (response.json()["made_by"], response.json()["created_by"]) == (None, "alice")
    detail = api.get("/api/v1/tables/prod.s.mine/").json()
    assert (detail["made_by"], detail["created_by"]) == (None, "alice")
    page = web.get(reverse("tables:detail", args=["prod.s.mine"])).content.decode()
    assert "Uploaded by alice" in page and "Made by job" not in page


def test_a_table_the_platform_did_not_make_names_nobody(web, api):
    catalog, name = table_selectors.resolve("prod.shared.rates")
    data = pa.table({"rate": [1.0]})
    catalog.create(name, data.schema, data.to_batches())
    detail = api.get("/api/v1/tables/prod.shared.rates/").json()
    assert (detail["made_by"], detail["created_by"]) == (None, None)
    page = web.get(reverse("tables:detail", args=["prod.shared.rates"])).content.decode()
    assert "Made by job" not in page and "Uploaded by" not in page


def test_outputs_recorded_before_lineage_get_their_job(job, user):
    table_services.table_upload(name="prod.s.mine", source=io.BytesIO(CSV), filename="m.csv", created_by=user)
    TableRecord.objects.update(job=None)  # as an earlier version recorded them
    migration = importlib.import_module("tables.migrations.0004_job_outputs_link_their_job")
    migration.link_jobs(apps, None)
    assert TableRecord.objects.get(name="prod.out.scores").job == job
    assert TableRecord.objects.get(name="prod.s.mine").job is None  # an upload stays one


def test_a_deleted_job_leaves_its_table_without_lineage(api, job):
    job.delete()  # by an admin
    detail = api.get("/api/v1/tables/prod.out.scores/").json()
    assert (detail["made_by"], detail["created_by"]) == (None, "alice")
