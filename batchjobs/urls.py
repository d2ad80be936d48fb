from django.urls import path

from batchjobs import views

app_name = "batchjobs"

urlpatterns = [
    path("batch/", views.coming, {"section": "Batch Jobs"}, name="board"),
    path("tables/", views.table_list, name="tables"),
    path("tables/upload/", views.table_upload, name="table-upload"),
    path("tables/check-name/", views.table_check_name, name="table-check-name"),
    path("tables/<str:name>/", views.table_detail, name="table-detail"),
    path("tables/<str:name>/drop/", views.table_drop, name="table-drop"),
]
