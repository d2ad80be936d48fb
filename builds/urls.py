from django.urls import path

from builds import views

app_name = "builds"

urlpatterns = [
    path("models/", views.model_list, name="model-list"),
    path("models/new/", views.model_create, name="model-create"),
    path("models/<slug:model_id>/", views.model_overview, name="model-overview"),
    path("models/<slug:model_id>/builds/", views.model_builds, name="model-builds"),
    path("builds/<uuid:build_id>/", views.build_detail, name="build-detail"),
    path("builds/<uuid:build_id>/batch-config/", views.batch_config_edit, name="batch-config"),
]
