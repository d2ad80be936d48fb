"""Secret-looking environment values (KEY, TOKEN, SECRET, PASSWORD in the name) never appear in a
page or the API, and sending the mask back keeps the saved value."""

import pytest
from django.urls import reverse

from batchjobs.services import job_trigger
from builds.envmask import MASK
from builds.models import BatchConfig
from tests.batchjobs.jobkit import make_input, model_with_config
from tests.factories import BuildFactory

SECRET = "s3cr3t-value-123"


@pytest.fixture
def config(ml_model, user):
    from builds.models import InstanceType
    from builds.services import batch_config_set

    return batch_config_set(
        build=BuildFactory(model=ml_model),
        deployment_name="fraud",
        set_by=user,
        instance_type=InstanceType.objects.get(name="ml.m5.large"),
        processes="ALL",
        env={"API_KEY": SECRET, "DB_PASSWORD": SECRET, "THRESHOLD": "0.3"},
    )


def test_the_api_never_returns_a_secret_value(api, config, ml_model):
    model = api.get(f"/api/v1/models/{ml_model.model_id}/").content.decode()
    detail = api.get(f"/api/v1/builds/{config.build_id}/batch-config/").json()
    assert SECRET not in model
    assert detail["env"] == {"API_KEY": MASK, "DB_PASSWORD": MASK, "THRESHOLD": "0.3"}


def test_the_modal_never_shows_a_secret_and_saving_it_unchanged_keeps_it(web, config):
    url = reverse("builds:batch-config", args=[config.build_id])
    html = web.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert SECRET not in html and MASK in html
    response = web.post(
        url,
        {
            "deployment_name": "fraud-2",
            "instance_type": "ml.m5.large",
            "processes": "ONE",
            "env_key": ["API_KEY", "DB_PASSWORD", "THRESHOLD"],
            "env_value": [MASK, "new-password", "0.4"],
        },
        HTTP_HX_REQUEST="true",
    )
    assert "HX-Redirect" in response.headers
    active = BatchConfig.objects.get(is_active=True)
    assert active.env == {"API_KEY": SECRET, "DB_PASSWORD": "new-password", "THRESHOLD": "0.4"}


def test_a_mask_for_a_name_with_nothing_saved_is_refused(api, config):
    response = api.put(
        f"/api/v1/builds/{config.build_id}/batch-config/",
        {"deployment_name": "x", "instance_type": "ml.m5.large", "env": {"NEW_TOKEN": MASK}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"]["env"] == ["Give a value for NEW_TOKEN: it has none saved yet."]


@pytest.mark.usefixtures("job_storage")
def test_the_job_page_shows_the_config_with_secret_values_masked(web, api, ml_model, user):
    model_with_config(ml_model, user, env={"SERVICE_TOKEN": SECRET, "FACTOR": "2"})
    make_input("prod.t.input", 10)
    job = job_trigger(model=ml_model, input_table="prod.t.input", output_table="prod.o.x", requested_by=user)
    html = web.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
    assert SECRET not in html
    assert f"SERVICE_TOKEN={MASK}" in html and "FACTOR=2" in html
    assert SECRET not in api.get(f"/api/v1/batch-jobs/{job.pk}/").content.decode()
