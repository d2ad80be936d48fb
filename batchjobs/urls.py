from django.urls import path

from batchjobs import views

app_name = "batchjobs"

urlpatterns = [
    path("batch/", views.coming, {"section": "Batch Jobs"}, name="board"),
    path("tables/", views.coming, {"section": "Tables"}, name="tables"),
]
