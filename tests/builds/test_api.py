"""REST API v1: models, builds, batch configs, instance types; the error shape; teams."""

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from builds.models import BatchConfig, Build, MLModel
from tests.artifacts import model_zip, upload
from tests.factories import BatchConfigFactory, BuildFactory, MLModelFactory


def test_the_api_needs_authentication(db):
    response = APIClient().get("/api/v1/models/")
    assert response.status_code == 401
    assert "errors" in response.json()


def test_token_auth_works(user, ml_model):
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.get("/api/v1/models/")
    assert response.status_code == 200
    assert [m["model_id"] for m in response.json()["results"]] == ["ds-premium-fraud-detection"]


def test_a_model_shows_its_active_batch_config(api, ml_model):
    config = BatchConfigFactory(build=BuildFactory(model=ml_model, number=3), env={"A_B": "1"})
    body = api.get(f"/api/v1/models/{ml_model.model_id}/").json()
    assert body["model_id"] == ml_model.model_id and body["team"] == "fraud-team"
    active = body["active_batch_config"]
    assert active["deployment_name"] == config.deployment_name
    assert (active["build_number"], active["instance_type"], active["processes"], active["env"]) == (
        3,
        "ml.m5.large",
        "ALL",
        {"A_B": "1"},
    )


def test_registering_a_model(api, team):
    response = api.post(
        "/api/v1/models/", {"model_id": "churn-model", "team": "fraud-team", "description": "x"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert MLModel.objects.get(model_id="churn-model").team == team


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"model_id": "Bad_Id", "team": "fraud-team"}, "model_id"),
        ({"model_id": "ok-id", "team": "other-team"}, "team"),
        ({"model_id": "ok-id"}, "team"),
    ],
)
def test_registering_a_model_with_bad_input_names_the_field(api, team, payload, field):
    response = api.post("/api/v1/models/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not MLModel.objects.filter(model_id=payload["model_id"]).exists()


def test_uploading_a_build_returns_it_pending(api, ml_model, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(
            f"/api/v1/models/{ml_model.model_id}/builds/",
            {"artifact": upload(model_zip()), "entrypoint": "scorer:Scorer"},
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["number"], body["entrypoint"], body["used_in_batch"]) == (
        "pending",
        1,
        "scorer:Scorer",
        False,
    )
    assert Build.objects.get().id.hex == body["build_id"].replace("-", "")
    assert len(callbacks) == 1


def test_a_bad_upload_is_a_400_in_the_error_shape(api, ml_model):
    response = api.post(
        f"/api/v1/models/{ml_model.model_id}/builds/",
        {"artifact": upload(b"abc", "m.exe"), "entrypoint": "m:M"},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json() == {
        "errors": {"artifact": ["the artifact must be a .zip or .tar.gz of Python source, or a .joblib or .pkl file"]}
    }
    assert not Build.objects.exists()


def test_build_detail_has_status_schema_log_and_used_in_batch(api, ml_model):
    build = BuildFactory(model=ml_model, log="all good")
    BatchConfigFactory(build=build)
    body = api.get(f"/api/v1/builds/{build.id}/").json()
    assert body["status"] == "succeeded" and body["log"] == "all good" and body["used_in_batch"] is True
    assert body["schema"]["predictions"] == [{"name": "score", "type": "float"}]


def test_put_batch_config_makes_it_active(api, ml_model, user):
    build = BuildFactory(model=ml_model)
    url = f"/api/v1/builds/{build.id}/batch-config/"
    assert api.get(url).status_code == 404
    response = api.put(
        url,
        {
            "deployment_name": "fraud-batch",
            "instance_type": "ml.c5.2xlarge",
            "processes": "ONE",
            "env": {"FRAUD_THRESHOLD": "0.2"},
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    config = BatchConfig.objects.get(is_active=True)
    assert (config.instance_type.name, config.processes, config.env, config.created_by) == (
        "ml.c5.2xlarge",
        "ONE",
        {"FRAUD_THRESHOLD": "0.2"},
        user,
    )
    assert api.get(url).json()["deployment_name"] == "fraud-batch"
    assert api.get(url).json()["allow_network"] is False
    assert api.get(f"/api/v1/models/{ml_model.model_id}/").json()["active_batch_config"]["build_id"] == str(build.id)
    body = {"deployment_name": "fraud-batch", "instance_type": "ml.c5.2xlarge", "allow_network": True}
    assert api.put(url, body, format="json").json()["allow_network"] is True
    assert BatchConfig.objects.get(is_active=True).allow_network is True
    bad = api.put(url, {**body, "allow_network": "sometimes"}, format="json")
    assert bad.status_code == 400 and "allow_network" in bad.json()["errors"]


def test_put_batch_config_with_bad_values_lists_every_error_and_saves_nothing(api, ml_model):
    build = BuildFactory(model=ml_model)
    response = api.put(
        f"/api/v1/builds/{build.id}/batch-config/",
        {
            "deployment_name": "Bad Name",
            "instance_type": "ml.none",
            "processes": "SOME",
            "env": {"PATH": "/x", "lower": "y"},
        },
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"deployment_name", "instance_type", "processes", "env"}
    assert any("'PATH' is reserved" in e for e in errors["env"])
    assert any("'lower' is not allowed" in e for e in errors["env"])
    assert not BatchConfig.objects.exists()


def test_another_teams_model_is_404_in_detail_and_absent_from_the_list(outsider, ml_model):
    build = BuildFactory(model=ml_model)
    client = APIClient()
    client.force_authenticate(outsider)
    assert client.get("/api/v1/models/").json()["results"] == []
    for url in [
        f"/api/v1/models/{ml_model.model_id}/",
        f"/api/v1/models/{ml_model.model_id}/builds/",
        f"/api/v1/builds/{build.id}/",
        f"/api/v1/builds/{build.id}/batch-config/",
    ]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert "errors" in response.json()
    response = client.put(
        f"/api/v1/builds/{build.id}/batch-config/",
        {"deployment_name": "x", "instance_type": "ml.m5.large"},
        format="json",
    )
    assert response.status_code == 404
    assert not BatchConfig.objects.exists()


def test_staff_see_every_team(db, ml_model):
    from tests.factories import UserFactory

    client = APIClient()
    client.force_authenticate(UserFactory(username="root", is_staff=True))
    MLModelFactory(model_id="someone-elses")
    ids = {m["model_id"] for m in client.get("/api/v1/models/").json()["results"]}
    assert ids == {"ds-premium-fraud-detection", "someone-elses"}


def test_instance_types_list_the_catalog(api):
    body = api.get("/api/v1/instance-types/").json()
    large = next(t for t in body if t["name"] == "ml.m5.large")
    assert (large["vcpus"], large["memory_mib"]) == (2, 8192)


def test_the_openapi_schema_describes_the_api(api):
    response = api.get(reverse("api-schema"), HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/builds/{build_id}/batch-config/" in paths and "/api/v1/models/" in paths


def test_the_api_schema_needs_a_login(client, db):
    assert client.get("/api/schema/").status_code in (401, 403)


def test_nested_serializer_errors_keep_the_error_shape(api, ml_model):
    build = BuildFactory(model=ml_model)
    response = api.put(
        f"/api/v1/builds/{build.id}/batch-config/",
        {"deployment_name": "ok", "instance_type": "ml.m5.large", "env": {"A": None}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"]["env"] == ["A: This field may not be null."]


def test_a_model_cannot_be_named_new(api, team):
    response = api.post("/api/v1/models/", {"model_id": "new", "team": team.name}, format="json")
    assert response.status_code == 400 and "model_id" in response.json()["errors"]
