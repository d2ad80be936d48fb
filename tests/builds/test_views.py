"""The pages, as a browser without JavaScript and as htmx see them."""

import re

import pytest
from django.urls import reverse

from builds.choices import BuildStatus
from builds.models import BatchConfig, Build, MLModel
from tests.artifacts import model_zip, upload
from tests.factories import BatchConfigFactory, BuildFactory, MLModelFactory

HX = {"HTTP_HX_REQUEST": "true"}


def test_every_page_needs_a_login(client, ml_model):
    build = BuildFactory(model=ml_model)
    for url in [
        reverse("builds:model-list"),
        reverse("builds:model-builds", args=[ml_model.model_id]),
        reverse("builds:build-detail", args=[build.id]),
        reverse("builds:batch-config", args=[build.id]),
        reverse("batchjobs:board"),
        reverse("tables:list"),
    ]:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login")), url


def test_the_models_list_shows_the_teams_models_and_searches(web, ml_model, team):
    MLModelFactory(model_id="churn-forecast", team=team, description="Monthly churn")
    page = web.get(reverse("builds:model-list")).content.decode()
    assert "ds-premium-fraud-detection" in page and "churn-forecast" in page
    fragment = web.get(reverse("builds:model-list"), {"q": "churn"}, HTTP_HX_TARGET="model-table", **HX)
    html = fragment.content.decode()
    assert "<html" not in html
    assert "churn-forecast" in html and "ds-premium-fraud-detection" not in html


def test_another_teams_model_is_a_404_everywhere_and_absent_from_the_list(client, outsider, ml_model):
    build = BuildFactory(model=ml_model)
    client.force_login(outsider)
    listing = client.get(reverse("builds:model-list")).content.decode()
    assert reverse("builds:model-overview", args=[ml_model.model_id]) not in listing
    assert "No models yet" in listing
    for url in [
        reverse("builds:model-overview", args=[ml_model.model_id]),
        reverse("builds:model-builds", args=[ml_model.model_id]),
        reverse("builds:build-detail", args=[build.id]),
        reverse("builds:batch-config", args=[build.id]),
    ]:
        assert client.get(url).status_code == 404, url
    response = client.post(reverse("builds:batch-config", args=[build.id]), {"deployment_name": "x"})
    assert response.status_code == 404
    assert not BatchConfig.objects.exists()


def test_the_builds_tab_shows_status_and_used_in_batch(web, ml_model):
    used = BuildFactory(model=ml_model, number=1)
    BuildFactory(model=ml_model, number=2, status=BuildStatus.FAILED)
    BatchConfigFactory(build=used)
    page = web.get(reverse("builds:model-builds", args=[ml_model.model_id])).content.decode()
    assert page.count("Used in Batch") >= 2  # the row, and the model header
    assert "Build 1" in page and "Build 2" in page
    assert "badge-failed" in page
    assert f'href="{reverse("builds:batch-config", args=[used.id])}"' in page  # works without JavaScript


def test_the_builds_table_polls_only_while_a_build_is_being_verified(web, ml_model):
    build = BuildFactory(model=ml_model, status=BuildStatus.BUILDING)
    url = reverse("builds:model-builds", args=[ml_model.model_id])
    response = web.get(url, HTTP_HX_TARGET="build-table", **HX)
    assert response.status_code == 200 and 'hx-trigger="every 2s"' in response.content.decode()
    Build.objects.filter(pk=build.pk).update(status=BuildStatus.SUCCEEDED)
    response = web.get(url, HTTP_HX_TARGET="build-table", **HX)
    assert response.status_code == 286  # htmx stops polling
    assert "every 2s" not in response.content.decode()


def test_the_config_modal_is_a_fragment_for_htmx_and_a_page_without_javascript(web, ml_model):
    build = BuildFactory(model=ml_model)
    url = reverse("builds:batch-config", args=[build.id])
    fragment = web.get(url, **HX).content.decode()
    assert "<html" not in fragment and "Set Batch Config" in fragment and "Show Advanced Configuration" in fragment
    assert "TensorFlow models must use ONE" in fragment
    assert "does not deploy or run the model" in fragment
    assert "<html" in web.get(url).content.decode()


