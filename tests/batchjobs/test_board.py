"""The Batch Jobs board, the job page, logs, confirmations and Re-run, over job rows as the
pipeline leaves them (the pipeline itself is tested in test_pipeline and test_worker_faults)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from batchjobs import selectors
from batchjobs.choices import JobStatus
from batchjobs.models import BatchAttempt, BatchJob
from batchjobs.pipeline import finish
from tables import services as table_services
from tests.factories import BatchConfigFactory, BatchFactory, BatchJobFactory, BuildFactory, UserFactory

HX_TABLE = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "job-table"}


@pytest.fixture
def config(ml_model):
    return BatchConfigFactory(build=BuildFactory(model=ml_model), env={"API_TOKEN": "tok-s3cr3t", "MODE": "fast"})


def job_with_batches(config, *, batches: int = 2, status="succeeded", batch_status="succeeded", **fields):
    job = BatchJobFactory(
        batch_config=config, status=status, batches_total=batches, input_rows=1_000 * batches, **fields
    )
    for index in range(batches):
        BatchFactory(job=job, index=index, status=batch_status)
    return job


def created(job, when):
    BatchJob.objects.filter(pk=job.pk).update(created_at=when)
    return job


def board(web, **params):
    return web.get(reverse("batchjobs:board"), params)


def shown_ids(response) -> set[str]:
    return {str(job.pk) for job in response.context["page"].object_list}


def test_board_filters_by_model_user_date_and_job_id_prefix_and_counts_each_status(web, user, team, config):
    bob = UserFactory(username="bob", teams=[team])
    other_model_config = BatchConfigFactory(build=BuildFactory(model__team=team, model__model_id="churn"))
    mine = job_with_batches(config, requested_by=user)
    bobs = job_with_batches(config, requested_by=bob, status="failed", batch_status="failed")
    churn = created(job_with_batches(other_model_config, requested_by=user), timezone.now() - timedelta(days=10))

    everything = board(web)
    assert shown_ids(everything) == {str(mine.pk), str(bobs.pk), str(churn.pk)}
    html = everything.content.decode()
    assert 'Succeeded <span class="count">2</span>' in html and 'Failed <span class="count">1</span>' in html

    assert shown_ids(board(web, model="churn")) == {str(churn.pk)}
    assert shown_ids(board(web, user="bob")) == {str(bobs.pk)}
    assert shown_ids(board(web, since="7d")) == {str(mine.pk), str(bobs.pk)}
    assert shown_ids(board(web, status="failed")) == {str(bobs.pk)}
    # A prefix as users paste it: upper case, with the dash.
    assert shown_ids(board(web, q=str(bobs.pk)[:13].upper())) == {str(bobs.pk)}
    # Counts follow the other filters, so the chips say what clicking them would show.
    assert 'Succeeded <span class="count">1</span>' in board(web, user="alice", since="7d").content.decode()
    # Paging keeps the filters.
    assert "model=churn" in board(web, model="churn").context["query"]


def test_a_bad_job_id_search_says_what_a_job_id_looks_like_and_shows_nothing(web, config):
    job_with_batches(config)
    response = board(web, q="not-an-id!")
    assert response.status_code == 400
    assert "A job id (or its start) is hexadecimal digits and dashes" in response.content.decode()
    assert shown_ids(response) == set()


def test_another_teams_jobs_and_models_are_not_on_the_board(client, outsider, config):
    job_with_batches(config)
    client.force_login(outsider)
    response = board(client)
    assert shown_ids(response) == set()
    assert "ds-premium-fraud-detection" not in response.content.decode()
    assert board(client, model="ds-premium-fraud-detection").status_code == 400  # not one of their models


def test_board_rows_progress_and_queue_position(web, config):
    running = job_with_batches(config, batches=4, status="running", batch_status="succeeded", started_at=timezone.now())
    running.batches.filter(index__gte=1).update(status="running")
    first = BatchJobFactory(batch_config=config, status="queued", phase="waiting", batches_total=0)
    second = BatchJobFactory(batch_config=config, status="queued", phase="waiting", batches_total=0)
    created(first, timezone.now() - timedelta(minutes=2))
    created(second, timezone.now() - timedelta(minutes=1))
    jobs = {str(j.pk): j for j in board(web).context["page"].object_list}
    assert (jobs[str(running.pk)].rows_done, jobs[str(running.pk)].progress_percent) == (1_000, 25)
    assert (jobs[str(first.pk)].queue_position, jobs[str(second.pk)].queue_position) == (1, 2)
    html = board(web).content.decode()
    assert "1,000 / 4,000" in html and 'aria-valuenow="25"' in html and "#1 in queue" in html
    assert f'data-since="{running.started_at.isoformat()}"' in html  # the duration ticks in the browser


def test_the_board_polls_only_while_a_shown_job_is_unfinished(web, config):
    job = job_with_batches(config, status="running", batch_status="running", started_at=timezone.now())
    live = web.get(reverse("batchjobs:board"), **HX_TABLE)
    assert live.status_code == 200 and 'hx-trigger="every 2s"' in live.content.decode()
    BatchJob.objects.filter(pk=job.pk).update(status="succeeded", finished_at=timezone.now())
    ended = web.get(reverse("batchjobs:board"), **HX_TABLE)
    assert ended.status_code == 286  # htmx stops polling
    assert "every 2s" not in ended.content.decode()
    # A filter that hides the running job stops the polling too.
    BatchJob.objects.filter(pk=job.pk).update(status="running")
    assert web.get(reverse("batchjobs:board"), {"status": "succeeded"}, **HX_TABLE).status_code == 286


def test_the_model_jobs_tab_is_the_board_filtered_to_the_model(web, team, config):
    other = BatchConfigFactory(build=BuildFactory(model__team=team, model__model_id="churn"))
    mine = job_with_batches(config)
    job_with_batches(other)
    response = web.get(reverse("batchjobs:model-jobs", args=["ds-premium-fraud-detection"]))
    assert shown_ids(response) == {str(mine.pk)}
    assert 'id="id_model"' not in response.content.decode()  # no model filter on a model's own tab


@pytest.mark.parametrize(
    ("url", "extra"),
    [
        (lambda job: reverse("batchjobs:board"), {}),
        (lambda job: reverse("batchjobs:board"), {"status": "succeeded", "since": "7d"}),
        (lambda job: reverse("batchjobs:model-jobs", args=[job.model.model_id]), {}),
        (lambda job: reverse("batchjobs:job-detail", args=[job.pk]), {}),
        (lambda job: reverse("batchjobs:job-logs", args=[job.pk]), {}),
        (lambda job: "/api/v1/batch-jobs/", {}),
        (lambda job: f"/api/v1/batch-jobs/{job.pk}/", {}),
    ],
)
def test_pages_and_the_job_api_make_the_same_number_of_queries_for_5_or_40_jobs(web, config, url, extra):
    def queries() -> int:
        job = BatchJob.objects.order_by("created_at").first()
        with CaptureQueriesContext(connection) as captured:
            response = web.get(url(job), extra)
        assert response.status_code == 200
        return len(captured)

    for _ in range(5):
        job = job_with_batches(config, batches=3)
        BatchAttempt.objects.create(batch=job.batches.first(), number=1, status="succeeded", log="done")
    few = queries()
    first = BatchJob.objects.order_by("created_at").first()
    for index in range(3, 60):  # the first job gets many more batches
        BatchFactory(job=first, index=index)
    for _ in range(35):
        job_with_batches(config, batches=3)
    many = queries()
    assert few == many, f"{few} queries for 5 jobs, {many} for 40"
    assert many <= 15


def test_job_page_timeline_speed_and_lineage(web, config):
    t0 = timezone.now() - timedelta(seconds=100)
    job = job_with_batches(
        config,
        batches=4,
        output_rows=4_000,
        started_at=t0 + timedelta(seconds=4),
        extracted_at=t0 + timedelta(seconds=10),
        predicted_at=t0 + timedelta(seconds=44),
        finished_at=t0 + timedelta(seconds=46),
    )
    created(job, t0)
    job.batches.update(finished_at=t0 + timedelta(seconds=40))
    response = web.get(reverse("batchjobs:job-detail", args=[job.pk]))
    spans = [(s.label, round(s.seconds, 1), s.state) for s in response.context["timeline"]]
    assert spans == [
        ("Queued", 4.0, "done"),
        ("Extracting", 6.0, "done"),
        ("Predicting", 34.0, "done"),
        ("Committing", 2.0, "done"),
    ]
    assert round(response.context["speed"].rows_per_s) == 100  # 4,000 rows from start to the last batch: 40 s
    html = response.content.decode()
    assert "100 rows/s" in html and "4,000 / 4,000" in html
    assert reverse("builds:build-detail", args=[job.build_id]) in html and "test-deployment" in html
    assert "tok-s3cr3t" not in html and "API_TOKEN=" in html and "MODE=fast" in html


def test_a_running_job_shows_the_current_step_and_an_eta(web, config):
    now = timezone.now()
    job = job_with_batches(
        config,
        batches=4,
        status="running",
        batch_status="succeeded",
        started_at=now - timedelta(seconds=20),
        extracted_at=now - timedelta(seconds=15),
    )
    BatchJob.objects.filter(pk=job.pk).update(phase="predicting")
    job.batches.update(finished_at=now)
    job.batches.filter(index__gte=2).update(status="running")  # 2,000 of 4,000 rows in 20 s
    context = web.get(reverse("batchjobs:job-detail", args=[job.pk])).context
    assert [s.state for s in context["timeline"]] == ["done", "done", "current", "pending"]
    assert 18 <= context["speed"].eta_s <= 22


def test_a_retried_job_shows_its_input_was_kept(web, config):
    now = timezone.now()
    job = job_with_batches(
        config,
        status="running",
        extracted_at=now - timedelta(minutes=5),
        started_at=now - timedelta(seconds=3),
    )
    spans = web.get(reverse("batchjobs:job-detail", args=[job.pk])).context["timeline"]
    assert (spans[1].seconds, spans[1].note) == (0, "input kept from the first run")
    assert spans[2].state == "current" and 2 <= spans[2].seconds <= 5


def test_a_failed_job_without_a_reason_still_says_which_step_failed(config):
    job = BatchJobFactory(batch_config=config, status="running", phase="committing")
    finish.finish(job.pk, JobStatus.FAILED)
    job.refresh_from_db()
    assert job.message == "The job failed while writing the output table; no cause was recorded."


def test_logs_show_the_failed_batch_newest_attempt_first_capped_and_raw(web, config):
    job = job_with_batches(config, batches=3, status="failed")
    failed = job.batches.get(index=1)
    failed.status = "failed"
    failed.save()
    big = "x" * 300_000 + "\nTHE END\n"
    BatchAttempt.objects.create(batch=failed, number=1, status="failed", log="first try <b>bold</b>\n")
    BatchAttempt.objects.create(batch=failed, number=2, status="failed", log=big)
    BatchAttempt.objects.create(batch=job.batches.get(index=0), number=1, status="succeeded", log="batch zero")

    url = reverse("batchjobs:job-logs", args=[job.pk])
    html = web.get(url, HTTP_HX_REQUEST="true").content.decode()  # the job page loads this after itself
    assert "<html" not in html
    assert html.index("attempt 2") < html.index("attempt 1")  # the failed batch, newest attempt first
    assert "batch zero" not in html
    assert "first try &lt;b&gt;bold&lt;/b&gt;" in html
    assert "[truncated: this page shows the first 256 KiB" in html and "THE END" not in html
    raw = web.get(reverse("batchjobs:job-log-raw", args=[job.pk, 1, 2]))
    assert raw["Content-Type"].startswith("text/plain") and raw.content.decode() == big
    assert "batch zero" in web.get(url, {"batch": 0}).content.decode()
    for text in ("x", "²", "-1", "9" * 30):  # "²" is a digit to str.isdigit, not to int()
        bad = web.get(url, {"batch": text})
        assert bad.status_code == 400 and "batch must be a batch index" in bad.content.decode()
    logs_api = f"/api/v1/batch-jobs/{job.pk}/logs/"
    assert web.get(logs_api, {"batch": "²"}).json() == {"errors": {"batch": [selectors.BATCH_INDEX_RULE]}}
    assert web.get(reverse("batchjobs:job-log-raw", args=[job.pk, 7, 1])).status_code == 404
    job_page = web.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
    assert f'hx-get="{url}" hx-trigger="load"' in job_page and "xxxxxxxxxx" not in job_page


def test_another_teams_logs_are_a_404(client, outsider, config):
    job = job_with_batches(config)
    client.force_login(outsider)
    assert client.get(reverse("batchjobs:job-logs", args=[job.pk])).status_code == 404
    assert client.get(reverse("batchjobs:job-log-raw", args=[job.pk, 0, 1])).status_code == 404


def test_cancel_asks_first_and_says_exactly_what_will_happen(web, config):
    job = job_with_batches(config, batches=4, status="running", batch_status="running", started_at=timezone.now())
    job.batches.filter(index=0).update(status="succeeded")
    job.batches.filter(index=3).update(status="pending")
    url = reverse("batchjobs:job-cancel", args=[job.pk])
    confirm = web.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Running batches: 2. They are stopped; their model processes are killed." in confirm
    assert "Batches not yet run: 1." in confirm
    assert "Batches already predicted: 1 (1,000 rows). They are discarded." in confirm
    assert f"No output table is written: {job.output_table} stays free." in confirm
    assert BatchJob.objects.get(pk=job.pk).status == "running"  # asking changed nothing
    web.post(url)
    assert BatchJob.objects.get(pk=job.pk).status == "cancelling"


def test_retry_asks_first_and_a_finished_job_cannot_be_cancelled(web, config):
    job = job_with_batches(config, batches=3, status="failed", extracted_at=timezone.now())
    job.batches.filter(index=2).update(status="failed")
    assert "Retry failed batches…" in web.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
    confirm = web.get(reverse("batchjobs:job-retry", args=[job.pk])).content.decode()
    assert "Batches to run again: 1 (1,000 rows)" in confirm and "Batches that succeeded: 2." in confirm
    response = web.get(reverse("batchjobs:job-cancel", args=[job.pk]), follow=True)
    assert "there is nothing to cancel" in response.content.decode()


def test_rerun_prefills_the_input_and_suggests_a_fresh_output(web, config):
    job = job_with_batches(config, input_table="prod.t.input", output_table="prod.t.scores")
    response = web.get(reverse("batchjobs:model-predict", args=[job.model.model_id]), {"rerun": job.pk})
    form = response.context["form"]
    assert form.initial["input_table"] == "prod.t.input"
    assert form.initial["output_table"].startswith("prod.t.input_predictions_")
    assert "Re-run of job" in response.content.decode() and "Nothing runs until you press" in response.content.decode()
    assert not BatchJob.objects.exclude(pk=job.pk).exists()  # opening the form triggers nothing


def test_rerun_of_another_models_job_is_a_404(web, team, config):
    other = job_with_batches(BatchConfigFactory(build=BuildFactory(model__team=team, model__model_id="churn")))
    response = web.get(reverse("batchjobs:model-predict", args=["ds-premium-fraud-detection"]), {"rerun": other.pk})
    assert response.status_code == 404


def test_with_cloudwatch_configured_the_panel_batches_and_api_link_to_the_console(web, api, settings, config):
    job = job_with_batches(config, batches=2, status="failed", message="batch 1 failed")
    job.batches.filter(index=1).update(status="failed", error="boom")
    BatchAttempt.objects.create(batch=job.batches.get(index=1), number=1, status="failed", log="boom")
    page = web.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
    assert "console.aws.amazon.com" not in page and 'href="#logs-card"' in page  # in-app logs without the settings

    settings.AWS_REGION, settings.CLOUDWATCH_LOG_GROUP = "eu-west-1", "/mlplatform/jobs"
    group = (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        "#logsV2:log-groups/log-group/$252Fmlplatform$252Fjobs"
    )
    page = web.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
    assert f"{group}$3FlogStreamNameFilter$3D{job.pk}$252F" in page  # the error panel: the job's streams
    assert f"{group}/log-events/{job.pk}$252Fbatch-00001" in page  # the batches table: one stream each
    body = api.get(f"/api/v1/batch-jobs/{job.pk}/").json()
    assert body["cloudwatch_url"] == f"{group}$3FlogStreamNameFilter$3D{job.pk}$252F"
    batches = api.get(f"/api/v1/batch-jobs/{job.pk}/batches/").json()["results"]
    assert batches[1]["cloudwatch_url"] == f"{group}/log-events/{job.pk}$252Fbatch-00001"


def test_the_job_list_api_filters_like_the_board(api, user, team, config):
    bob = UserFactory(username="bob", teams=[team])
    mine = job_with_batches(config, requested_by=user)
    bobs = job_with_batches(config, requested_by=bob)
    old = created(job_with_batches(config, requested_by=user), timezone.now() - timedelta(days=40))

    def ids(**params) -> set[str]:
        response = api.get("/api/v1/batch-jobs/", params)
        assert response.status_code == 200, response.json()
        return {job["job_id"] for job in response.json()["results"]}

    assert ids(requested_by="bob") == {str(bobs.pk)}
    assert ids(since=(timezone.now() - timedelta(days=7)).date().isoformat()) == {str(mine.pk), str(bobs.pk)}
    assert ids(job_id=str(old.pk)[:8]) == {str(old.pk)}
    listed = api.get("/api/v1/batch-jobs/", {"requested_by": "bob"}).json()["results"][0]
    assert (listed["batches_succeeded"], listed["batches_failed"]) == (2, 0)
    bad = api.get("/api/v1/batch-jobs/", {"job_id": "xyz"})
    assert bad.status_code == 400 and "job_id" in bad.json()["errors"]
    assert api.get("/api/v1/batch-jobs/", {"since": "last week"}).json()["errors"]["since"]


def test_a_retried_job_back_in_the_queue_shows_its_new_wait_and_keeps_its_logs(web, config):
    now = timezone.now()
    job = job_with_batches(config, batches=3, status="failed", extracted_at=now - timedelta(minutes=9))
    created(job, now - timedelta(minutes=10))
    failed = job.batches.get(index=2)
    BatchAttempt.objects.create(batch=failed, number=1, status="failed", log="first run: boom")
    # What "Retry failed batches" leaves: back in the queue, the batch's counter reset, its history kept.
    BatchJob.objects.filter(pk=job.pk).update(status="queued", phase="waiting", queued_at=now - timedelta(seconds=5))
    job.batches.filter(index=2).update(status="pending", attempts=0)

    response = web.get(reverse("batchjobs:job-detail", args=[job.pk]))
    spans = [(s.label, s.state) for s in response.context["timeline"]]
    assert spans == [
        ("Queued", "current"),
        ("Extracting", "pending"),
        ("Predicting", "pending"),
        ("Committing", "pending"),
    ]
    assert 4 <= response.context["timeline"][0].seconds <= 10  # since the retry, not since the trigger
    batch = next(b for b in response.context["batches"] if b.index == 2)
    assert batch.tries == 1 and "?batch=2" in response.content.decode()  # its log is still one click away
    logs = web.get(reverse("batchjobs:job-logs", args=[job.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "first run: boom" in logs


def test_a_retried_jobs_speed_counts_only_this_runs_rows(web, config):
    now = timezone.now()
    job = job_with_batches(
        config,
        batches=4,
        status="running",
        started_at=now - timedelta(seconds=10),
        extracted_at=now - timedelta(hours=1),
    )
    job.batches.filter(index__lt=3).update(finished_at=now - timedelta(hours=1))  # the first run's
    job.batches.filter(index=3).update(finished_at=now - timedelta(seconds=1))  # this run's: 1,000 rows in 10 s
    speed = web.get(reverse("batchjobs:job-detail", args=[job.pk])).context["speed"]
    assert 90 <= speed.rows_per_s <= 110


def test_retry_is_not_offered_when_the_kept_input_is_gone(web, config):
    job = job_with_batches(config, status="failed", extracted_at=timezone.now(), staging_removed=True)
    response = web.get(reverse("batchjobs:job-retry", args=[job.pk]), follow=True)
    assert "This job cannot be retried" in response.content.decode()
    assert "Retry failed batches…" not in response.content.decode()


def test_the_jobs_tab_ignores_a_model_filter_in_its_url(web, config):
    job = job_with_batches(config)
    response = web.get(reverse("batchjobs:model-jobs", args=[job.model.model_id]), {"model": "churn"})
    assert response.status_code == 200 and shown_ids(response) == {str(job.pk)}


def board_row(html: str, job) -> str:
    """The board's <tr> of `job`."""
    start = html.index(f'href="/batch/{job.pk}/"')
    return html[html.rindex("<tr", 0, start) : html.index("</tr>", start)]


