"""A real Celery worker process verifies builds uploaded through the API (the broker from settings:
kombu's filesystem transport locally, Redis in CI)."""

import pytest
from rest_framework.test import APIClient

from builds.choices import BuildStatus
from builds.models import Build
from tests.artifacts import model_zip, upload
from tests.conftest import wait_for
from tests.factories import GroupFactory, MLModelFactory, UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def client_and_model():
    team = GroupFactory(name="worker-team")
    client = APIClient()
    client.force_authenticate(UserFactory(username="wendy", teams=[team]))
    return client, MLModelFactory(model_id="worker-model", team=team)


def test_a_worker_verifies_an_uploaded_build(job_worker, client_and_model):
    client, model = client_and_model
    response = client.post(
        f"/api/v1/models/{model.model_id}/builds/",
        {"artifact": upload(model_zip()), "entrypoint": "scorer:Scorer"},
        format="multipart",
    )
    assert response.status_code == 201
    build_id = response.json()["build_id"]
    build = wait_for(
        lambda: Build.objects.filter(pk=build_id, status__in=BuildStatus.TERMINAL).first(),
        timeout=90,
        message=f"the worker to verify build {build_id}",
    )
    assert build.status == BuildStatus.SUCCEEDED, build.log
    assert "meet the batch contract" in build.log
    assert client.get(f"/api/v1/builds/{build_id}/").json()["schema"]["predictions"] == [
        {"name": "score", "type": "float"}
    ]


def test_a_worker_fails_a_broken_build_with_the_reason(job_worker, client_and_model):
    client, model = client_and_model
    response = client.post(
        f"/api/v1/models/{model.model_id}/builds/",
        {"artifact": upload(model_zip('raise RuntimeError("weights missing")')), "entrypoint": "scorer:Scorer"},
        format="multipart",
    )
    build_id = response.json()["build_id"]
    build = wait_for(
        lambda: Build.objects.filter(pk=build_id, status__in=BuildStatus.TERMINAL).first(),
        timeout=90,
        message=f"the worker to verify build {build_id}",
    )
    assert build.status == BuildStatus.FAILED
    assert "RuntimeError: weights missing" in build.log
    assert job_worker.poll() is None  # the worker lives on
