from django.contrib import admin

from tables.models import TableRecord


@admin.register(TableRecord)
class TableRecordAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "created_by", "job", "created_at"]
    raw_id_fields = ["job"]
    list_filter = ["team"]
    search_fields = ["name"]
    readonly_fields = ["created_at"]
