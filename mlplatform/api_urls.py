"""/api/v1/: every app's API under one namespace, and a browsable root."""

from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse


@extend_schema(exclude=True)
@api_view(["GET"])
def api_root(request: Request) -> Response:
    """ML Platform — Batch Prediction, REST API v1. The OpenAPI 3 schema is at /api/schema/."""
    return Response(
        {
            "models": reverse("api:model-list", request=request),
            "instance-types": reverse("api:instance-type-list", request=request),
            "tables": reverse("api:table-list", request=request),
            "batch-jobs": reverse("api:batch-job-list", request=request),
            "events": reverse("api:event-list", request=request),
            "schedules": reverse("api:schedule-list", request=request),
            "schema": reverse("api-schema", request=request),
        }
    )


app_name = "api"

urlpatterns = [
    path("", api_root, name="root"),
    path("", include("builds.api_urls")),
    path("", include("tables.api_urls")),
    path("", include("batchjobs.api_urls")),
]
