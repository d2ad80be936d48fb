"""The job and event filters are parsed once (batchjobs.filters), for the pages and the API alike."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from batchjobs.apis import BatchJobListApi, EventListApi
from batchjobs.choices import JobStatus
from batchjobs.filters import BoardFilter, EventFilter, JobFilter
from batchjobs.models import BatchJob
from tests.factories import BatchConfigFactory, BatchJobFactory, BuildFactory

ID_SENTENCE = "A job id (or its start) is hexadecimal digits and dashes, like 3f2a9c1e."
SINCE_SENTENCE = "since must be a date like 2026-11-27, or 1h, 24h, 7d or 30d."


@pytest.fixture
def config(ml_model):
    return BatchConfigFactory(build=BuildFactory(model=ml_model))


def job(config, days_ago: float = 0) -> BatchJob:
    made = BatchJobFactory(batch_config=config)
    BatchJob.objects.filter(pk=made.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    return made


def board_ids(web, **params) -> set[str]:
    response = web.get(reverse("batchjobs:board"), params)
    assert response.status_code == 200, response.content.decode()
    return {str(j.pk) for j in response.context["page"].object_list}


def api_ids(api, **params) -> set[str]:
    response = api.get("/api/v1/batch-jobs/", params)
    assert response.status_code == 200, response.json()
    return {j["job_id"] for j in response.json()["results"]}


def test_the_board_and_the_api_use_one_filterset():
    assert issubclass(BoardFilter, JobFilter)
    assert BatchJobListApi.filterset_class is JobFilter and EventListApi.filterset_class is EventFilter


@pytest.mark.parametrize(
    ("board_params", "api_params", "field", "sentence"),
    [
        ({"q": "not-an-id!"}, {"job_id": "not-an-id!"}, "job_id", ID_SENTENCE),
        ({"since": "last week"}, {"since": "last week"}, "since", SINCE_SENTENCE),
        ({"status": "done"}, {"status": "done"}, "status", f"status must be one of {', '.join(JobStatus.values)}."),
    ],
)
def test_a_bad_filter_gets_the_same_sentence_on_the_board_and_in_the_api(
    web, api, config, board_params, api_params, field, sentence
):
    job(config)
    page = web.get(reverse("batchjobs:board"), board_params)
    assert page.status_code == 400 and sentence in page.content.decode()
    assert list(page.context["page"].object_list) == []
    response = api.get("/api/v1/batch-jobs/", api_params)
    assert response.status_code == 400
    assert response.json() == {"errors": {field: [sentence]}}


def test_the_board_and_the_api_read_since_and_a_job_id_prefix_the_same_way(web, api, config):
    recent, older, old = job(config, 0.5), job(config, 5), job(config, 40)
    six_days_ago = (timezone.localdate() - timedelta(days=6)).isoformat()
    for since, expected in [("24h", [recent]), ("7d", [recent, older]), (six_days_ago, [recent, older])]:
        shown = {str(j.pk) for j in expected}
        assert board_ids(web, since=since) == api_ids(api, since=since) == shown, since
    prefix = str(old.pk)[:13].upper()  # as users paste it: upper case, with the dash
    assert board_ids(web, q=prefix) == api_ids(api, job_id=prefix) == {str(old.pk)}


def test_the_events_page_and_api_give_the_same_sentences(web, api):
    for params, field, sentence in [
        (
            {"evid": "500"},
            "evid",
            "evid must be 400 (succeeded), 401 (failed), 402 (started) or 403 (post-step failed).",
        ),
        ({"src": "-1"}, "src", "src must be an event source number from 0 to 32767."),
        ({"job_id": "3f2a9c1e"}, "job_id", "job_id must be a job's full id (a UUID)."),
        ({"until": "tomorrow"}, "until", "until must be a date like 2026-11-27."),
    ]:
        page = web.get(reverse("batchjobs:events"), params).content.decode()
        assert sentence.replace("'", "&#x27;") in page and "No events match" in page
        response = api.get("/api/v1/events/", params)
        assert response.status_code == 400 and response.json() == {"errors": {field: [sentence]}}


def test_the_openapi_schema_lists_the_job_and_event_lists_query_parameters(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    jobs = {p["name"]: p for p in schema["paths"]["/api/v1/batch-jobs/"]["get"]["parameters"]}
    assert {"model_id", "status", "requested_by", "since", "job_id", "limit", "offset"} <= set(jobs)
    assert jobs["status"]["schema"]["enum"] == sorted(JobStatus.values)
    assert "hexadecimal" in jobs["job_id"]["description"]
    events = {p["name"] for p in schema["paths"]["/api/v1/events/"]["get"]["parameters"]}
    assert {"evid", "src", "model_id", "job_id", "since", "until"} <= events
