from django.urls import path

from batchjobs import views

app_name = "batchjobs"

urlpatterns = [
    path("batch/", views.job_board, name="board"),
    path("batch/<uuid:job_id>/", views.job_detail, name="job-detail"),
    path("batch/<uuid:job_id>/cancel/", views.job_cancel, name="job-cancel"),
    path("batch/<uuid:job_id>/retry/", views.job_retry, name="job-retry"),
    path("batch/<uuid:job_id>/retry-post-steps/", views.job_retry_post_steps, name="job-retry-post-steps"),
    path("batch/<uuid:job_id>/logs/", views.job_logs, name="job-logs"),
    path("batch/<uuid:job_id>/logs/<int:index>/<int:number>.txt", views.job_log_raw, name="job-log-raw"),
    path("events/", views.event_list, name="events"),
    path("models/<slug:model_id>/predict/", views.model_predict, name="model-predict"),
    path("models/<slug:model_id>/predict/tables/", views.model_table_names, name="model-table-names"),
    path("models/<slug:model_id>/jobs/", views.model_jobs, name="model-jobs"),
]
