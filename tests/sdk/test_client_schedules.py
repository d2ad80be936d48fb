"""The client's schedule calls against a live server (real HTTP, token auth): create, list, update,
pause, resume, run now, delete; errors name the field."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from batchjobs.models import BatchJob, Schedule
from mlplatform.sdk import ApiError, BatchPredictor
from tests.batchjobs.jobkit import make_input, model_with_config

pytestmark = [pytest.mark.usefixtures("job_storage"), pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def platform(live_server, ml_model, user):
    model_with_config(ml_model, user)
    make_input("prod.t.input", 500)
    return BatchPredictor(live_server.url, token=Token.objects.create(user=user).key, timeout=30)


def test_a_schedules_life_through_the_client(platform):
    created = platform.create_schedule(
        "ds-premium-fraud-detection",
        "nightly",
        "prod.t.input",
        "prod.out.scores_{date}_{run}",
        "0 2 * * *",
        timezone="Asia/Tokyo",
        keep_last=7,
        notify_urls=["json://hooks.example.com/t0ken"],
    )
    assert (created["timezone"], created["keep_last"], created["cron_description"]) == ("Asia/Tokyo", 7, "At 02:00")
    assert created["next_runs"][0].endswith("T02:00:00+09:00") and created["notify_urls"] == [
        "json://hooks.example.com/…"
    ]
    assert [s["id"] for s in platform.schedules("ds-premium-fraud-detection")] == [created["id"]]
    assert platform.update_schedule(created["id"], cron="15 3 * * *")["cron_description"] == "At 03:15"
    assert platform.pause_schedule(created["id"])["enabled"] is False
    assert platform.resume_schedule(created["id"])["enabled"] is True
    job = platform.run_schedule(created["id"])
    assert (job["schedule_id"], job["status"], job["output_table"]) == (created["id"], "queued", job["output_table"])
    assert job["output_table"].startswith("prod.out.scores_") and job["output_table"].endswith("_1")
    with pytest.raises(ApiError) as busy:
        platform.run_schedule(created["id"])
    assert busy.value.status == 409 and "one run at a time" in busy.value.errors["schedule"][0]
    assert [j["job_id"] for j in platform.jobs(schedule_id=created["id"])] == [job["job_id"]]
    platform.delete_schedule(created["id"])
    assert platform.schedules() == [] and not Schedule.objects.exists()
    assert BatchJob.objects.get().schedule_id is None


def test_errors_name_the_field(platform):
    with pytest.raises(ApiError) as refused:
        platform.create_schedule("ds-premium-fraud-detection", "bad", "prod.t.input", "prod.out.x_{run}", "every day")
    assert refused.value.status == 400 and list(refused.value.errors) == ["cron"]
    with pytest.raises(ApiError) as refused:
        platform.create_schedule(
            "ds-premium-fraud-detection",
            "bad",
            "prod.t.input",
            "prod.out.x_{run}",
            "0 2 * * *",
            events_table="prod.ev.events",
            event_key_column="customer_id",
        )
    assert "has no column customer_id" in refused.value.errors["event_key_column"][0]
