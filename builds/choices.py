from django.db import models


class BuildStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    BUILDING = "building", "Building"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


# Status groups (batchjobs.choices declares JobStatus.ACTIVE and TERMINAL the same way).
BuildStatus.ACTIVE = (BuildStatus.PENDING, BuildStatus.BUILDING)
BuildStatus.TERMINAL = (BuildStatus.SUCCEEDED, BuildStatus.FAILED)


class ArtifactKind(models.TextChoices):
    SOURCE = "source", "Source archive"
    PICKLE = "pickle", "Pickled object"


class Processes(models.TextChoices):
    ONE = "ONE", "ONE — one model process per instance"
    ALL = "ALL", "ALL — one model process per vCPU"