def post_config(web, build, *, htmx=False, **data):
    form = {
        "deployment_name": "fraud-batch",
        "instance_type": "ml.m5.xlarge",
        "processes": "ONE",
        "env_key": ["FRAUD_THRESHOLD", ""],
        "env_value": ["0.4", ""],
        **data,
    }
    return web.post(reverse("builds:batch-config", args=[build.id]), form, **(HX if htmx else {}))


def test_deploy_saves_the_active_config_and_the_build_shows_used_in_batch(web, ml_model, user):
    build = BuildFactory(model=ml_model)
    response = post_config(web, build, htmx=True)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == reverse("builds:model-builds", args=[ml_model.model_id])
    config = BatchConfig.objects.get(is_active=True)
    assert (config.build, config.deployment_name, config.instance_type.name, config.processes, config.env) == (
        build,
        "fraud-batch",
        "ml.m5.xlarge",
        "ONE",
        {"FRAUD_THRESHOLD": "0.4"},
    )
    assert config.created_by == user
    page = web.get(reverse("builds:model-builds", args=[ml_model.model_id])).content.decode()
    assert "Used in Batch" in page
    assert "Nothing was deployed or run" in page  # the flash message
    overview = web.get(reverse("builds:model-overview", args=[ml_model.model_id])).content.decode()
    assert "fraud-batch" in overview and "FRAUD_THRESHOLD" in overview


def test_deploy_without_javascript_redirects(web, ml_model):
    build = BuildFactory(model=ml_model)
    response = post_config(web, build)
    assert response.status_code == 302
    assert BatchConfig.objects.filter(is_active=True).count() == 1


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"env_key": ["bad name"], "env_value": ["1"]}, ("env-error", "&#x27;bad name&#x27; is not allowed")),
        ({"env_key": ["LD_PRELOAD"], "env_value": ["x"]}, ("env-error", "reserved by the platform")),
        ({"env_key": [""], "env_value": ["orphan"]}, ("env-error", "has no variable name")),
        ({"processes": "SOME"}, ("processes-error", "Select a valid choice")),
        ({"deployment_name": "Not Valid!"}, ("deployment_name-error", "lowercase letters, digits and hyphens")),
        ({"instance_type": "ml.p9.huge"}, ("instance_type-error", "Select a valid choice")),
    ],
)
def test_invalid_input_rerenders_the_modal_with_the_error_next_to_the_field(web, ml_model, data, field_error):
    build = BuildFactory(model=ml_model)
    response = post_config(web, build, htmx=True, **data)
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Redirect" not in response.headers
    assert "<html" not in html
    error_id, text = field_error
    assert f'id="{error_id}">' in html and text in html.split(f'id="{error_id}">')[1].split("</p>")[0]
    assert not BatchConfig.objects.exists()
    assert post_config(web, build, **data).status_code == 400  # the page without JavaScript


def test_every_error_of_the_modal_shows_at_once(web, ml_model):
    """A missing name and two bad variable names: all three on the first Deploy, not one per try."""
    build = BuildFactory(model=ml_model)
    data = {"deployment_name": "", "env_key": ["path", "LD_PRELOAD"], "env_value": ["1", "x"]}
    html = post_config(web, build, htmx=True, **data).content.decode()
    name_error = html.split('id="deployment_name-error">')[1].split("</p>")[0]
    env_error = html.split('id="env-error">')[1].split("</p>")[0]
    assert "This field is required." in name_error
    assert "&#x27;path&#x27; is not allowed" in env_error and "LD_PRELOAD" in env_error
    assert not BatchConfig.objects.exists()


def test_a_failed_build_cannot_get_a_config_from_the_page(web, ml_model):
    build = BuildFactory(model=ml_model, status=BuildStatus.FAILED)
    html = post_config(web, build, htmx=True).content.decode()
    assert "only a succeeded build can get a batch config" in html
    assert not BatchConfig.objects.exists()


