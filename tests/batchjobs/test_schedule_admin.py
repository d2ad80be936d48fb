"""The admin lists schedules with their next run and shows one with its runs, URLs masked; pause works."""

import pytest

from batchjobs.models import Schedule
from tests.batchjobs.schedulekit import make_schedule

pytestmark = pytest.mark.usefixtures("job_storage")


def test_staff_see_schedules_and_their_runs_with_urls_masked(client, ready, user):
    schedule = make_schedule(ready, user, notify_urls=["json://hooks.example.com/s3cret"])
    user.is_staff = user.is_superuser = True
    user.save()
    client.force_login(user)
    listing = client.get("/admin/batchjobs/schedule/").content.decode()
    assert "nightly" in listing and "0 2 * * *" in listing and "02:00" in listing
    page = client.get(f"/admin/batchjobs/schedule/{schedule.pk}/change/").content.decode()
    assert "json://hooks.example.com/…" in page and "s3cret" not in page and "At 02:00" in page
    client.post("/admin/batchjobs/schedule/", {"action": "pause", "_selected_action": [schedule.pk]})
    assert Schedule.objects.get().enabled is False
