"""A model's Predict tab: check, Try on 100 rows, trigger."""

import re

import pytest
from django.urls import reverse

from batchjobs.models import BatchJob
from tables import selectors as table_selectors
from tests.batchjobs.jobkit import make_input

pytestmark = pytest.mark.usefixtures("job_storage")
HX = {"HTTP_HX_REQUEST": "true"}


def test_the_predict_tab_checks_tries_and_triggers(web, ready):
    url = reverse("batchjobs:model-predict", args=["ds-premium-fraud-detection"])
    page = web.get(url, {"input_table": "prod.t.input"}).content.decode()
    assert "Trigger Batch Job" in page and "prod.t.input_predictions_" in page  # a fresh name is suggested
    form = {"input_table": "prod.t.input", "output_table": "prod.out.scores"}
    checked = web.post(url, {**form, "action": "check"}, **HX).content.decode()
    assert "<html" not in checked and "All checks passed: prod.t.input has 2,000 rows" in checked
    tried = web.post(url, {**form, "action": "try"}, **HX).content.decode()
    assert "First 100 rows through build 1" in tried
    assert re.search(
        r"<strong>[\d.]+ ms per row</strong> plus <strong>[\d.]+ ms per call</strong> in predict\(\)", tried
    )
    bad = web.post(url, {"input_table": "prod.t.nope", "output_table": "prod.out.scores", "action": "trigger"})
    assert bad.status_code == 400 and "The input table prod.t.nope does not exist." in bad.content.decode()
    response = web.post(url, {**form, "action": "trigger"}, **HX)
    job = BatchJob.objects.get()
    assert response.headers["HX-Redirect"] == reverse("batchjobs:job-detail", args=[job.pk])


def test_the_buttons_come_check_then_try_then_the_primary_trigger_last(web, ready):
    page = web.get(reverse("batchjobs:model-predict", args=["ds-premium-fraud-detection"])).content.decode()
    actions = page.split('<div class="actions">')[1].split("</div>")[0]
    buttons = [b.split(">", 1)[1].split("<")[0] for b in actions.split("<button")[1:]]
    assert buttons == ["Check", "Try on 100 rows", "Trigger Batch Job"]
    assert 'class="primary" type="submit" name="action" value="trigger"' in actions


def test_the_input_table_offers_the_tables_the_team_may_read(web, ready, outsider):
    from tables.models import TableRecord

    make_input("prod.t.second", 10)
    make_input("prod.secret.theirs", 10)
    TableRecord.objects.create(name="prod.secret.theirs", created_by=outsider, team=outsider.groups.first())
    url = reverse("batchjobs:model-predict", args=["ds-premium-fraud-detection"])
    page = web.get(url).content.decode()
    datalist = page.split('<datalist id="table-names">')[1].split("</datalist>")[0]
    assert datalist == '<option value="prod.t.input"><option value="prod.t.second">'
    field = page.split('id="id_input_table"')[0].rsplit("<input", 1)[1] + page.split('id="id_input_table"')[1][:400]
    assert 'list="table-names"' in field and 'hx-trigger="input changed delay:250ms"' in field
    # As the user types, the names that contain the text (another team's never).
    names = reverse("batchjobs:model-table-names", args=["ds-premium-fraud-detection"])
    typed = web.get(names, {"input_table": "sec"}, **HX).content.decode()
    assert typed == '<option value="prod.t.second">'
    assert web.get(names, {"input_table": "theirs"}, **HX).content.decode() == ""
    assert web.get(names, {"input_table": "PROD.T.IN"}, **HX).content.decode() == '<option value="prod.t.input">'


def test_the_suggestions_are_capped(web, ready, user):
    from batchjobs import selectors

    for i in range(5):
        make_input(f"prod.many.t{i}", 1)
    names = reverse("batchjobs:model-table-names", args=["ds-premium-fraud-detection"])
    assert web.get(names, {"input_table": "many"}).content.decode().count("<option") == 5
    found = selectors.table_suggestions(user=user, team=ready.team, text="many", limit=3)
    assert found == ["prod.many.t0", "prod.many.t1", "prod.many.t2"]


def test_try_on_100_rows_streams_its_steps_then_the_result_with_a_projected_time(web, ready):
    url = reverse("batchjobs:model-predict", args=["ds-premium-fraud-detection"])
    form = {"input_table": "prod.t.input", "output_table": "prod.out.scores", "action": "try"}
    response = web.post(url, form, HTTP_X_TRY_PROGRESS="1", **HX)
    assert response.streaming and response["Cache-Control"] == "no-store"
    chunks = [chunk.decode() for chunk in response.streaming_content]
    steps = [c for c in chunks if c.startswith("<template data-try-step=")]
    assert [s.split('"')[1] for s in steps] == ["check", "read", "start", "predict"]
    assert ">Starting the model</template>" in steps[2] and ">Predicting 100 rows</template>" in steps[3]
    panel = chunks[-1]
    assert panel.startswith('\n<div id="predict-panel"') and "First 100 rows through build 1" in panel
    projection = panel.split('id="projection">')[1].split("</p>")[0]
    assert projection.startswith("Estimate: <strong>about ")
    assert "for 2,000 rows at 2 batches in parallel (2 batches; predict() measured " in projection
    assert "predict() measured on up to " in projection and " ms per call; the first batch of each" in projection
    head = panel.split("<thead><tr>")[1].split("</tr>")[0]
    assert head.startswith('<th class="prediction">score</th><th>id</th>')
    assert not BatchJob.objects.exists()


def test_try_on_100_rows_with_progress_shows_a_bad_input_as_a_form_error(web, ready):
    url = reverse("batchjobs:model-predict", args=["ds-premium-fraud-detection"])
    form = {"input_table": "prod.t.nope", "output_table": "", "action": "try"}
    response = web.post(url, form, HTTP_X_TRY_PROGRESS="1", **HX)
    chunks = [chunk.decode() for chunk in response.streaming_content]
    assert chunks[0].startswith('<template data-try-step="check"') and len(chunks) == 2
    assert "The input table prod.t.nope does not exist." in chunks[-1] and 'id="trial"' not in chunks[-1]


def test_try_on_100_rows_says_so_when_the_input_goes_away_after_its_check(web, ready):
    url = reverse("batchjobs:model-predict", args=["ds-premium-fraud-detection"])
    form = {"input_table": "prod.t.input", "output_table": "", "action": "try"}
    chunks = iter(web.post(url, form, HTTP_X_TRY_PROGRESS="1", **HX).streaming_content)
    seen = []
    for chunk in chunks:
        seen.append(chunk.decode())
        if 'data-try-step="read"' in seen[-1]:
            break
    catalog, name = table_selectors.resolve("prod.t.input")
    catalog.drop(name)  # dropped between the check and the read
    panel = "".join(chunk.decode() for chunk in chunks)
    assert 'id="predict-panel"' in panel and 'id="trial"' not in panel
    assert "prod.t.input" in panel and "does not exist" in panel
