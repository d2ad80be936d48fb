"""Artifacts and staging on S3 (a local moto endpoint): a build is verified and a job runs end to end,
the model process reading and writing local copies only (it never gets cloud credentials)."""

import pyarrow.fs as pafs
import pytest

from batchjobs.choices import JobStatus
from batchjobs.services import job_trigger
from tests.batchjobs.jobkit import make_input, model_with_config, output_rows, run_job
from tests.s3server import s3_endpoint, s3_url  # noqa: F401 - a fixture

pytestmark = pytest.mark.usefixtures("job_storage")


@pytest.fixture
def on_s3(settings, s3_endpoint, monkeypatch):  # noqa: F811 - the fixture
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    filesystem, _ = pafs.FileSystem.from_uri(s3_url(s3_endpoint, "platform", "x"))
    filesystem.create_dir("platform")
    settings.ARTIFACTS_URL = s3_url(s3_endpoint, "platform", "artifacts")
    settings.STAGING_URL = s3_url(s3_endpoint, "platform", "staging")
    return filesystem


def test_a_job_runs_with_artifacts_and_staging_on_s3(on_s3, ml_model, user, settings, tmp_path):
    settings.DATA_DIR = tmp_path  # so the artifact is fetched from S3, not found in a local cache
    config = model_with_config(ml_model, user)
    stored = on_s3.get_file_info(pafs.FileSelector("platform/artifacts", recursive=True))
    assert [info.path for info in stored if info.is_file] == [f"platform/artifacts/{config.build.artifact_path}"]
    make_input("prod.t.input", 3_000)
    job = job_trigger(model=ml_model, input_table="prod.t.input", output_table="prod.out.s3", requested_by=user)
    job = run_job(job)
    assert job.status == JobStatus.SUCCEEDED, job.message
    rows = output_rows("prod.out.s3")
    assert len(rows) == 3_000 and all(r["score"] == r["amount"] * 2 for r in rows)
    leftovers = on_s3.get_file_info(pafs.FileSelector("platform/staging", recursive=True, allow_not_found=True))
    assert [info.path for info in leftovers if info.is_file] == []  # staging removed when the job ended
