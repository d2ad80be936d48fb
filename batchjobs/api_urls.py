from django.urls import path

from batchjobs import apis

urlpatterns = [
    path("batch-jobs/", apis.BatchJobListApi.as_view(), name="batch-job-list"),
    path("batch-jobs/check/", apis.BatchJobCheckApi.as_view(), name="batch-job-check"),
    path("batch-jobs/<str:job_id>/", apis.BatchJobDetailApi.as_view(), name="batch-job-detail"),
    path("batch-jobs/<str:job_id>/cancel/", apis.BatchJobCancelApi.as_view(), name="batch-job-cancel"),
    path("batch-jobs/<str:job_id>/retry/", apis.BatchJobRetryApi.as_view(), name="batch-job-retry"),
    path(
        "batch-jobs/<str:job_id>/retry-post-steps/",
        apis.BatchJobRetryPostStepsApi.as_view(),
        name="batch-job-retry-post-steps",
    ),
    path("batch-jobs/<str:job_id>/batches/", apis.BatchListApi.as_view(), name="batch-job-batches"),
    path("batch-jobs/<str:job_id>/logs/", apis.BatchJobLogsApi.as_view(), name="batch-job-logs"),
    path("events/", apis.EventListApi.as_view(), name="event-list"),
]
