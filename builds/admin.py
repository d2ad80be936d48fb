from django.contrib import admin

from builds.models import BatchConfig, Build, InstanceType, MLModel


@admin.register(MLModel)
class MLModelAdmin(admin.ModelAdmin):
    list_display = ["model_id", "team", "created_by", "created_at"]
    list_filter = ["team"]
    search_fields = ["model_id", "description"]
    readonly_fields = ["created_at"]


@admin.register(Build)
class BuildAdmin(admin.ModelAdmin):
    list_display = ["model", "number", "status", "artifact_kind", "entrypoint", "created_by", "created_at"]
    list_filter = ["status", "artifact_kind", "model__team"]
    search_fields = ["model__model_id", "entrypoint", "id"]
    list_select_related = ["model", "created_by"]
    # A build is immutable: its artifact and the schema found when verifying it never change.
    readonly_fields = [
        "id",
        "model",
        "number",
        "artifact_kind",
        "artifact_path",
        "artifact_name",
        "artifact_size",
        "artifact_sha256",
        "entrypoint",
        "schema",
        "log",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False  # builds come through upload and verification only


@admin.register(InstanceType)
class InstanceTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "vcpus", "memory_mib", "queue", "is_active"]
    list_filter = ["is_active", "queue"]
    search_fields = ["name", "description"]


@admin.register(BatchConfig)
class BatchConfigAdmin(admin.ModelAdmin):
    list_display = [
        "deployment_name",
        "model",
        "build",
        "instance_type",
        "processes",
        "allow_network",
        "is_active",
        "created_by",
        "created_at",
    ]
    list_filter = ["is_active", "processes", "allow_network", "instance_type", "model__team"]
    search_fields = ["deployment_name", "model__model_id"]
    list_select_related = ["model", "build", "build__model", "instance_type", "created_by"]
    # A saved config is history: change the active one through "Set Batch Config", which keeps it.
    readonly_fields = [
        "model",
        "build",
        "deployment_name",
        "instance_type",
        "processes",
        "env",
        "created_by",
        "created_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False
