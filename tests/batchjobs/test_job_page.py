"""The job page: polling while the job runs, the message of a failed job."""

import pytest
from django.urls import reverse

from batchjobs.models import BatchJob
from tests.batchjobs.jobkit import IN_BATCHES, make_input, model_with_config, post_job, run_job

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


THIRDS = 'return pd.DataFrame({"score": df["amount"] / 3}, index=df.index)'


def preview_table(html: str) -> tuple[list[str], str]:
    """The header cells of the output preview, and the preview's HTML."""
    card = html.split('id="output-preview"')[1].split("</section>")[0]
    head = card.split("<thead>")[1].split("</thead>")[0]
    return [cell.split(">", 1)[1].split("<")[0] for cell in head.split("<th")[1:]], card


def test_a_succeeded_jobs_page_previews_its_output_predictions_first_and_rounded(web, ml_model, user):
    from batchjobs.services import job_trigger

    model_with_config(ml_model, user, THIRDS)
    make_input("prod.t.input", 1_000)
    job = run_job(job_trigger(model=ml_model, input_table="prod.t.input", output_table="prod.out.x", requested_by=user))
    html = web.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
    columns, card = preview_table(html)
    assert columns == ["score", "id", "amount", "country"]
    assert "Output: first 20 rows of 1,000" in card and card.count("<tr>") == 21  # a header and 20 rows
    # Row 2: amount 2.5, its score 0.8333333333333334, shown as 0.8333.
    assert "<td>0.8333</td><td>2</td><td>2.5</td><td>de</td>" in card.replace("\n", "")
    assert "0.8333333333333334" not in html and "0.83333" not in html  # full precision stays in the table
    assert 'href="/tables/prod.out.x/"' in card
    output = html.split('<dd id="output-table">')[1].split("</dd>")[0]
    events = html.split("<h2>Events</h2>")[1].split("</table>")[0]
    assert "<td>402 started</td>" in events and "<td>400 succeeded</td>" in events
    download = reverse("tables:download", args=["prod.out.x"])
    assert f'href="{download}?format=csv"' in output and f'href="{download}?format=parquet"' in output


def test_the_output_tables_page_shows_the_same_order_and_rounding(web, ml_model, user):
    from batchjobs.services import job_trigger

    model_with_config(ml_model, user, THIRDS)
    make_input("prod.t.input", 100)
    run_job(job_trigger(model=ml_model, input_table="prod.t.input", output_table="prod.out.x", requested_by=user))
    html = web.get(reverse("tables:detail", args=["prod.out.x"])).content.decode()
    head = html.split("<thead><tr>")[-1].split("</tr></thead>")[0]
    assert head == "<th>score</th><th>id</th><th>amount</th><th>country</th>"
    assert "<td>0.8333</td><td>2</td><td>2.5</td><td>de</td>" in html
    assert "0.8333333333333334" not in html
    # The API keeps the table's order and full precision.
    rows = web.get("/api/v1/tables/prod.out.x/rows/?limit=3").json()
    assert rows["columns"][:1] == ["id"] and 0.8333333333333334 in rows["rows"][2]
    # A table no job made keeps its own order.
    inputs = web.get(reverse("tables:detail", args=["prod.t.input"])).content.decode()
    assert "<thead><tr><th>id</th><th>amount</th><th>country</th></tr></thead>" in inputs


def test_a_succeeded_jobs_page_says_when_its_output_table_is_gone(web, ml_model, user):
    from batchjobs.services import job_trigger
    from tables import selectors as table_selectors

    model_with_config(ml_model, user)
    make_input("prod.t.input", 100)
    job = run_job(job_trigger(model=ml_model, input_table="prod.t.input", output_table="prod.out.x", requested_by=user))
    catalog, name = table_selectors.resolve("prod.out.x")
    catalog.drop(name)
    html = web.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
    assert "The output table prod.out.x cannot be shown: it was dropped since" in html


