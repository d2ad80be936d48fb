"""A model's Predict tab: check, Try on 100 rows, trigger."""

import pytest
from django.urls import reverse

from batchjobs.models import BatchJob

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
    assert "First 100 rows through build 1" in tried and "ms per row" in tried
    bad = web.post(url, {"input_table": "prod.t.nope", "output_table": "prod.out.scores", "action": "trigger"})
    assert bad.status_code == 400 and "The input table prod.t.nope does not exist." in bad.content.decode()
    response = web.post(url, {**form, "action": "trigger"}, **HX)
    job = BatchJob.objects.get()
    assert response.headers["HX-Redirect"] == reverse("batchjobs:job-detail", args=[job.pk])
