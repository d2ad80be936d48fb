from django.urls import path

from batchjobs import apis, job_apis

urlpatterns = [
    path("tables/", apis.TableListApi.as_view(), name="table-list"),
    path("tables/<str:name>/", apis.TableDetailApi.as_view(), name="table-detail"),
    path("tables/<str:name>/rows/", apis.TableRowsApi.as_view(), name="table-rows"),
    path("batch-jobs/", job_apis.BatchJobListApi.as_view(), name="batch-job-list"),
    path("batch-jobs/check/", job_apis.BatchJobCheckApi.as_view(), name="batch-job-check"),
    path("batch-jobs/<str:job_id>/", job_apis.BatchJobDetailApi.as_view(), name="batch-job-detail"),
    path("batch-jobs/<str:job_id>/cancel/", job_apis.BatchJobCancelApi.as_view(), name="batch-job-cancel"),
    path("batch-jobs/<str:job_id>/retry/", job_apis.BatchJobRetryApi.as_view(), name="batch-job-retry"),
    path("batch-jobs/<str:job_id>/batches/", job_apis.BatchListApi.as_view(), name="batch-job-batches"),
    path("batch-jobs/<str:job_id>/logs/", job_apis.BatchJobLogsApi.as_view(), name="batch-job-logs"),
    path("events/", job_apis.EventListApi.as_view(), name="event-list"),
]
