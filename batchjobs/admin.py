from django.contrib import admin

from batchjobs.models import Batch, BatchJob, JobEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Jobs, batches and events are written by the pipeline only; the admin looks."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class BatchInline(admin.TabularInline):
    model = Batch
    extra = 0
    can_delete = False
    fields = ["index", "rows", "status", "attempts", "worker", "error", "started_at", "finished_at"]
    readonly_fields = fields
    show_change_link = False


@admin.register(BatchJob)
class BatchJobAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "model",
        "status",
        "phase",
        "input_table",
        "output_table",
        "input_rows",
        "output_rows",
        "requested_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "phase", "model__team", "model"]
    search_fields = ["id", "model__model_id", "input_table", "output_table"]
    list_select_related = ["model", "requested_by"]
    date_hierarchy = "created_at"
    inlines = [BatchInline]


@admin.register(JobEvent)
class JobEventAdmin(ReadOnlyAdmin):
    list_display = [
        "evid",  # its label: "402 started"
        "src",
        "uuid",
        "job_id",
        "model_id",
        "build_id",
        "endpoint_name",
        "job_start_time",
        "job_type",
        "date_created",
    ]
    list_filter = ["evid", "src", "job_type", "model_id"]
    search_fields = ["uuid", "job__id", "model_id", "endpoint_name", "error"]
    date_hierarchy = "date_created"


from batchjobs.schedules import admin as schedule_admin  # noqa: E402, F401 - registers Schedule
