"""The events page and API: the fields users query, filters, team scoping; the admin lists."""

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from batchjobs.models import JobEvent
from batchjobs.services import job_trigger
from tests.batchjobs.jobkit import make_input, model_with_config, run_job
from tests.factories import UserFactory

pytestmark = pytest.mark.usefixtures("job_storage")


@pytest.fixture
def jobs(ml_model, user):
    model_with_config(
        ml_model,
        user,
        'if "id" in df and df["id"].min() >= 1000: raise ValueError("<b>no</b>")\n'
        '        return pd.DataFrame({"score": df["amount"] * 2})',
    )
    make_input("prod.t.small", 500)
    make_input("prod.t.big", 2_000)
    ok = run_job(job_trigger(model=ml_model, input_table="prod.t.small", output_table="prod.o.a", requested_by=user))
    bad = run_job(job_trigger(model=ml_model, input_table="prod.t.big", output_table="prod.o.b", requested_by=user))
    return ok, bad


def test_the_events_page_lists_and_filters_events_with_the_fields_users_query(web, jobs):
    ok, bad = jobs
    page = web.get(reverse("batchjobs:events")).content.decode()
    for column in [
        "evid",
        "src",
        "uuid",
        "job_id",
        "model_id",
        "build_id",
        "endpoint_name",
        "job_start_time",
        "job_type",
        "error",
        "date_created",
    ]:
        assert f"<th>{column}</th>" in page
    assert page.count('class="badge badge-') == 4  # 402 + 400, 402 + 401
    assert page.count(">402 started</span>") == 2
    assert page.count(">400 succeeded</span>") == page.count(">401 failed</span>") == 1
    assert page.count('<td class="small">97</td>') == 4
    for event in JobEvent.objects.all():  # ids shortened as on the board, whole on hover
        assert f'<code class="small" title="{event.uuid}">{str(event.uuid)[:8]}</code>' in page
    failures = web.get(
        reverse("batchjobs:events"), {"evid": 401}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="event-table"
    ).content.decode()
    assert "<html" not in failures and str(bad.pk) in failures and str(ok.pk) not in failures
    assert "&lt;b&gt;no&lt;/b&gt;" in failures and "<b>no</b>" not in failures
    by_job = web.get(reverse("batchjobs:events"), {"job_id": str(ok.pk)}).content.decode()
    assert by_job.count(str(ok.pk)) >= 2 and str(bad.pk) not in by_job
    today = timezone.now().date().isoformat()
    assert str(ok.pk) in web.get(reverse("batchjobs:events"), {"since": today, "until": today}).content.decode()
    assert "No events match" in web.get(reverse("batchjobs:events"), {"until": "2000-01-01"}).content.decode()
    assert "must be a job" in web.get(reverse("batchjobs:events"), {"job_id": "nope"}).content.decode()


def test_the_events_api_filters_by_date_and_hides_other_teams(api, jobs, outsider):
    today = timezone.now().date().isoformat()
    assert len(api.get(f"/api/v1/events/?since={today}").json()["results"]) == 4
    assert api.get("/api/v1/events/?until=2000-01-01").json()["results"] == []
    assert api.get("/api/v1/events/?since=yesterday").status_code == 400
    other = APIClient()
    other.force_authenticate(outsider)
    assert other.get("/api/v1/events/").json()["results"] == []


def test_the_events_api_gives_src_uuid_and_the_events_word(api, jobs):
    ok, bad = jobs
    events = api.get("/api/v1/events/").json()["results"]
    assert {(e["job_id"], e["evid"], e["evid_name"]) for e in events} == {
        (str(ok.pk), 402, "started"),
        (str(ok.pk), 400, "succeeded"),
        (str(bad.pk), 402, "started"),
        (str(bad.pk), 401, "failed"),
    }
    assert {e["src"] for e in events} == {97}
    stored = {str(e.uuid) for e in JobEvent.objects.all()}
    assert {e["uuid"] for e in events} == stored and len(stored) == 4


def test_the_events_page_and_api_filter_by_source(web, api, jobs, settings):
    ok, bad = jobs
    JobEvent.objects.filter(job=bad, evid=401).update(src=70)  # as if recorded before EVENTS_SOURCE changed
    settings.EVENTS_SOURCE = 70
    (other,) = api.get("/api/v1/events/?src=70").json()["results"]
    assert (other["job_id"], other["evid"], other["src"]) == (str(bad.pk), 401, 70)
    assert len(api.get("/api/v1/events/", {"src": 97}).json()["results"]) == 3
    assert api.get("/api/v1/events/?src=5").json()["results"] == []
    page = web.get(reverse("batchjobs:events"), {"src": 70}).content.decode()
    assert page.count('class="badge badge-') == 1 and ">401 failed</span>" in page
    assert "source (<code>src</code>) 70" in page
    refused = api.get("/api/v1/events/?src=ninety")
    assert refused.status_code == 400
    assert refused.json() == {"errors": {"src": ["src must be an event source number (a whole number)."]}}


def test_a_new_event_takes_the_configured_source_and_a_uuid_of_its_own(jobs, settings):
    ok, _ = jobs
    settings.EVENTS_SOURCE = 70
    from batchjobs.pipeline.finish import record_event

    event = record_event(ok, 402)
    event.refresh_from_db()
    assert event.src == 70 and event.uuid and str(event) == f"402 started {ok.pk}"
    assert JobEvent.objects.filter(uuid=event.uuid).count() == 1


def test_the_admin_lists_jobs_and_events_read_only(client, jobs):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    for url in [
        "/admin/batchjobs/batchjob/",
        "/admin/batchjobs/jobevent/",
        "/admin/batchjobs/jobevent/?evid=401",
        "/admin/batchjobs/jobevent/?src=97",
        f"/admin/batchjobs/batchjob/{jobs[1].pk}/change/",
    ]:
        assert client.get(url).status_code == 200, url
    assert client.get("/admin/batchjobs/jobevent/add/").status_code == 403
    listed = client.get("/admin/batchjobs/jobevent/").content.decode()
    assert listed.count("402 started") >= 2 and "401 failed" in listed and "400 succeeded" in listed
    for event in JobEvent.objects.all():
        assert str(event.uuid) in listed
