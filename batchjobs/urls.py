from django.urls import path

from batchjobs import job_views, views

app_name = "batchjobs"

urlpatterns = [
    path("batch/", job_views.job_board, name="board"),
    path("batch/<uuid:job_id>/", job_views.job_detail, name="job-detail"),
    path("batch/<uuid:job_id>/cancel/", job_views.job_cancel, name="job-cancel"),
    path("batch/<uuid:job_id>/retry/", job_views.job_retry, name="job-retry"),
    path("batch/<uuid:job_id>/logs/", job_views.job_logs, name="job-logs"),
    path("batch/<uuid:job_id>/logs/<int:index>/<int:number>.txt", job_views.job_log_raw, name="job-log-raw"),
    path("events/", job_views.event_list, name="events"),
    path("models/<slug:model_id>/predict/", job_views.model_predict, name="model-predict"),
    path("models/<slug:model_id>/jobs/", job_views.model_jobs, name="model-jobs"),
    path("tables/", views.table_list, name="tables"),
    path("tables/upload/", views.table_upload, name="table-upload"),
    path("tables/check-name/", views.table_check_name, name="table-check-name"),
    path("tables/<str:name>/", views.table_detail, name="table-detail"),
    path("tables/<str:name>/drop/", views.table_drop, name="table-drop"),
]
