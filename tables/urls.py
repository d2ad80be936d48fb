from django.urls import path

from tables import views

app_name = "tables"

urlpatterns = [
    path("tables/", views.table_list, name="list"),
    path("tables/upload/", views.table_upload, name="upload"),
    path("tables/check-name/", views.table_check_name, name="check-name"),
    path("tables/<str:name>/", views.table_detail, name="detail"),
    path("tables/<str:name>/drop/", views.table_drop, name="drop"),
    path("tables/<str:name>/download/", views.table_download, name="download"),
]