def test_a_failed_row_says_why_in_its_first_line_escaped_with_the_whole_message_on_hover(web, config):
    message = "batch 0 (1,000 rows): ValueError: <img src=x onerror=alert(1)>\nTraceback (most recent call last):"
    failed = job_with_batches(config, status="failed", batch_status="failed", message=message)
    succeeded = job_with_batches(config, message="2,000 rows predicted.")
    html = board(web).content.decode()
    row = board_row(html, failed)
    first = "batch 0 (1,000 rows): ValueError: &lt;img src=x onerror=alert(1)&gt;"
    assert f'<div class="fail-reason small" title="{first}\nTraceback (most recent call last):">{first}</div>' in row
    assert "<img" not in html
    assert "fail-reason" not in board_row(html, succeeded)  # only a failed row gives a reason


def test_the_board_links_the_tables_the_viewer_may_open(web, user, team, outsider, config):
    other_team = outsider.groups.first()
    # prod.t.input: a table the platform did not make (anyone may read it); outputs: job outputs of a team.
    ours = job_with_batches(config, output_table="prod.out.ours")
    table_services.table_record(name="prod.out.ours", team=team)
    theirs = job_with_batches(config, input_table="prod.t.theirs", output_table="prod.out.shared_name")
    table_services.table_record(name="prod.t.theirs", team=other_team)
    table_services.table_record(name="prod.out.shared_name", team=other_team)
    failed = job_with_batches(config, status="failed", batch_status="failed", output_table="prod.out.never_written")

    html = board(web).content.decode()
    row = board_row(html, ours)
    assert '<a href="/tables/prod.t.input/"><code>prod.t.input</code></a>' in row
    assert '<a href="/tables/prod.out.ours/"><code>prod.out.ours</code></a>' in row
    row = board_row(html, theirs)  # another team's tables: named (the job is ours) but not linked
    assert "<code>prod.t.theirs</code>" in row and "/tables/prod.t.theirs/" not in row
    assert "<code>prod.out.shared_name</code>" in row and "/tables/prod.out.shared_name/" not in row
    row = board_row(html, failed)  # a failed job wrote no output: nothing to open
    assert "<code>prod.out.never_written</code>" in row and "/tables/prod.out.never_written/" not in row
    assert '<a href="/tables/prod.t.input/">' in row

    user.is_staff = True  # staff may open every table
    user.save()
    assert "/tables/prod.t.theirs/" in board_row(board(web).content.decode(), theirs)
