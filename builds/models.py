import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from builds.choices import ArtifactKind, BuildStatus, Processes

MODEL_ID_RULE = "lowercase letters, digits and hyphens, starting with a letter, 3 to 63 characters"
model_id_validator = RegexValidator(
    r"^(?!new$)[a-z][a-z0-9-]{2,62}$", f"A model id uses {MODEL_ID_RULE} (and is not “new”)."
)


class MLModel(models.Model):
    model_id = models.CharField(max_length=63, unique=True, validators=[model_id_validator])
    description = models.TextField(blank=True)
    team = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="ml_models")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model_id"]
        verbose_name = "model"

    def __str__(self) -> str:
        return self.model_id


class Build(models.Model):
    """One immutable version of a model: its artifact, and the schema found when verifying it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(MLModel, on_delete=models.CASCADE, related_name="builds")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=BuildStatus, default=BuildStatus.PENDING, db_index=True)
    artifact_kind = models.CharField(max_length=16, choices=ArtifactKind)
    artifact_path = models.CharField(max_length=255, help_text="Under ARTIFACTS_URL; derived from the build id.")
    artifact_name = models.CharField(max_length=255, help_text="The uploaded file's name, for display only.")
    artifact_size = models.BigIntegerField()
    artifact_sha256 = models.CharField(max_length=64)
    entrypoint = models.CharField(max_length=255, blank=True)
    schema = models.JSONField(null=True, blank=True)
    log = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["model", "-number"]
        constraints = [models.UniqueConstraint(fields=["model", "number"], name="build_number_unique_per_model")]

    def __str__(self) -> str:
        return f"{self.model.model_id} build {self.number}"


class InstanceType(models.Model):
    """A resource profile; its Celery queue is where batches for it run."""

    name = models.CharField(max_length=63, unique=True)
    vcpus = models.PositiveSmallIntegerField()
    memory_mib = models.PositiveIntegerField()
    queue = models.CharField(max_length=63, default="predict")
    description = models.CharField(max_length=255, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["vcpus", "memory_mib", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.vcpus} vCPU, {self.memory_mib // 1024} GiB)"


class BatchConfig(models.Model):
    """How a build runs in batch. One per model is active; older ones stay as history."""

    model = models.ForeignKey(MLModel, on_delete=models.CASCADE, related_name="batch_configs")
    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="batch_configs")
    deployment_name = models.CharField(max_length=63)
    instance_type = models.ForeignKey(InstanceType, on_delete=models.PROTECT, related_name="+")
    processes = models.CharField(max_length=3, choices=Processes, default=Processes.ALL)
    env = models.JSONField(default=dict, blank=True)
    # Off: the model process has no network at all (its sandbox has none).
    allow_network = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model"], condition=Q(is_active=True), name="one_active_batch_config_per_model"
            ),
            models.CheckConstraint(condition=Q(processes__in=["ONE", "ALL"]), name="batch_config_processes_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.deployment_name} ({self.build})"