def test_the_logs_card_follows_a_running_job_and_is_answered_304_while_nothing_changed(web, api, ready):
    from batchjobs.models import Batch
    from batchjobs.pipeline import admit, commit, extract, predict

    job = BatchJob.objects.get(pk=post_job(api).json()["job_id"])
    logs_url = reverse("batchjobs:job-logs", args=[job.pk])
    queued = web.get(logs_url, **HX)
    text = queued.content.decode()
    assert (
        "<html" not in text and "No batch has run yet. What the model prints appears here as its batches end." in text
    )
    assert f'hx-get="{logs_url}" hx-trigger="every 3s"' in text  # it asks again while the job is active
    same = web.get(logs_url, HTTP_IF_NONE_MATCH=queued["ETag"], **HX)
    assert same.status_code == 304 and same.content == b""

    admit.jobs_admit()
    extract.job_extract(job.pk)
    first = Batch.objects.filter(job=job).order_by("index").first()
    predict.batch_predict(first.pk)  # batch 0 ends: the card changes
    ran = web.get(logs_url, HTTP_IF_NONE_MATCH=queued["ETag"], **HX)
    text = ran.content.decode()
    assert ran.status_code == 200 and ran["ETag"] != queued["ETag"]
    assert "Batch 0 · attempt 1" in text and "No batch has run yet" not in text and "every 3s" in text
    chosen = web.get(logs_url, {"batch": 1}, **HX).content.decode()  # a batch the user picked stays picked
    assert f'hx-get="{logs_url}?batch=1"' in chosen and "Batch 1 has not run yet." in chosen

    while queued_ids := list(Batch.objects.filter(job=job, status="queued").values_list("pk", flat=True)):
        for batch_id in queued_ids:
            predict.batch_predict(batch_id)
    commit.job_commit(job.pk)
    ended = web.get(logs_url, HTTP_IF_NONE_MATCH=ran["ETag"], **HX)
    text = ended.content.decode()
    assert ended.status_code == 200 and "ETag" not in ended
    assert "Batch 0 · attempt 1" in text and "hx-trigger" not in text.split('class="log-picker"')[0]
    assert "every 3s" not in text


def test_a_failed_jobs_show_more_turns_into_show_less(web, ml_model, user):
    from batchjobs.services import job_trigger

    model_with_config(ml_model, user, IN_BATCHES + 'raise ValueError("bad batch")')
    make_input("prod.t.input", 1_000)
    job = run_job(job_trigger(model=ml_model, input_table="prod.t.input", output_table="prod.out.x", requested_by=user))
    html = web.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
    summary = html.split('<details class="more"><summary>')[1].split("</summary>")[0]
    assert summary == '<span class="if-closed">Show More</span><span class="if-open">Show less</span>'


def test_retry_says_when_every_attempt_failed_with_the_same_error(web, ml_model, user):
    from batchjobs import services
    from batchjobs.pipeline import admit, feed

    model_with_config(ml_model, user, IN_BATCHES + 'raise ValueError("bad batch")')
    make_input("prod.t.input", 1_000)
    job = run_job(
        services.job_trigger(model=ml_model, input_table="prod.t.input", output_table="prod.out.x", requested_by=user)
    )
    url = reverse("batchjobs:job-detail", args=[job.pk])
    once = web.get(url).content.decode()
    assert "Retry failed batches" in once and "Every attempt so far" not in once  # one attempt proves little

    job = services.job_retry(job=job, requested_by=user)
    admit.jobs_admit()
    feed.feed(job.pk)  # what the admit's on-commit does
    job = run_job(job)
    assert job.status == "failed"
    twice = web.get(url).content.decode()
    warning = twice.split('id="retry-warning" hx-disable>')[1].split("</p>")[0]
    assert warning == (
        "Every attempt so far failed with the same error: <code>ValueError: bad batch</code> — retrying will likely "
        "fail again unless the data or the build changed."
    )
    assert "Retry failed batches" in twice  # still offered
    modal = web.get(reverse("batchjobs:job-retry", args=[job.pk]), **HX).content.decode()
    assert "Every attempt so far failed with the same error: ValueError: bad batch — retrying" in modal


def test_attempts_that_failed_differently_give_no_warning(web, ml_model, user):
    from batchjobs import selectors, services
    from batchjobs.models import BatchAttempt
    from batchjobs.pipeline import admit, feed

    model_with_config(ml_model, user, IN_BATCHES + 'raise ValueError("bad batch")')
    make_input("prod.t.input", 1_000)
    job = run_job(
        services.job_trigger(model=ml_model, input_table="prod.t.input", output_table="prod.out.x", requested_by=user)
    )
    job = services.job_retry(job=job, requested_by=user)
    admit.jobs_admit()
    feed.feed(job.pk)  # what the admit's on-commit does
    job = run_job(job)
    assert selectors.repeated_error(job) == "ValueError: bad batch"
    BatchAttempt.objects.filter(batch__job=job, number=1).update(error="MemoryError: the model used too much memory")
    assert selectors.repeated_error(job) == ""
    assert "Every attempt so far" not in web.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
