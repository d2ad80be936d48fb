"""/api/v1/schedules/: create, list, read, change, pause, resume, run now, delete; errors name the
field; another team's schedule is a 404; jobs carry schedule_id and filter by it."""

import pytest
from rest_framework.test import APIClient

from batchjobs.models import BatchJob, Schedule
from tests.batchjobs.jobkit import run_job
from tests.batchjobs.schedulekit import API_BODY

pytestmark = pytest.mark.usefixtures("job_storage")

BODY = {
    **API_BODY,
    "timezone": "Europe/Paris",
    "notify_urls": ["json://hooks.example.com/hook?token=s3cret"],
}


def test_create_read_and_list_a_schedule(api, ready):
    response = api.post("/api/v1/schedules/", BODY, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["model_id"], body["cron"], body["timezone"], body["enabled"]) == (
        "ds-premium-fraud-detection",
        "0 2 * * *",
        "Europe/Paris",
        True,
    )
    assert body["cron_description"] == "At 02:00"
    assert len(body["next_runs"]) == 5 and all(t.endswith("T02:00:00+01:00") for t in body["next_runs"])
    assert body["notify_urls"] == ["json://hooks.example.com/…"] and "s3cret" not in response.content.decode()
    assert Schedule.objects.get().notify_urls == BODY["notify_urls"]  # kept whole
    listed = api.get("/api/v1/schedules/?model_id=ds-premium-fraud-detection").json()
    assert [s["id"] for s in listed["results"]] == [body["id"]] and listed["count"] == 1
    assert api.get(f"/api/v1/schedules/{body['id']}/").json()["runs"] == []


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"cron": "0 25 * * *"}, "cron", "Not a valid cron expression"),
        ({"output_table_template": "prod.out.scores_{when}"}, "output_table_template", "{when}"),
        (
            {"events_table": "prod.ev.events", "event_key_column": "customer"},
            "event_key_column",
            "has no column customer",
        ),
        ({"timezone": "Nowhere/Land"}, "timezone", "is not a time zone name"),
        ({"cron": "0 0 30 2 *"}, "cron", "0 0 30 2 * never comes: February has no 30th."),
        # Longer than its column (PostgreSQL would refuse it with a DataError: a 500).
        ({"cron": ",".join(map(str, range(60))) + " * * * *"}, "cron", "no more than 100 characters"),
        ({"name": "n" * 101}, "name", "no more than 100 characters"),
        ({"timezone": "Z" * 65}, "timezone", "no more than 64 characters"),
        ({"input_table": "prod.t." + "i" * 200}, "input_table", "no more than 200 characters"),
        ({"event_key_column": "k" * 64}, "event_key_column", "no more than 63 characters"),
        ({"keep_last": 3_000_000_000}, "keep_last", "less than or equal to 10000"),
        ({"notify_urls": ["json://h.example.com/" + "x" * 2000]}, "notify_urls", "no more than 2000 characters"),
        ({"notify_urls": ["json://h.example.com/"] * 21}, "notify_urls", "no more than 20 elements"),
    ],
)
def test_errors_name_the_field(api, ready, change, field, words):
    response = api.post("/api/v1/schedules/", {**BODY, **change}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == [field] and words in errors[field][0]


def test_patch_pause_resume_run_now_and_delete(api, ready):
    schedule_id = api.post("/api/v1/schedules/", BODY, format="json").json()["id"]
    response = api.patch(
        f"/api/v1/schedules/{schedule_id}/",
        {"cron": "30 6 * * 1-5", "notify_urls": ["json://hooks.example.com/…"]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["cron"], response.json()["timezone"]) == ("30 6 * * 1-5", "Europe/Paris")
    assert Schedule.objects.get().notify_urls == BODY["notify_urls"]  # the masked URL sent back kept its secret
    assert api.patch(f"/api/v1/schedules/{schedule_id}/", {"cron": "x"}, format="json").status_code == 400
    assert api.post(f"/api/v1/schedules/{schedule_id}/pause/").json()["enabled"] is False
    assert api.post(f"/api/v1/schedules/{schedule_id}/resume/").json()["enabled"] is True
    run = api.post(f"/api/v1/schedules/{schedule_id}/run/")
    assert run.status_code == 201, run.json()
    job = run.json()
    assert job["schedule_id"] == schedule_id and job["status"] == "queued"
    busy = api.post(f"/api/v1/schedules/{schedule_id}/run/")
    assert busy.status_code == 409 and "one run at a time" in busy.json()["errors"]["schedule"][0]
    run_job(BatchJob.objects.get(pk=job["job_id"]))
    runs = api.get(f"/api/v1/schedules/{schedule_id}/").json()["runs"]
    assert [(r["status"], r["job_id"], r["manual"]) for r in runs] == [("started", job["job_id"], True)]
    assert api.get(f"/api/v1/batch-jobs/?schedule_id={schedule_id}").json()["count"] == 1
    assert api.get("/api/v1/batch-jobs/?schedule_id=nope").json()["errors"]["schedule_id"]
    assert api.delete(f"/api/v1/schedules/{schedule_id}/").status_code == 204
    assert not Schedule.objects.exists()
    assert BatchJob.objects.get(pk=job["job_id"]).schedule is None  # the job stays


def test_another_teams_schedule_is_a_404(api, ready, outsider):
    schedule_id = api.post("/api/v1/schedules/", BODY, format="json").json()["id"]
    other = APIClient()
    other.force_authenticate(outsider)
    assert other.get("/api/v1/schedules/").json()["count"] == 0
    for method, path in [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "run/"),
        ("post", "pause/"),
        ("post", "resume/"),
    ]:
        response = getattr(other, method)(f"/api/v1/schedules/{schedule_id}/{path}", {}, format="json")
        assert response.status_code == 404, (method, path)
    assert other.post("/api/v1/schedules/", BODY, format="json").status_code == 404  # their model is not theirs
    assert Schedule.objects.get().enabled is True


def test_listing_ten_schedules_takes_as_many_queries_as_one(api, ready, user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from batchjobs.choices import RunStatus
    from batchjobs.models import ScheduleRun
    from tests.batchjobs.schedulekit import at, make_schedule

    def listed() -> tuple[int, dict]:
        with CaptureQueriesContext(connection) as queries:
            body = api.get("/api/v1/schedules/").json()
        return len(queries), body

    for number in range(10):
        schedule = make_schedule(ready, user, name=f"s{number}")
        for hour in range(3):
            ScheduleRun.objects.create(schedule=schedule, due_at=at(f"2026-12-01 0{hour}:00"), status=RunStatus.MISSED)
        if number == 0:
            one, body = listed()
            assert body["count"] == 1 and len(body["results"][0]["runs"]) == 3
    ten, body = listed()
    assert body["count"] == 10 and all(len(s["runs"]) == 3 for s in body["results"])
    assert ten == one, f"1 schedule: {one} queries, 10 schedules: {ten}"


def test_a_schedule_follows_its_model_to_another_team(api, ready, user, outsider):
    from builds.models import MLModel

    schedule_id = api.post("/api/v1/schedules/", BODY, format="json").json()["id"]
    new_team = outsider.groups.get()
    MLModel.objects.filter(pk=ready.pk).update(team=new_team)  # an admin moved the model
    assert api.get("/api/v1/schedules/").json()["count"] == 0
    for method, path in [("get", ""), ("patch", ""), ("post", "run/"), ("post", "pause/"), ("delete", "")]:
        response = getattr(api, method)(f"/api/v1/schedules/{schedule_id}/{path}", {}, format="json")
        assert response.status_code == 404, (method, path)
    other = APIClient()
    other.force_authenticate(outsider)
    shown = other.get(f"/api/v1/schedules/{schedule_id}/").json()
    assert shown["team"] == "other-team"
    run = other.post(f"/api/v1/schedules/{schedule_id}/run/")
    assert run.status_code == 201, run.json()
    assert Schedule.objects.get().team == new_team  # its post-steps claim tables for the team it has now
