from django.urls import path

from tables import apis

urlpatterns = [
    path("tables/", apis.TableListApi.as_view(), name="table-list"),
    path("tables/<str:name>/", apis.TableDetailApi.as_view(), name="table-detail"),
    path("tables/<str:name>/rows/", apis.TableRowsApi.as_view(), name="table-rows"),
    path("tables/<str:name>/download/", apis.TableDownloadApi.as_view(), name="table-download"),
]
