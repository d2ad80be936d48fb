"""Schedules in the admin: a look at each (next run, runs) with pause and resume; changes go through
the schedule pages and API, where every field is checked. Notification URLs are shown masked."""

from django.contrib import admin

from batchjobs.models import Schedule, ScheduleRun
from batchjobs.schedules import cron, notify_urls, selectors, services


class ScheduleRunInline(admin.TabularInline):
    model = ScheduleRun
    extra = 0
    can_delete = False
    fields = ["due_at", "manual", "status", "job", "message", "created_at"]
    readonly_fields = fields
    ordering = ["-due_at", "-id"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["model", "name", "cron", "timezone", "enabled", "next_run", "runs_started"]
    list_filter = ["enabled", "team", "model"]
    search_fields = ["name", "model__model_id", "input_table", "output_table_template"]
    list_select_related = ["model"]
    actions = ["pause", "resume"]
    inlines = [ScheduleRunInline]
    fields = [
        "model",
        "team",
        "name",
        "input_table",
        "output_table_template",
        "cron",
        "cron_in_words",
        "timezone",
        "enabled",
        "history_table",
        "events_table",
        "event_key_column",
        "keep_last",
        "masked_notify_urls",
        "notify_on",
        "last_due_at",
        "runs_started",
        "created_by",
        "created_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="next run")
    def next_run(self, schedule: Schedule):
        if not schedule.enabled:
            return "paused"
        return f"{selectors.next_runs(schedule, 1)[0].local:%Y-%m-%d %H:%M %Z}"

    @admin.display(description="in words")
    def cron_in_words(self, schedule: Schedule) -> str:
        return cron.describe(schedule.cron)

    @admin.display(description="notify URLs")
    def masked_notify_urls(self, schedule: Schedule) -> str:
        return ", ".join(notify_urls.masked_list(schedule.notify_urls)) or "—"

    @admin.action(description="Pause the selected schedules")
    def pause(self, request, queryset) -> None:
        for schedule in queryset:
            services.schedule_pause(schedule=schedule)

    @admin.action(description="Resume the selected schedules (missed times are not replayed)")
    def resume(self, request, queryset) -> None:
        for schedule in queryset:
            services.schedule_resume(schedule=schedule)
