"""The job page: polling while the job runs, the message of a failed job."""

import pytest
from django.urls import reverse

from batchjobs.models import BatchJob
from tests.batchjobs.jobkit import make_input, model_with_config, post_job, run_job

pytestmark = pytest.mark.usefixtures("job_storage")
HX = {"HTTP_HX_REQUEST": "true"}


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


@pytest.mark.parametrize("allow_network", [False, True])
def test_the_job_page_and_api_say_whether_the_model_had_network_access(web, api, ml_model, user, allow_network):
    model_with_config(ml_model, user, allow_network=allow_network)
    make_input("prod.t.input", 100)
    body = post_job(api).json()
    assert body["allow_network"] is allow_network
    html = web.get(reverse("batchjobs:job-detail", args=[body["job_id"]])).content.decode()
    network = html.split('<dd id="network">')[1].split("</dd>")[0]
    if allow_network:
        assert "allowed" in network and "could reach other hosts" in network
    else:
        assert network.startswith("none") and "without network access" in network


def test_an_unchanged_live_part_is_answered_304_without_rendering(web, api, ready, django_assert_max_num_queries):
    from batchjobs.pipeline import admit

    job = BatchJob.objects.get(pk=post_job(api).json()["job_id"])
    url = reverse("batchjobs:job-detail", args=[job.pk])
    first = web.get(url, HTTP_HX_TARGET="job-live", **HX)
    assert first.status_code == 200 and "#1 in queue" in first.content.decode()
    assert first["Cache-Control"] == "private, no-cache" and "HX-Target" in first["Vary"]
    # The session, the user, the job's version and (queued) its place in the queue: nothing rendered.
    with django_assert_max_num_queries(4):
        again = web.get(url, HTTP_HX_TARGET="job-live", HTTP_IF_NONE_MATCH=first["ETag"], **HX)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == first["ETag"]

    admit.jobs_admit()  # it starts: the live part changes, so it is rendered again
    changed = web.get(url, HTTP_HX_TARGET="job-live", HTTP_IF_NONE_MATCH=first["ETag"], **HX)
    assert changed.status_code == 200 and changed["ETag"] != first["ETag"]
    assert "#1 in queue" not in changed.content.decode()
    page = web.get(url)  # the page itself is never answered from the live part's version
    assert page.status_code == 200 and "ETag" not in page


def test_a_queued_jobs_live_part_changes_when_a_job_ahead_of_it_leaves_the_queue(web, api, ready, user):
    from batchjobs import services

    ahead = BatchJob.objects.get(pk=post_job(api).json()["job_id"])
    job = BatchJob.objects.get(pk=post_job(api, output="prod.out.second").json()["job_id"])
    url = reverse("batchjobs:job-detail", args=[job.pk])
    first = web.get(url, HTTP_HX_TARGET="job-live", **HX)
    assert "#2 in queue" in first.content.decode()
    services.job_cancel(job=ahead)
    moved = web.get(url, HTTP_HX_TARGET="job-live", HTTP_IF_NONE_MATCH=first["ETag"], **HX)
    assert moved.status_code == 200 and "#1 in queue" in moved.content.decode()