def test_uploading_a_build_from_the_model_page_queues_its_verification(
    web, ml_model, django_capture_on_commit_callbacks
):
    url = reverse("builds:model-builds", args=[ml_model.model_id])
    with django_capture_on_commit_callbacks() as callbacks:
        response = web.post(url, {"artifact": upload(model_zip()), "entrypoint": "scorer:Scorer"})
    assert response.status_code == 302
    build = Build.objects.get()
    assert (build.status, build.entrypoint, build.number) == (BuildStatus.PENDING, "scorer:Scorer", 1)
    assert len(callbacks) == 1
    assert "being verified" in web.get(url).content.decode()


def test_a_bad_upload_shows_the_error_and_saves_nothing(web, ml_model):
    url = reverse("builds:model-builds", args=[ml_model.model_id])
    response = web.post(url, {"artifact": upload(model_zip()), "entrypoint": "missing.module:Scorer"})
    assert response.status_code == 400
    assert "not in the archive (looked for missing/module.py)" in response.content.decode()
    assert not Build.objects.exists()


def test_a_model_can_be_registered_from_the_list_page(web, team):
    response = web.post(
        reverse("builds:model-create"), {"model_id": "new-model", "team": team.name, "description": "d"}
    )
    assert response.status_code == 302
    assert MLModel.objects.get(model_id="new-model").team == team
    bad = web.post(reverse("builds:model-create"), {"model_id": "Bad Id", "team": team.name})
    assert "A model id uses lowercase letters" in bad.content.decode()
    assert not MLModel.objects.filter(model_id="Bad Id").exists()


def test_user_text_is_escaped_on_every_page(web, team):
    evil = "<img src=x onerror=alert(1)>"
    model = MLModelFactory(model_id="escaped-model", team=team, description=evil)
    build = BuildFactory(model=model, log=f"model said {evil}", entrypoint="m:M", status=BuildStatus.FAILED)
    for url in [
        reverse("builds:model-list"),
        reverse("builds:model-overview", args=[model.model_id]),
        reverse("builds:build-detail", args=[build.id]),
    ]:
        html = web.get(url).content.decode()
        assert evil not in html, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in html, url
    assert 'class="log" hx-disable' in web.get(reverse("builds:build-detail", args=[build.id])).content.decode()


def test_the_build_page_shows_schema_and_log(web, ml_model):
    build = BuildFactory(model=ml_model, log="[10:00:00] Build succeeded")
    html = web.get(reverse("builds:build-detail", args=[build.id])).content.decode()
    assert "amount" in html and "country" in html and "score" in html
    assert "Build succeeded" in html


def switch(html: str) -> str:
    """The Allow network access checkbox's tag."""
    return re.search(r'<input[^>]*name="allow_network"[^>]*>', html).group(0)


def test_allow_network_access_is_off_unless_ticked_and_the_config_shows_it(web, ml_model):
    build = BuildFactory(model=ml_model)
    modal = web.get(reverse("builds:batch-config", args=[build.id]), **HX).content.decode()
    assert "checked" not in switch(modal)
    assert "including the platform" in modal  # the one-line warning
    post_config(web, build, htmx=True)
    assert BatchConfig.objects.get(is_active=True).allow_network is False
    overview = web.get(reverse("builds:model-overview", args=[ml_model.model_id])).content.decode()
    assert "<dt>Network</dt><dd>none</dd>" in overview

    post_config(web, build, htmx=True, allow_network="on")
    assert BatchConfig.objects.get(is_active=True).allow_network is True
    overview = web.get(reverse("builds:model-overview", args=[ml_model.model_id])).content.decode()
    assert '<dt>Network</dt><dd><span class="badge badge-warn">allowed</span>' in overview
    modal = web.get(reverse("builds:batch-config", args=[build.id]), **HX).content.decode()
    assert '<details class="advanced" open' in modal  # the switch is on: the section shows it
    assert "checked" in switch(modal)
