"""Batch jobs through the REST API, the pages and `manage.py batch_predict` (pipeline run in process)."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from batchjobs.choices import JobStatus
from batchjobs.models import BatchJob
from tests.batchjobs.jobkit import make_input, model_with_config, run_job

pytestmark = pytest.mark.usefixtures("job_storage")
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def ready(ml_model, user):
    model_with_config(ml_model, user)
    make_input("prod.t.input", 2_000)
    return ml_model


def post_job(api, output="prod.out.scores", **overrides):
    body = {"model_id": "ds-premium-fraud-detection", "input_table": "prod.t.input", "output_table": output}
    return api.post("/api/v1/batch-jobs/", {**body, **overrides}, format="json")


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


# --- pages --------------------------------------------------------------------------------------


def test_the_predict_tab_checks_tries_and_triggers(web, ready):
    url = reverse("batchjobs:model-predict", args=["ds-premium-fraud-detection"])
    page = web.get(url, {"input_table": "prod.t.input"}).content.decode()
    assert "Trigger Batch Job" in page and "prod.t.input_predictions_" in page  # a fresh name is suggested
    form = {"input_table": "prod.t.input", "output_table": "prod.out.scores"}
    checked = web.post(url, {**form, "action": "check"}, **HX).content.decode()
    assert "<html" not in checked and "All checks passed: prod.t.input has 2,000 rows" in checked
    tried = web.post(url, {**form, "action": "try"}, **HX).content.decode()
    assert "First 100 rows through build 1" in tried and "ms per row" in tried
    bad = web.post(url, {"input_table": "prod.t.nope", "output_table": "prod.out.scores", "action": "trigger"})
    assert bad.status_code == 400 and "The input table prod.t.nope does not exist." in bad.content.decode()
    response = web.post(url, {**form, "action": "trigger"}, **HX)
    job = BatchJob.objects.get()
    assert response.headers["HX-Redirect"] == reverse("batchjobs:job-detail", args=[job.pk])


def test_the_job_page_polls_until_the_job_ends(web, api, ready):
    job = BatchJob.objects.get(pk=post_job(api).json()["job_id"])
    url = reverse("batchjobs:job-detail", args=[job.pk])
    page = web.get(url).content.decode()
    assert "#1 in queue" in page and "Cancel job" in page and 'hx-trigger="every 2s"' in page
    live = web.get(url, HTTP_HX_TARGET="job-live", **HX)
    assert live.status_code == 200 and "<html" not in live.content.decode()
    run_job(job)
    ended = web.get(url, HTTP_HX_TARGET="job-live", **HX)
    assert ended.headers["HX-Redirect"] == url  # one reload, then no more polling
    final = web.get(url).content.decode()
    assert "Succeeded" in final and "2,000 rows predicted into prod.out.scores." in final
    assert "every 2s" not in final and "Cancel job" not in final


def test_a_failed_jobs_page_shows_the_message_escaped_with_the_traceback_behind_show_more(web, ml_model, user):
    model_with_config(
        ml_model,
        user,
        'if "id" not in df: return pd.DataFrame({"score": df["amount"]})\n'
        '        raise ValueError("<img src=x onerror=alert(1)>")',
    )
    make_input("prod.t.input", 1_000)
    from batchjobs.services import job_trigger

    job = run_job(job_trigger(model=ml_model, input_table="prod.t.input", output_table="prod.out.x", requested_by=user))
    html = web.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
    assert "<img src=x onerror=alert(1)>" not in html
    assert "ValueError: &lt;img src=x onerror=alert(1)&gt;" in html
    assert 'id="error-panel" role="alert" hx-disable' in html and "Batch Job Message" in html
    assert "Show More" in html and "Traceback" in html
    assert "Retry failed batches" in html


def test_the_board_and_jobs_tab_list_jobs_with_a_bounded_number_of_queries(web, api, ready):
    for i in range(3):
        post_job(api, output=f"prod.out.o{i}")
    with CaptureQueriesContext(connection) as few:
        web.get(reverse("batchjobs:board"))
    for i in range(3, 12):
        post_job(api, output=f"prod.out.o{i}")
    with CaptureQueriesContext(connection) as many:
        board = web.get(reverse("batchjobs:board")).content.decode()
    assert len(many.captured_queries) == len(few.captured_queries)
    assert board.count("in queue") == 12
    tab = web.get(
        reverse("batchjobs:model-jobs", args=["ds-premium-fraud-detection"]), HTTP_HX_TARGET="job-table", **HX
    )
    assert tab.status_code == 200 and "<html" not in tab.content.decode()


def test_batch_predict_command_triggers_and_reports(ready, user):
    out = io.StringIO()
    call_command(
        "batch_predict", "ds-premium-fraud-detection", "prod.t.input", "prod.out.cli", "--user", "alice", stdout=out
    )
    job = BatchJob.objects.get()
    assert f"Batch job {job.pk} queued: prod.t.input → prod.out.cli" in out.getvalue()
    with pytest.raises(CommandError, match="output_table: An unfinished batch job already writes"):
        call_command("batch_predict", "ds-premium-fraud-detection", "prod.t.input", "prod.out.cli", "--user", "alice")
