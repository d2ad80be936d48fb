from django.urls import path
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from builds import apis


@api_view(["GET"])
def api_root(request: Request) -> Response:
    """ML Platform — Batch Prediction, REST API v1. The OpenAPI 3 schema is at /api/schema/."""
    return Response(
        {
            "models": reverse("api:model-list", request=request),
            "instance-types": reverse("api:instance-type-list", request=request),
            "schema": reverse("api-schema", request=request),
        }
    )


app_name = "api"

urlpatterns = [
    path("", api_root, name="root"),
    path("models/", apis.ModelListCreateApi.as_view(), name="model-list"),
    path("models/<slug:model_id>/", apis.ModelDetailApi.as_view(), name="model-detail"),
    path("models/<slug:model_id>/builds/", apis.BuildListCreateApi.as_view(), name="build-list"),
    path("builds/<uuid:build_id>/", apis.BuildDetailApi.as_view(), name="build-detail"),
    path("builds/<uuid:build_id>/batch-config/", apis.BatchConfigApi.as_view(), name="batch-config"),
    path("instance-types/", apis.InstanceTypeListApi.as_view(), name="instance-type-list"),
]
