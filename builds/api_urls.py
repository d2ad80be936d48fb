from django.urls import path

from builds import apis

urlpatterns = [
    path("models/", apis.ModelListCreateApi.as_view(), name="model-list"),
    path("models/<slug:model_id>/", apis.ModelDetailApi.as_view(), name="model-detail"),
    path("models/<slug:model_id>/builds/", apis.BuildListCreateApi.as_view(), name="build-list"),
    path("builds/<str:build_id>/", apis.BuildDetailApi.as_view(), name="build-detail"),
    path("builds/<str:build_id>/batch-config/", apis.BatchConfigApi.as_view(), name="batch-config"),
    path("instance-types/", apis.InstanceTypeListApi.as_view(), name="instance-type-list"),
]
