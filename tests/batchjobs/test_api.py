"""The batch jobs REST API: trigger, check, follow, cancel and retry, and teams."""

import pytest
from rest_framework.test import APIClient

from batchjobs.choices import JobStatus
from batchjobs.models import BatchJob
from tests.batchjobs.jobkit import post_job, run_job

pytestmark = pytest.mark.usefixtures("job_storage")


def test_trigger_through_the_api_then_follow_the_job(api, ready):
    response = post_job(api)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["queue_position"], body["input_rows"], body["model_id"]) == (
        "queued",
        1,
        2_000,
        "ds-premium-fraud-detection",
    )
    assert body["url"].endswith(f"/batch/{body['job_id']}/")
    run_job(BatchJob.objects.get(pk=body["job_id"]))
    done = api.get(f"/api/v1/batch-jobs/{body['job_id']}/").json()
    assert (
        done["status"],
        done["output_rows"],
        done["batches_total"],
        done["batches_succeeded"],
        done["batches_failed"],
    ) == ("succeeded", 2_000, 2, 2, 0)
    batches = api.get(f"/api/v1/batch-jobs/{body['job_id']}/batches/").json()["results"]
    assert [(b["index"], b["rows"], b["status"], b["attempts"]) for b in batches] == [
        (0, 1_000, "succeeded", 1),
        (1, 1_000, "succeeded", 1),
    ]
    logs = api.get(f"/api/v1/batch-jobs/{body['job_id']}/logs/?batch=1").json()["results"]
    assert [(entry["batch"], entry["attempt"], entry["status"]) for entry in logs] == [(1, 1, "succeeded")]
    events = api.get(f"/api/v1/events/?job_id={body['job_id']}").json()["results"]
    assert sorted(e["evid"] for e in events) == [400, 402]
    assert api.get("/api/v1/events/?evid=401").json()["results"] == []
    listed = api.get("/api/v1/batch-jobs/?status=succeeded&model_id=ds-premium-fraud-detection").json()
    assert [j["job_id"] for j in listed["results"]] == [body["job_id"]]


def test_a_job_says_which_batch_config_it_ran_with_after_a_newer_one_is_set(api, ready, user):
    from builds.services import batch_config_set

    body = post_job(api).json()
    job = BatchJob.objects.get(pk=body["job_id"])
    assert body["batch_config"]["deployment_name"] == "test-batch"
    batch_config_set(
        build=job.build,
        deployment_name="newer-batch",
        set_by=user,
        processes="ONE",
        instance_type=job.batch_config.instance_type,
        env={"API_KEY": "hunter2"},
    )
    used = api.get(f"/api/v1/batch-jobs/{job.pk}/").json()["batch_config"]
    assert (used["deployment_name"], used["processes"], used["instance_type"], used["env"]) == (
        "test-batch",
        "ALL",
        "ml.m5.large",
        {},
    )
    assert "batch_config" not in api.get("/api/v1/batch-jobs/").json()["results"][0]  # lists stay light


def test_a_refused_trigger_lists_every_failed_check(api, ready):
    response = post_job(api, input_table="prod.t.nothing", output_table="Bad")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["input_table"] == ["The input table prod.t.nothing does not exist."]
    assert "must match" in errors["output_table"][0]
    assert not BatchJob.objects.exists()


def test_check_runs_the_checks_without_a_job(api, ready):
    ok = api.post(
        "/api/v1/batch-jobs/check/",
        {"model_id": "ds-premium-fraud-detection", "input_table": "t.input", "output_table": "out.x"},
        format="json",
    )
    assert ok.status_code == 200
    assert ok.json() == {"ok": True, "input_table": "prod.t.input", "output_table": "prod.out.x", "input_rows": 2_000}
    assert not BatchJob.objects.exists()


def test_cancel_and_retry_through_the_api(api, ready):
    job_id = post_job(api).json()["job_id"]
    assert api.post(f"/api/v1/batch-jobs/{job_id}/cancel/").json()["status"] == "cancelled"
    again = api.post(f"/api/v1/batch-jobs/{job_id}/cancel/")
    assert again.status_code == 200  # already cancelled: nothing to do
    retry = api.post(f"/api/v1/batch-jobs/{job_id}/retry/")
    assert retry.status_code == 409 and "only a failed job can be retried" in retry.json()["errors"]["status"][0]


def test_another_teams_jobs_are_invisible(outsider, api, ready):
    job_id = post_job(api).json()["job_id"]
    other = APIClient()
    other.force_authenticate(outsider)
    assert other.get("/api/v1/batch-jobs/").json()["results"] == []
    assert other.get("/api/v1/events/").json()["results"] == []
    for url in [
        f"/api/v1/batch-jobs/{job_id}/",
        f"/api/v1/batch-jobs/{job_id}/batches/",
        f"/api/v1/batch-jobs/{job_id}/logs/",
        "/api/v1/batch-jobs/not-a-uuid/",
    ]:
        response = other.get(url)
        assert response.status_code == 404 and "errors" in response.json(), url
    assert other.post(f"/api/v1/batch-jobs/{job_id}/cancel/").status_code == 404
    assert post_job(other).status_code == 404  # the model itself is hidden
    assert BatchJob.objects.get().status == JobStatus.QUEUED
