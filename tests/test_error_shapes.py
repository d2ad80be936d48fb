"""Errors in the API's shape ({"errors": {field: [sentences]}}) and the right status, also where
Django would answer first: a body over the size limit, an artifact over MAX_ARTIFACT_MB (refused
before it is read), an anonymous call (401, saying how to authenticate)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from builds.models import Build


def test_an_anonymous_api_call_is_a_401_that_says_how_to_authenticate(db):
    response = APIClient().get("/api/v1/batch-jobs/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert response.json() == {"errors": {"detail": ["Authentication credentials were not provided."]}}


def test_a_json_body_over_the_limit_is_a_413_in_the_apis_shape(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    body = '{"model_id": "' + "x" * (2 * 1024 * 1024) + '"}'
    response = api.post("/api/v1/batch-jobs/", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {
        "errors": {
            "detail": ["The request body is larger than the limit of 1 MB for a request that is not a file upload."]
        }
    }


@pytest.fixture
def small_artifacts(settings):
    settings.MAX_ARTIFACT_BYTES = 1024 * 1024
    return SimpleUploadedFile("big.zip", b"\0" * (3 * 1024 * 1024))


def test_an_artifact_over_the_limit_is_refused_before_it_is_read_through_the_api(api, ml_model, small_artifacts):
    response = api.post(
        f"/api/v1/models/{ml_model.model_id}/builds/",
        {"artifact": small_artifacts, "entrypoint": "m:M"},
        format="multipart",
    )
    assert response.status_code == 413
    assert response.json() == {
        "errors": {"artifact": ["The upload is 3 MB; an artifact may be at most 1 MB (MAX_ARTIFACT_MB)."]}
    }
    assert not Build.objects.exists()


def test_an_artifact_over_the_limit_is_refused_on_the_builds_page(web, ml_model, small_artifacts):
    response = web.post(
        reverse("builds:model-builds", args=[ml_model.model_id]), {"artifact": small_artifacts, "entrypoint": "m:M"}
    )
    assert response.status_code == 413
    page = response.content.decode()
    assert "Upload too large" in page and "an artifact may be at most 1 MB (MAX_ARTIFACT_MB)" in page
    assert not Build.objects.exists()


@pytest.mark.parametrize(
    "path, says",
    [
        ("/tables/prod.nosuch.table/", "No such table."),
        ("/batch/00000000-0000-0000-0000-000000000000/", "No such batch job."),
        ("/models/no-such-model/", "No such model."),
        ("/no/page/here/", "There is no page at this address."),
    ],
)
def test_a_page_that_is_not_there_is_a_404_page_of_the_site_saying_what(web, path, says):
    response = web.get(path)
    assert response.status_code == 404
    page = response.content.decode()
    assert f'<p class="error" role="alert">{says}</p>' in page
    assert 'class="mainnav"' in page and "Log out" in page  # the site's own page, with its way back
    assert path in page
